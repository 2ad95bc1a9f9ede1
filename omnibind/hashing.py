"""Content hashes: the one copy of file hashing and of the media-key scheme.

``content_hash`` (SHA-256 of a file's bytes) verifies checkpoint weights and keys caches.
``media_key`` names one media input by *what it is* (its bytes, modality, format and loader
options), never by its path, so the eval output cache, the training feature store and the on-disk
feature cache agree on identity, and a renamed copy of a file hits the same entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def content_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# The same file is keyed many times in a training run; re-hash it only when it changes on disk.
@functools.lru_cache(maxsize=65536)
def _cached_hash(path: str, size: int, mtime_ns: int) -> str:
    return content_hash(path)


def file_hash(path: str | Path) -> str:
    """``content_hash`` memoised by (path, size, mtime)."""
    p = os.path.realpath(os.path.expanduser(str(path)))
    st = os.stat(p)
    return _cached_hash(p, st.st_size, st.st_mtime_ns)


def digest(obj: Any, n: int = 64) -> str:
    """SHA-256 of a JSON-able object (sorted keys), first ``n`` hex digits."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def source_hash(source: Any) -> str | None:
    """Hash of a media source: a file's bytes, raw bytes, or a decoded array. None: no stable identity."""
    if isinstance(source, (str, Path)):
        return "file:" + file_hash(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "bytes:" + hashlib.sha256(bytes(source)).hexdigest()
    if isinstance(source, np.ndarray):
        h = hashlib.sha256(f"{source.dtype}:{source.shape}:".encode())
        h.update(np.ascontiguousarray(source).tobytes())
        return "array:" + h.hexdigest()
    return None


def media_key(modality: str, source: Any, *, format: str | None = None, options: dict[str, Any] | None = None) -> str:
    """The key of one media input (32 hex digits). Raises ``ValueError`` for a source with no stable
    identity (an arbitrary object): such an input cannot be cached."""
    src = source_hash(source)
    if src is None:
        raise ValueError(f"a {type(source).__name__} {modality} source has no content hash")
    return digest(
        {"m": modality, "s": src, "f": format if not isinstance(source, (str, Path)) else None, "o": options or {}}, 32
    )


def text_key(text: str) -> str:
    """The key of a text input (32 hex digits)."""
    return hashlib.sha256(("text\0" + text).encode()).hexdigest()[:32]
