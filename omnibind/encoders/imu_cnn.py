"""A small trainable 1-D CNN for IMU recordings (T×6 at 50 Hz). No pretrained IMU weights install
offline, so this encoder is trained by ``omnibind train`` (bind stage) and saved in checkpoints.

Input channels: the 6 signals scaled by fixed constants (accelerometer /10, gyroscope /5, keeping
magnitudes, which separate walking from running) plus each channel's per-recording z-score (the
shape of the motion). Three strided conv blocks, then mean+max pooling over time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput

SCALE = torch.tensor([10.0, 10.0, 10.0, 5.0, 5.0, 5.0])


@ENCODERS.register("imu_cnn")
class IMUCNNEncoder(Encoder):
    modalities = ("imu",)
    trainable = True

    def __init__(self, out_dim: int = 256, width: int = 64, seed: int = 0):
        super().__init__(out_dim=out_dim, width=width, seed=seed)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # deterministic init, independent of what ran before
        self.output_dim = out_dim
        self.token_dim = width * 2
        self.net = nn.Sequential(
            nn.Conv1d(12, width, 7, stride=2, padding=3),
            nn.GELU(),
            nn.Conv1d(width, width * 2, 5, stride=2, padding=2),
            nn.GELU(),
            nn.Conv1d(width * 2, width * 2, 3, stride=2, padding=1),
            nn.GELU(),
        )
        self.out = nn.Linear(width * 4, out_dim)
        torch.random.set_rng_state(gen_state)

    def _input(self, samples: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(samples, np.float32)).T  # (6, T)
        scaled = x / SCALE[:, None]
        z = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-3)
        return torch.cat([scaled, z], dim=0)

    def encode(self, items: list[Any]) -> EncoderOutput:
        xs = [self._input(getattr(it, "samples", it)) for it in items]
        longest = max(x.shape[1] for x in xs)
        batch = torch.zeros((len(xs), 12, longest))
        for i, x in enumerate(xs):
            batch[i, :, : x.shape[1]] = x  # zero-padding at the end; pooling below uses each item's length
        h = self.net(batch.to(self.device))  # (B, C, T')
        pooled, tokens, masks = [], [], []
        for i, x in enumerate(xs):
            n = max(1, int(np.ceil(x.shape[1] / 8)))
            hi = h[i, :, :n]
            pooled.append(torch.cat([hi.mean(1), hi.amax(1)]))
            tokens.append(hi.T)
            masks.append(n)
        tok = h.transpose(1, 2)
        mask = torch.arange(tok.shape[1])[None] < torch.tensor(masks)[:, None]
        return EncoderOutput(pooled=self.out(torch.stack(pooled)), tokens=tok, token_mask=mask)

    def fingerprint(self) -> str:
        # trainable: the fingerprint follows the weights, so feature caches never reuse stale outputs
        import hashlib

        h = hashlib.sha256()
        for t in self.state_dict().values():
            h.update(t.detach().cpu().numpy().tobytes())
        return f"imu-cnn-{h.hexdigest()[:16]}"
