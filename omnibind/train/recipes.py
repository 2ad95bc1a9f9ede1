"""Recipes: which weights train in a stage, and how a stage starts from an earlier one's checkpoint.

Parameter groups (names as in ``OmnibindModel.trainable_parameters``):

- ``bind_heads``: ``bind.heads.<modality>.*`` — the ImageBind-style heads into the shared space
- ``logit_scale``: ``bind.logit_scale`` — CLIP's learned temperature
- ``projectors``: ``projectors.<key>.*`` — bind vector / tokens → soft tokens
- ``gates``: ``gates.*`` — ImageBind-LLM's zero-initialised every-layer gates
- ``encoders``: trainable encoders (``encoders.<modality>.*``, e.g. the IMU CNN)
- ``lora``: peft LoRA adapters inside the LLM (``llm.*lora_*``)
- ``bias_norm``: the LLM's biases and norm scales (ImageBind-LLM), when ``llm.train_bias_norm``
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from omnibind.errors import CheckpointError, ConfigError


def group_of(name: str) -> str:
    """The parameter group a checkpointed parameter name belongs to."""
    if name.startswith("bind.heads."):
        return "bind_heads"
    if name == "bind.logit_scale":
        return "logit_scale"
    if name.startswith("projectors."):
        return "projectors"
    if name.startswith("gates."):
        return "gates"
    if name.startswith("encoders."):
        return "encoders"
    if name.startswith("llm."):
        return "lora" if "lora_" in name else "bias_norm"
    return "other"


def _modality_of(name: str, core: Any) -> str | None:
    """The modality a head/projector/encoder parameter serves (None when shared by all)."""
    parts = name.split(".")
    if parts[0] == "bind" and parts[1] == "heads":
        return parts[2]
    if parts[0] == "projectors":
        return None if parts[1] == "shared" else parts[1]
    if parts[0] == "encoders":
        return parts[1]
    return None


def select_trainable(core: Any, groups: Sequence[str], modalities: Sequence[str] = ()) -> list[str]:
    """Names of the parameters that train: ``groups`` narrowed to ``modalities`` (empty = all).

    An encoder shared by several modalities (one EfficientNet) appears under each modality's name in
    ``named_parameters``; frozen ones are never listed by ``trainable_parameters`` in the first place.
    """
    wanted = set(groups)
    available = list(core.trainable_parameters())
    names = []
    for n in available:
        if group_of(n) not in wanted:
            continue
        m = _modality_of(n, core)
        # narrowed to modalities: the shared ("*") projector counts only when "*" is listed
        if modalities and (m if m is not None else ("*" if group_of(n) == "projectors" else None)) not in (
            *modalities,
            None,
        ):
            continue
        names.append(n)
    if not names:
        raise ConfigError(
            f"recipe trains nothing: groups {sorted(wanted)} (modalities {list(modalities) or 'all'}) match no "
            f"trainable parameter of this model (it has groups {sorted({group_of(n) for n in available})})"
        )
    return names


def apply_recipe(core: Any, names: Sequence[str]) -> list[torch.nn.Parameter]:
    """Freeze everything except ``names``; returns those parameters in a stable (sorted-name) order."""
    return core.set_trainable(list(names))


def param_names(core: Any) -> dict[int, str]:
    """id(parameter) → checkpoint name (optimiser state is saved by name)."""
    return {id(p): n for n, p in core.trainable_parameters().items()}


def load_partial(core: Any, folder: str | Path) -> dict[str, list[str]]:
    """Load an earlier stage's weights into ``core``: names present in both are copied.

    A later stage may add parameters (LoRA adapters, a per-modality projector); those keep their
    fresh initialisation. Parameters the file holds but the model lacks are an error (a wrong
    starting point, not something to skip silently).
    """
    from omnibind.checkpoint import read_checkpoint

    _, state = read_checkpoint(folder)
    current = core.trainable_state_dict()
    unexpected = sorted(set(state) - set(current))
    if unexpected:
        raise CheckpointError(f"{folder}: weights {unexpected[:6]} have no place in this model's config")
    missing = sorted(set(current) - set(state))
    core.load_trainable_state_dict({**current, **state})
    return {"loaded": sorted(state), "fresh": missing}


def copy_heads(core: Any, mapping: dict[str, str]) -> None:
    """Start some bind heads as copies of another (e.g. depth/points/thermal renders from the image head).

    The rendered modalities go through the same image encoder, so the image head is a far better
    start than random weights — and for thermal, with no paired data at all, it is the only one.
    """
    heads = core.bind.heads
    for dst, src in mapping.items():
        if dst not in heads or src not in heads:
            raise ConfigError(f"bind.init_heads_from: {dst!r} ← {src!r} needs both heads (have {sorted(heads)})")
        a, b = heads[dst].state_dict(), heads[src].state_dict()
        if any(a[k].shape != b[k].shape for k in a) or set(a) != set(b):
            raise ConfigError(f"bind.init_heads_from: heads {dst!r} and {src!r} differ in shape")
        heads[dst].load_state_dict(b)
