"""Building an ``OmnibindModel`` from a config and a checkpoint folder (what ``omnibind.api.load`` runs).

Sits between ``omnibind.model`` and ``omnibind.api``: the LLM backends know nothing of checkpoints,
so turning a checkpoint's LoRA weights into a llama.cpp adapter happens here, not in the backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnibind.checkpoint import check_base_llm, load_weights, read_checkpoint
from omnibind.config import ModelConfig


def build_core(config: ModelConfig, weights_dir: Path | None, *, device: str = "cpu", verify_base: bool = True) -> Any:
    """The model for ``config`` with the checkpoint in ``weights_dir`` loaded (None: untrained).

    On llama.cpp a config with LoRA goes through ``build_with_adapter``; otherwise the weights are
    verified and loaded by ``omnibind.checkpoint.load_weights``.
    """
    from omnibind.model import OmnibindModel

    if config.llm.backend == "llamacpp" and config.llm.lora is not None:
        return build_with_adapter(config, weights_dir, device=device, verify_base=verify_base)
    core = OmnibindModel(config, device=device)
    if weights_dir is not None:
        load_weights(core, weights_dir, verify_base=verify_base)
    return core


def build_with_adapter(
    config: ModelConfig, weights_dir: Path | None, *, device: str = "cpu", verify_base: bool = True
) -> Any:
    """An ``OmnibindModel`` on llama.cpp for a config with LoRA: the checkpoint's LoRA weights become
    a llama.cpp adapter over the unmerged base GGUF (honouring ``llm.lora_media_only``).

    peft cannot wrap llama.cpp, so the model is built without LoRA and the adapter goes to
    llama.cpp. Without weights (a preset) the LoRA is untrained (B = 0, no effect): none is made.
    """
    from omnibind.model import OmnibindModel

    lora = config.llm.lora
    config.llm.lora = None  # the model must not wrap llama.cpp with peft
    try:
        core = OmnibindModel(config, device=device)
    finally:
        config.llm.lora = lora
    if weights_dir is None:
        return core
    manifest, state = read_checkpoint(weights_dir)
    if verify_base:
        check_base_llm(manifest, config.llm.source, weights_dir)
    core.load_trainable_state_dict({k: v for k, v in state.items() if not k.startswith("llm.")})
    lora_state = {k: v for k, v in state.items() if k.startswith("llm.")}
    if lora is not None and lora_state:
        core.llm.load_peft_lora(
            lora_state, alpha=float(lora.alpha), media_only=bool(getattr(config.llm, "lora_media_only", False))
        )
    return core
