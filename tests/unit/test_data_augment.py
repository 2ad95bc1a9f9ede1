"""Augmentations: shapes, determinism given a seed, and what each op does."""

from __future__ import annotations

import numpy as np
import pytest

from omnibind.data import augment as A
from omnibind.modalities.base import AudioData, ImageData, IMUData, PointsData, VideoData


@pytest.mark.parametrize(
    ("modality", "data", "attr"),
    [
        ("image", ImageData(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)), "pixels"),
        ("audio", AudioData(np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)), "waveform"),
        ("imu", IMUData(np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32), 50.0), "samples"),
        ("points", PointsData(np.random.default_rng(0).normal(size=(256, 3)).astype(np.float32) / 3), "xyz"),
    ],
)
def test_deterministic_and_typed(modality: str, data, attr: str) -> None:
    aug = A.Augmenter(modality, p=1.0)
    a, b, c = aug(data, 7), aug(data, 7), aug(data, 8)
    assert type(a) is type(data)
    np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert not np.array_equal(getattr(a, attr), getattr(c, attr))
    assert getattr(a, attr).dtype == getattr(data, attr).dtype
    if modality != "audio":  # audio's random crop shortens on purpose
        assert getattr(a, attr).shape == getattr(data, attr).shape
    with pytest.raises(ValueError, match="unknown"):
        A.Augmenter(modality, ops=["nope"])


def test_image_ops() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :10] = 255
    flipped = A.hflip(img, np.random.default_rng(0))
    assert flipped[:, -10:].min() == 255 and flipped[:, :20].max() == 0
    crop = A.random_resized_crop(img, np.random.default_rng(0), size=(16, 16))
    assert crop.shape == (16, 16, 3)
    grey = np.full((10, 10, 3), 100, np.uint8)
    jittered = A.color_jitter(grey, np.random.default_rng(0), hue=0.0)
    assert jittered.std() < 1e-6 and jittered.mean() != 100  # brightness changed, still uniform


def test_audio_ops() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    up = A.pitch_shift(tone, np.random.default_rng(0), semitones=(12, 12))
    freqs = np.fft.rfftfreq(len(up), 1 / sr)
    assert len(up) == len(tone)
    assert abs(freqs[np.abs(np.fft.rfft(up)).argmax()] - 880) < 5
    loud = A.gain(tone, np.random.default_rng(0), db=(6, 6))
    assert np.isclose(np.abs(loud).max(), 0.3 * 10 ** (6 / 20), rtol=1e-3)
    noisy = A.add_noise(tone, np.random.default_rng(0), snr_db=(20, 20))
    snr = 10 * np.log10(np.mean(tone**2) / np.mean((noisy - tone) ** 2))
    assert abs(snr - 20) < 1
    shifted = A.time_shift(tone, np.random.default_rng(2), max_fraction=0.25)
    assert len(shifted) == len(tone) and (shifted == 0).sum() > 0
    crop = A.random_crop(tone, np.random.default_rng(0), min_fraction=0.5)
    assert sr // 2 <= len(crop) <= sr


def test_imu_rotation_preserves_magnitudes() -> None:
    x = np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32)
    r = A.imu_rotation(x, np.random.default_rng(1), max_degrees=90)
    for c in (0, 3):
        np.testing.assert_allclose(
            np.linalg.norm(r[:, c : c + 3], axis=1), np.linalg.norm(x[:, c : c + 3], axis=1), rtol=1e-4
        )
    assert not np.allclose(r, x)
    scaled = A.imu_scaling(x, np.random.default_rng(0))
    ratio = scaled / x
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1], ratio.shape), rtol=1e-4)  # one factor per channel


def test_video_frames_share_parameters() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    video = VideoData(frames=np.stack([frame, frame, frame]), timestamps=np.arange(3.0))
    out = A.Augmenter("video", p=1.0)(video, 3)
    assert out.frames.shape == video.frames.shape
    assert np.array_equal(out.frames[0], out.frames[2]) and not np.array_equal(out.frames[0], frame)
