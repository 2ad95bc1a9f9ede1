"""The LLM side of building an ``OmnibindModel``: the backend a config names, LoRA adapters, and
the starting scale of new projectors' soft tokens."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from omnibind.config import ModelConfig
from omnibind.errors import BackendUnsupportedError
from omnibind.llm.backends.base import LLM_BACKENDS, LLMBackend
from omnibind.projectors.base import Projector


def build_backend(config: ModelConfig, *, device: str = "cpu") -> LLMBackend:
    """The LLM backend a config names, loaded from ``llm.source``."""
    import omnibind.llm.backends  # noqa: F401  (registers backends)

    cls = LLM_BACKENDS.get(config.llm.backend)
    return cls(config.llm.source, dtype=config.llm.dtype, device=device)


def apply_lora(backend: LLMBackend, lora: Any) -> None:
    """Wrap the backend's HF model with peft LoRA adapters (instruction tuning)."""
    if not backend.supports_training:
        raise BackendUnsupportedError(f"LoRA needs a trainable backend; {backend.name!r} is inference-only")
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules)
    )
    with warnings.catch_warnings():  # peft asks transformers 5.x a deprecated property: not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        backend.model = get_peft_model(backend.model, cfg)  # type: ignore[attr-defined]


def match_embedding_scale(proj: Projector, bind_dim: int, llm: LLMBackend) -> None:
    """Scale a new projector's last layer so its soft tokens start at the size of word embeddings.

    A small random start avoids the NaN gradients of all-zero soft tokens, but tokens 10× smaller
    than words train slowly; matching the embedding table's spread fixes both.
    """
    if not hasattr(llm, "model"):
        return
    try:
        with torch.no_grad():
            target = float(llm.embed_tokens(list(range(1000))).std())
    except (IndexError, RuntimeError):  # a toy vocabulary smaller than the sample
        return
    last = [m for m in proj.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        x = nn.functional.normalize(torch.randn(64, bind_dim, generator=torch.Generator().manual_seed(0)), dim=-1)
        now = float(proj(x.to(last.weight.device)).std())
        if now > 0:
            last.weight.mul_(target / now)
            if last.bias is not None:
                last.bias.mul_(target / now)
