"""llama.cpp on the real embedded SmolLM2-135M GGUF: vocabulary, embeddings, answers, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install 'omnibind[llamacpp]')")

from omnibind.llm.backends.base import GenerationOptions

pytestmark = pytest.mark.integration
PROMPTS = [
    "Describe a cat in one sentence.",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How do I boil an egg?",
    "Why is the sky blue?",
]


@pytest.fixture(scope="module")
def ll():
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend("embedded:smollm2-135m", n_ctx=2048, n_seq_max=4)
    yield backend
    backend.close()


def _chat_prompt(backend, text: str) -> torch.Tensor:
    return backend.embed_tokens(backend.tokenize(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"))


def _greedy(backend, prompts: list[torch.Tensor], n: int = 10) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in prompts]
    for step in backend.generate(prompts, GenerationOptions(max_new_tokens=n)):
        for i, t in enumerate(step):
            if t is not None:
                out[i].append(t)
    return out


def test_vocabulary_and_embeddings_match_the_hf_copy(ll, smollm_dir: Path):
    from safetensors import safe_open
    from transformers import AutoTokenizer

    from omnibind.llm.embedded import embedded_gguf_path
    from omnibind.llm.gguf_io import read_token_embeddings

    tok = AutoTokenizer.from_pretrained(str(smollm_dir))
    for text in [
        "Hello, world!",
        "<|im_start|>user\nHi<|im_end|>\n",
        "Ünïcödé 東京 — ok?",
        "a  b\n\n\tc",
        "x=42; y = 3.5",
    ]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ll.tokenize(text) == ids, text
        assert ll.detokenize(ids) == tok.decode(ids, skip_special_tokens=True)
    with safe_open(str(smollm_dir / "model.safetensors"), "pt") as f:
        table = f.get_tensor("model.embed_tokens.weight")
    ids = [0, 1, 2, 100, 4000, 49151]
    # the shipped Q8_0 table dequantises to the HF copy bit for bit; the default f16 GGUF rounds it to f16
    shipped, _ = read_token_embeddings(embedded_gguf_path())
    assert torch.equal(torch.from_numpy(shipped[ids]), table[ids].float())
    torch.testing.assert_close(ll.embed_tokens(ids), table[ids].float(), rtol=2**-10, atol=1e-7)
    assert torch.equal(ll.embed_tokens(ids), table[ids].half().float())


def test_embedded_answers_and_batching(ll):
    prompts = [_chat_prompt(ll, p) for p in PROMPTS[:3]]
    ll.reset_cache()
    together = _greedy(ll, prompts, n=16)
    text = ll.detokenize(together[0]).lower()
    assert "cat" in text or "fur" in text or "feline" in text, text
    assert "paris" in ll.detokenize(together[1]).lower()
    ll.reset_cache()
    assert _greedy(ll, [prompts[1]], n=16)[0] == together[1]


def test_embedded_sources_on_llamacpp(ll):
    """``embedded:smollm2-135m`` is an f16 GGUF of the shipped weights (values of the dequantised
    tensors, metadata copied); ``embedded:smollm2-135m-q4_1`` is the shipped file itself."""
    import gguf
    import numpy as np

    from omnibind.errors import ConfigError
    from omnibind.llm.embedded import embedded_gguf_path
    from omnibind.llm.sources import resolve_gguf

    shipped = embedded_gguf_path()
    assert resolve_gguf("embedded:smollm2-135m-q4_1") == shipped
    assert ll.gguf_path == resolve_gguf("embedded:smollm2-135m") != shipped
    with pytest.raises(ConfigError, match="known: embedded:smollm2-135m, embedded:smollm2-135m-q4_1"):
        resolve_gguf("embedded:smollm2-1b")
    src, f16 = gguf.GGUFReader(str(shipped)), gguf.GGUFReader(str(ll.gguf_path))
    assert [t.name for t in src.tensors] == [t.name for t in f16.tensors]
    assert f16.fields["tokenizer.ggml.tokens"].contents() == src.fields["tokenizer.ggml.tokens"].contents()
    by_name = {t.name: t for t in f16.tensors}
    for t in src.tensors:
        g = by_name[t.name]
        quantised = t.tensor_type not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
        assert g.tensor_type == (gguf.GGMLQuantizationType.F16 if quantised else t.tensor_type), t.name
        if t.name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight", "output_norm.weight"):
            want = gguf.dequantize(t.data, t.tensor_type).reshape(-1)
            np.testing.assert_allclose(g.data.reshape(-1).astype(np.float32), want, rtol=2**-10, atol=1e-7)


def test_llamacpp_default_answers_like_transformers(ll):
    """The agreement the backend promises: same greedy 10 tokens as the transformers backend (which
    runs the same dequantised weights in float32) on every prompt."""
    from omnibind.llm.backends.transformers import TransformersBackend

    tf = TransformersBackend("embedded:smollm2-135m")
    ll.reset_cache()
    mine = _greedy(ll, [_chat_prompt(ll, p) for p in PROMPTS])
    theirs = [_greedy(tf, [_chat_prompt(tf, p)])[0] for p in PROMPTS]
    same = sum(a == b for a, b in zip(mine, theirs))
    assert same == len(PROMPTS), [(ll.detokenize(a), tf.detokenize(b)) for a, b in zip(mine, theirs) if a != b]


def test_exported_dequantised_copy_answers_like_the_original(ll, smollm_dir: Path, tmp_path: Path):
    """The HF copy written back to GGUF by `omnibind export gguf` holds the default's f16 weights:
    same greedy tokens."""
    from transformers import AutoModelForCausalLM

    from omnibind.llm.backends.llamacpp import LlamaCppBackend
    from omnibind.llm.embedded import embedded_gguf_path
    from omnibind.llm.gguf_io import write_llama_gguf

    hf = AutoModelForCausalLM.from_pretrained(str(smollm_dir), dtype=torch.float32)
    path = tmp_path / "smollm2-f16.gguf"
    write_llama_gguf(hf, path, outtype="f16", base_gguf=embedded_gguf_path())
    del hf
    copy = LlamaCppBackend(str(path), n_ctx=1024, n_seq_max=len(PROMPTS))
    try:
        prompts = [_chat_prompt(ll, p) for p in PROMPTS]
        assert copy.tokenize(PROMPTS[0]) == ll.tokenize(PROMPTS[0])
        ll.reset_cache()
        assert _greedy(ll, prompts) == _greedy(copy, prompts)
    finally:
        copy.close()


def test_embedded_default_model_on_llamacpp():
    """`omnibind.load(backend="llamacpp")`: the trained default, its media-only LoRA as an adapter."""
    import omnibind
    from omnibind.messages import Image, Message

    root = Path(__file__).resolve().parents[2]
    m = omnibind.load(backend="llamacpp")
    assert m.core.llm.name == "llamacpp" and m.core.llm._adapter is not None and m.trained
    reply = m.chat([Message.user(Image(str(root / "examples" / "image_cat.jpg")), "What is in this picture?")])
    assert reply.text.strip() and reply.completion_tokens > 0
    assert "paris" in m.chat("What is the capital of France?", max_new_tokens=16).text.lower()


def test_gated_preset_refused_on_llamacpp():
    import omnibind
    from omnibind.errors import BackendUnsupportedError

    with pytest.raises(BackendUnsupportedError, match="gated every-layer injection"):
        omnibind.load("imagebind-llm-embedded", backend="llamacpp")


def test_chat_second_turn_reuses_the_first():
    """The embedded model's replies re-tokenise as generated, so turn 2 evaluates only its new rows."""
    from omnibind.api import load_llamacpp
    from omnibind.bench.backends import EXAMPLES, kv_reuse

    m = load_llamacpp(None)
    for image, question in ((EXAMPLES / "image_cat.jpg", None), (None, "Give me three tips for sleeping better.")):
        kv = kv_reuse(m, image, repeats=1, question=question)
        new_turn = kv["history_positions"] - kv["cached_positions"]
        assert 10 <= new_turn <= 25, kv  # "<|im_end|>\n<|im_start|>user\n...<|im_start|>assistant\n"
        # (no timing assertion: one repeat on a shared CPU is noise; the bench reports the times)
