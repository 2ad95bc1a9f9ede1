"""Cross-modal search: a query of any modality in, the nearest indexed media out.

``search(model, index, query)`` is what ``Model.search``, ``omnibind search`` and ``/v1/search``
call. A query is a string (text; or, with ``as_path=True``, a media file whose modality is guessed
from its extension), a ``MediaPart`` / ``TextPart`` / ``MixPart`` (embedding arithmetic), or a list
of those (several queries at once). Indexes are read once and kept while the folder is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnibind.errors import ConfigError
from omnibind.index.store import META_FILE, Hit, MediaIndex, check_compatible
from omnibind.messages import MediaPart, MixPart, TextPart

_OPEN: dict[str, tuple[float, MediaIndex]] = {}
_OPEN_LOCK = threading.Lock()


def open_index(folder: str | Path) -> MediaIndex:
    """``MediaIndex.load``, memoised by folder and modification time (a rebuilt index is re-read)."""
    d = Path(folder).expanduser().resolve()
    meta = d / META_FILE
    stamp = meta.stat().st_mtime_ns if meta.is_file() else -1.0
    key = str(d)
    with _OPEN_LOCK:
        hit = _OPEN.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    index = MediaIndex.load(d)
    with _OPEN_LOCK:
        _OPEN[key] = (stamp, index)
    return index


def query_part(query: Any, *, as_path: bool = False) -> MediaPart | TextPart | MixPart:
    """A query as a part: parts pass through; a string is text, or a media file with ``as_path``."""
    if isinstance(query, (MediaPart, TextPart, MixPart)):
        return query
    if isinstance(query, Path) or (as_path and isinstance(query, str)):
        from omnibind.modalities import modality_for_path

        p = Path(query).expanduser()
        if not p.is_file():
            raise ConfigError(f"{p}: no such query file")
        return MediaPart(modality_for_path(p), str(p), name=p.name)
    if isinstance(query, str):
        if not query.strip():
            raise ConfigError("empty text query")
        return TextPart(query)
    raise ConfigError(f"a query must be text, a path or a content part, got {type(query).__name__}")


def search(
    model: Any,
    index: MediaIndex | str | Path,
    queries: Any,
    *,
    k: int = 5,
    modality: str | Sequence[str] | None = None,
) -> list[Hit] | list[list[Hit]]:
    """The ``k`` best items for a query (a list of hits), or for each of a list of queries.

    ``modality`` keeps results of that modality (or those modalities) only; ``model`` is an
    ``omnibind.Model`` whose bind space built the index (checked by fingerprint).
    """
    idx = index if isinstance(index, MediaIndex) else open_index(index)
    check_compatible(idx, model)
    single = not isinstance(queries, (list, tuple))
    parts = [query_part(q) for q in ([queries] if single else queries)]
    if not parts:
        return []
    vectors = model.embed(parts)
    hits = idx.search(vectors, k, modality=modality)
    return hits[0] if single else hits
