"""PandaGPT import on a synthetic delta with the official key names and shapes (tiny dims), over a
tiny ImageBind checkpoint and the tiny random Llama standing in for Vicuna.

Checked: the imported projection and LoRA tensors are the checkpoint's (the audio projection
carries ImageBind's fixed ×20 logit scale folded in), the soft token of an input equals
``llama_proj(scale · unit ImageBind embedding)`` computed by hand, and the LLM's logits equal a
plain Llama whose q/k/v/o weights were merged by hand with ``W + (alpha / r) · B @ A``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from omnibind.encoders.imagebind_model.net import MODALITIES, ImageBindConfig, ImageBindNet
from omnibind.errors import CheckpointError, ConfigError
from omnibind.messages import MediaPart, Message

TINY_IB = {
    "out_embed_dim": 16,
    "image_size": 32,
    "vision_patch": 8,
    "depth_patch": 8,
    "thermal_patch": 8,
    "vocab_size": 512 + 3 + 2,
    **{f"{m}_embed_dim": 16 for m in MODALITIES},
    **{f"{m}_num_blocks": 1 for m in MODALITIES},
    **{f"{m}_num_heads": 2 for m in MODALITIES},
}
RANK, ALPHA = 4, 8  # alpha / r = 2: a scaling that a forgotten factor would show
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@pytest.fixture(scope="module")
def imagebind_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    torch.manual_seed(7)
    net = ImageBindNet(ImageBindConfig.from_dict(TINY_IB))
    path = tmp_path_factory.mktemp("ib") / "imagebind_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _official_delta(llm_dir: Path) -> OrderedDict:
    """What PandaGPT's ``save_model`` writes: ``llama_proj`` and peft's LoRA (official names)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(llm_dir))
    h = cfg.hidden_size
    kv = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
    outs = {"q_proj": h, "k_proj": kv, "v_proj": kv, "o_proj": h}
    gen = torch.Generator().manual_seed(3)
    delta: OrderedDict = OrderedDict()
    delta["llama_proj.weight"] = torch.randn(h, 16, generator=gen) * 0.3
    delta["llama_proj.bias"] = torch.randn(h, generator=gen) * 0.1
    for i in range(cfg.num_hidden_layers):
        for t in TARGETS:
            base = f"llama_model.base_model.model.model.layers.{i}.self_attn.{t}"
            delta[f"{base}.lora_A.weight"] = torch.randn(RANK, h, generator=gen) * 0.2
            delta[f"{base}.lora_B.weight"] = torch.randn(outs[t], RANK, generator=gen) * 0.2
    return delta


@pytest.fixture(scope="module")
def delta_path(tmp_path_factory: pytest.TempPathFactory, tiny_llm_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("panda") / "pytorch_model.pt"
    torch.save(_official_delta(tiny_llm_dir), path)
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, delta_path: Path, tiny_llm_dir: Path, imagebind_ckpt: Path):
    from omnibind.importers.pandagpt import import_pandagpt

    out = tmp_path_factory.mktemp("imported") / "pandagpt"
    return import_pandagpt(delta_path, tiny_llm_dir, imagebind_ckpt, out, arch=TINY_IB, lora_alpha=ALPHA)


@pytest.fixture(scope="module")
def model(imported: Path):
    import omnibind

    return omnibind.load(str(imported), backend="transformers").core


def test_tensors_are_the_checkpoints(imported: Path, delta_path: Path) -> None:
    from safetensors.torch import load_file

    delta = torch.load(delta_path, weights_only=True)
    ours = load_file(str(imported / "weights.safetensors"))
    w, b = delta["llama_proj.weight"], delta["llama_proj.bias"]
    for m, scale in (("image", 1.0), ("video", 1.0), ("thermal", 10.0), ("audio", 20.0)):
        assert torch.allclose(ours[f"projectors.{m}.proj.weight"], w * scale, rtol=1e-6, atol=0)
        assert torch.equal(ours[f"projectors.{m}.proj.bias"], b)
    assert torch.equal(ours["projectors.image.proj.weight"], w)
    lora = {k: v for k, v in delta.items() if "lora_" in k}
    for k, v in lora.items():
        name = "llm." + k.removeprefix("llama_model.").replace(".weight", ".default.weight")
        assert torch.equal(ours[name], v), name
    assert sum("lora_" in k for k in ours) == len(lora)
    cfg = json.loads((imported / "config.json").read_text())
    assert cfg["llm"]["lora"]["r"] == RANK and sorted(cfg["llm"]["lora"]["target_modules"]) == sorted(TARGETS)
    assert cfg["llm"]["template"] == "pandagpt"


def test_soft_token_is_llama_proj_of_the_scaled_embedding(model, delta_path: Path) -> None:
    """ImageBind's official output for audio is 20 × the unit embedding (its fixed logit scale)."""
    delta = torch.load(delta_path, weights_only=True)
    wave = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    for part, scale in ((MediaPart("audio", wave, options={"sample_rate": 16000}), 20.0), (_image(), 1.0)):
        prepared = model.prepare([Message.user(part, "What is it?")])
        with torch.no_grad():
            soft = model.soft_tokens(prepared.inputs)[0]
            unit = model.embed([part])[0]
        by_hand = torch.nn.functional.linear(scale * unit, delta["llama_proj.weight"], delta["llama_proj.bias"])
        assert soft.shape == (1, delta["llama_proj.weight"].shape[0])
        torch.testing.assert_close(soft[0], by_hand, rtol=1e-5, atol=1e-5)


def _image() -> MediaPart:
    return MediaPart("image", np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8))


def test_llm_logits_equal_hand_merged_lora(model, delta_path: Path, tiny_llm_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    delta = torch.load(delta_path, weights_only=True)
    plain = AutoModelForCausalLM.from_pretrained(str(tiny_llm_dir), dtype=torch.float32).eval()
    params = dict(plain.named_parameters())
    with torch.no_grad():
        for k, a in delta.items():
            if ".lora_A." not in k:
                continue
            target = k.removeprefix("llama_model.base_model.model.").replace(".lora_A.weight", ".weight")
            b = delta[k.replace(".lora_A.", ".lora_B.")]
            params[target] += (ALPHA / RANK) * (b @ a)
        prepared = model.prepare([Message.user(_image(), "Describe it.")])
        assembled, _, segs = model.build_inputs(prepared, add_generation_prompt=True)
        embeds = assembled.embeds[None]
        mask = torch.ones(embeds.shape[:2], dtype=torch.long)
        ours = model.llm.forward_logits(embeds, mask)
        theirs = plain(inputs_embeds=embeds, attention_mask=mask).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    text = "".join(s.text if s.media is None else "[f]" for s in segs)
    assert text.endswith("### Human: <Img>[f]</Img> Describe it.\n### Assistant:")


def test_bad_deltas_are_typed_errors(tmp_path: Path, delta_path: Path, tiny_llm_dir: Path, imagebind_ckpt: Path):
    from omnibind.importers.pandagpt import import_pandagpt

    delta = torch.load(delta_path, weights_only=True)
    cases = {
        "no_proj": {k: v for k, v in delta.items() if not k.startswith("llama_proj")},
        "extra": {**delta, "visual_encoder.x": torch.zeros(1)},
        "no_lora": {k: v for k, v in delta.items() if k.startswith("llama_proj")},
        "wide": {**delta, "llama_proj.weight": torch.zeros(32, 16), "llama_proj.bias": torch.zeros(32)},
    }
    for name, state in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(state, path)
        with pytest.raises(CheckpointError):
            import_pandagpt(path, tiny_llm_dir, imagebind_ckpt, tmp_path / name, arch=TINY_IB)
    unsafe = tmp_path / "pickle.pt"
    torch.save({"llama_proj.weight": torch.zeros(1), "note": Fraction(1, 3)}, unsafe)  # not a tensor: refused
    with pytest.raises(CheckpointError):
        import_pandagpt(unsafe, tiny_llm_dir, imagebind_ckpt, tmp_path / "u", arch=TINY_IB)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        import_pandagpt(delta_path, tiny_llm_dir, imagebind_ckpt, tmp_path / "full", arch=TINY_IB)
