"""What every importer shares: copying renamed tensors shard by shard, the bind heads' tensors
and the encoder fingerprints of a checkpoint written before its folder is in place.

A peer's single weight files are read by ``omnibind.tensor_files.read_state_dict`` (safetensors or
``torch.load(weights_only=True)``), never with a full unpickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from omnibind.errors import CheckpointError, ConfigError

SAFETENSORS_INDEX = "model.safetensors.index.json"


def safetensors_shards(folder: Path) -> list[Path]:
    """The safetensors files of a ``save_pretrained`` folder (from its index when sharded)."""
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index}: unreadable shard index ({e})") from None
        shards = [folder / n for n in names]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise CheckpointError(f"{folder}: shards named in {SAFETENSORS_INDEX} are missing: {missing[:4]}")
        return shards
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    raise CheckpointError(
        f"{folder}: no model.safetensors or {SAFETENSORS_INDEX} (save the model with safe_serialization; "
        "pickled .bin shards are not read)"
    )


def split_renamed(
    shards: list[Path],
    route: Callable[[str], tuple[str, str] | None],
    dests: Mapping[str, Path],
    collect: Mapping[str, dict[str, torch.Tensor]] | None = None,
) -> dict[str, int]:
    """Copy every tensor of ``shards`` to the part ``route(name)`` names, under its new name.

    ``route`` gives ``(part, new_name)`` or None (the tensor is dropped). A part in ``dests`` is a
    folder that receives safetensors files shard by shard (one input shard in memory at a time,
    so a 7B model converts in a few GB) plus an index when there are several; a part in
    ``collect`` gathers its tensors in that dict instead (small parts: a projector). Returns the
    tensor count per part; an unrouted part is an error.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    collect = collect or {}
    counts: dict[str, int] = {p: 0 for p in [*dests, *collect]}
    written: dict[str, dict[str, str]] = {p: {} for p in dests}
    sizes: dict[str, int] = {p: 0 for p in dests}
    for shard in shards:
        out: dict[str, dict[str, torch.Tensor]] = {p: {} for p in dests}
        with safe_open(str(shard), framework="pt") as fh:
            for name in fh.keys():
                routed = route(name)
                if routed is None:
                    continue
                part, new = routed
                if part not in counts:
                    raise CheckpointError(f"{shard}: tensor {name} routed to unknown part {part!r}")
                tensor = fh.get_tensor(name)
                (collect[part] if part in collect else out[part])[new] = tensor
                counts[part] += 1
        for part, tensors in out.items():
            if not tensors:
                continue
            fname = shard.name if len(shards) > 1 else "model.safetensors"
            save_file(tensors, str(dests[part] / fname), metadata={"format": "pt"})
            for n, t in tensors.items():
                written[part][n] = fname
                sizes[part] += t.numel() * t.element_size()
    for part, folder in dests.items():
        files = set(written[part].values())
        if len(files) > 1:
            index = {"metadata": {"total_size": sizes[part]}, "weight_map": dict(sorted(written[part].items()))}
            (folder / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        elif files and files != {"model.safetensors"}:  # one shard of several held them all
            (folder / next(iter(files))).rename(folder / "model.safetensors")
    return counts


class FolderFingerprint:
    """Stands in for an encoder when the manifest is written before the folder reaches its final
    place: the fingerprint the encoder built from ``params`` will report (``hf_clip`` hashes its
    params and the folder's file contents, not its path)."""

    def __init__(self, fingerprint: Callable[[], str]):
        self._fingerprint = fingerprint

    def fingerprint(self) -> str:
        return self._fingerprint()


def require_keys(state: Mapping[str, Any], keys: list[str], where: str) -> None:
    """``CheckpointError`` naming the file and the first missing keys."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{where}: missing tensors {missing[:6]} (is this the right checkpoint?)")


def refuse_non_empty(dest: Path, overwrite: bool) -> None:
    """``ConfigError`` when ``dest`` is a non-empty folder (or a file) and ``overwrite`` is off."""
    if dest.is_file() or (dest.is_dir() and any(dest.iterdir()) and not overwrite):
        raise ConfigError(f"{dest}: exists and is not empty; pass overwrite (--overwrite) to replace it")


def bind_state(config: Any, encoder_dims: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """The checkpoint tensors of freshly built bind heads (identity heads hold none; the learned
    temperature is always there), named as ``OmnibindModel.trainable_parameters`` names them."""
    from omnibind.bind.heads import BindHeads

    heads = BindHeads(config.bind, dict(encoder_dims))
    return {f"bind.{k}": v.detach().clone() for k, v in heads.state_dict().items()}
