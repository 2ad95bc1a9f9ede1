"""Augmentations for small paired data, in numpy/PIL (no torchvision), deterministic given a seed.

Images: random resized crop, horizontal flip, colour jitter. Audio: gain, noise, pitch shift
(phase-vocoder time stretch + resampling, so duration is kept), time shift, random crop.
IMU: jitter, per-channel scaling, a random 3-D rotation applied to accelerometer and gyroscope alike.
Points: rotation about the up axis, jitter, scaling. Videos: the image ops with one set of random
parameters for all frames.

Each op is ``op(array, rng, **params) -> array``; ``Augmenter`` applies a chosen subset of ops to
the data types of ``omnibind.modalities`` with probability ``p`` each, so each op's benefit can be
measured by switching it off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- images (H, W, 3) uint8


def random_resized_crop(
    img: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Crop a random box covering ``scale`` of the area with aspect in ``ratio``; resize to ``size`` (H, W)
    or back to the input size."""
    from PIL import Image

    h, w = img.shape[:2]
    out_h, out_w = size or (h, w)
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        cw, ch = round(np.sqrt(area * aspect)), round(np.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:  # fall back to the largest centred box
        cw, ch = w, h
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = Image.fromarray(img[top : top + ch, left : left + cw])
    return np.asarray(crop.resize((out_w, out_h), Image.BILINEAR))


def hflip(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror left–right (the op's probability decides whether it happens)."""
    return np.ascontiguousarray(img[:, ::-1])


def color_jitter(
    img: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
    hue: float = 0.03,
) -> np.ndarray:
    """Random brightness, contrast and saturation factors in [1-x, 1+x] and a hue shift in [-hue, hue] turns."""
    x = img.astype(np.float32)
    x = x * rng.uniform(1 - brightness, 1 + brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey[..., None]) * rng.uniform(1 - saturation, 1 + saturation) + grey[..., None]
    out = np.clip(x, 0, 255).astype(np.uint8)
    shift = rng.uniform(-hue, hue)
    if abs(shift) > 1e-4:
        from PIL import Image

        hsv = np.asarray(Image.fromarray(out).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(shift * 255)) % 256
        out = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
    return out


# --------------------------------------------------------------------------- audio (T,) float32


def gain(wave: np.ndarray, rng: np.random.Generator, db: tuple[float, float] = (-6.0, 6.0)) -> np.ndarray:
    """Scale by a random gain in decibels, clipped to [-1, 1]."""
    return np.clip(wave * 10 ** (rng.uniform(*db) / 20), -1, 1).astype(np.float32)


def add_noise(wave: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float] = (15.0, 40.0)) -> np.ndarray:
    """White noise at a random signal-to-noise ratio."""
    power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-8
    noise_power = power / 10 ** (rng.uniform(*snr_db) / 10)
    noisy = wave + rng.normal(0, np.sqrt(noise_power), wave.shape)
    return np.clip(noisy, -1, 1).astype(np.float32)


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    win = np.hanning(n_fft)
    x = np.pad(x, (n_fft // 2, n_fft // 2 + n_fft), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.fft.rfft(frames * win, axis=1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    win = np.hanning(n_fft)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * win
    total = hop * (len(frames) - 1) + n_fft
    out, norm = np.zeros(total), np.zeros(total)
    for i, f in enumerate(frames):
        out[i * hop : i * hop + n_fft] += f
        norm[i * hop : i * hop + n_fft] += win**2
    out = out / np.maximum(norm, 1e-8)
    return out[n_fft // 2 : n_fft // 2 + length]


def time_stretch(wave: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), pitch unchanged."""
    spec = _stft(wave.astype(np.float64), n_fft, hop)
    steps = np.arange(0, len(spec) - 1, rate)
    advance = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    phase = np.angle(spec[0])
    out = np.empty((len(steps), spec.shape[1]), complex)
    for j, t in enumerate(steps):
        i, frac = int(t), t - int(t)
        mag = (1 - frac) * np.abs(spec[i]) + frac * np.abs(spec[i + 1])
        out[j] = mag * np.exp(1j * phase)
        dphi = np.angle(spec[i + 1]) - np.angle(spec[i]) - advance
        phase = phase + advance + (dphi - 2 * np.pi * np.round(dphi / (2 * np.pi)))
    return _istft(out, n_fft, hop, round(len(wave) / rate)).astype(np.float32)


def pitch_shift(wave: np.ndarray, rng: np.random.Generator, semitones: tuple[float, float] = (-2.0, 2.0)) -> np.ndarray:
    """Shift pitch by a random number of semitones, keeping the duration (stretch, then resample)."""
    factor = 2 ** (rng.uniform(*semitones) / 12)
    if len(wave) < 1024 or abs(factor - 1) < 1e-3:
        return wave.astype(np.float32)
    stretched = time_stretch(wave, 1 / factor)
    pos = np.linspace(0, len(stretched) - 1, len(wave))
    return np.clip(np.interp(pos, np.arange(len(stretched)), stretched), -1, 1).astype(np.float32)


def time_shift(wave: np.ndarray, rng: np.random.Generator, max_fraction: float = 0.2) -> np.ndarray:
    """Shift in time by up to ``max_fraction`` of the length, filling with silence (no wrap-around)."""
    n = int(rng.integers(-int(len(wave) * max_fraction), int(len(wave) * max_fraction) + 1))
    out = np.zeros_like(wave, dtype=np.float32)
    if n >= 0:
        out[n:] = wave[: len(wave) - n]
    else:
        out[:n] = wave[-n:]
    return out


def random_crop(wave: np.ndarray, rng: np.random.Generator, min_fraction: float = 0.6) -> np.ndarray:
    """A random contiguous segment of at least ``min_fraction`` of the input (shorter output)."""
    n = len(wave)
    length = int(rng.integers(max(1, int(n * min_fraction)), n + 1))
    start = int(rng.integers(0, n - length + 1))
    return wave[start : start + length].astype(np.float32)


# --------------------------------------------------------------------------- IMU (T, 6)


def random_rotation(rng: np.random.Generator, max_degrees: float = 180.0) -> np.ndarray:
    """A random 3×3 rotation about a uniformly random axis by up to ``max_degrees``."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis) + 1e-12
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def imu_jitter(x: np.ndarray, rng: np.random.Generator, sigma: float = 0.05) -> np.ndarray:
    """Gaussian noise scaled to each channel's standard deviation."""
    std = x.std(axis=0, keepdims=True) + 1e-6
    return (x + rng.normal(0, 1, x.shape) * sigma * std).astype(np.float32)


def imu_scaling(x: np.ndarray, rng: np.random.Generator, sigma: float = 0.1) -> np.ndarray:
    """Multiply each channel by a factor ~ N(1, sigma) (sensor gain differences)."""
    return (x * rng.normal(1.0, sigma, (1, x.shape[1]))).astype(np.float32)


def imu_rotation(x: np.ndarray, rng: np.random.Generator, max_degrees: float = 30.0) -> np.ndarray:
    """Rotate accelerometer (cols 0-2) and gyroscope (cols 3-5) by one random rotation (device orientation)."""
    r = random_rotation(rng, max_degrees)
    out = x.astype(np.float32).copy()
    for c in range(0, min(x.shape[1], 6), 3):
        out[:, c : c + 3] = x[:, c : c + 3] @ r.T
    return out


# --------------------------------------------------------------------------- points (N, 3)


def points_rotation(xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate about the up (y) axis by a random angle."""
    a = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(a), np.sin(a)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (xyz @ r.T).astype(np.float32)


def points_jitter(xyz: np.ndarray, rng: np.random.Generator, sigma: float = 0.01, clip: float = 0.05) -> np.ndarray:
    return (xyz + np.clip(rng.normal(0, sigma, xyz.shape), -clip, clip)).astype(np.float32)


def points_scaling(xyz: np.ndarray, rng: np.random.Generator, low: float = 0.8, high: float = 1.2) -> np.ndarray:
    """Anisotropic scaling, then back into the unit sphere (the loader's normalisation)."""
    out = xyz * rng.uniform(low, high, (1, 3))
    return (out / max(float(np.linalg.norm(out, axis=1).max()), 1e-8)).astype(np.float32)


# --------------------------------------------------------------------------- composition

OPS: dict[str, dict[str, Callable[..., np.ndarray]]] = {
    "image": {"crop": random_resized_crop, "flip": hflip, "color": color_jitter},
    "audio": {"gain": gain, "noise": add_noise, "pitch": pitch_shift, "shift": time_shift, "crop": random_crop},
    "imu": {"jitter": imu_jitter, "scale": imu_scaling, "rotate": imu_rotation},
    "points": {"rotate": points_rotation, "jitter": points_jitter, "scale": points_scaling},
}
OPS["video"] = OPS["image"]
DEFAULT_P: dict[str, float] = {"flip": 0.5}
"""Per-op probability where it differs from ``Augmenter.p``."""


@dataclasses.dataclass
class Augmenter:
    """Applies the chosen ops of one modality, each with probability ``p`` (``DEFAULT_P`` overrides).

    ``Augmenter("image", ops=["crop", "flip"])(image_data, seed=3)`` returns a new ``ImageData``;
    the same seed always gives the same result. ``params`` passes keyword arguments per op,
    e.g. ``{"crop": {"scale": (0.7, 1.0)}}``.
    """

    modality: str
    ops: Sequence[str] | None = None
    p: float = 0.8
    params: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in OPS:
            raise ValueError(f"no augmentations for {self.modality!r}; have {sorted(OPS)}")
        known = OPS[self.modality]
        self.ops = list(known) if self.ops is None else list(self.ops)
        unknown = [o for o in self.ops if o not in known]
        if unknown:
            raise ValueError(f"unknown {self.modality} augmentations {unknown}; have {sorted(known)}")

    def array(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment a bare array of this modality."""
        for name in self.ops:
            # draw the coin even when skipping so each op's randomness is independent of the others
            if rng.random() < DEFAULT_P.get(name, self.p):
                x = OPS[self.modality][name](x, rng, **self.params.get(name, {}))
        return x

    def __call__(self, data: Any, seed: int | np.random.Generator) -> Any:
        """Augment an ``omnibind.modalities`` data object (or a bare array); returns a new one."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if isinstance(data, np.ndarray):
            return self.array(data, rng)
        if self.modality == "video":
            # one parameter draw for every frame: replay the same generator state per frame
            state = rng.bit_generator.state
            frames = []
            for f in data.frames:
                rng.bit_generator.state = state
                frames.append(self.array(f, rng))
            return dataclasses.replace(data, frames=np.stack(frames))
        attr = {"image": "pixels", "audio": "waveform", "imu": "samples", "points": "xyz"}[self.modality]
        return dataclasses.replace(data, **{attr: self.array(getattr(data, attr), rng)})
