"""Feature MLP projector: the bind vector and/or the encoder's own features → k soft tokens.

LLaVA (Liu et al., "Visual Instruction Tuning", NeurIPS 2023; LLaVA-1.5's MLP-GELU connector) feeds
the vision encoder's own features to the LLM instead of a small contrastive vector; ImageBind-LLM
adds a classifier's labels. This projector reads any of (``ProjectorConfig.inputs``):

- ``bind``: the bind-space vector (what a ``MixPart`` has; the other projectors' only input);
- ``pooled``: the encoder's pooled features, LayerNorm'd (their scale differs per encoder);
- ``classes``: the classifier's probabilities, top-k-sparse (``class_top_k``; 0 = all), L2-normalised;
- ``tokens``: the encoder's tokens pooled to the k soft tokens — a 2-D feature map (EfficientNet's
  7×7) by adaptive average pooling to a ``token_grid``, a sequence (Whisper frames, video frames,
  point-cloud views) to k contiguous chunks — each through a per-token linear layer.

Each vector input gives a linear contribution to every one of the k tokens (equivalently one linear
layer on their concatenation), the tokens input adds its own per token, then GELU and one shared
linear layer to LLM width (the LLaVA-1.5 Linear → GELU → Linear shape). Encoders differ in width, so
the input layers of ``pooled``/``tokens``/``classes`` are kept per modality (one shared ``"*"``
projector serves images and sounds alike); the trunk is shared. Each input's layer starts so that
its contribution has the same spread, so no input dominates at the start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from omnibind.encoders.base import FeatureDims
from omnibind.errors import ConfigError
from omnibind.projectors.base import PROJECTORS, Projector, small_init_

START_STD = 0.02


def squarest_grid(k: int) -> tuple[int, int]:
    """(rows, cols) with rows * cols == k and rows ≤ cols as close as possible (4 → 2×2, 8 → 2×4)."""
    rows = max(r for r in range(1, math.isqrt(k) + 1) if k % r == 0)
    return rows, k // rows


def pool_tokens(
    tokens: torch.Tensor,
    mask: torch.Tensor | None,
    k: int,
    grid: tuple[int, int] | None,
    out_grid: tuple[int, int],
) -> torch.Tensor:
    """(B, L, D) tokens → (B, k, D): a full (rows × cols) map by 2-D adaptive average pooling to
    ``out_grid``, anything else (a sequence, or a map with padding) by 1-D pooling of each item's
    real tokens into k contiguous chunks (fewer than k real tokens are repeated, none give zeros)."""
    b, length, dim = tokens.shape
    full = mask is None or bool(mask.all())
    if grid is not None and full and length == grid[0] * grid[1]:
        fmap = tokens.transpose(1, 2).reshape(b, dim, grid[0], grid[1])
        return nn.functional.adaptive_avg_pool2d(fmap, out_grid).flatten(2).transpose(1, 2)
    rows = []
    for i in range(b):
        real = tokens[i] if mask is None else tokens[i][mask[i].bool()]
        if real.shape[0] == 0:
            rows.append(tokens.new_zeros((k, dim)))
        else:
            rows.append(nn.functional.adaptive_avg_pool1d(real.T[None], k)[0].T)
    return torch.stack(rows)


@PROJECTORS.register("feature_mlp")
class FeatureMLPProjector(Projector):
    """``forward(vector, tokens=, token_mask=, modality=, pooled=, classes=)`` → (B, k, llm_dim)."""

    supports_inputs = True

    def __init__(
        self,
        bind_dim: int,
        llm_dim: int,
        num_tokens: int = 4,
        token_dim: int | None = None,
        *,
        inputs: Sequence[str] = ("bind",),
        features: Mapping[str, FeatureDims] | None = None,
        token_grid: Sequence[int] | None = None,
        hidden: int | None = None,
        class_top_k: int = 0,
    ):
        super().__init__(bind_dim, llm_dim, num_tokens, token_dim)
        self.inputs = tuple(inputs)
        self.uses_tokens = "tokens" in self.inputs
        self.features = dict(features or {})
        if class_top_k < 0:
            raise ConfigError(f"feature_mlp: class_top_k must be >= 0 (0 = every class), got {class_top_k}")
        self.class_top_k = int(class_top_k)
        self.token_grid = tuple(token_grid) if token_grid is not None else squarest_grid(num_tokens)
        if self.token_grid[0] * self.token_grid[1] != num_tokens:
            raise ConfigError(f"feature_mlp: token_grid {list(self.token_grid)} does not give {num_tokens} tokens")
        self.hidden = hidden = int(hidden or llm_dim)
        k = num_tokens
        self.bind_in = nn.Linear(bind_dim, k * hidden) if "bind" in self.inputs else None
        self.pooled_in = nn.ModuleDict()
        self.classes_in = nn.ModuleDict()
        self.tokens_in = nn.ModuleDict()
        for m, dims in sorted(self.features.items()):
            if "pooled" in self.inputs:
                self.pooled_in[m] = nn.Sequential(nn.LayerNorm(dims.pooled), nn.Linear(dims.pooled, k * hidden))
            if "classes" in self.inputs:
                self.classes_in[m] = nn.Linear(dims.classes, k * hidden)
            if "tokens" in self.inputs:
                width = int(dims.tokens or 0)
                self.tokens_in[m] = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden))
        # which soft token is which, for the tokens path (the vector paths give each token its own weights)
        self.token_pos = nn.Parameter(torch.zeros(k, hidden)) if self.uses_tokens else None
        self.out = nn.Linear(hidden, llm_dim)  # last: match_embedding_scale scales this one
        small_init_(self)
        self._balance_start()

    def _balance_start(self) -> None:
        """LayerNorm'd inputs have norm √d, unit vectors norm 1: scale their first layers so every
        input's contribution starts with the spread the bind path has (START_STD)."""
        with torch.no_grad():
            for layers in (self.pooled_in, self.tokens_in):
                for seq in layers.values():
                    lin = seq[1]
                    nn.init.normal_(lin.weight, std=START_STD / math.sqrt(lin.in_features))

    def example_features(self, n: int, generator: torch.Generator) -> dict[str, Any]:
        if not self.features or self.inputs == ("bind",):
            return {}
        m, dims = sorted(self.features.items())[0]
        out: dict[str, Any] = {"modality": m}
        if "pooled" in self.inputs:
            out["pooled"] = torch.randn(n, dims.pooled, generator=generator)
        if "classes" in self.inputs:
            out["classes"] = (3 * torch.randn(n, dims.classes, generator=generator)).softmax(-1)
        if "tokens" in self.inputs:
            length = dims.grid[0] * dims.grid[1] if dims.grid else 8
            out["tokens"] = torch.randn(n, length, int(dims.tokens or 0), generator=generator)
        return out

    def _classes(self, probs: torch.Tensor) -> torch.Tensor:
        if 0 < self.class_top_k < probs.shape[-1]:
            top = probs.topk(self.class_top_k, dim=-1)
            probs = torch.zeros_like(probs).scatter(-1, top.indices, top.values)
        return nn.functional.normalize(probs.float(), dim=-1)

    def forward(
        self,
        vector: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        instruction: torch.Tensor | None = None,
        instruction_mask: torch.Tensor | None = None,
        *,
        modality: str | None = None,
        pooled: torch.Tensor | None = None,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, k = vector.shape[0], self.num_tokens
        h = vector.new_zeros((b, k, self.hidden))
        if self.bind_in is not None:
            h = h + self.bind_in(vector).view(b, k, self.hidden)
        extra = [i for i in self.inputs if i != "bind"]
        if extra and modality not in self.features:
            # a MixPart (or a modality without an encoder) lives in the bind space only
            if self.bind_in is None:
                raise ConfigError(
                    f"feature_mlp reads {list(self.inputs)} but a {modality!r} input has only a bind vector "
                    "(a MixPart has no encoder features): add 'bind' to this projector's inputs"
                )
            return self.out(nn.functional.gelu(h))
        given = {"pooled": pooled, "classes": classes, "tokens": tokens}
        missing = [i for i in extra if given[i] is None]
        if missing:
            raise ValueError(f"feature_mlp: {modality!r} input arrived without its {missing} (projector inputs)")
        if pooled is not None and "pooled" in self.inputs:
            h = h + self.pooled_in[modality](pooled.float()).view(b, k, self.hidden)
        if classes is not None and "classes" in self.inputs:
            h = h + self.classes_in[modality](self._classes(classes)).view(b, k, self.hidden)
        if tokens is not None and self.uses_tokens:
            grid = self.features[modality].grid
            t = pool_tokens(tokens.float(), token_mask, k, grid, self.token_grid)  # type: ignore[arg-type]
            h = h + self.tokens_in[modality](t) + self.token_pos
        return self.out(nn.functional.gelu(h))
