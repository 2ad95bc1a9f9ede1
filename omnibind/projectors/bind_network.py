"""Bind network (ImageBind-LLM): a linear map, then 3 blocks of RMSNorm + SiLU-gated residual FFN."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.projectors.base import PROJECTORS, Projector, small_init_


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class GatedFFNBlock(nn.Module):
    """x + W2(SiLU(W1 n(x)) * W3 n(x)), n = RMSNorm (the LLaMA FFN used as a residual block)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return x + self.w2(nn.functional.silu(self.w1(h)) * self.w3(h))


@PROJECTORS.register("bind_network")
class BindNetworkProjector(Projector):
    def __init__(
        self,
        bind_dim: int,
        llm_dim: int,
        num_tokens: int = 1,
        token_dim: int | None = None,
        blocks: int = 3,
        ffn_mult: int = 4,
    ):
        super().__init__(bind_dim, llm_dim, num_tokens, token_dim)
        self.inp = nn.Linear(bind_dim, llm_dim)
        self.blocks = nn.Sequential(*[GatedFFNBlock(llm_dim, llm_dim * ffn_mult) for _ in range(blocks)])
        self.out = nn.Linear(llm_dim, llm_dim * num_tokens)
        small_init_(self)

    def forward(self, vector: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        h = self.blocks(self.inp(vector))
        return self.out(h).view(vector.shape[0], self.num_tokens, self.llm_dim)
