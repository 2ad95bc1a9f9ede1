"""The projector interface: a bind-space vector (or encoder tokens) → k soft tokens of LLM width."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from omnibind.registry import Registry


class Projector(nn.Module):
    """Base class. ``uses_tokens``: consumes encoder tokens; ``uses_instruction``: reads the prompt;
    ``supports_inputs``: reads the configured ``ProjectorConfig.inputs`` (pooled features, tokens,
    class probabilities as keyword arguments); the others read the bind vector only."""

    uses_tokens: bool = False
    uses_instruction: bool = False
    supports_inputs: bool = False
    inputs: tuple[str, ...] = ("bind",)

    def __init__(self, bind_dim: int, llm_dim: int, num_tokens: int, token_dim: int | None = None):
        super().__init__()
        self.bind_dim = bind_dim
        self.llm_dim = llm_dim
        self.num_tokens = num_tokens
        self.token_dim = token_dim

    def forward(
        self,
        vector: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        instruction: torch.Tensor | None = None,
        instruction_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, bind_dim) → (B, num_tokens, llm_dim)."""
        raise NotImplementedError

    def example_features(self, n: int, generator: torch.Generator) -> dict[str, Any]:
        """Random keyword inputs beside the bind vector, of the shapes ``forward`` expects (the
        start-scale calibration in ``omnibind.model_setup`` runs the projector on them)."""
        return {}


PROJECTORS: Registry[type[Projector]] = Registry("projector")


def small_init_(module: nn.Module, std: float = 0.02) -> None:
    """Small random init: soft tokens that start at exactly zero gave NaN gradients (EMBEDDED_STACK)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
