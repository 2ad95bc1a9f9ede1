"""Training state beside a model checkpoint, so a killed run resumes exactly: no pickles.

``last/`` holds ``model/`` (``omnibind.checkpoint.save_checkpoint``: config, trainable weights,
manifest), ``trainer_state.safetensors`` (optimiser moments keyed by *parameter name*, the torch RNG
state) and ``trainer_state.json`` (step, scheduler, python/numpy RNG, metric history, and the SHA-256 of the
tensors file, checked when it is read). The folder is written through ``omnibind.atomic.atomic_dir``,
so a kill mid-save leaves the previous ``last/`` intact.

Under FSDP the sharded weights and moments (DTensors) are gathered whole first — a collective, so
every process calls the savers and only the main one writes — and the files are the same as a
single process's. Nothing in them depends on the process count, so a run saved with N processes
resumes with M (each process takes its shard of the full moments on load).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.atomic import atomic_dir, atomic_write_text, crash_point
from omnibind.errors import CheckpointError
from omnibind.hashing import content_hash

STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"
MODEL_DIR = "model"


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch RNG as a tensor, python and numpy RNG as JSON-able data."""
    py = random.getstate()
    npy = np.random.get_state()
    return (
        {"rng.torch": torch.get_rng_state()},
        {
            "python": [py[0], list(py[1]), py[2]],
            "numpy": [npy[0], npy[1].tolist(), int(npy[2]), int(npy[3]), float(npy[4])],
        },
    )


def set_rng_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    if "python" in data:
        v, s, g = data["python"]
        random.setstate((v, tuple(s), g))
    if "numpy" in data:
        name, keys, pos, has_gauss, cached = data["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def gathered_trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """``model.trainable_state_dict()`` with sharded (FSDP) weights gathered whole.

    Call on every process (the gather is a collective, taken in sorted-name order); with no
    sharded weight it is exactly ``trainable_state_dict()``.
    """
    from omnibind.train.sharding import full, is_dtensor

    params = model.trainable_parameters()
    if not any(is_dtensor(p) for p in params.values()):
        return model.trainable_state_dict()
    return {n: full(p.detach()).cpu().contiguous() for n, p in params.items()}


def optimizer_state(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> tuple[dict[str, torch.Tensor], dict]:
    """Moments keyed by parameter name (robust to parameter order), hyper-parameters as JSON.

    Sharded moments (FSDP) are gathered whole: call on every process.
    """
    from omnibind.train.sharding import full

    sd = optimizer.state_dict()
    index_to_name: dict[int, str] = {}
    flat_params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, p in enumerate(flat_params):
        index_to_name[i] = names[id(p)]
    tensors: dict[str, torch.Tensor] = {}
    for idx in sorted(sd["state"]):  # one order on every process (the gathers are collectives)
        for k, v in sorted(sd["state"][idx].items()):
            t = full(v) if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"opt.{index_to_name[idx]}.{k}"] = t.detach().cpu().contiguous()
    groups = []
    for g in sd["param_groups"]:
        groups.append(
            {k: v for k, v in g.items() if k != "params"} | {"params": [index_to_name[i] for i in g["params"]]}
        )
    return tensors, {"param_groups": groups}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, names: dict[int, str], tensors: dict[str, torch.Tensor], data: dict
) -> None:
    """Load moments saved by ``optimizer_state``; a sharded parameter takes its shard of them."""
    from omnibind.train.sharding import like

    flat_params = [p for g in optimizer.param_groups for p in g["params"]]
    name_to_index = {names[id(p)]: i for i, p in enumerate(flat_params)}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        if not key.startswith("opt."):
            continue
        pname, _, field_name = key[4:].rpartition(".")
        if pname not in name_to_index:
            raise CheckpointError(f"optimizer state names parameter {pname!r}, which does not train in this run")
        param = flat_params[name_to_index[pname]]
        # moments have the parameter's shape; "step" is a scalar that stays a plain tensor
        value = like(t, param) if t.shape == param.shape else t
        state.setdefault(name_to_index[pname], {})[field_name] = value
    groups = []
    saved = data["param_groups"]
    if len(saved) != len(optimizer.param_groups):
        raise CheckpointError("optimizer state has a different number of parameter groups")
    for g in saved:
        groups.append(
            {k: v for k, v in g.items() if k != "params"} | {"params": [name_to_index[n] for n in g["params"]]}
        )
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_training_state(
    folder: str | Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    names: dict[int, str],
    info: dict[str, Any],
    *,
    write: bool = True,
) -> Path:
    """Atomically write ``folder`` = model checkpoint + optimiser/scheduler/RNG state + ``info``.

    Under several processes every process calls it (sharded state is gathered) and only the one
    with ``write`` (the main process) writes.
    """
    from safetensors.torch import save_file

    from omnibind.checkpoint import save_checkpoint

    dest = Path(folder)
    weights = gathered_trainable_state(model)
    opt_t, opt_j = optimizer_state(optimizer, names)
    if not write:
        return dest
    with atomic_dir(dest) as tmp:
        save_checkpoint(model, tmp / MODEL_DIR, extra={"training": {"step": info.get("step")}}, state=weights)
        rng_t, rng_j = rng_state()
        save_file({**opt_t, **rng_t}, str(tmp / STATE_TENSORS), metadata={"format": "omnibind-trainer"})
        crash_point("state.tensors", dest)
        sched = {k: v for k, v in scheduler.state_dict().items() if _jsonable(v)}
        payload = {"optimizer": opt_j, "scheduler": sched, "rng": rng_j, **info}
        payload["tensors_sha256"] = content_hash(tmp / STATE_TENSORS)
        atomic_write_text(tmp / STATE_JSON, json.dumps(payload, indent=1))
    return dest


def read_training_state(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, data)`` of a ``last/`` folder; the tensors file must match the SHA-256 that
    ``trainer_state.json`` records (states written before it was recorded are read unchecked)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        data = json.loads((folder / STATE_JSON).read_text())
        want = data.get("tensors_sha256")
        if want is not None and content_hash(folder / STATE_TENSORS) != want:
            raise CheckpointError(f"{folder / STATE_TENSORS}: hash does not match {STATE_JSON} (corrupt or replaced)")
        tensors = load_file(str(folder / STATE_TENSORS))
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(f"{folder}: unreadable training state: {e}") from e
    return tensors, data


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False
