"""llama.cpp backend and GGUF export on the TINY random Llama (2 layers, hidden 64, SmolLM2's tokenizer).

The tiny model is written to GGUF by our exporter (f32), so llama.cpp and transformers run the
same weights: their logits must agree closely, which checks the export (tensor names, the RoPE
row permutation, tokenizer metadata) and the backend (embedding inputs, positions, sequence ids).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install 'omnibind[llamacpp]')")

from omnibind.errors import BackendUnsupportedError, ConfigError
from omnibind.llm.backends.base import GenerationOptions

PROBES = [
    "Hello world! It's 2024: 3.14159 apples, 1,000,000 pears.",
    "<|im_start|>user\nWhat's in the picture?<|im_end|>\n<|im_start|>assistant\n",
    "  Indented\tcode() {x += 42;}\n\n\nÉtude café naïve — 東京 😀",
    "Image: \nAudio: \n",
]


@pytest.fixture(scope="module")
def ll(tiny_gguf: Path):
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(tiny_gguf), n_ctx=1024, n_seq_max=4)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def tf(tiny_llm_dir: Path):
    from omnibind.llm.backends.transformers import TransformersBackend

    return TransformersBackend(str(tiny_llm_dir))


def _prompt(backend, text: str) -> torch.Tensor:
    return backend.embed_tokens(backend.tokenize(text))


def _greedy(backend, prompts: list[torch.Tensor], n: int = 8, **opts) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in prompts]
    for step in backend.generate(prompts, GenerationOptions(max_new_tokens=n, **opts)):
        for i, t in enumerate(step):
            if t is not None:
                out[i].append(t)
    return out


def test_registered_and_refuses_layer_injection(ll):
    from omnibind.llm.backends import LLM_BACKENDS
    from omnibind.llm.backends.base import LayerInjection

    assert LLM_BACKENDS.get("llamacpp") is type(ll)
    assert not ll.supports_layer_injection and not ll.supports_training
    inj = LayerInjection(feature=torch.zeros(1, ll.hidden_size), gates=torch.zeros(ll.num_layers))
    with pytest.raises(BackendUnsupportedError, match="gated"):
        ll.generate([_prompt(ll, "hi")], GenerationOptions(max_new_tokens=2), inj)


def test_tokenizer_matches_hf(ll, tf):
    for text in PROBES:
        assert ll.tokenize(text) == tf.tokenize(text), text
        ids = tf.tokenize(text)
        assert ll.detokenize(ids) == tf.detokenize(ids), text
    assert ll.eos_token_ids >= {tf.tokenizer.convert_tokens_to_ids("<|im_end|>")}


def test_embedding_input_equals_token_input(ll):
    """embed_tokens returns exactly the rows llama.cpp uses for token ids: same logits either way."""
    ids = ll.tokenize(PROBES[0])
    n = len(ids)
    pos, seq, want = np.arange(n), np.zeros(n), np.ones(n, dtype=bool)
    ll.reset_cache()
    by_ids = ll._decode(tokens=np.asarray(ids, dtype=np.int32), pos=pos, seq=seq, want=want)
    ll.reset_cache()
    by_emb = ll._decode(embeds=ll.embed_tokens(ids).numpy(), pos=pos, seq=seq, want=want)
    ll.reset_cache()
    for i in range(n):
        np.testing.assert_array_equal(by_ids[i], by_emb[i])


def test_logits_match_transformers(ll, tf):
    """Same f32 weights through both engines: the exporter's tensor layout is right."""
    emb = _prompt(tf, PROBES[1])
    with torch.inference_mode():
        want = tf.forward_logits(emb[None], torch.ones(1, emb.shape[0], dtype=torch.long))[0]
    ll.reset_cache()
    got = ll.forward_logits(emb[None], torch.ones(1, emb.shape[0], dtype=torch.long))[0]
    torch.testing.assert_close(got, want.float(), atol=2e-3, rtol=1e-3)


def test_batched_greedy_matches_single_and_transformers(ll, tf):
    prompts = [_prompt(ll, "Tell me a story."), _prompt(ll, PROBES[1]), _prompt(ll, "Hi")]
    ll.reset_cache()
    together = _greedy(ll, prompts)
    alone = []
    for p in prompts:
        ll.reset_cache()
        alone.append(_greedy(ll, [p])[0])
    assert together == alone
    assert together == _greedy(tf, prompts)


def test_kv_cache_reuse_across_turns(ll):
    first = _prompt(ll, PROBES[1])
    ll.reset_cache()
    reply = _greedy(ll, [first], n=6)[0]
    held = max(ll.cache_lengths())
    assert held == first.shape[0] + len(reply) - 1  # the last sampled token was never fed
    follow = torch.cat([first, ll.embed_tokens(reply), _prompt(ll, "<|im_end|>\n<|im_start|>user\nMore?")])
    assert ll.cached_prefix(follow) == held  # all that turn 1 left in the cache is reused
    assert ll.cached_prefix(first[:5]) == 4  # at least one row is always evaluated
    again = _greedy(ll, [follow], n=6)[0]
    assert max(ll.cache_lengths()) >= follow.shape[0]
    ll.reset_cache()
    assert ll.cache_lengths() == [0] * len(ll.cache_lengths())
    assert _greedy(ll, [follow], n=6)[0] == again  # reuse changes nothing but the time
    # a prompt that diverges early only keeps the shared rows
    other = torch.cat([first[:3], _prompt(ll, "something else entirely")])
    _greedy(ll, [other], n=2)
    assert other.shape[0] <= max(ll.cache_lengths()) <= other.shape[0] + 1


def test_sampling_options(ll):
    p = [_prompt(ll, "Once upon a time")]
    a = _greedy(ll, p, n=8, temperature=1.0, seed=3)
    b = _greedy(ll, p, n=8, temperature=1.0, seed=3)
    assert a == b
    seeds = {tuple(_greedy(ll, p, n=8, temperature=1.5, seed=s)[0]) for s in range(4)}
    assert len(seeds) > 1
    assert _greedy(ll, p, n=8, temperature=1.0, top_k=1, seed=5) == _greedy(ll, p, n=8)
    rep = _greedy(ll, p, n=12, repetition_penalty=50.0)[0]
    assert len(set(rep)) == len(rep)  # a huge penalty forbids any repeat


def test_ignore_eos_decodes_the_full_budget(ll):
    p = [_prompt(ll, "Once upon a time")]
    first = _greedy(ll, p, n=1)[0][0]
    saved = set(ll.eos_token_ids)
    ll.eos_token_ids = saved | {first}  # the greedy first token now ends the answer at once
    try:
        assert _greedy(ll, p, n=5) == [[]]
        forced = _greedy(ll, p, n=5, ignore_eos=True)[0]
        assert len(forced) == 5 and not set(forced) & ll.eos_token_ids
    finally:
        ll.eos_token_ids = saved


def test_stream_closed_early_releases_its_slot(ll):
    ll.reset_cache()
    gen = ll.generate([_prompt(ll, "Count to ten")], GenerationOptions(max_new_tokens=50))
    next(gen)
    gen.close()
    assert _greedy(ll, [_prompt(ll, "x")] * 4, n=2)  # all four slots free again


def test_errors_name_the_source(tmp_path: Path):
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

    with pytest.raises(ConfigError, match="no such GGUF"):
        LlamaCppBackend(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ConfigError, match="bad.gguf"):
        LlamaCppBackend(str(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .gguf"):
        LlamaCppBackend(str(tmp_path / "empty"))


def test_model_on_llamacpp_and_gated_refused(tiny_config_dict: dict, tiny_gguf: Path):
    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.messages import Message
    from omnibind.model import OmnibindModel

    cfg = ModelConfig.from_dict({**tiny_config_dict, "llm": {"backend": "llamacpp", "source": str(tiny_gguf)}})
    m = Model(OmnibindModel(cfg), origin="t", trained=False)
    reply = m.chat([Message.user("Hello")], max_new_tokens=4)
    assert reply.completion_tokens <= 4 and reply.prompt_tokens > 0
    scores = m.score([Message.user("Hello")], ["yes", "no"])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    gated = ModelConfig.from_dict({**cfg.to_dict(), "injection": {"kind": "gated"}})
    with pytest.raises(BackendUnsupportedError, match="gated"):
        OmnibindModel(gated)


def test_server_batches_on_llamacpp(tiny_config_dict: dict, tiny_gguf: Path):
    """The server's micro-batcher on llama.cpp: requests share one decode, answers match solo runs."""
    import asyncio

    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.messages import Image, Message
    from omnibind.model import OmnibindModel
    from omnibind.serve.batching import Batcher

    cfg = ModelConfig.from_dict({**tiny_config_dict, "llm": {"backend": "llamacpp", "source": str(tiny_gguf)}})
    m = Model(OmnibindModel(cfg), origin="t", trained=False)
    greedy = {"max_new_tokens": 6, "temperature": 0.0, "stop": []}
    img = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    convs = [[Message.user("Hello there")], [Message.user("Tell me more")], [Message.user(Image(img), "What?")]]
    solo = [m.generate([c], max_new_tokens=6)[0].text for c in convs]

    async def run():
        batcher = Batcher(m, max_batch_size=4, autostart=False)
        try:
            handles = [batcher.submit_chat(c, greedy) for c in convs]
            batcher.start()
            return [await h.result() for h in handles]
        finally:
            batcher.close()

    results = asyncio.run(run())
    assert [r.text for r in results] == solo
    assert all(r.batch_size == 3 for r in results)
    assert m.info()["llm"]["parameters"] > 0  # read from the GGUF (no torch parameters to count)
    assert m.info()["llm"]["weights"] == str(m.core.llm.gguf_path)


def test_export_roundtrip_with_lora(tmp_path: Path, tiny_config_dict: dict):
    """A LoRA-tuned tiny model exported to GGUF answers like the original on transformers."""
    import omnibind
    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.export import export_gguf
    from omnibind.messages import Message
    from omnibind.model import OmnibindModel

    cfg = ModelConfig.from_dict({**tiny_config_dict, "llm": {**tiny_config_dict["llm"], "lora": {"r": 4}}})
    src = Model(OmnibindModel(cfg), origin="t", trained=False)
    with torch.no_grad():  # LoRA B starts at zero: make the adapter matter
        for n, p in src.core.llm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(n)))
    src.save(tmp_path / "ckpt")
    out = export_gguf(tmp_path / "ckpt", tmp_path / "exported", outtype="f32")
    umask = os.umask(0)
    os.umask(umask)
    assert out.folder.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert {f.stat().st_mode & 0o777 for f in out.folder.iterdir()} == {0o666 & ~umask}
    loaded = omnibind.load(out.folder)
    assert loaded.config.llm.backend == "llamacpp" and loaded.core.llm.name == "llamacpp"
    conv = [Message.user("Tell me something.")]
    ref = omnibind.load(tmp_path / "ckpt")
    ref.core.llm.model.eval()  # peft's new LoRA dropout modules start in training mode
    want = ref.chat(conv, max_new_tokens=8).text
    assert loaded.chat(conv, max_new_tokens=8).text == want
    q8 = export_gguf(tmp_path / "ckpt", tmp_path / "q8", outtype="q8_0")
    assert q8.gguf_bytes < out.gguf_bytes
    with pytest.raises(ConfigError, match="not empty"):
        export_gguf(tmp_path / "ckpt", tmp_path / "q8")


@pytest.mark.parametrize("media_only", [False, True])
def test_lora_checkpoint_runs_as_llamacpp_adapter(
    tmp_path: Path, tiny_config_dict: dict, tiny_llm_dir: Path, tiny_gguf: Path, media_only: bool
):
    """LoRA weights become a llama.cpp adapter over the unmerged GGUF, on media rows only if asked."""
    import shutil

    from PIL import Image as PILImage

    import omnibind
    from omnibind.api import Model, load_llamacpp
    from omnibind.config import ModelConfig
    from omnibind.messages import Image, Message
    from omnibind.model import OmnibindModel

    llm_dir = tmp_path / "llm"
    shutil.copytree(tiny_llm_dir, llm_dir)
    shutil.copy(tiny_gguf, llm_dir / "tiny.gguf")  # the same weights, for llama.cpp
    llm = {
        **tiny_config_dict["llm"],
        "source": str(llm_dir),
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "lora_media_only": media_only,
    }
    src = Model(OmnibindModel(ModelConfig.from_dict({**tiny_config_dict, "llm": llm})), origin="t", trained=False)
    with torch.no_grad():
        for n, p in src.core.llm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2, generator=torch.Generator().manual_seed(len(n)))
    src.save(tmp_path / "ckpt")
    img = tmp_path / "x.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(img)
    ref = omnibind.load(tmp_path / "ckpt")
    ref.core.llm.model.eval()
    # the plain public path: omnibind.load(..., backend="llamacpp") turns the LoRA into an adapter
    ll = omnibind.load(tmp_path / "ckpt", backend="llamacpp")
    assert ll.core.llm.name == "llamacpp" and ll.core.llm._adapter is not None and ll.trained
    cands = ["yes", "no", "a red square"]
    convs = ([Message.user("Is it red?")], [Message.user(Image(str(img)), "Is it red?")])
    with_adapter = [ll.score(c, cands) for c in convs]
    for conv, got in zip(convs, with_adapter):
        np.testing.assert_allclose(got, ref.score(conv, cands), atol=2e-2, rtol=1e-3)
    if media_only:  # export keeps such an adapter unmerged; the exported folder answers the same
        from omnibind.export import export_gguf

        out = export_gguf(tmp_path / "ckpt", tmp_path / "exported", outtype="f32")
        exported = omnibind.load(out.folder)  # its config says llamacpp, LoRA kept as an adapter
        assert exported.config.llm.backend == "llamacpp" and exported.core.llm._adapter is not None
        for conv, got in zip(convs, with_adapter):
            np.testing.assert_allclose(exported.score(conv, cands), got, atol=1e-3)
    # another GGUF of the same base (load_llamacpp's source): the base check is skipped, adapter kept
    same = load_llamacpp(tmp_path / "ckpt", source=str(tiny_gguf))
    assert same.core.llm.gguf_path == tiny_gguf and same.core.llm._adapter is not None
    np.testing.assert_allclose(same.score(convs[1], cands), with_adapter[1], atol=1e-4)
    # a LoRA config without weights (untrained, B = 0) builds on llama.cpp without an adapter
    cfg_file = tmp_path / "lora.json"
    ModelConfig.from_dict({**tiny_config_dict, "llm": llm}).save(cfg_file)
    fresh = omnibind.load(cfg_file, backend="llamacpp")
    assert fresh.core.llm._adapter is None and not fresh.trained
    assert fresh.chat([Message.user("Hi")], max_new_tokens=2).completion_tokens <= 2
    ll.core.llm._use_adapter(False)  # the base model alone from here on
    ll.core.llm._adapter = None
    ll.core.llm.reset_cache()
    moved = [float(np.abs(ll.score(c, cands) - w).max()) for c, w in zip(convs, with_adapter)]
    assert moved[1] > 0.05  # the adapter acts on the conversation with media
    assert (moved[0] < 1e-4) if media_only else (moved[0] > 0.05)


def test_bench_backends_end_to_end_on_the_tiny_model(
    tmp_path: Path, tiny_config_dict: dict, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
):
    """The whole backends bench on the tiny model: three engines, every figure present and sane.

    The f16 copy of the transformers weights is built once into the cache and then reused."""
    import json

    from omnibind.bench import backends as bb
    from omnibind.config import ModelConfig

    monkeypatch.setenv("OMNIBIND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(bb, "TEXT_PROMPTS", bb.TEXT_PROMPTS[:2])
    monkeypatch.setattr(bb, "MEDIA_PROMPTS", bb.MEDIA_PROMPTS[:2])
    cfg = tmp_path / "tiny.json"
    ModelConfig.from_dict(tiny_config_dict).save(cfg)
    f16 = bb.exact_gguf(tiny_config_dict["llm"]["source"])
    assert f16 is not None and f16.parent == tmp_path / "cache" / "llamacpp-exact"
    stamp = f16.stat().st_mtime_ns
    assert bb.exact_gguf(tiny_config_dict["llm"]["source"]) == f16 and f16.stat().st_mtime_ns == stamp
    assert bb.exact_gguf(str(tiny_gguf)) is None

    r = bb.bench_backends(str(cfg), tokens=6, repeats=1, gguf=str(tiny_gguf))
    json.dumps(r)  # JSON-able
    assert r["engines"] == ["transformers", "llamacpp", "llamacpp_f16"]
    assert r["gguf"] == {"llamacpp": str(tiny_gguf), "llamacpp_f16": str(f16)}
    for e in r["engines"]:
        assert r["load_seconds"][e] > 0 and r["decode"][e]["tokens_per_second"] > 0
        assert r["first_token_with_image_seconds"][e] > 0
    assert r["decode"]["ratio"] == r["decode"]["ratios"]["llamacpp"]
    # same f32 weights (llamacpp) and their f16 copy: the tiny random model agrees on all 4 cases
    assert r["agreement"]["cases"] == 4 and r["agreement"]["rate"] == 1.0
    assert r["agreement_by_engine"]["llamacpp_f16"]["cases"] == 4
    assert set(r["kv_reuse"]) == {"image chat", "text chat"}
    for kv in r["kv_reuse"].values():
        assert 0 < kv["cached_positions"] < kv["history_positions"] and kv["ratio"] > 0
    bb.print_backends_report(r)


def test_requantize_gguf_as_f16(tmp_path: Path, tiny_llm_dir: Path):
    """A quantised GGUF re-stored as f16 (how the embedded default runs on llama.cpp): quantised
    matrices become f16 of their dequantised values, f32 norms and metadata stay, llama.cpp loads it."""
    import gguf
    from transformers import AutoModelForCausalLM

    from omnibind.llm.backends.llamacpp import LlamaCppBackend
    from omnibind.llm.gguf_io import guess_tokenizer_pre, requantize_gguf_as_f16, write_llama_gguf

    hf = AutoModelForCausalLM.from_pretrained(str(tiny_llm_dir), dtype=torch.float32)
    q8, f16 = tmp_path / "q8.gguf", tmp_path / "f16.gguf"
    write_llama_gguf(
        hf, q8, outtype="q8_0", tokenizer_dir=tiny_llm_dir, tokenizer_pre=guess_tokenizer_pre(tiny_llm_dir)
    )
    converted = requantize_gguf_as_f16(q8, f16)
    src, out = gguf.GGUFReader(str(q8)), gguf.GGUFReader(str(f16))
    q8_tensors = [t for t in src.tensors if t.tensor_type == gguf.GGMLQuantizationType.Q8_0]
    assert converted == len(q8_tensors) > 0
    assert out.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_F16)
    assert out.fields["tokenizer.ggml.tokens"].contents() == src.fields["tokenizer.ggml.tokens"].contents()
    by_name = {t.name: t for t in out.tensors}
    assert list(by_name) == [t.name for t in src.tensors]
    for t in src.tensors:
        g = by_name[t.name]
        if t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            assert g.tensor_type == gguf.GGMLQuantizationType.F16
            want = gguf.dequantize(t.data, t.tensor_type).reshape(-1)
            np.testing.assert_allclose(g.data.reshape(-1).astype(np.float32), want, rtol=2**-10, atol=1e-7)
        else:
            assert g.tensor_type == t.tensor_type and np.array_equal(g.data, t.data)
    backend = LlamaCppBackend(str(f16), n_ctx=256, n_seq_max=1)
    try:
        assert len(_greedy(backend, [_prompt(backend, "Hello")], n=4)[0]) == 4
    finally:
        backend.close()


def test_eval_fingerprint_tells_gguf_files_apart(tiny_config_dict: dict, tiny_gguf: Path, tmp_path: Path):
    """One source name can stand for different GGUF files (the embedded f16 and Q4_1): cached eval
    outputs must not carry over between them."""
    import shutil

    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.eval.models import LocalModel
    from omnibind.model import OmnibindModel

    cfg = ModelConfig.from_dict({**tiny_config_dict, "llm": {"backend": "llamacpp", "source": str(tiny_gguf)}})
    m = Model(OmnibindModel(cfg), origin="t", trained=False)
    before = LocalModel(m).fingerprint
    assert LocalModel(m).fingerprint == before
    other = tmp_path / tiny_gguf.name
    shutil.copy(tiny_gguf, other)
    with open(other, "ab") as f:
        f.write(b"\0" * 32)  # same name, another file
    m.core.llm.gguf_path = other
    assert LocalModel(m).fingerprint != before


def test_export_cli(tmp_path: Path, tiny_config_dict: dict):
    """``omnibind export gguf`` (mounted from omnibind.export) writes a llama.cpp checkpoint; a
    non-empty output folder is refused with exit code 2 unless --overwrite."""
    import json

    from typer.testing import CliRunner

    from omnibind.cli import app
    from omnibind.config import ModelConfig

    cfg = tmp_path / "tiny.json"
    ModelConfig.from_dict(tiny_config_dict).save(cfg)
    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(app, ["export", "gguf", str(cfg), str(out), "--outtype", "f32"])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and (out / "model.gguf").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["export"]["outtype"] == "f32" and manifest["created"]
    assert ModelConfig.load(out / "config.json").llm.backend == "llamacpp"
    r = runner.invoke(app, ["export", "gguf", str(cfg), str(out)])
    assert r.exit_code == 2 and "not empty" in r.output
    r = runner.invoke(app, ["export", "gguf", str(cfg), str(out), "--overwrite", "--outtype", "q8_0"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["export"]["outtype"] == "q8_0"
    assert not list(tmp_path.glob(".out.*"))  # no temporary or .old folder left behind
