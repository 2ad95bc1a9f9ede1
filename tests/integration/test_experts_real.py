"""The modality experts with the REAL embedded weights: EfficientNet-Lite0's everyday names on the
example photos, Whisper's speech decision on speech, silence and a tone, and the shipped
common-name table against a fresh WordNet regeneration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omnibind import modalities
from omnibind.encoders import experts
from omnibind.modalities.base import AudioData

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def effnet():
    from omnibind.encoders.efficientnet_lite0 import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder()


def test_example_photos_get_everyday_names(effnet):
    cat, coffee = experts.common_labels(
        effnet,
        [modalities.load("image", EXAMPLES / "image_cat.jpg"), modalities.load("image", EXAMPLES / "image_coffee.jpg")],
        3,
    )
    assert cat[0][0] == "cat", cat
    assert coffee[0][0] in {"coffee", "cup", "mug"}, coffee
    for labels in (cat, coffee):
        probs = [p for _, p in labels]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    # the merged name carries the summed share of its classes, so it beats any single class
    raw = effnet.top_labels([modalities.load("image", EXAMPLES / "image_cat.jpg")], 1)[0]
    assert cat[0][1] >= raw[0][1]


def test_speech_is_heard_with_its_confidence():
    heard = experts.speech(modalities.load("audio", EXAMPLES / "audio_speech.wav"))
    assert "coffee" in heard.text.lower() and "cat" in heard.text.lower(), heard
    assert 0.5 < heard.confidence <= 1.0


@pytest.mark.parametrize("kind", ["silence", "tone", "noise", "bell"])
def test_no_transcript_without_speech(kind: str):
    sr = 16000
    t = np.arange(3 * sr) / sr
    audio = {
        "silence": lambda: AudioData(np.zeros(3 * sr, np.float32)),
        "tone": lambda: AudioData((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)),
        "noise": lambda: AudioData((0.1 * np.random.default_rng(0).standard_normal(3 * sr)).astype(np.float32)),
        "bell": lambda: modalities.load("audio", EXAMPLES / "audio_bell.flac"),
    }[kind]()
    assert experts.speech(audio).text == ""


def test_shipped_common_names_equal_a_fresh_regeneration():
    from omnibind.data.sources import wordnet

    if not wordnet.available():
        pytest.skip("WordNet (Debian wordnet-base) is not installed")
    from omnibind.data.experts import COMMON_NAMES_MODULE, common_names_module

    shipped = (Path(__file__).resolve().parents[2] / COMMON_NAMES_MODULE).read_text(encoding="utf-8")
    assert common_names_module() == shipped, "run: python scripts/make_imagenet_common_names.py"
