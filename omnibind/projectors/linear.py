"""Linear projector (PandaGPT: one linear layer from the ImageBind space into Vicuna's embeddings)."""

from __future__ import annotations

import torch
from torch import nn

from omnibind.projectors.base import PROJECTORS, Projector, small_init_


@PROJECTORS.register("linear")
class LinearProjector(Projector):
    def __init__(self, bind_dim: int, llm_dim: int, num_tokens: int = 1, token_dim: int | None = None):
        super().__init__(bind_dim, llm_dim, num_tokens, token_dim)
        self.proj = nn.Linear(bind_dim, llm_dim * num_tokens)
        small_init_(self)

    def forward(self, vector: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return self.proj(vector).view(vector.shape[0], self.num_tokens, self.llm_dim)
