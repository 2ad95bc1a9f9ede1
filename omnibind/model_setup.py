"""The LLM side of building an ``OmnibindModel``: the backend a config names, LoRA adapters, the
projectors (what each reads, checked against its encoders) and the starting scale of their soft
tokens."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from omnibind.config import ModelConfig, ProjectorConfig, check_declared_arch
from omnibind.encoders.base import FeatureDims
from omnibind.errors import BackendUnsupportedError, ConfigError
from omnibind.llm.backends.base import LLM_BACKENDS, LLMBackend
from omnibind.projectors.base import PROJECTORS, Projector


def build_backend(config: ModelConfig, *, device: str = "cpu") -> LLMBackend:
    """The LLM backend a config names, loaded from ``llm.source``; a declared ``llm.arch`` must match
    the loaded Hugging Face config (a GGUF on llama.cpp has none to compare)."""
    import omnibind.llm.backends  # noqa: F401  (registers backends)

    cls = LLM_BACKENDS.get(config.llm.backend)
    # only a quantised config passes the option (the llama.cpp backend takes none; LLMConfig checks)
    extra = {"quantization": config.llm.quantization} if config.llm.quantization else {}
    backend = cls(config.llm.source, dtype=config.llm.dtype, device=device, **extra)
    hf_config = getattr(getattr(backend, "model", None), "config", None)
    if config.llm.arch and hf_config is not None and hasattr(hf_config, "to_dict"):
        check_declared_arch(config.llm.arch, hf_config.to_dict(), f"llm.arch of {config.llm.source}")
    return backend


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


def served_modalities(config: ModelConfig, key: str) -> list[str]:
    """The encoder modalities projector ``key`` serves: its own, or for ``"*"`` every encoder
    modality without a projector of its own (a ``MixPart`` reaches ``"*"`` with a bind vector only)."""
    if key != "*":
        return [key] if key in config.encoders else []
    return sorted(m for m in config.encoders if m not in config.projectors)


def build_projector(
    key: str, pcfg: ProjectorConfig, config: ModelConfig, dims: dict[str, FeatureDims], llm: LLMBackend
) -> Projector:
    """The projector ``config.projectors[key]`` names, reading ``pcfg.inputs``, at its starting scale.

    Refuses (``ConfigError``) inputs its projector cannot read or a served encoder cannot give:
    ``tokens`` from an encoder without tokens, ``classes`` from one without a classifier.
    """
    cls = PROJECTORS.get(pcfg.name)
    served = {m: dims[m] for m in served_modalities(config, key) if m in dims}
    if pcfg.feature_modalities is not None:
        unknown = sorted(set(pcfg.feature_modalities) - set(served))
        if unknown:
            raise ConfigError(
                f"projectors.{key}: feature_modalities {unknown} are not modalities it serves ({sorted(served)})"
            )
        served = {m: d for m, d in served.items() if m in pcfg.feature_modalities}
    extra = [i for i in pcfg.inputs if i != "bind"]
    if not cls.supports_inputs:
        if list(pcfg.inputs) != ["bind"] or pcfg.token_grid is not None:
            raise ConfigError(
                f"projectors.{key}: projector {pcfg.name!r} reads the bind vector only; inputs {pcfg.inputs} "
                "(or token_grid) need one that supports inputs, e.g. 'feature_mlp'"
            )
        token_dim = dims[key].tokens if key in dims else None
        proj = cls(config.bind.dim, llm.hidden_size, pcfg.num_tokens, token_dim=token_dim, **pcfg.params)
    else:
        if extra and not served:
            raise ConfigError(f"projectors.{key}: inputs {extra} need an encoder, and {key!r} serves none")
        for m, d in served.items():
            if "tokens" in extra and not d.tokens:
                raise ConfigError(f"projectors.{key}: input 'tokens' but the {m!r} encoder gives no tokens")
            if "classes" in extra and d.classes <= 0:
                raise ConfigError(
                    f"projectors.{key}: input 'classes' but the {m!r} encoder has no classifier "
                    "(only image-based encoders such as efficientnet_lite0 have one); give "
                    f"{m!r} a projector of its own without 'classes'"
                )
        proj = cls(
            config.bind.dim,
            llm.hidden_size,
            pcfg.num_tokens,
            inputs=list(pcfg.inputs),
            features=served,
            token_grid=pcfg.token_grid,
            **pcfg.params,
        )
    match_embedding_scale(proj, config.bind.dim, llm)
    return proj


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
        gen = torch.Generator().manual_seed(0)
        x = nn.functional.normalize(torch.randn(64, bind_dim, generator=gen), dim=-1)
        extra = {
            k: v.to(last.weight.device) if isinstance(v, torch.Tensor) else v
            for k, v in proj.example_features(64, gen).items()
        }
        now = float(proj(x.to(last.weight.device), **extra).std())
        if now > 0:
            last.weight.mul_(target / now)
            if last.bias is not None:
                last.bias.mul_(target / now)
