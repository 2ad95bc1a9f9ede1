"""Weighted mixing in the bind space ("embedding-space arithmetic", ImageBind / ImageBind-LLM)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def mix(vectors: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """(N, D) unit vectors and N weights → one (D,) unit vector: the normalised weighted sum."""
    if vectors.shape[0] != len(weights):
        raise ValueError(f"{vectors.shape[0]} vectors but {len(weights)} weights")
    w = torch.tensor(list(weights), dtype=vectors.dtype, device=vectors.device)
    out = (w[:, None] * vectors).sum(dim=0)
    norm = out.norm()
    if norm < 1e-8:
        raise ValueError("mixed vector is zero (weights cancel out)")
    return out / norm
