"""Per-modality bind heads: encoder features → one shared, L2-normalised embedding space (ImageBind)."""

from __future__ import annotations

import math

import torch
from torch import nn

from omnibind.config import BindConfig, HeadConfig
from omnibind.errors import ConfigError


class MLPHead(nn.Module):
    """Linear → GELU → Linear, for encoders whose features are far from the anchor's."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_head(cfg: HeadConfig, in_dim: int, out_dim: int) -> nn.Module:
    if cfg.kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if cfg.kind == "mlp":
        return MLPHead(in_dim, out_dim)
    if cfg.kind == "identity":
        if in_dim != out_dim:
            raise ConfigError(f"identity bind head needs encoder dim == bind dim ({in_dim} != {out_dim})")
        return nn.Identity()
    raise ConfigError(f"unknown bind head kind {cfg.kind!r}; expected linear, mlp or identity")


class BindHeads(nn.Module):
    """One head per modality (``share`` lets video reuse the image head) plus a learned temperature (CLIP)."""

    def __init__(self, cfg: BindConfig, encoder_dims: dict[str, int]):
        super().__init__()
        self.cfg = cfg
        self.dim = cfg.dim
        self.heads = nn.ModuleDict()
        self.aliases: dict[str, str] = {}
        for modality, dim in encoder_dims.items():
            head_cfg = cfg.heads.get(modality, HeadConfig())
            if head_cfg.share:
                self.aliases[modality] = head_cfg.share
                continue
            self.heads[modality] = make_head(head_cfg, dim, cfg.dim)
        for modality, target in self.aliases.items():
            if target not in self.heads:
                raise ConfigError(f"bind head for {modality!r} shares {target!r}, which has no head")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def head_for(self, modality: str) -> nn.Module:
        key = self.aliases.get(modality, modality)
        if key not in self.heads:
            raise ConfigError(f"no bind head for modality {modality!r}; configured: {sorted(self.heads)}")
        return self.heads[key]

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head_for(modality)(features), dim=-1)
