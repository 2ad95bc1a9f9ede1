"""The model path end to end on a TINY random config (2-layer Llama, test encoder): fast, not pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from omnibind.api import Model
from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError, ConfigError, InputError
from omnibind.messages import Audio, Image, Message, MixPart, TextPart
from omnibind.model import OmnibindModel


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import soundfile as sf

    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    out = {}
    for name in ("a", "b"):
        p = d / f"img_{name}.png"
        PILImage.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(p)
        out[f"image_{name}"] = p
    wav = d / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32), 16000)
    out["audio"] = wav
    return out


def _greedy(model: Model, conv, n: int = 6) -> str:
    return model.chat(conv, max_new_tokens=n).text


def test_chat_with_two_modalities_is_deterministic(tiny_model: Model, files):
    conv = [Message.user(Image(str(files["image_a"])), Audio(str(files["audio"])), "What is this?")]
    a = tiny_model.chat(conv, max_new_tokens=5)
    b = tiny_model.chat(conv, max_new_tokens=5)
    assert a.text == b.text
    assert a.completion_tokens <= 5 and a.prompt_tokens > 0


def test_each_input_keeps_its_own_soft_tokens(tiny_model: Model, files):
    core = tiny_model.core
    k = core.config.projectors["*"].num_tokens
    one = core.build_inputs(core.prepare([Message.user(Image(str(files["image_a"])), "Q")]), add_generation_prompt=True)
    two = core.build_inputs(
        core.prepare([Message.user(Image(str(files["image_a"])), Image(str(files["image_b"])), "Q")]),
        add_generation_prompt=True,
    )
    cue_tokens = len(core.llm.tokenize(core.config.injection.cues["image"] + " ")) + len(core.llm.tokenize("\n"))
    assert two[0].embeds.shape[0] - one[0].embeds.shape[0] == k + cue_tokens
    media_positions = [s for s in two[2] if s.media is not None]
    assert [s.media for s in media_positions] == [0, 1]


def test_mix_is_normalised_weighted_sum(tiny_model: Model, files):
    img, aud = Image(str(files["image_a"])), Audio(str(files["audio"]))
    v = tiny_model.embed([img, aud])
    mixed = tiny_model.embed([MixPart([img, aud], [0.7, 0.3])])[0]
    want = 0.7 * v[0] + 0.3 * v[1]
    np.testing.assert_allclose(mixed, want / np.linalg.norm(want), atol=1e-5)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def test_embed_text_strings(tiny_model: Model):
    v = tiny_model.embed(["a cat", TextPart("a dog")])
    assert v.shape == (2, tiny_model.config.bind.dim)


def test_batched_generate_matches_single(tiny_model: Model, files):
    convs = [
        [Message.user("Hello there, how are you today?")],
        [Message.user(Image(str(files["image_b"])), "Hi")],
    ]
    batch = tiny_model.generate(convs, max_new_tokens=6)
    singles = [tiny_model.chat(c, max_new_tokens=6) for c in convs]
    assert [r.text for r in batch] == [r.text for r in singles]


def test_stream_concatenates_to_chat(tiny_model: Model):
    s = tiny_model.stream("Tell me a story.", max_new_tokens=8)
    text = "".join(s)
    assert s.reply is not None and text == s.reply.text == _greedy(tiny_model, "Tell me a story.", 8)


def test_stop_string_cuts_the_answer(tiny_model: Model):
    full = tiny_model.chat("Tell me a story.", max_new_tokens=12).text
    assert len(full) > 3
    stop = full[2:4]
    cut = tiny_model.chat("Tell me a story.", max_new_tokens=12, stop=[stop])
    assert stop not in cut.text and full.startswith(cut.text) and cut.finish_reason == "stop"


def test_ignore_eos_decodes_the_full_budget(tiny_model: Model):
    """Make the greedy first token an end-of-sequence token: the answer is then empty, unless
    ``ignore_eos`` masks it, when exactly ``max_new_tokens`` tokens come back, none of them EOS."""
    from omnibind.llm.backends.base import GenerationOptions

    llm = tiny_model.core.llm
    conv = [[Message.user("Tell me a story.")]]
    steps, _ = tiny_model.core.generate_ids(conv, GenerationOptions(max_new_tokens=1))
    first = next(iter(steps))[0]
    saved = set(llm.eos_token_ids)
    llm.eos_token_ids = saved | {first}
    try:
        assert tiny_model.chat("Tell me a story.", max_new_tokens=6).completion_tokens == 0
        forced = tiny_model.chat("Tell me a story.", max_new_tokens=6, ignore_eos=True)
        assert forced.completion_tokens == 6 and forced.finish_reason == "length"
        steps, _ = tiny_model.core.generate_ids(conv, GenerationOptions(max_new_tokens=6, ignore_eos=True))
        ids = [s[0] for s in steps]
        assert len(ids) == 6 and not set(ids) & llm.eos_token_ids
    finally:
        llm.eos_token_ids = saved


def test_sampling_seed_reproducible(tiny_model: Model):
    a = tiny_model.chat("Hi", max_new_tokens=6, temperature=1.0, top_p=0.9, top_k=50, seed=7).text
    b = tiny_model.chat("Hi", max_new_tokens=6, temperature=1.0, top_p=0.9, top_k=50, seed=7).text
    assert a == b


def test_score_ranks_the_greedy_token_first(tiny_model: Model):
    core = tiny_model.core
    conv = [Message.user("Pick one.")]
    steps, _ = core.generate_ids([conv], __import__("omnibind").api._options({"max_new_tokens": 1}, []))
    first = next(iter(steps))[0]
    vocab = [first, 100, 200, 300]
    cands = [core.llm.detokenize([t]) for t in vocab]
    if len({len(core.llm.tokenize(c)) for c in cands}) != 1 or len(set(cands)) != len(cands):
        pytest.skip("tokens do not round-trip as single tokens")
    scores = tiny_model.score(conv, cands)
    assert int(np.argmax(scores)) == 0


def test_score_agrees_with_training_loss(tiny_model: Model):
    core = tiny_model.core
    conv = [Message.user("Say something.")]
    cand = "Blue sky"
    score = float(tiny_model.score(conv, [cand])[0])
    n_cand = len(core.llm.tokenize(cand))
    with torch.no_grad():
        loss = float(core.loss([[*conv, Message.assistant(cand)]]))
    # the loss also covers the end marker: -score/n_cand differs from it, but only by that one token
    n_all = n_cand + len(core.llm.tokenize(core.template.assistant_end))
    end_logp = -loss * n_all - score
    assert end_logp < 0 and abs(end_logp) < 30


def test_missing_file_is_a_typed_error(tiny_model: Model, tmp_path: Path):
    with pytest.raises(InputError) as e:
        tiny_model.chat([Message.user(Image(str(tmp_path / "nope.png")), "Hi")], max_new_tokens=2)
    assert "nope.png" in str(e.value)


def test_unconfigured_modality_is_refused(tiny_config_dict: dict, files):
    d = json.loads(json.dumps(tiny_config_dict))
    d["encoders"] = {"image": d["encoders"]["image"]}
    d["bind"]["heads"] = {}
    m = Model(OmnibindModel(ModelConfig.from_dict(d)), origin="t", trained=False)
    with pytest.raises(ConfigError, match="no encoder for 'audio'"):
        m.chat([Message.user(Audio(str(files["audio"])), "Hi")], max_new_tokens=2)


def test_checkpoint_round_trip_and_corruption(tiny_model: Model, files, tmp_path: Path):
    from omnibind.api import load

    conv = [Message.user(Image(str(files["image_a"])), "Describe.")]
    with torch.no_grad():
        for p in tiny_model.core.projectors.parameters():
            p.add_(0.05 * torch.randn_like(p))
    want = tiny_model.chat(conv, max_new_tokens=6).text
    folder = tiny_model.save(tmp_path / "ckpt")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["num_tensors"] > 0 and "image" in manifest["encoders"]
    llm_keys = [
        k
        for k in __import__("safetensors.torch").torch.load_file(str(folder / "weights.safetensors"))
        if k.startswith("llm.")
    ]
    assert llm_keys == []  # frozen LLM weights never enter the checkpoint
    again = load(folder)
    assert again.trained and again.chat(conv, max_new_tokens=6).text == want
    raw = bytearray((folder / "weights.safetensors").read_bytes())
    raw[-10] ^= 0xFF
    (folder / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="hash"):
        load(folder)


def test_config_round_trip_and_strictness(tiny_config_dict: dict, tmp_path: Path):
    cfg = ModelConfig.from_dict(tiny_config_dict)
    cfg.save(tmp_path / "c.json")
    assert ModelConfig.load(tmp_path / "c.json").to_dict() == cfg.to_dict()
    bad = dict(tiny_config_dict, projector={"name": "linear"})
    with pytest.raises(ConfigError, match="unknown keys"):
        ModelConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="expected int"):
        ModelConfig.from_dict(dict(tiny_config_dict, bind={"dim": "big"}))


def test_gated_injection_starts_as_identity(tiny_config_dict: dict, files):
    d = json.loads(json.dumps(tiny_config_dict))
    d["injection"]["kind"] = "gated"
    d["projectors"] = {"*": {"name": "bind_network", "num_tokens": 1}}
    core = OmnibindModel(ModelConfig.from_dict(d))
    with_media = [Message.user(Image(str(files["image_a"])), "Hi")]
    text_only = [Message.user("Hi")]

    def logits(conv):
        a, inj, _ = core.build_inputs(core.prepare(conv), add_generation_prompt=True)
        return core.llm.forward_logits(a.embeds[None], torch.ones(1, a.embeds.shape[0], dtype=torch.long), inj)

    with torch.no_grad():
        assert torch.allclose(logits(with_media), logits(text_only))  # zero gates: the LLM is untouched
        core.gates.gates.fill_(0.5)
        assert not torch.allclose(logits(with_media), logits(text_only))
    assert any(n.startswith("gates.") for n in core.trainable_parameters())


def test_qformer_per_modality_projectors(tiny_config_dict: dict, files):
    d = json.loads(json.dumps(tiny_config_dict))
    d["projectors"] = {
        "image": {"name": "qformer", "num_tokens": 3, "params": {"dim": 32, "layers": 1, "heads": 2}},
        "*": {"name": "linear", "num_tokens": 1},
    }
    m = Model(OmnibindModel(ModelConfig.from_dict(d)), origin="t", trained=False)
    core = m.core
    prep = core.prepare([Message.user(Image(str(files["image_a"])), Audio(str(files["audio"])), "Which is louder?")])
    soft = core.soft_tokens(prep.inputs)
    assert [t.shape[0] for t in soft] == [3, 1]
    assert m.chat(prep.conversation, max_new_tokens=3).completion_tokens <= 3


def test_loss_backpropagates_to_projector_only(tiny_model: Model, files):
    core = tiny_model.core
    params = core.set_trainable()
    conv = [Message.user(Image(str(files["image_a"])), "What?"), Message.assistant("A picture.")]
    core.train()
    loss = core.loss([conv])
    loss.backward()
    core.eval()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    llm_grads = [p.grad for p in core.llm.model.parameters() if p.grad is not None]
    assert llm_grads == []
    for p in params:
        p.grad = None


def test_retrieval_cache_pulls_toward_images(tmp_path: Path):
    from omnibind.bind.cache import RetrievalCache

    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(20, 8)).astype(np.float32)
    cache = RetrievalCache(8)
    cache.add(imgs, [f"i{i}" for i in range(20)])
    q = torch.nn.functional.normalize(torch.from_numpy(imgs[3] + 0.3 * rng.normal(size=8).astype(np.float32)), dim=0)
    _, idx = cache.retrieve(q[None], 1)
    assert idx[0, 0] == 3
    out = cache.blend(q[None], top_k=1, alpha=0.8)[0]
    target = torch.nn.functional.normalize(torch.from_numpy(imgs[3]), dim=0)
    assert float(out @ target) > float(q @ target)
    cache.save(tmp_path / "c")
    again = RetrievalCache.load(tmp_path / "c")
    assert len(again) == 20 and again.keys[3] == "i3"


def test_lora_media_only_keeps_text_chat_on_the_base_model(tiny_config_dict: dict, files):
    d = json.loads(json.dumps(tiny_config_dict))
    d["llm"]["lora"] = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    d["llm"]["lora_media_only"] = True
    core = OmnibindModel(ModelConfig.from_dict(d))
    with torch.no_grad():
        for n, p in core.llm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # a trained-looking adapter
    text = [Message.user("Hello there")]
    media = [Message.user(Image(str(files["image_a"])), "Hello there")]

    def last_logits(conv):
        return core.score(conv, ["Hi"])

    adapted_text, adapted_media = last_logits(text), last_logits(media)
    with core.llm.model.disable_adapter():
        base_text, base_media = last_logits(text), last_logits(media)
    assert torch.allclose(adapted_text, base_text)  # text-only: untouched base model
    assert not torch.allclose(adapted_media, base_media)  # with media: the adapter acts


def test_info_names_the_llm_weights(tiny_model: Model, tiny_config_dict: dict):
    info = tiny_model.info()
    assert info["llm"]["backend"] == "transformers"
    assert Path(info["llm"]["weights"]) == Path(tiny_config_dict["llm"]["source"])


def test_template_mismatch_fails_when_the_model_is_built(tiny_config_dict: dict):
    """SmolLM2's tokenizer has no Llama-2 markup tokens: that template must be refused at build."""
    from omnibind.errors import TemplateMismatchError

    d = {**tiny_config_dict, "llm": {**tiny_config_dict["llm"], "template": "llama2"}}
    with pytest.raises(TemplateMismatchError):
        OmnibindModel(ModelConfig.from_dict(d))


def test_expert_notes_use_the_one_phrasing(tiny_model: Model, files, monkeypatch):
    """The model's transcript note is the dataset's phrasing (omnibind.experts_text.expert_note)."""
    from omnibind.encoders import experts
    from omnibind.experts_text import expert_note

    core = tiny_model.core
    from omnibind.encoders.whisper_encoder import Heard

    monkeypatch.setattr(experts, "speech", lambda audio, encoder=None: Heard("hello there", 0.9))
    monkeypatch.setattr(core.config.experts, "transcript", True)
    prepared = core.prepare([Message.user(Audio(str(files["audio"])), "What is said?")])
    assert (
        [i.note for i in prepared.inputs]
        == ['Speech: "hello there" (0.90)']
        == [expert_note("transcript", ("hello there", 0.9))]
    )
    assert expert_note("labels", "Detected: tabby cat (0.41)") == "Detected: tabby cat (0.41)"
    assert expert_note("transcript", "") == ""
    with pytest.raises(ValueError):
        expert_note("caption", "x")
