"""The embedded encoders with their REAL pretrained weights: EfficientNet-Lite0 labels photos,
Whisper tiny.en transcribes synthesised speech, MiniLM ranks related sentences closer, and every
registry entry encodes real-looking data with the documented shapes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from omnibind.encoders import ENCODERS, Encoder, experts
from omnibind.modalities.base import AudioData, DepthData, ImageData, IMUData, PointsData, ThermalData, VideoData

pytestmark = pytest.mark.integration

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug
SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="session")
def built() -> dict[str, Encoder]:
    """Every embedded registry entry, built like the model does (one shared EfficientNet)."""
    cache: dict[str, Encoder] = {}

    def build(cfg: dict[str, Any]) -> Encoder:
        key = repr(cfg)
        if key not in cache:
            cache[key] = ENCODERS.get(cfg["name"]).from_config(dict(cfg.get("params") or {}), build)
        return cache[key]

    names = ("efficientnet_lite0", "whisper_encoder", "minilm", "video_frames", "depth_as_image")
    names += ("thermal_as_image", "points_multiview", "imu_cnn")
    return {n: build({"name": n}) for n in names}


@pytest.fixture(scope="session")
def photos() -> dict[str, ImageData]:
    data = pytest.importorskip("skimage.data")
    return {"cat": ImageData(data.chelsea()), "coffee": ImageData(data.coffee())}


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> AudioData:
    """espeak-ng says the pangram; the audio modality loads it (22.05 kHz → 16 kHz mono)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from omnibind.modalities import load

    wav = tmp_path_factory.mktemp("speech") / "fox.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True)
    return load("audio", wav)


# --- EfficientNet-Lite0 ---------------------------------------------------------------------------


def test_photos_get_the_right_imagenet_labels(built, photos):
    from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES

    eff = built["efficientnet_lite0"]
    cat, coffee = eff.top_labels([photos["cat"], photos["coffee"]], k=3)
    assert IMAGENET_CLASSES.index(cat[0][0]) in CAT_CLASSES, cat
    assert IMAGENET_CLASSES.index(coffee[0][0]) in COFFEE_CLASSES, coffee
    assert coffee[0][0] == "espresso"
    assert cat[0][1] >= cat[1][1] >= cat[2][1] > 0


def test_labels_from_pooled_equal_the_networks_own_head(built, photos):
    from omnibind.encoders.efficientnet_lite0 import as_rgb, preprocess

    eff = built["efficientnet_lite0"]
    x = torch.from_numpy(preprocess(as_rgb(photos["cat"])))[None]
    with torch.no_grad():
        probs = eff.net(x).softmax(-1)[0]
    labels = eff.top_labels([photos["cat"]], k=5)[0]
    ref = probs.topk(5)
    from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES

    assert [name for name, _ in labels] == [IMAGENET_CLASSES[int(i)] for i in ref.indices]
    np.testing.assert_allclose([p for _, p in labels], ref.values.numpy(), rtol=1e-4)


def test_image_expert_line(built, photos):
    line = experts.image_labels(built["efficientnet_lite0"], [photos["coffee"]], k=2)[0]
    assert line.startswith("Detected: coffee (0.")  # espresso, named as people name it
    pooled = built["efficientnet_lite0"].encode([photos["coffee"]]).pooled
    assert experts.image_labels_from_pooled(built["efficientnet_lite0"], pooled, k=2) == line


def test_frozen_encoders_stay_frozen(built, photos):
    eff = built["efficientnet_lite0"]
    before = eff.encode([photos["cat"]]).pooled
    eff.train()  # batch-norm must not switch to batch statistics or update its running stats
    assert not eff.training and not any(p.requires_grad for p in eff.parameters())
    torch.testing.assert_close(eff.encode([photos["cat"]]).pooled, before)
    fp = eff.fingerprint()
    assert fp == eff.fingerprint() and fp.startswith("effnet-lite0-")


# --- Whisper tiny.en ------------------------------------------------------------------------------


def test_whisper_transcribes_synthesised_speech(built, speech):
    text = built["whisper_encoder"].transcribe(speech).lower()
    words = {"quick", "brown", "fox", "lazy", "dog"}
    assert len({w for w in words if w in text}) >= 4, text
    assert experts.speech_transcript(speech) == built["whisper_encoder"].transcribe(speech)


def test_whisper_says_nothing_for_silence(built):
    assert experts.speech_transcript(AudioData(np.zeros(32000, np.float32))) == ""


def test_whisper_features_pool_only_real_audio(built, speech):
    enc = built["whisper_encoder"]
    half = AudioData(speech.waveform[:8000])  # 0.5 s → 25 frames of 20 ms
    out = enc.encode([half, speech])
    n_speech = -(-len(speech.waveform) // 320)
    assert out.pooled.shape == (2, 384) and out.tokens.shape == (2, min(64, n_speech), 384)
    assert out.token_mask.sum(1).tolist() == [25, min(64, n_speech)]
    alone = enc.encode([half])
    torch.testing.assert_close(alone.pooled[0], out.pooled[0], atol=2e-2, rtol=2e-2)
    # the padding is excluded: the pooled vector is the mean of the 25 real frames
    frames = enc.frames([half])[0]
    assert frames.shape == (25, 384)
    np.testing.assert_allclose(alone.pooled[0].numpy(), frames.mean(0), rtol=1e-5, atol=1e-6)


def test_whisper_features_tell_speech_from_a_tone(built, speech):
    rng = np.random.default_rng(0)
    noisy = AudioData((speech.waveform + rng.normal(0, 0.01, len(speech.waveform))).astype(np.float32))
    t = np.arange(len(speech.waveform)) / 16000
    tone = AudioData((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    p = torch.nn.functional.normalize(built["whisper_encoder"].encode([speech, noisy, tone]).pooled, dim=-1)
    assert float(p[0] @ p[1]) > float(p[0] @ p[2]) + 0.05


def test_whisper_long_audio_windows(built, speech):
    from omnibind.encoders.whisper_encoder import WhisperEncoder

    enc = WhisperEncoder(max_windows=2)
    rng = np.random.default_rng(1)
    long = np.concatenate([rng.normal(0, 0.01, 16000 * 95).astype(np.float32), speech.waveform])
    frames = enc.frames([AudioData(long)])[0]
    tail = -(-(len(long) - 3 * 480000) // 320)  # windows 0 and 3 of 4; the last is partly padding
    assert frames.shape == (1500 + tail, 384)


# --- MiniLM --------------------------------------------------------------------------------------


def test_minilm_ranks_related_sentences_closer(built):
    out = built["minilm"].encode(
        ["A cat is sleeping on the sofa.", "A kitten naps on the couch.", "The stock market fell sharply today."]
    )
    p = out.pooled
    torch.testing.assert_close(p.norm(dim=-1), torch.ones(3))
    assert float(p[0] @ p[1]) > float(p[0] @ p[2]) + 0.3
    assert out.tokens.shape[:2] == out.token_mask.shape and out.tokens.shape[2] == 384


def test_minilm_equals_sentence_transformers(built):
    st = pytest.importorskip("sentence_transformers")
    from omnibind.encoders.minilm import model_dir

    texts = ["Hello world.", "A much longer sentence about thermal cameras and depth sensors. " * 40]
    ref = st.SentenceTransformer(str(model_dir()), device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(built["minilm"].encode(texts).pooled, ref.cpu(), atol=1e-5, rtol=1e-4)


# --- every registry entry ----------------------------------------------------------------------------


def test_every_entry_encodes_real_data(built, photos, speech):
    data = pytest.importorskip("skimage.data")
    _, _, disparity = data.stereo_motorcycle()  # a real disparity map
    t = np.linspace(0, 10, 100)
    imu = np.stack([np.sin(t), np.cos(t), 9.8 + 0 * t, 0.1 * t, 0 * t, np.sin(2 * t)], axis=1).astype(np.float32)
    rng = np.random.default_rng(0)
    torus_a, torus_b = rng.uniform(0, 2 * np.pi, (2, 4000))
    torus = np.stack(
        [(0.7 + 0.25 * np.cos(torus_b)) * np.cos(torus_a), (0.7 + 0.25 * np.cos(torus_b)) * np.sin(torus_a),
         0.25 * np.sin(torus_b)], axis=1).astype(np.float32)  # fmt: skip
    warm = np.full((120, 160), 21.0, np.float32)
    warm[40:90, 60:100] = 36.5  # a person-warm blob on a room-temperature background
    frames = np.stack([photos["cat"].pixels[i * 10 : i * 10 + 200, i * 10 : i * 10 + 260] for i in range(4)])
    cases = {
        "efficientnet_lite0": (photos["cat"], 1280, (49, 1280)),
        "whisper_encoder": (speech, 384, (64, 384)),
        "minilm": ("a photo of a cat", 384, None),
        "video_frames": (VideoData(frames, np.arange(4) / 2.0), 1280, (4, 1280)),
        "depth_as_image": (DepthData(disparity.astype(np.float32), "disparity"), 1280, (49, 1280)),
        "thermal_as_image": (ThermalData(warm, "celsius"), 1280, (49, 1280)),
        "points_multiview": (PointsData(torus), 1280, (6, 1280)),
        "imu_cnn": (IMUData(imu, 10.0), 256, (62, 128)),
    }
    for name, (item, dim, token_shape) in cases.items():
        out = built[name].encode([item])
        assert out.pooled.shape == (1, dim), name
        assert torch.isfinite(out.pooled).all(), name
        if token_shape is not None:
            assert tuple(out.tokens.shape[1:]) == token_shape, name
        assert built[name].output_dim == dim
        assert out.tokens is None or out.tokens.shape[2] == built[name].token_dim, name
    # the wrappers share the one EfficientNet
    assert built["depth_as_image"].image is built["efficientnet_lite0"] is built["points_multiview"].image


def test_fingerprints_hash_the_weights(built):
    fps = {n: e.fingerprint() for n, e in built.items()}
    assert len(set(fps.values())) == len(fps)
    eff_fp = fps["efficientnet_lite0"]
    assert all(eff_fp in fps[n] for n in ("video_frames", "depth_as_image", "thermal_as_image", "points_multiview"))


def test_missing_weights_folder_is_reported(tmp_path: Path):
    from omnibind.encoders.minilm import MiniLMEncoder
    from omnibind.errors import ConfigError

    with pytest.raises(ConfigError, match="sentence-transformers folder"):
        MiniLMEncoder(path=str(tmp_path))
