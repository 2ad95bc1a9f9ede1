"""The encoder interface: modality data in, features out. An encoder knows tensors, not files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from omnibind.errors import ConfigError
from omnibind.hashing import digest
from omnibind.registry import Registry


@dataclass
class EncoderOutput:
    """``pooled``: (B, D) one vector per input. ``tokens``: (B, L, Dt) or None (used by Q-Formers);
    ``token_mask``: (B, L) bool, True where a token is real (None = all real)."""

    pooled: torch.Tensor
    tokens: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> EncoderOutput:
        """The same features on ``device`` (encoders may run elsewhere, e.g. CTranslate2 on CPU).

        Features made under ``inference_mode`` cannot enter autograd (training the heads on them),
        so outside inference mode such tensors are copied out.
        """

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            t = t.to(device)
            return t.clone() if t.is_inference() and not torch.is_inference_mode_enabled() else t

        return EncoderOutput(pooled=move(self.pooled), tokens=move(self.tokens), token_mask=move(self.token_mask))

    def row(self, j: int) -> EncoderOutput:
        """Item ``j`` of the batch (pooled (D,), tokens (L, Dt)); padding tokens are dropped so the
        row restacks with rows of other batches."""
        tokens = self.tokens[j] if self.tokens is not None else None
        mask = self.token_mask[j] if self.token_mask is not None else None
        if tokens is not None and mask is not None:
            tokens, mask = tokens[mask.bool()], None
        return EncoderOutput(pooled=self.pooled[j], tokens=tokens, token_mask=mask)

    @staticmethod
    def stack(rows: Sequence[EncoderOutput]) -> EncoderOutput:
        """Rows (from ``row``) back into a batch: tokens right-padded with a mask; pooled only when
        any row has no tokens."""
        pooled = torch.stack([r.pooled for r in rows])
        if any(r.tokens is None for r in rows):
            return EncoderOutput(pooled=pooled)
        longest = max(r.tokens.shape[0] for r in rows)  # type: ignore[union-attr]
        dim = rows[0].tokens.shape[-1]  # type: ignore[union-attr]
        tokens = pooled.new_zeros((len(rows), longest, dim))
        mask = torch.zeros((len(rows), longest), dtype=torch.bool, device=pooled.device)
        for i, r in enumerate(rows):
            n = r.tokens.shape[0]  # type: ignore[union-attr]
            tokens[i, :n] = r.tokens
            mask[i, :n] = True if r.token_mask is None else r.token_mask.bool()
        return EncoderOutput(pooled=pooled, tokens=tokens, token_mask=mask)


@dataclass(frozen=True)
class FeatureDims:
    """What an encoder offers a projector: ``pooled`` width, ``tokens`` width (None: no tokens),
    the tokens' 2-D ``grid`` (None: a sequence) and the classifier's ``classes`` (0: none)."""

    pooled: int
    tokens: int | None = None
    grid: tuple[int, int] | None = None
    classes: int = 0


@dataclass
class SizedNetwork:
    """An encoder's network for sizing (``omnibind plan``): ``network`` holds its parameters (on the
    meta device when built from a config alone), ``dims`` what it gives a projector, ``dtype`` the
    dtype its weights are kept in, ``trainable`` whether a recipe's ``encoders`` group trains it."""

    network: nn.Module
    dims: FeatureDims
    dtype: str = "float32"
    trainable: bool = False


class Encoder(nn.Module):
    """Base class for encoders.

    Subclasses set ``modalities`` (which modality data types they accept), ``output_dim``
    (width of ``pooled``), ``token_dim`` (width of ``tokens`` or None), ``token_grid`` ((rows, cols)
    when the tokens are a row-major 2-D feature map, None for a sequence), ``num_classes`` (> 0
    when ``class_probs`` can turn pooled features into a classifier's distribution) and implement
    ``encode``. Pretrained encoders are frozen (``trainable = False``); their weights are never
    saved in omnibind checkpoints, only their ``fingerprint``.
    """

    modalities: tuple[str, ...] = ()
    output_dim: int = 0
    token_dim: int | None = None
    token_grid: tuple[int, int] | None = None
    num_classes: int = 0
    trainable: bool = False

    def __init__(self, **params: Any):
        super().__init__()
        self.params = dict(params)

    @classmethod
    def from_config(cls, params: dict[str, Any], build: Callable[[dict[str, Any]], Encoder]) -> Encoder:
        """Build from config params. ``build`` constructs (shared) inner encoders from a config dict."""
        return cls(**params)

    @classmethod
    def declared_dims(cls, params: dict[str, Any]) -> FeatureDims | None:
        """What ``feature_dims()`` of an encoder built from ``params`` will be, known without building
        it (no weights read), or None when only a built encoder knows.

        A model builds a frozen encoder with declared dims on first use only (a text question never
        loads the image network); the default reads the class attributes, so an encoder that sets
        its widths in ``__init__`` (from a checkpoint's config) returns None and is built at once.
        Trainable encoders are always built at once: their weights are in the checkpoint.
        """
        if cls.trainable or cls.output_dim <= 0:
            return None
        return FeatureDims(cls.output_dim, cls.token_dim, cls.token_grid, cls.num_classes)

    @classmethod
    def meta_network(
        cls, params: dict[str, Any], build: Callable[[dict[str, Any]], SizedNetwork]
    ) -> SizedNetwork | None:
        """This encoder's network on the meta device, from ``params`` alone (no weights read, no
        memory used), for ``omnibind plan``; ``build`` sizes an inner encoder's config the same way.
        None (the default): only a built encoder can be sized, and the planner builds it (the
        packaged encoders are small and local)."""
        return None

    def encode(self, items: list[Any]) -> EncoderOutput:
        """Encode a batch of loaded modality data (see ``omnibind.modalities.base``)."""
        raise NotImplementedError

    def class_probs(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) class probabilities from (B, output_dim) pooled features, by the
        encoder's own classifier; encoders without one raise ``ConfigError``."""
        raise ConfigError(f"encoder {type(self).__name__} has no classifier: its 'classes' cannot be read")

    def feature_dims(self) -> FeatureDims:
        """The widths of what this encoder gives a projector (``pooled``, ``tokens``, ``classes``)."""
        return FeatureDims(self.output_dim, self.token_dim, self.token_grid, self.num_classes)

    def fingerprint(self) -> str:
        """A short hash that changes whenever this encoder's outputs could change (feature caches key on it)."""
        return digest({"class": type(self).__name__, "params": self.params}, 16)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")


ENCODERS: Registry[type[Encoder]] = Registry("encoder")
