"""``build_index``: embed a media folder into a ``MediaIndex``, incrementally by content hash.

Files are found by extension (``omnibind.modalities.modality_for_path``), hidden files and folders
skipped (the index itself lives in ``DIR/.omnibind-index`` by default). A file whose SHA-256
(``omnibind.hashing.file_hash``) is already in the previous index keeps its vector: a rebuild after
adding ten photos embeds ten photos, and a renamed or moved file is not embedded again. A file
that cannot be decoded is reported with its reason and skipped; it never stops the build.

A build is written once, at its end, through ``MediaIndex.save`` (an atomic folder swap). It is
not resumable mid-way: a build killed before that keeps the previous index whole, and the next
build restarts, reusing the previous index's vectors (only the files that index lacked are
embedded again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.atomic import crash_point, recover_dir
from omnibind.errors import CheckpointError, ConfigError, InputError, OmnibindError
from omnibind.hashing import file_hash
from omnibind.index.store import Entry, MediaIndex, bind_fingerprint
from omnibind.messages import MEDIA_MODALITIES, MediaPart

DEFAULT_DIRNAME = ".omnibind-index"


@dataclass
class BuildReport:
    """What a build did: items embedded now, reused from the previous index, and skipped (path → why)."""

    index: MediaIndex
    folder: Path
    embedded: int = 0
    reused: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    ignored: int = 0
    """Files whose extension names no modality being indexed."""


def default_index_dir(root: str | Path) -> Path:
    """Where ``omnibind index build DIR`` writes by default: ``DIR/.omnibind-index``."""
    return Path(root).expanduser().resolve() / DEFAULT_DIRNAME


def scan(root: str | Path, modalities: Sequence[str] | None = None) -> tuple[list[tuple[Path, str]], int]:
    """Media files under ``root`` (sorted, hidden paths skipped) with their modality, and how many
    other files were ignored. ``modalities`` restricts the kinds indexed (default: every media kind)."""
    from omnibind.modalities import modality_for_path

    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise ConfigError(f"{base}: not a folder")
    wanted = set(modalities or MEDIA_MODALITIES)
    found, ignored = [], 0
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        try:
            m = modality_for_path(p)
        except InputError:
            ignored += 1
            continue
        if m in wanted:
            found.append((p, m))
        else:
            ignored += 1
    return found, ignored


def build_index(
    model: Any,
    root: str | Path,
    out: str | Path | None = None,
    *,
    modalities: Sequence[str] | None = None,
    batch_size: int = 16,
    progress: bool = True,
    on_skip: Callable[[Path, str], None] | None = None,
) -> BuildReport:
    """Embed every media file under ``root`` with ``model`` (an ``omnibind.Model``) into an index
    saved at ``out`` (default ``root/.omnibind-index``), reusing vectors of unchanged files."""
    from tqdm.auto import tqdm

    base = Path(root).expanduser().resolve()
    folder = Path(out).expanduser().resolve() if out is not None else default_index_dir(base)
    have = set(model.core.encoders)
    missing = [m for m in (modalities or []) if m not in have]
    if missing:
        raise ConfigError(f"this model has no encoder for {missing}; it has {sorted(have)}")
    files, ignored = scan(base, [m for m in (modalities or MEDIA_MODALITIES) if m in have])
    fingerprint = bind_fingerprint(model)
    previous = _previous_vectors(folder, fingerprint, model.config.bind.dim)
    index = MediaIndex(model.config.bind.dim, fingerprint=fingerprint, root=base)
    report = BuildReport(index, folder, ignored=ignored)

    def skip(path: Path, why: str) -> None:
        report.skipped[str(path.relative_to(base))] = why
        if on_skip is not None:
            on_skip(path, why)

    todo: list[tuple[Path, str, str]] = []
    for path, modality in files:
        try:
            sha = file_hash(path)
        except OSError as e:
            skip(path, f"cannot read: {e}")
            continue
        key = (sha, modality)
        if key in previous:
            index.add([Entry(str(path.relative_to(base)), modality, sha)], previous[key][None])
            report.reused += 1
        else:
            todo.append((path, modality, sha))
    bar = tqdm(total=len(todo), desc="embedding", unit="file", disable=not progress, dynamic_ncols=True)
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        for (path, modality, sha), vec in zip(chunk, _embed_chunk(model, chunk, skip)):
            if vec is not None:
                index.add([Entry(str(path.relative_to(base)), modality, sha)], vec[None])
                report.embedded += 1
        bar.update(len(chunk))
        crash_point("index.batch", folder)  # fault tests kill a build here, before anything is saved
    bar.close()
    index.save(folder)
    return report


def _embed_chunk(model: Any, chunk: list[tuple[Path, str, str]], skip: Callable[[Path, str], None]) -> list[Any]:
    """Vectors of one batch; when the batch fails, each file alone, so one bad file costs only itself."""
    parts = [MediaPart(m, str(p), name=p.name) for p, m, _ in chunk]
    try:
        return list(model.embed(parts))
    except (OmnibindError, ValueError, OSError, RuntimeError):
        pass
    out: list[np.ndarray | None] = []
    for (path, _, _), part in zip(chunk, parts):
        try:
            out.append(model.embed([part])[0])
        except (OmnibindError, ValueError, OSError, RuntimeError) as e:
            skip(path, str(e))
            out.append(None)
    return out


def _previous_vectors(folder: Path, fingerprint: str, dim: int) -> dict[tuple[str, str], np.ndarray]:
    """(sha256, modality) → vector from an existing index of the same bind space (else nothing)."""
    if not (recover_dir(folder) / "index.json").is_file():
        return {}
    try:
        old = MediaIndex.load(folder)
    except CheckpointError:
        return {}  # unreadable: rebuild from scratch (the new one replaces it atomically)
    if old.fingerprint != fingerprint or old.dim != dim:
        return {}
    return {(e.sha256, e.modality): old.vectors[i] for i, e in enumerate(old.entries)}
