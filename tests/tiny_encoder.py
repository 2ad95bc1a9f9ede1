"""A tiny deterministic encoder for unit tests: summary statistics of any modality's data through a
fixed random linear map. It exercises the whole model path in milliseconds (random, not pretrained)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.modalities import base as mb


def _array(item: Any) -> np.ndarray:
    for attr in ("pixels", "waveform", "frames", "depth", "values", "samples", "xyz"):
        if hasattr(item, attr):
            return np.nan_to_num(np.asarray(getattr(item, attr), dtype=np.float32))
    if isinstance(item, str):
        return np.frombuffer(item.encode(), dtype=np.uint8).astype(np.float32)
    if isinstance(item, mb.ImageData):
        return item.pixels.astype(np.float32)
    return np.asarray(item, dtype=np.float32)


def _stats(a: np.ndarray) -> list[float]:
    flat = a.reshape(-1)
    if flat.size == 0:
        return [0.0] * 8
    q = np.quantile(flat, [0.1, 0.5, 0.9])
    return [
        float(flat.mean()),
        float(flat.std()),
        float(flat.min()),
        float(flat.max()),
        *map(float, q),
        float(flat.size) ** 0.5,
    ]


class TinyTestEncoder(Encoder):
    modalities = ("image", "audio", "video", "depth", "thermal", "imu", "points", "text")
    token_dim = 8

    def __init__(self, dim: int = 24):
        super().__init__(dim=dim)
        self.output_dim = dim
        gen = torch.Generator().manual_seed(1234)
        self.proj = torch.nn.Linear(8, dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, 8, generator=gen) * 0.1)
            self.proj.bias.zero_()

    @torch.inference_mode()  # like many frozen encoders: the model must still train heads on these outputs
    def encode(self, items: list[Any]) -> EncoderOutput:
        feats = torch.tensor([_stats(_array(x)) for x in items], dtype=torch.float32)
        feats = feats / (feats.abs().amax(dim=1, keepdim=True) + 1.0)
        tokens = torch.stack([feats, feats * 0.5, -feats], dim=1)
        return EncoderOutput(
            pooled=self.proj(feats), tokens=tokens, token_mask=torch.ones(len(items), 3, dtype=torch.bool)
        )


if "test_tiny" not in ENCODERS:
    ENCODERS.add("test_tiny", TinyTestEncoder)
