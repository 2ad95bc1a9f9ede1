"""omnibind's ImageBind equals the official code (facebookresearch/ImageBind) on a recorded fixture.

tests/fixtures/imagebind_tiny* were made by scripts/make_imagebind_fixture.py, which ran the official
model definition and loaders (the commit is in imagebind_tiny.json) on tiny random weights and fixed
inputs. Here omnibind loads those weights through its own checkpoint path (``load_net``: the reader,
the strict key check and the mapping that also load ``imagebind_huge.pth``), runs the same inputs and
must give the official outputs to float rounding. Tiny random weights (fast); no official code runs here.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from omnibind.encoders.imagebind import ImageBindEncoder, load_net, read_state_dict
from omnibind.encoders.imagebind_model import preprocess as pre
from omnibind.encoders.imagebind_model.bpe import BPETokenizer
from omnibind.encoders.imagebind_model.net import ImageBindConfig, ImageBindNet
from omnibind.encoders.imagebind_model.textclean import fix_text
from omnibind.modalities.base import AudioData, ImageData, VideoData

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WEIGHTS = FIXTURES / "imagebind_tiny_weights.safetensors"
BPE = FIXTURES / "imagebind_tiny_bpe.txt.gz"
# float32 rounding on different kernels (batch-first vs sequence-first attention, other summation
# orders); the measured largest difference is 3.3e-7.
ATOL, RTOL = 1e-5, 1e-5


@lru_cache(maxsize=1)
def _meta() -> dict[str, Any]:
    return json.loads((FIXTURES / "imagebind_tiny.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _tensors() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / "imagebind_tiny.safetensors"))


def _expand(name: str) -> torch.Tensor:
    """A compact int8 input → the float32 tensor the official model saw (the generator's ``expand``)."""
    scale = _meta()["compact_scale"][name]
    x = _tensors()[f"compact.{name}"].to(torch.float32) / _meta()["compact_divisor"]
    return x.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def _model_inputs() -> dict[str, torch.Tensor]:
    t = _tensors()
    return {
        "vision": _expand("vision"),
        "audio": _expand("audio"),
        "depth": _expand("depth"),
        "thermal": _expand("thermal"),
        "imu": t["compact.imu"].to(torch.float32) / _meta()["compact_divisor"],
        "video": _expand("video"),
        "text": t["in.text"],
    }


@pytest.fixture(scope="module")
def net() -> ImageBindNet:
    return load_net(WEIGHTS, ImageBindConfig.from_dict(_meta()["omnibind_arch"]))


def _encoder(modality: str, **params: Any) -> ImageBindEncoder:
    return ImageBindEncoder(modality=modality, checkpoint=str(WEIGHTS), arch=_meta()["omnibind_arch"], **params)


def test_fixture_names_the_official_commit_and_loads_strictly(net: ImageBindNet) -> None:
    official = _meta()["official"]
    assert official["repository"] == "facebookresearch/ImageBind"
    assert re.fullmatch(r"[0-9a-f]{40}", official["commit"])
    state = read_state_dict(WEIGHTS)  # the official state dict, float16 on disk
    loaded = net.state_dict()
    assert set(loaded) == set(state)  # load_net checked names and shapes strictly
    for key, value in state.items():
        assert torch.equal(loaded[key], value.float() if value.is_floating_point() else value), key


@pytest.mark.parametrize("modality", ["vision", "video", "text", "audio", "depth", "thermal", "imu"])
def test_tower_outputs_equal_official(net: ImageBindNet, modality: str) -> None:
    """The official forward output per modality (unit vectors for vision, logit-scaled elsewhere; video
    and audio are (batch, clips, ...) and averaged over clips), and the trunk tokens after the head's
    LayerNorm, which omnibind hands to token-reading projectors."""
    x = _model_inputs()[modality]
    tower = "vision" if modality == "video" else modality
    eos = x.argmax(dim=-1) if tower == "text" else None  # the official pooling index; the tokenizer test
    with torch.no_grad():  # below shows omnibind's tokenizer gives the same positions
        out = net({tower: x}, eos_index=eos)[tower]
        flat = x.reshape(-1, *x.shape[2:]) if x.ndim >= 5 else x
        tokens = net.tower(tower)(flat, eos)["tokens"]
    torch.testing.assert_close(out, _tensors()[f"out.{modality}"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(tokens, _tensors()[f"tokens.{modality}"], atol=ATOL, rtol=RTOL)


def test_tokenizer_ids_equal_official() -> None:
    """The official SimpleTokenizer's ids (ftfy cleaning included) on texts that exercise each repair,
    a literal end token and truncation to 77, with a vocabulary of the official size (49408 ids)."""
    tok = BPETokenizer.from_file(BPE)
    assert tok.vocab_size == 49408
    official = _tensors()["in.text"]
    rows, eos = tok(_meta()["texts"])
    for i, text in enumerate(_meta()["texts"]):
        padded = rows[i] + [0] * (official.shape[1] - len(rows[i]))
        assert padded == official[i].tolist(), text
        assert eos[i] == int(official[i].argmax()), text  # where the official text head pools


def test_text_cleaning_equals_ftfy_on_every_code_point() -> None:
    """``fix_text`` against ``ftfy.fix_text("a" + c + "b")`` for every code point of planes 0-1 and the
    tag block, as recorded by the generator (only the changed ones are stored)."""
    changed = _meta()["ftfy"]["changed"]
    wrong = []
    for cp in [*range(0x20000), *range(0xE0000, 0xE0100)]:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        text = f"a{chr(cp)}b"
        if fix_text(text) != changed.get(f"{cp:04X}", text):
            wrong.append(f"U+{cp:04X}")
    assert not wrong, wrong[:20]


def test_text_encoder_end_to_end_equals_official() -> None:
    enc = _encoder("text", bpe_path=str(BPE))
    official = torch.nn.functional.normalize(_tensors()["out.text"], dim=-1)  # out is logit-scaled
    torch.testing.assert_close(enc.encode(list(_meta()["texts"])).pooled, official, atol=ATOL, rtol=RTOL)


def test_image_preprocessing_and_encoder_equal_official() -> None:
    """``load_and_transform_vision_data`` (PIL bicubic resize, centre crop, CLIP normalisation) and then
    the official model, against omnibind's ImageBind encoder on the raw pixels."""
    pixels = _tensors()["raw.image"].numpy()
    s = _meta()["stride"]
    torch.testing.assert_close(pre.vision_image(pixels)[:, ::s, ::s], _tensors()["pre.image"], atol=1e-6, rtol=0)
    out = _encoder("vision").encode([ImageData(pixels)]).pooled
    torch.testing.assert_close(out, _tensors()["out.image_from_raw"], atol=ATOL, rtol=RTOL)


def test_audio_preprocessing_and_encoder_equal_official() -> None:
    """``load_and_transform_audio_data``: the clip sampler's windows, the Kaldi filterbank (torchaudio),
    the in-place mean subtraction, cut/pad and normalisation; then the official model."""
    from fractions import Fraction

    wave = _tensors()["raw.audio_int16"].numpy().astype(np.float32) / 32768.0
    windows = pre.clip_windows(wave.size / 16000, Fraction(2), 3)
    assert [[str(a), str(b)] for a, b in windows] == _meta()["audio_clip_points"]
    s = _meta()["stride"]
    spec = pre.audio_clips(wave, 16000, clips=3)
    torch.testing.assert_close(spec[..., ::s, ::s], _tensors()["pre.audio"], atol=1e-6, rtol=0)
    out = _encoder("audio").encode([AudioData(wave, 16000)]).pooled
    official = torch.nn.functional.normalize(_tensors()["out.audio_from_raw"], dim=-1)
    torch.testing.assert_close(out, official, atol=ATOL, rtol=RTOL)


def test_video_preprocessing_and_encoder_equal_official() -> None:
    """``load_and_transform_video_data`` after decoding: 5 clip windows, 2 frames each, short side to
    224 (bilinear), CLIP normalisation, 3 spatial crops; then the official model over the 15 views."""
    frames = _tensors()["raw.video_frames"].numpy()
    video = _meta()["video"]
    stamps = np.arange(frames.shape[0]) / video["fps"]
    windows = pre.clip_windows(video["duration"], pre.Fraction(2), 5)
    assert [[str(a), str(b)] for a, b in windows] == video["clip_points"]
    s = _meta()["video_stride"]
    views = pre.vision_video(frames, stamps, video["duration"], clips=5, crops=3)
    torch.testing.assert_close(views[..., ::s, ::s], _tensors()["pre.video"], atol=1e-6, rtol=0)
    clip = VideoData(frames=frames, timestamps=stamps, duration=video["duration"])
    out = _encoder("vision", video_clips=5, video_crops=3).encode([clip]).pooled
    official = torch.nn.functional.normalize(_tensors()["out.video_from_raw"], dim=-1)  # a mean of unit vectors
    torch.testing.assert_close(out, official, atol=ATOL, rtol=RTOL)
