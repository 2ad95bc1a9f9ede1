"""Atomic writes: readers see the old file (or folder) or the complete new one, never a torn one.

The one copy of this mechanism. Checkpoints, training state, feature-cache shards, exported models
and the embedded LLM caches all write through it. A folder is built under a temporary name beside
its destination and swapped in with two renames; the previous version is kept as ``.<name>.old``
until the new one is in place, so a kill at any moment leaves one complete version on disk
(``recover_dir`` puts the old one back when a kill fell between the two renames).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (safetensors,
    GGUF writers); it replaces ``path`` only when the block finishes without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _old(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.old")


def recover_dir(dest: str | Path) -> Path:
    """If a swap was killed between its two renames (``dest`` gone, ``.dest.old`` complete), put the
    old version back. Readers of atomically written folders call this before reading."""
    dest = Path(dest)
    old = _old(dest)
    if not dest.exists() and old.is_dir():
        os.replace(old, dest)
    return dest


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``dest``; on success it replaces ``dest`` whole.

    On an error the temporary folder is removed and ``dest`` is untouched. The previous ``dest`` is
    renamed to ``.<name>.old`` first and deleted only after the new folder is in place.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        _fix_modes(tmp)
        old = _old(dest)
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


def _file_mode() -> int:
    # mkstemp creates 0600 files; give what a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fix_modes(folder: Path) -> None:
    # mkdtemp makes 0700 folders and some writers (safetensors) 0600 files: an exported model that
    # another user cannot read is a bug, so give the modes a plain mkdir / write would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for p in folder.rglob("*"):
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
