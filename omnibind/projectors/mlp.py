"""MLP-GELU projector (LLaVA-1.5: Linear → GELU → Linear)."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.projectors.base import PROJECTORS, Projector, small_init_


@PROJECTORS.register("mlp")
class MLPProjector(Projector):
    def __init__(
        self, bind_dim: int, llm_dim: int, num_tokens: int = 1, token_dim: int | None = None, hidden: int | None = None
    ):
        super().__init__(bind_dim, llm_dim, num_tokens, token_dim)
        hidden = hidden or llm_dim
        self.net = nn.Sequential(nn.Linear(bind_dim, hidden), nn.GELU(), nn.Linear(hidden, llm_dim * num_tokens))
        small_init_(self)

    def forward(self, vector: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return self.net(vector).view(vector.shape[0], self.num_tokens, self.llm_dim)
