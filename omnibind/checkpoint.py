"""Checkpoints: trainable weights only, safetensors, with a manifest naming the base model and encoders.

A checkpoint folder holds ``config.json`` (the composite config), ``weights.safetensors`` (bind
heads, projectors, gates, trainable encoders, LoRA) and ``manifest.json`` (hashes of the weights
file, the base LLM and every encoder's fingerprint). Files are written to a temporary name and
renamed, so a killed run never leaves a half-written checkpoint. Nothing is ever unpickled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from omnibind import __version__
from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
MANIFEST_FILE = "manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def llm_fingerprint(source: str) -> str:
    """A cheap identity for the base LLM: the GGUF/safetensors files' names and sizes (hashing 500 MB is slow)."""
    from omnibind.llm.backends.transformers import resolve_llm_source

    try:
        path = Path(resolve_llm_source(source)) if not source.startswith("embedded:") else None
        if source.startswith("embedded:"):
            from omnibind.llm.embedded import embedded_gguf_path

            path = embedded_gguf_path()
    except Exception:
        return "unknown"
    if path is None or not path.exists():
        return "unknown"
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".gguf"))
    blob = ";".join(f"{p.name}:{p.stat().st_size}" for p in files)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(model: Any, folder: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Write config, trainable weights and manifest atomically into ``folder`` (replacing it)."""
    from safetensors.torch import save_file

    dest = Path(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        model.config.save(tmp / CONFIG_FILE)
        state = model.trainable_state_dict()
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "omnibind", "version": __version__})
        manifest = {
            "omnibind_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
            "num_tensors": len(state),
            "num_parameters": int(sum(t.numel() for t in state.values())),
            "base_llm": {"source": model.config.llm.source, "fingerprint": llm_fingerprint(model.config.llm.source)},
            "encoders": {
                m: {"name": model.config.encoders[m].name, "fingerprint": e.fingerprint()}
                for m, e in model.encoders.items()
            },
            **(extra or {}),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def read_manifest(folder: str | Path) -> dict[str, Any]:
    p = Path(folder) / MANIFEST_FILE
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{p}: missing manifest") from None
    except ValueError as e:
        raise CheckpointError(f"{p}: corrupt manifest: {e}") from e


def load_weights(model: Any, folder: str | Path, *, verify: bool = True, verify_base: bool = True) -> dict[str, Any]:
    """Load ``weights.safetensors`` into ``model`` after checking its hash and the base model
    (``verify_base=False``: another file of the same base weights, e.g. a GGUF export)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    manifest = read_manifest(folder)
    wpath = folder / WEIGHTS_FILE
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    if verify and sha256_file(wpath) != manifest.get("weights_sha256"):
        raise CheckpointError(f"{wpath}: hash does not match the manifest (corrupt or replaced file)")
    want = manifest.get("base_llm", {}).get("fingerprint")
    have = llm_fingerprint(model.config.llm.source)
    if verify and verify_base and want not in (None, "unknown") and have != "unknown" and want != have:
        raise CheckpointError(
            f"{folder}: trained on base LLM {manifest['base_llm']['source']} ({want}), "
            f"but {model.config.llm.source} is {have}"
        )
    try:
        state = load_file(str(wpath))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{wpath}: unreadable safetensors file: {e}") from e
    model.load_trainable_state_dict(state)
    return manifest


def load_config(folder: str | Path) -> ModelConfig:
    return ModelConfig.load(Path(folder) / CONFIG_FILE)
