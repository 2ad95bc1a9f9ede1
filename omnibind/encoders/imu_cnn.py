"""A small trainable 1-D CNN for IMU recordings (accelerometer xyz + gyroscope xyz).

No pretrained IMU weights install offline (ImageBind's IMU encoder was trained on Ego4D), so this
encoder starts from a seeded random init and is trained by ``omnibind train`` (bind stage); its
weights go into omnibind checkpoints with the heads and projectors.

Input: (T, 6) samples, linearly resampled to ``sample_rate`` (50 Hz, the IMU loader's rate) when an
item comes at another rate. Channels fed to the network (12):
- the 6 signals divided by fixed constants (accelerometer /10, gyroscope /5): keeps magnitudes,
  which separate walking from running;
- each signal's per-recording z-score: the shape of the motion, whatever the sensor's units.
Network: three strided conv blocks (×8 downsampling), then mean and max pooling over the real
(non-padded) time steps, and a linear layer to ``out_dim``. Activations past an item's length are
zeroed after every block, so a recording gets the same features alone or batched with longer ones.
Tokens: the last block's time steps (T/8, 2·width) with a mask.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import nn

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.errors import ConfigError, InputError

SCALE = (10.0, 10.0, 10.0, 5.0, 5.0, 5.0)


def resample(samples: np.ndarray, rate: float, target: float) -> np.ndarray:
    """Linear resampling of (T, C) samples from ``rate`` to ``target`` Hz (identity when equal)."""
    if abs(rate - target) < 1e-6 or len(samples) < 2:
        return samples
    duration = (len(samples) - 1) / rate
    n = max(1, round(duration * target) + 1)
    t_old = np.arange(len(samples)) / rate
    t_new = np.arange(n) / target
    return np.stack([np.interp(t_new, t_old, samples[:, c]) for c in range(samples.shape[1])], axis=1)


@ENCODERS.register("imu_cnn")
class IMUCNNEncoder(Encoder):
    """Trainable IMU encoder: ``encode(list[IMUData])`` → pooled (B, out_dim), tokens (B, ⌈T/8⌉, 2·width)."""

    modalities = ("imu",)
    trainable = True

    def __init__(self, out_dim: int = 256, width: int = 64, seed: int = 0, sample_rate: float = 50.0):
        super().__init__(out_dim=out_dim, width=width, seed=seed, sample_rate=sample_rate)
        if out_dim < 1 or width < 1 or sample_rate <= 0:
            raise ConfigError("imu_cnn: out_dim and width must be ≥ 1 and sample_rate > 0")
        self.output_dim = int(out_dim)
        self.token_dim = int(width) * 2
        self.sample_rate = float(sample_rate)
        # a private RNG for the init: the same seed gives the same weights whatever ran before, and
        # building this encoder does not disturb the global RNG stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.blocks = nn.ModuleList(
                [
                    nn.Conv1d(12, width, 7, stride=2, padding=3),
                    nn.Conv1d(width, width * 2, 5, stride=2, padding=2),
                    nn.Conv1d(width * 2, width * 2, 3, stride=2, padding=1),
                ]
            )
            self.out = nn.Linear(width * 4, out_dim)
        self.register_buffer("scale", torch.tensor(SCALE), persistent=False)

    def _input(self, item: Any) -> torch.Tensor:
        samples = np.asarray(getattr(item, "samples", item))
        rate = float(getattr(item, "sample_rate", self.sample_rate))
        if samples.ndim != 2 or samples.shape[1] != 6 or samples.shape[0] < 1:
            raise InputError("<imu>", f"expected (T, 6) samples, got shape {samples.shape}", modality="imu")
        if not np.issubdtype(samples.dtype, np.number) or not np.isfinite(samples).all():
            raise InputError("<imu>", "samples must be finite numbers", modality="imu")
        x = torch.from_numpy(resample(samples.astype(np.float64), rate, self.sample_rate).astype(np.float32)).T
        x = x.to(self.scale.device)
        scaled = x / self.scale[:, None]
        z = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True, unbiased=False) + 1e-3)
        return torch.cat([scaled, z], dim=0)  # (12, T)

    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no IMU recordings to encode", modality="imu")
        xs = [self._input(it) for it in items]
        lengths = torch.tensor([x.shape[1] for x in xs], device=self.scale.device)
        h = torch.zeros((len(xs), 12, int(lengths.max())), device=self.scale.device)
        for i, x in enumerate(xs):
            h[i, :, : x.shape[1]] = x
        for conv in self.blocks:
            h = nn.functional.gelu(conv(h))
            lengths = (lengths + 1) // 2  # each block (stride 2, "same" padding) halves, rounding up
            mask = torch.arange(h.shape[2], device=h.device)[None] < lengths[:, None]
            h = h * mask[:, None]  # padded steps back to zero, exactly like the conv's own padding
        mean = h.sum(2) / lengths[:, None]
        peak = h.masked_fill(~mask[:, None], float("-inf")).amax(2)
        pooled = self.out(torch.cat([mean, peak], dim=1))
        return EncoderOutput(pooled=pooled, tokens=h.transpose(1, 2), token_mask=mask)

    def fingerprint(self) -> str:
        # trainable: the fingerprint follows the weights, so feature caches never reuse stale outputs
        h = hashlib.sha256(Encoder.fingerprint(self).encode())
        for name, t in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().numpy().tobytes())
        return f"imu-cnn-{h.hexdigest()[:16]}"
