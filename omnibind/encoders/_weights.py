"""Hashing of pretrained weight files for encoder fingerprints (cached per path, size and mtime)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=64)
def _hash(path: str, size: int, mtime: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:16]


def file_hash(path: str | Path) -> str:
    """SHA-256 prefix of a file, or of every file in a folder (sorted), computed once per version."""
    p = Path(path)
    if p.is_dir():
        parts = [file_hash(f) for f in sorted(p.rglob("*")) if f.is_file() and "__pycache__" not in f.parts]
        return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
    st = p.stat()
    return _hash(str(p), st.st_size, int(st.st_mtime))
