"""Per-token MLP projector (LLaVA-1.5, Liu et al., "Improved Baselines with Visual Instruction
Tuning", CVPR 2024): every encoder token (a CLIP patch) through Linear → GELU → Linear, one soft
token per encoder token, nothing pooled.

This is the ``multi_modal_projector`` of Hugging Face's ``LlavaForConditionalGeneration``
(``linear_1`` / ``linear_2``, same names here, so ``omnibind import llava`` copies its tensors as
they are). Unlike ``mlp`` (one vector → k tokens) and ``feature_mlp`` (tokens pooled to k), the
token count is the encoder's: ``num_tokens`` must equal it (576 for CLIP ViT-L/14 at 336 px with
the CLS token dropped), and a mismatch is a ``ConfigError`` rather than a silent resize.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from omnibind.errors import ConfigError
from omnibind.projectors.base import PROJECTORS, Projector, small_init_

ACTIVATIONS = {"gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "relu": nn.ReLU}


@PROJECTORS.register("token_mlp")
class TokenMLPProjector(Projector):
    """``forward(vector, tokens=(B, L, token_dim))`` → (B, L, llm_dim) with L == ``num_tokens``."""

    uses_tokens = True

    def __init__(
        self,
        bind_dim: int,
        llm_dim: int,
        num_tokens: int = 576,
        token_dim: int | None = None,
        hidden: int | None = None,
        act: str = "gelu",
        bias: bool = True,
    ):
        super().__init__(bind_dim, llm_dim, num_tokens, token_dim)
        if not token_dim:
            raise ConfigError("token_mlp reads encoder tokens, and this modality's encoder gives none")
        if act not in ACTIVATIONS:
            raise ConfigError(f"token_mlp act {act!r}: expected one of {sorted(ACTIVATIONS)}")
        hidden = int(hidden or llm_dim)
        self.linear_1 = nn.Linear(token_dim, hidden, bias=bias)
        self.act = ACTIVATIONS[act]()
        self.linear_2 = nn.Linear(hidden, llm_dim, bias=bias)
        small_init_(self)

    def forward(
        self, vector: torch.Tensor, tokens: torch.Tensor | None = None, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        if tokens is None:
            raise ConfigError(
                "token_mlp needs the encoder's tokens (this input has none: a mix or cached pooled features)"
            )
        if tokens.shape[1] != self.num_tokens:
            raise ConfigError(
                f"token_mlp: the encoder gave {tokens.shape[1]} tokens, the projector is configured for "
                f"num_tokens={self.num_tokens} (image size or feature_select differ from the checkpoint's)"
            )
        w = self.linear_1.weight
        return self.linear_2(self.act(self.linear_1(tokens.to(w.device, w.dtype))))

    def example_features(self, n: int, generator: torch.Generator) -> dict[str, Any]:
        # two items suffice for the start-scale calibration (576 tokens × 64 items would be heavy)
        return {"tokens": torch.randn(2, self.num_tokens, int(self.token_dim or 0), generator=generator)}
