"""The LLM backend interface. It knows embeddings and tokens, not modalities.

Everything above it (assembly, injection of soft tokens, the API) talks only to this interface,
so transformers and llama.cpp are interchangeable where the model allows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from omnibind.errors import PromptTooLongError
from omnibind.registry import Registry


@dataclass
class GenerationOptions:
    """Decoding options shared by every backend. ``temperature == 0`` means greedy.

    ``ignore_eos`` keeps decoding through end-of-sequence tokens until ``max_new_tokens`` (their
    logits are masked, as ``min_new_tokens`` does in transformers): for benchmarks that must time
    a fixed number of tokens.
    """

    max_new_tokens: int = 128
    max_prompt_tokens: int | None = None
    """A cap on the assembled prompt (text, cues, soft tokens) below the context; None = the context."""
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    ignore_eos: bool = False
    presence_penalty: float = 0.0
    """OpenAI's: subtracted once from the logit of every token already generated."""
    frequency_penalty: float = 0.0
    """OpenAI's: subtracted from a token's logit once per time it was generated."""
    response_format: dict[str, Any] | None = None
    """Constrained decoding for every row: ``{"type": "json_object"}`` or ``{"type": "json_schema",
    "json_schema": {"schema": {...}}}`` (see ``omnibind.llm.constrained``)."""
    rows: list[RowOptions | None] | None = None
    """Per-sequence controls, one per prompt (None entries: the batch-wide options)."""

    def validate(self) -> GenerationOptions:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2.0 <= getattr(self, name) <= 2.0:
                raise ValueError(f"{name} must be in [-2, 2]")
        return self


@dataclass
class TokenLogprob:
    """One generated token's log-probability under the model (before penalties and constraints),
    with the ``top`` most likely alternatives as (id, text, logprob)."""

    token: int
    text: str
    logprob: float
    top: list[tuple[int, str, float]] = field(default_factory=list)


@dataclass
class RowOptions:
    """Controls for one sequence of a batch; the decode loop fills ``logprobs`` as it goes.

    ``grammar``: an ``omnibind.llm.constrained.Grammar`` the output must match; ``seed``: this
    row's own random stream (so a row's sample does not depend on its batch-mates); penalties
    override the batch's; ``top_logprobs``: record each token's logprob and this many alternatives
    (None: record nothing).
    """

    grammar: Any = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_logprobs: int | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class LayerInjection:
    """ImageBind-LLM's gated injection: ``gates[l] * feature`` is added to every token's hidden state
    entering decoder layer ``l``. ``feature``: (B, H); ``gates``: (num_layers,) already squashed."""

    feature: torch.Tensor
    gates: torch.Tensor


class LLMBackend(ABC):
    """A causal LM driven by input embeddings."""

    name: str = ""
    supports_layer_injection: bool = False
    supports_training: bool = False

    hidden_size: int
    num_layers: int
    eos_token_ids: set[int]

    @property
    def context_length(self) -> int | None:
        """Positions one sequence may hold (prompt + answer); None where the backend sets no bound.

        Requests are checked against it before decoding starts (``check_prompt_budget``), so a
        prompt that cannot fit is refused with its numbers instead of occupying the worker."""
        return None

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added (templates add them as text)."""

    def tokenize_in_context(self, text: str, *, at_start: bool) -> list[int]:
        """Token ids of one text segment of a prompt, as tokenising the whole prompt would give them.

        ``at_start``: the segment opens the sequence (nothing, no media, before it); otherwise it
        follows other text or a media slot. Tokenisers whose output depends on the position (a
        SentencePiece-style ``Metaspace`` that prepends "▁" to the first piece only, Llama-2/LLaVA's)
        override this; for the others a segment tokenises the same anywhere, so this default is
        ``tokenize``.
        """
        return self.tokenize(text)

    @abstractmethod
    def detokenize(self, ids: list[int]) -> str:
        """Text of ``ids``, special tokens skipped."""

    @abstractmethod
    def embed_tokens(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        """(T,) ids → (T, H) input embeddings, exactly as the model embeds them (incl. any scaling)."""

    @abstractmethod
    def generate(
        self,
        inputs_embeds: list[torch.Tensor],
        options: GenerationOptions,
        injection: LayerInjection | None = None,
    ) -> Iterator[list[int | None]]:
        """Decode a batch of prompts given as (T_i, H) embeddings.

        Yields one list per decoding step with the new token id of each sequence, or None for a
        sequence that has already finished (EOS or max_new_tokens). Stop strings are handled by
        the caller, which may stop iterating early (the backend must then release its work).
        """

    def forward_logits(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        injection: LayerInjection | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, H) embeddings → (B, T, V) logits, or (N, V) at a (B, T) bool mask ``positions``;
        differentiable when the backend supports training."""
        raise NotImplementedError(f"backend {self.name!r} does not compute full logits")


LLM_BACKENDS: Registry[type[LLMBackend]] = Registry("llm backend")


def check_prompt_budget(prompt_tokens: int, options: GenerationOptions, context: int | None) -> None:
    """Refuse a prompt that exceeds ``options.max_prompt_tokens`` or whose prompt + ``max_new_tokens``
    exceeds the ``context`` (``PromptTooLongError`` naming the numbers). Run once the prompt is
    assembled and before the first forward pass: the assembly is bounded by the input limits, the
    decode is what a too-long prompt would make unbounded (minutes on one worker, GBs of KV)."""
    cap = options.max_prompt_tokens
    if cap is not None and prompt_tokens > cap:
        raise PromptTooLongError(prompt_tokens, options.max_new_tokens, context, cap)
    if context is not None and prompt_tokens + options.max_new_tokens > context:
        raise PromptTooLongError(prompt_tokens, options.max_new_tokens, context)
