"""Checkpoints: trainable weights only, safetensors, with a manifest naming the base model and encoders.

A checkpoint folder holds ``config.json`` (the composite config), ``weights.safetensors`` (bind
heads, projectors, gates, trainable encoders, LoRA) and ``manifest.json`` (hashes of the weights
file, the base LLM and every encoder's fingerprint). Folders are written through
``omnibind.atomic.atomic_dir``, so a killed run never leaves a half-written checkpoint. There is one
reader, ``read_checkpoint``, which verifies the weights against the manifest. Nothing is ever
unpickled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omnibind import __version__
from omnibind.atomic import atomic_dir, atomic_write_text, crash_point, recover_dir
from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError
from omnibind.hashing import content_hash
from omnibind.llm.sources import identity_path, weight_files

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
MANIFEST_FILE = "manifest.json"


def llm_fingerprint(source: str) -> str:
    """A cheap identity for the base LLM: the GGUF/safetensors files' names and sizes (hashing 500 MB is slow)."""
    try:
        path = identity_path(source)
    except Exception:  # e.g. the embedded LLM's package is not installed: no identity to compare
        return "unknown"
    if path is None or not path.exists():
        return "unknown"
    blob = ";".join(f"{p.name}:{p.stat().st_size}" for p in weight_files(path))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_weights(state: Mapping[str, Any], path: str | Path) -> None:
    """Write tensors as safetensors with omnibind's metadata (no pickles)."""
    from safetensors.torch import save_file

    save_file(dict(state), str(path), metadata={"format": "omnibind", "version": __version__})


def build_manifest(
    config: ModelConfig,
    state: Mapping[str, Any],
    weights_file: str | Path,
    encoders: Mapping[str, Any],
    *,
    base_fingerprint: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a checkpoint whose weights ``state`` are written at ``weights_file``.

    ``encoders`` maps modality → encoder (for their fingerprints); ``base_fingerprint`` defaults
    to ``llm_fingerprint(config.llm.source)`` (an export passes the fingerprint of its own GGUF).
    """
    source = config.llm.source
    return {
        "omnibind_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "weights_sha256": content_hash(weights_file),
        "num_tensors": len(state),
        "num_parameters": int(sum(t.numel() for t in state.values())),
        "base_llm": {
            "source": source,
            "fingerprint": base_fingerprint if base_fingerprint is not None else llm_fingerprint(source),
        },
        "encoders": {m: {"name": config.encoders[m].name, "fingerprint": e.fingerprint()} for m, e in encoders.items()},
        **(extra or {}),
    }


def write_checkpoint(
    folder: str | Path,
    config: ModelConfig,
    state: Mapping[str, Any],
    encoders: Mapping[str, Any],
    *,
    base_fingerprint: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write config, weights and manifest into ``folder`` (an ``atomic_dir`` the caller swaps in);
    returns the manifest."""
    folder = Path(folder)
    config.save(folder / CONFIG_FILE)
    save_weights(state, folder / WEIGHTS_FILE)
    crash_point("checkpoint.weights", folder)  # weights written, manifest not yet: the folder is not swapped in
    manifest = build_manifest(
        config, state, folder / WEIGHTS_FILE, encoders, base_fingerprint=base_fingerprint, extra=extra
    )
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return manifest


def save_checkpoint(
    model: Any,
    folder: str | Path,
    *,
    extra: dict[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Path:
    """Write config, trainable weights and manifest atomically into ``folder`` (replacing it).

    ``state``: the weights to write, default ``model.trainable_state_dict()`` (a sharded training
    run passes the full weights it gathered from every process).
    """
    dest = Path(folder)
    weights = model.trainable_state_dict() if state is None else state
    with atomic_dir(dest) as tmp:
        write_checkpoint(tmp, model.config, weights, model.encoders, extra=extra)
    return dest


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The checkpoint's ``manifest.json`` (CheckpointError naming the file when missing or corrupt)."""
    p = recover_dir(folder) / MANIFEST_FILE
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{p}: missing manifest") from None
    except ValueError as e:
        raise CheckpointError(f"{p}: corrupt manifest: {e}") from e


def read_checkpoint(folder: str | Path, *, verify: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(manifest, state)`` of a checkpoint folder; with ``verify`` the weights file's SHA-256 must
    match the manifest. Every failure is a CheckpointError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    manifest = read_manifest(folder)
    wpath = folder / WEIGHTS_FILE
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    if verify and content_hash(wpath) != manifest.get("weights_sha256"):
        raise CheckpointError(f"{wpath}: hash does not match the manifest (corrupt or replaced file)")
    try:
        state = load_file(str(wpath))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{wpath}: unreadable safetensors file: {e}") from e
    return manifest, state


def check_base_llm(manifest: dict[str, Any], source: str, folder: str | Path) -> None:
    """CheckpointError when the checkpoint was trained on another base LLM than ``source`` holds
    (unknown fingerprints on either side pass: nothing to compare)."""
    base = manifest.get("base_llm", {})
    want = base.get("fingerprint")
    have = llm_fingerprint(source)
    if want not in (None, "unknown") and have != "unknown" and want != have:
        raise CheckpointError(f"{folder}: trained on base LLM {base.get('source')} ({want}), but {source} is {have}")


def load_weights(model: Any, folder: str | Path, *, verify: bool = True, verify_base: bool = True) -> dict[str, Any]:
    """Load ``weights.safetensors`` into ``model`` after checking its hash and the base model
    (``verify_base=False``: another file of the same base weights, e.g. a GGUF export)."""
    manifest, state = read_checkpoint(folder, verify=verify)
    if verify and verify_base:
        check_base_llm(manifest, model.config.llm.source, folder)
    model.load_trainable_state_dict(state)
    return manifest


def load_config(folder: str | Path) -> ModelConfig:
    """The composite config saved in a checkpoint folder."""
    return ModelConfig.load(Path(folder) / CONFIG_FILE)
