"""LLaVA-1.5 import: omnibind computes what transformers' own ``LlavaForConditionalGeneration``
computes (tiny random weights, offline; the tokenizer is built like LLaVA-1.5's Llama tokenizer).

A tiny ``LlavaConfig`` (3-layer CLIP vision tower at 30 px / 6 px patches, 2-layer Llama) is saved
with ``save_pretrained`` together with its ``LlavaProcessor``; the test imports it, then compares
on the same PNG and question: the preprocessed pixels, the prompt's token ids, the logits at every
position (to 1e-5) and 8 greedy tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from omnibind.errors import CheckpointError, ConfigError
from omnibind.llm.backends.base import GenerationOptions
from omnibind.messages import MediaPart, Message
from tests.llama_tokenizer import llama_style_tokenizer

QUESTION = "What is shown?"
SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
# LLaVA-1.5's conversation format (conv_vicuna_v1) with llava-hf's "<image>\n" before the question
HF_PROMPT = f"{SYSTEM} USER: <image>\n{QUESTION} ASSISTANT:"


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out = tmp_path_factory.mktemp("llava_hf")
    tok = llama_style_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=30,
        patch_size=6,
        projection_dim=16,
    )
    text = LlamaConfig(
        vocab_size=len(tok) + 2,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        initializer_range=0.2,  # logits far enough apart that greedy choices are not ties
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=25,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(cfg).save_pretrained(out)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=6,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    ).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def image_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A non-square picture, so the shortest-side resize and the centre crop both matter."""
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def imported(llava_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from omnibind.importers.llava import import_llava

    return import_llava(llava_dir, tmp_path_factory.mktemp("imported") / "llava")


@pytest.fixture(scope="module")
def reference(llava_dir: Path, image_path: Path) -> dict:
    """transformers' own model and processor on the prompt and picture."""
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(str(llava_dir), dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(str(llava_dir))
    inputs = processor(images=Image.open(image_path).convert("RGB"), text=HF_PROMPT, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0]
        greedy = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    return {
        "ids": inputs["input_ids"][0].tolist(),
        "pixels": inputs["pixel_values"],
        "logits": logits,
        "greedy": greedy[0, inputs["input_ids"].shape[1] :].tolist(),
        "image_token": model.config.image_token_id,
    }


def _conversation(image_path: Path) -> list[Message]:
    return [Message.user(MediaPart("image", str(image_path)), QUESTION)]


def test_layout_and_config(imported: Path) -> None:
    cfg = json.loads((imported / "config.json").read_text())
    assert cfg["projectors"]["image"]["name"] == "token_mlp"
    assert cfg["projectors"]["image"]["num_tokens"] == 25  # (30 / 6)² patches, CLS dropped
    assert cfg["encoders"]["image"]["params"]["feature_layer"] == -2
    assert cfg["encoders"]["image"]["params"]["feature_select"] == "default"
    assert cfg["llm"]["template"] == "llava_v1"
    assert (imported / "llm" / "model.safetensors").is_file()
    assert (imported / "vision" / "preprocessor_config.json").is_file()


def test_projector_tensors_are_the_checkpoints(imported: Path, llava_dir: Path) -> None:
    from safetensors.torch import load_file

    ours = load_file(str(imported / "weights.safetensors"))
    theirs = load_file(str(llava_dir / "model.safetensors"))
    prefix = next(
        p for p in ("multi_modal_projector.", "model.multi_modal_projector.") if f"{p}linear_1.weight" in theirs
    )
    for k in ("linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"):
        assert torch.equal(ours[f"projectors.image.{k}"], theirs[prefix + k])


def test_manifest_fingerprint_is_the_encoders(imported: Path) -> None:
    import omnibind

    model = omnibind.load(str(imported))
    manifest = json.loads((imported / "manifest.json").read_text())
    assert manifest["encoders"]["image"]["fingerprint"] == model.core.encoders["image"].fingerprint()


def test_preprocessing_matches_the_clip_processor(imported: Path, image_path: Path, reference: dict) -> None:
    import omnibind
    from omnibind.modalities import load_part

    model = omnibind.load(str(imported))
    data = load_part(MediaPart("image", str(image_path)), model.core.limits)
    pixels = model.core.encoders["image"].pixel_values([np.asarray(data.pixels)])
    assert pixels.shape == reference["pixels"].shape
    assert torch.allclose(pixels, reference["pixels"], atol=1e-6)


def test_logits_equal_transformers_llava(imported: Path, image_path: Path, reference: dict) -> None:
    """The same sequence (text ids where transformers has text, soft tokens where it has <image>)
    and the same logits at every position."""
    import omnibind

    core = omnibind.load(str(imported)).core
    with torch.no_grad():
        prepared = core.prepare(_conversation(image_path))
        assembled, injection, segs = core.build_inputs(prepared, add_generation_prompt=True)
        ours_ids = []
        for k, s in enumerate(segs):
            if s.media is None:
                ours_ids += core.llm.tokenize_in_context(s.text, at_start=k == 0)
            else:
                ours_ids += [reference["image_token"]] * core.config.projectors["image"].num_tokens
        assert ours_ids == reference["ids"]
        embeds = assembled.embeds[None]
        mask = torch.ones(embeds.shape[:2], dtype=torch.long)
        logits = core.llm.forward_logits(embeds, mask, injection)[0]
    assert logits.shape == reference["logits"].shape
    assert torch.allclose(logits, reference["logits"], atol=1e-5, rtol=0), (logits - reference["logits"]).abs().max()


def test_greedy_tokens_equal_transformers_llava(imported: Path, image_path: Path, reference: dict) -> None:
    import omnibind

    core = omnibind.load(str(imported)).core
    steps, _ = core.generate_ids([_conversation(image_path)], GenerationOptions(max_new_tokens=8, ignore_eos=True))
    ours = [step[0] for step in steps]
    assert ours == reference["greedy"]
    assert len(set(ours)) > 1  # a real sequence, not one token repeated from flat logits


def test_load_recognises_a_llava_folder(llava_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import omnibind

    monkeypatch.setenv("OMNIBIND_CACHE", str(tmp_path / "cache"))
    model = omnibind.load(str(llava_dir))
    assert model.config.projectors["image"].name == "token_mlp"
    made = list((tmp_path / "cache" / "imports").iterdir())
    assert len(made) == 1 and (made[0] / "manifest.json").is_file()
    omnibind.load(str(llava_dir))  # the second load reuses the import
    assert list((tmp_path / "cache" / "imports").iterdir()) == made


def test_errors_are_typed(llava_dir: Path, imported: Path, tmp_path: Path) -> None:
    from omnibind.importers.llava import import_llava

    with pytest.raises(ConfigError, match="not a LLaVA folder"):
        import_llava(imported, tmp_path / "x")  # an omnibind checkpoint is not a llava folder
    with pytest.raises(ConfigError, match="not empty"):
        import_llava(llava_dir, imported)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((llava_dir / "config.json").read_text())
    with pytest.raises(CheckpointError, match="model.safetensors"):
        import_llava(broken, tmp_path / "y")


def test_hub_key_layout_imports_the_same(llava_dir: Path, imported: Path, tmp_path: Path) -> None:
    """The transformers >= 4.52 in-memory names (model.language_model.*, model.vision_tower.*,
    model.multi_modal_projector.*, lm_head.*) in a two-shard checkpoint give the same parts."""
    import shutil

    from safetensors.torch import load_file, save_file

    from omnibind.importers.llava import import_llava

    src = tmp_path / "renamed"
    shutil.copytree(llava_dir, src)
    state = load_file(str(src / "model.safetensors"))
    (src / "model.safetensors").unlink()
    renamed = {}
    for k, v in state.items():
        if k.startswith("language_model.lm_head."):
            k = k.replace("language_model.lm_head.", "lm_head.", 1)
        elif k.startswith("language_model.model."):
            k = k.replace("language_model.model.", "model.language_model.", 1)
        else:
            k = "model." + k
        renamed[k] = v
    names = sorted(renamed)
    half = {k: renamed[k] for k in names[: len(names) // 2]}, {k: renamed[k] for k in names[len(names) // 2 :]}
    weight_map = {}
    for i, part in enumerate(half):
        fname = f"model-0000{i + 1}-of-00002.safetensors"
        save_file(part, str(src / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, fname))
    (src / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    out = import_llava(src, tmp_path / "out")
    for part in ("llm", "vision"):
        a, b = _part_state(out / part), _part_state(imported / part)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_file(str(out / "weights.safetensors")).keys() == load_file(str(imported / "weights.safetensors")).keys()


def _part_state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_cli_import_llava(llava_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from omnibind.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["import", "llava", str(llava_dir), str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "manifest.json").is_file()
    again = runner.invoke(app, ["import", "llava", str(llava_dir), str(tmp_path / "cli")])
    assert again.exit_code == 2 and "not empty" in again.output
