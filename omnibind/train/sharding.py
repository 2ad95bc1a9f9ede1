"""FSDP2 (torch's ``fully_shard``) for the training loop: what is sharded, and the collectives a
sharded run needs (gathered weights and moments for checkpoints, replicated gradients, clipping).

What is sharded: the LLM, the part that outgrows one GPU — every decoder layer is its own unit
(``fsdp_transformer_layer_cls_to_wrap``, default the model's ``_no_split_modules``) and the rest
of the LLM (final norm, an untied ``lm_head``) belongs to the root unit. What is *replicated*:
omnibind's own modules (encoders, bind heads, projectors, gates) and the LLM's input embedding.
They are small next to a 7–13B LLM, the bind heads hold a 0-d temperature that FSDP cannot
shard, and the tasks call them outside the wrapped module's ``forward`` (recall@k in the bind
stage's final metrics, counting a sample's assistant tokens, the feature store), where a sharded
parameter would still be a shard. Their gradients are averaged here, as DDP would.

The launch is accelerate's (``accelerate launch --config_file configs/accelerate/fsdp.yaml``),
read from the ``FSDP_*`` variables it sets; the sharding is done here rather than by
``accelerator.prepare`` because accelerate 1.16 only enables FSDP on an accelerator: with
``device: cpu`` it silently falls back to plain data parallel (``distributed_type`` MULTI_CPU,
no ``fsdp_plugin``), while torch's ``fully_shard`` itself runs on CPU over gloo. One code path,
tested on CPU, serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from omnibind.errors import ConfigError

_TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class FSDPSettings:
    """The FSDP options omnibind honours (from accelerate's ``FSDP_*`` launch variables)."""

    reshard_after_forward: bool = True
    layer_classes: tuple[str, ...] = ()  # empty: the LLM's own ``_no_split_modules``


def fsdp_settings(env: dict[str, str]) -> FSDPSettings | None:
    """The FSDP settings of a launch, None when it is not an FSDP launch; ConfigError for options
    that are not implemented (better before the model loads than silently ignored)."""

    def get(name: str, default: str = "") -> str:
        return env.get(name, default).strip()

    if get("ACCELERATE_USE_FSDP").lower() not in _TRUE:
        return None
    where = "configs/accelerate/fsdp.yaml"
    if get("FSDP_VERSION", "1") != "2":
        raise ConfigError(f"FSDP: only FSDP2 is supported; set fsdp_config.fsdp_version: 2 (see {where})")
    refused = {
        "FSDP_OFFLOAD_PARAMS": "fsdp_offload_params",
        "FSDP_ACTIVATION_CHECKPOINTING": "fsdp_activation_checkpointing",
        "FSDP_CPU_RAM_EFFICIENT_LOADING": "fsdp_cpu_ram_efficient_loading",
    }
    on = [key for var, key in refused.items() if get(var).lower() in _TRUE]
    if on:
        raise ConfigError(f"FSDP: {', '.join(on)} not supported by omnibind's training loop; set false (see {where})")
    if get("FSDP_STATE_DICT_TYPE", "FULL_STATE_DICT") != "FULL_STATE_DICT":
        raise ConfigError(
            "FSDP: checkpoints are always one full state dict of the trainable weights, gathered on the main "
            f"process; set fsdp_state_dict_type: FULL_STATE_DICT (see {where})"
        )
    if get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP") != "TRANSFORMER_BASED_WRAP":
        raise ConfigError(
            f"FSDP: only fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP (each decoder layer a unit) is supported; {where}"
        )
    if get("ACCELERATE_MIXED_PRECISION", "no") not in ("no", ""):
        raise ConfigError(
            "FSDP: mixed_precision must be 'no' (omnibind shards with torch's fully_shard, without accelerate's "
            "autocast); set llm.dtype: bfloat16 in the model config for half-precision base weights"
        )
    classes = tuple(c.strip() for c in get("FSDP_TRANSFORMER_CLS_TO_WRAP").split(",") if c.strip())
    return FSDPSettings(
        reshard_after_forward=get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() in _TRUE, layer_classes=classes
    )


def is_sharded(module: nn.Module) -> bool:
    """Whether ``module`` or any submodule is already an FSDP2 unit."""
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in module.modules())


def shard(module: nn.Module, replicated: Iterable[nn.Parameter], settings: FSDPSettings, device: torch.device) -> None:
    """Apply FSDP2 to ``module`` (the loop's ``LossModule``) in place: each LLM decoder layer a unit,
    ``module`` the root, ``replicated`` parameters left out of sharding (plain tensors on every process).

    ``fully_shard`` replaces the sharded parameters by new ``DTensor`` parameters: build the
    optimiser afterwards (names are unchanged).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if is_sharded(module):
        raise ConfigError(
            "FSDP: this model was already sharded by an earlier run in this process (a per_modality stage "
            "trains one run per modality); train per_modality under DDP"
        )
    llm = getattr(module, "llm_model", None)
    if not isinstance(llm, nn.Module):
        raise ConfigError("FSDP shards the LLM's decoder layers; this LLM backend has no torch module (use DDP)")
    classes = settings.layer_classes or tuple(getattr(llm, "_no_split_modules", None) or ())
    layers = [m for m in llm.modules() if type(m).__name__ in classes]
    if not layers:
        have = sorted(getattr(llm, "_no_split_modules", None) or [])
        raise ConfigError(
            f"FSDP: the LLM ({type(llm).__name__}) has no module of class {list(classes)}; set "
            f"fsdp_transformer_layer_cls_to_wrap to its decoder layer class (it declares {have})"
        )
    import torch.distributed as dist

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kind = type(layers[0]).__name__  # before fully_shard renames the class (FSDP<name>)
    for layer in layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=settings.reshard_after_forward)
    replicated = set(replicated)
    fully_shard(module, mesh=mesh, ignored_params=replicated)
    if dist.get_rank() == 0:
        sharded = sum(p.numel() for p in module.parameters() if is_dtensor(p))
        kept = sum(p.numel() for p in replicated)
        print(
            f"FSDP2: {len(layers)} {kind} units + the root over {dist.get_world_size()} "
            f"processes; {sharded:,} parameters sharded, {kept:,} replicated"
        )


def replicated_params(core: nn.Module, llm: nn.Module | None) -> list[nn.Parameter]:
    """The parameters kept out of sharding: all of ``core``'s own and the LLM's input embedding."""
    out = list(core.parameters())
    if llm is not None and hasattr(llm, "get_input_embeddings"):
        out.extend(llm.get_input_embeddings().parameters())
    seen: set[int] = set()
    return [p for p in out if not (id(p) in seen or seen.add(id(p)))]


def is_dtensor(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor: a DTensor is all-gathered (a collective: every process must call it, in the
    same order); a plain tensor is returned as is."""
    return t.full_tensor() if is_dtensor(t) else t


def like(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A full ``value`` laid out as ``target``: this process's shard when ``target`` is a DTensor
    (every process holds the full value already, so no communication), else ``value``."""
    if not is_dtensor(target):
        return value
    from torch.distributed.tensor import distribute_tensor

    v = value.to(device=target.device, dtype=target.dtype)
    return distribute_tensor(v, target.device_mesh, target.placements, src_data_rank=None)


def average_replicated_grads(params: Sequence[nn.Parameter], world: int) -> None:
    """DDP's averaging for the replicated parameters: one all-reduce of all their gradients.

    A parameter no process used keeps ``grad`` None (AdamW skips it, as it would in one process);
    one that some process used gets the average, zeros standing in for the processes that did not.
    """
    import torch.distributed as dist

    if world == 1 or not params:
        return
    ref = params[0]
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=ref.device)
    dist.all_reduce(used)
    flat = torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(torch.float32) for p in params]
    )
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, u in zip(params, used.tolist()):
        n = p.numel()
        if u > 0:
            p.grad = flat[offset : offset + n].view_as(p).to(p.dtype).clone()
        offset += n


def clip_grad_norm(params: Sequence[nn.Parameter], max_norm: float) -> float:
    """``torch.nn.utils.clip_grad_norm_`` over sharded (DTensor) and replicated gradients together.

    The global norm² is the sum over processes of each shard's norm² plus the replicated
    gradients' (the same on every process after averaging, so counted once); the scale is torch's
    ``max_norm / (norm + 1e-6)``, at most 1.
    """
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    device = grads[0].device
    sharded = torch.zeros((), device=device, dtype=torch.float32)
    replicated = torch.zeros((), device=device, dtype=torch.float32)
    for g in grads:
        if is_dtensor(g):
            sharded += g.to_local().float().pow(2).sum()
        else:
            replicated += g.float().pow(2).sum()
    if dist.is_initialized():
        dist.all_reduce(sharded)
    norm = (sharded + replicated).sqrt()
    total = float(norm)
    coef = min(1.0, max_norm / (total + 1e-6))  # a Python number: a DTensor does not mix with a plain tensor
    for g in grads:
        g.mul_(coef)
    return total
