"""The REAL embedded default model (pretrained encoders + SmolLM2) on every modality's sample file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from omnibind.bench.core import example_files
from omnibind.messages import MediaPart, Message

ROOT = Path(__file__).resolve().parents[2]
MODALITIES = ("image", "audio", "video", "depth", "thermal", "imu", "points")


@pytest.fixture(scope="session")
def model():
    import omnibind

    return omnibind.load()


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    found = example_files()
    missing = set(MODALITIES) - set(found)
    assert not missing, f"examples/ lacks samples for {sorted(missing)}"
    return found


@pytest.mark.parametrize("modality", MODALITIES)
def test_chat_about_each_modality(model, samples, modality: str):
    reply = model.chat([Message.user(MediaPart(modality, str(samples[modality])), "What is this?")], max_new_tokens=12)
    assert reply.text.strip(), f"empty answer for {modality}"
    assert 0 < reply.completion_tokens <= 12


def test_two_modalities_at_once(model, samples):
    conv = [
        Message.user(
            MediaPart("image", str(samples["image"])),
            MediaPart("audio", str(samples["audio"])),
            "Describe the picture and the sound.",
        )
    ]
    core = model.core
    prepared = core.prepare(conv)
    assert [s.modality for s in prepared.inputs] == ["image", "audio"]
    assert model.chat(conv, max_new_tokens=12).text.strip()


def test_video_brings_its_sound(model, samples):
    prepared = model.core.prepare([Message.user(MediaPart("video", str(samples["video"])), "What happens?")])
    assert [s.cue_key for s in prepared.inputs] == ["video", "video_sound"]


def test_text_only_chat_keeps_language_ability(model):
    reply = model.chat("What is the capital of France? Answer in one word.", max_new_tokens=8)
    assert "paris" in reply.text.lower()


def test_embeddings_are_unit_vectors(model, samples):
    parts = [MediaPart(m, str(samples[m])) for m in MODALITIES]
    v = model.embed([*parts, "a photo of a cat"])
    assert v.shape == (len(MODALITIES) + 1, model.config.bind.dim)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


def test_cli_chat_with_each_flag(samples):
    exe = str(Path(sys.executable).with_name("omnibind"))
    args = [exe, "chat", "What is this?", "--max-new-tokens", "6", "--no-stream"]
    for m in ("image", "points"):
        args += [f"--{m}", str(samples[m])]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_cli_reports_bad_file_cleanly(tmp_path: Path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    exe = str(Path(sys.executable).with_name("omnibind"))
    out = subprocess.run([exe, "chat", "Hi", "--image", str(bad)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "broken.png" in out.stderr and "Traceback" not in out.stderr
