"""Input preprocessing for each ImageBind tower, reproducing the official ``data.py`` where one exists
(bit for bit for image, audio and decoded video: tests/unit/test_imagebind_equivalence.py).

- vision (image): shorter side → ``size`` (bicubic, PIL), centre crop, CLIP mean/std.
- vision (video): ``clips`` 2-second windows placed as the official clip sampler places them
  (``clip_windows``), 2 frames each, shorter side → ``size`` (bilinear), CLIP mean/std, 3 spatial crops
  (left/centre/right); embeddings are averaged.
- audio: ``clips`` 2-second windows placed the same way, each a Kaldi-compatible 128-bin log-mel
  filterbank (25 ms Hann window, 10 ms hop, pre-emphasis 0.97, per-frame DC removal) cut/padded to
  204 frames, normalised with AudioSet mean −4.268 / std 9.138. The filterbank is implemented here with
  torch because torchaudio is not installable beside our torch.
- depth, thermal, IMU: the official repository ships no loaders. Depth follows the Omnivore/ImageBind
  authors' recipe (metric depth → disparity = baseline × focal / depth, then mean 0.0418 / std 0.0295);
  thermal is a [0, 1] single-channel image; IMU is resampled to ``rate`` Hz and cut/padded to 2000 steps
  (the paper's 5-second windows), channels first.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
AUDIO_MEAN, AUDIO_STD = -4.268, 9.138
DEPTH_MEAN, DEPTH_STD = 0.0418, 0.0295


# --- clip windows --------------------------------------------------------------------------------
def clip_windows(duration: float | Fraction, clip_seconds: Fraction, clips: int) -> list[tuple[Fraction, Fraction]]:
    """``clips`` windows of ``clip_seconds``, as pytorchvideo's ``ConstantClipsPerVideoSampler`` (which the
    official loaders use) places them: the latest possible start ``duration - clip_seconds`` is cut into
    ``clips`` equal steps and window ``i`` starts at step ``i``, so the last window ends ``1/clips`` of
    that slack before the end. Short inputs give repeated ``[0, clip_seconds)`` windows.

    The slack is computed in float and then made exact, as upstream does (``Fraction(duration - 2)``
    with ``duration`` = samples / rate in float), so the sample indices agree to the sample."""
    last_start = Fraction(max(float(duration) - float(clip_seconds), 0.0))
    step = last_start / clips
    return [(step * i, step * i + clip_seconds) for i in range(clips)]


# --- images ----------------------------------------------------------------------------------------
def _short_side(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)``: the shorter side becomes ``size``, the longer keeps the ratio (floored)."""
    if w <= h:
        return int(size * h / w), size
    return size, int(size * w / h)


def _centre_crop(x: np.ndarray | torch.Tensor, size: int) -> np.ndarray | torch.Tensor:
    h, w = x.shape[-2:] if isinstance(x, torch.Tensor) else x.shape[:2]
    top, left = round((h - size) / 2), round((w - size) / 2)
    if isinstance(x, torch.Tensor):
        return x[..., top : top + size, left : left + size]
    return x[top : top + size, left : left + size]


def vision_image(pixels: np.ndarray, size: int = 224) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, size, size) float, as upstream's PIL bicubic resize + centre crop."""
    from PIL import Image

    h, w = pixels.shape[:2]
    nh, nw = _short_side(h, w, size)
    img = Image.fromarray(np.ascontiguousarray(pixels)).resize((nw, nh), Image.Resampling.BICUBIC)
    arr = _centre_crop(np.asarray(img, dtype=np.float32) / 255.0, size)
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    return _normalise_rgb(t)


def _normalise_rgb(t: torch.Tensor) -> torch.Tensor:
    """Channel-first RGB in [0, 1] (C, ...) → CLIP-normalised."""
    shape = (3,) + (1,) * (t.ndim - 1)
    mean = torch.tensor(CLIP_MEAN, dtype=t.dtype).view(shape)
    std = torch.tensor(CLIP_STD, dtype=t.dtype).view(shape)
    return (t - mean) / std


def _scale_short_side_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """(C, T, H, W) → shorter side ``size`` (pytorchvideo ``ShortSideScale``: floor, bilinear)."""
    h, w = x.shape[-2:]
    nh, nw = (math.floor(h / w * size), size) if w < h else (size, math.floor(w / h * size))
    return torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)


def _spatial_crops(x: torch.Tensor, size: int, crops: int) -> list[torch.Tensor]:
    """Three crops along the longer side (start, centre, end) or the centre one."""
    h, w = x.shape[-2:]
    y0, x0 = math.ceil((h - size) / 2), math.ceil((w - size) / 2)
    out = []
    for idx in (0, 1, 2) if crops == 3 else (1,):
        y, xx = y0, x0
        if h > w:
            y = {0: 0, 1: y0, 2: h - size}[idx]
        else:
            xx = {0: 0, 1: x0, 2: w - size}[idx]
        out.append(x[..., y : y + size, xx : xx + size])
    return out


def vision_video(
    frames: np.ndarray,
    timestamps: np.ndarray,
    duration: float,
    size: int = 224,
    clips: int = 5,
    crops: int = 3,
    clip_seconds: float = 2.0,
) -> torch.Tensor:
    """(T, H, W, 3) sampled frames → (clips × crops, 3, 2, size, size): per window the first and last
    sampled frame inside it (the nearest frame when none falls inside)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    total = max(float(duration), float(ts.max(initial=0.0)), 1e-6)
    views = []
    for start, end in clip_windows(total, Fraction(clip_seconds).limit_denominator(1000), clips):
        inside = np.flatnonzero((ts >= float(start)) & (ts < float(end)))
        if inside.size == 0:
            inside = np.array([int(np.argmin(np.abs(ts - float(start + end) / 2)))])
        pick = [inside[0], inside[-1]]
        clip = torch.from_numpy(frames[pick].astype(np.float32) / 255.0).permute(3, 0, 1, 2)  # (3, 2, H, W)
        clip = _normalise_rgb(_scale_short_side_bilinear(clip, size))
        views.extend(_spatial_crops(clip, size, crops))
    return torch.stack(views)


def _single_channel(values: np.ndarray, size: int) -> torch.Tensor:
    """(H, W) float → (1, size, size): shorter side to ``size`` (antialiased bicubic), centre crop."""
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    nh, nw = _short_side(*values.shape, size)
    t = torch.nn.functional.interpolate(t, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
    return _centre_crop(t[0], size)


def depth_map(
    depth: np.ndarray,
    kind: str = "metric",
    size: int = 224,
    focal: float = 518.8579,
    baseline: float = 0.075,
    min_depth: float = 0.01,
    max_depth: float = 50.0,
    mean: float = DEPTH_MEAN,
    std: float = DEPTH_STD,
) -> torch.Tensor:
    """Depth (metres) or disparity (H, W) → normalised disparity (1, size, size); NaN (invalid) → 0 disparity.

    Defaults are the Kinect values used for SUN RGB-D/NYU (focal 518.86 px, baseline 7.5 cm)."""
    d = np.asarray(depth, dtype=np.float64)
    if kind == "metric":
        disp = baseline * focal / np.clip(d, min_depth, max_depth)
    else:
        disp = d
    disp = np.where(np.isfinite(disp), disp, 0.0).astype(np.float32)
    return (_single_channel(disp, size) - mean) / std


def thermal_map(values: np.ndarray, unit: str = "relative", size: int = 224) -> torch.Tensor:
    """Thermal (H, W) → (1, size, size) in [0, 1]; radiometric (°C) maps are min-max scaled per image,
    as 8-bit thermal frames (LLVIP, ImageBind's training data) span the scene's own range."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if unit != "relative":
        lo, hi = (v[finite].min(), v[finite].max()) if finite.any() else (0.0, 1.0)
        v = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    v = np.where(finite, np.clip(v, 0.0, 1.0), 0.0).astype(np.float32)
    return _single_channel(v, size).clamp(0.0, 1.0)


def imu_window(samples: np.ndarray, sample_rate: float, rate: float = 400.0, length: int = 2000) -> torch.Tensor:
    """(T, 6) at ``sample_rate`` Hz → (6, length) at ``rate`` Hz (linear resampling), centre-cropped or
    zero-padded at the end."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64))
    n = x.shape[0]
    if n > 1 and abs(sample_rate - rate) > 1e-9:
        src = np.arange(n) / sample_rate
        dst = np.arange(0.0, src[-1] + 0.5 / rate, 1.0 / rate)
        x = np.stack([np.interp(dst, src, x[:, c]) for c in range(x.shape[1])], axis=1)
    if x.shape[0] > length:
        start = (x.shape[0] - length) // 2
        x = x[start : start + length]
    out = np.zeros((6, length), np.float32)
    out[:, : x.shape[0]] = x.T
    return torch.from_numpy(out)


# --- audio -----------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def mel_banks(num_bins: int, n_fft: int, sample_rate: int, low: float = 20.0, high: float = 0.0) -> torch.Tensor:
    """Kaldi's triangular mel filters (num_bins, n_fft // 2 + 1); ``high`` ≤ 0 counts down from Nyquist.

    Computed in float32 in the order torchaudio's ``compliance.kaldi.get_mel_banks`` uses (band edges as
    python floats, the per-bin offsets and the slopes as float32 tensors), which is what the official
    loader gets: float64 filters differ from those by up to 1.4e-5 and moved log-mel values by up to
    1.3e-4 on loud, narrow-band frames; these give the official values bit for bit."""
    nyquist = sample_rate / 2
    high = nyquist + high if high <= 0 else high

    def mel(f: float) -> float:
        return 1127.0 * math.log(1.0 + f / 700.0)

    lo_mel, hi_mel = mel(low), mel(high)
    delta = (hi_mel - lo_mel) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    left, centre, right = lo_mel + index * delta, lo_mel + (index + 1.0) * delta, lo_mel + (index + 2.0) * delta
    freqs = (sample_rate / n_fft) * torch.arange(n_fft // 2)
    bins_mel = (1127.0 * (1.0 + freqs / 700.0).log()).unsqueeze(0)
    up = (bins_mel - left) / (centre - left)
    down = (right - bins_mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))  # the Nyquist bin gets no weight


def kaldi_fbank(waveform: torch.Tensor, sample_rate: int = 16000, num_mel_bins: int = 128) -> torch.Tensor:
    """Log-mel filterbank (frames, num_mel_bins) with Kaldi's defaults as ImageBind/AST call it:
    25 ms Hann window, 10 ms shift, snip edges, per-frame DC removal, pre-emphasis 0.97, power spectrum,
    no dither, no energy term. Fewer samples than one window give zero frames."""
    win, hop = int(sample_rate * 0.025), int(sample_rate * 0.010)
    n_fft = 1 << (win - 1).bit_length()
    w = waveform.to(torch.float32)
    if w.numel() < win:
        return torch.zeros(0, num_mel_bins)
    frames = w.unfold(0, win, hop)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # Kaldi replicates the first sample
    frames = (frames - 0.97 * previous) * torch.hann_window(win, periodic=False, dtype=torch.float32)
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)
    energies = power @ mel_banks(num_mel_bins, n_fft, sample_rate).T
    return energies.clamp(min=torch.finfo(torch.float32).eps).log()


def audio_clips(
    waveform: np.ndarray,
    sample_rate: int = 16000,
    clips: int = 3,
    clip_seconds: float = 2.0,
    num_mel_bins: int = 128,
    target_len: int = 204,
) -> torch.Tensor:
    """Mono waveform → (clips, 1, num_mel_bins, target_len) normalised log-mel spectrograms.

    Each clip's mean is subtracted in place from the shared waveform, so a later, overlapping clip sees
    the earlier clips' subtractions on the samples they share. That is what upstream's loader does
    (``waveform -= waveform.mean()`` on a slice view); done otherwise, the frames that straddle an earlier
    clip's end and the float rounding of every overlapping sample differ from the official spectrogram
    (by up to 2.4e-5 after normalisation on the fixture's audio)."""
    w = torch.from_numpy(np.array(waveform, dtype=np.float32))  # a copy: the caller's array is not touched
    duration = w.numel() / sample_rate  # a float, as upstream computes it
    out = []
    for start, end in clip_windows(duration, Fraction(clip_seconds).limit_denominator(1000), clips):
        piece = w[int(start * sample_rate) : int(end * sample_rate)]
        piece -= piece.mean()  # in place, on the view (see the docstring)
        spec = kaldi_fbank(piece, sample_rate, num_mel_bins).T  # (bins, frames)
        if spec.shape[1] < target_len:
            spec = torch.nn.functional.pad(spec, (0, target_len - spec.shape[1]))
        out.append(spec[:, :target_len])
    return ((torch.stack(out) - AUDIO_MEAN) / AUDIO_STD).unsqueeze(1)
