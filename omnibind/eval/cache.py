"""The eval output cache: every model output in SQLite, keyed by (model fingerprint, task, sample,
request hash), so a second run — or a re-score with another extraction — needs no model call.

Media inside a request are named by ``omnibind.hashing.media_key`` (their content, not their path),
texts by ``text_key``: the same keys the training feature store uses.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnibind.hashing import digest, media_key
from omnibind.messages import MediaPart, Message, TextPart


def media_id(part: MediaPart) -> str:
    """The content key of a media part (``omnibind.hashing.media_key``); a source with no content hash
    (a missing file, an arbitrary object) is named by its description instead, so it is never
    confused with another input (and its outputs are cached only by that name)."""
    try:
        return media_key(part.modality, part.source, format=part.format, options=dict(part.options))
    except (ValueError, OSError):
        return digest(["unhashed", part.modality, repr(part.source), part.format, part.options], 32)


def conversation_key(messages: Sequence[Message]) -> list[Any]:
    """A JSON-able description of a conversation with media replaced by their content keys."""
    out = []
    for m in messages:
        parts = []
        for p in m.content:
            if isinstance(p, TextPart):
                parts.append(p.text)
            elif isinstance(p, MediaPart):
                parts.append({p.modality: media_id(p)})
            else:
                parts.append({"mix": [media_id(q) if isinstance(q, MediaPart) else q.text for q in p.parts]})
        out.append([m.role, parts])
    return out


class OutputCache:
    """Model outputs in SQLite: (fingerprint, task, sample, request hash) → JSON value."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._mem: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # several eval runs may share one cache file (two models evaluated side by side): wait for
            # the other writer instead of failing with "database is locked", and let readers read
            # while one writes (WAL)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, fingerprint TEXT, task TEXT, "
                "sample TEXT, request TEXT, value TEXT, created REAL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS outputs_request ON outputs (request)")
            self._db.commit()

    @staticmethod
    def key(fingerprint: str, task: str, sample: str, request: str) -> str:
        return digest([fingerprint, task, sample, request])

    def get(self, key: str, request: str) -> Any | None:
        """The cached value of ``key``; else of the same request for another sample or task.

        Identical requests (a text-only prompt shared by every sample) are answered once; the
        answer is then also filed under each asking sample's key.
        """
        with self._lock:
            if key in self._mem:
                self.hits += 1
                return self._mem[key]
            value = self._mem.get(request)
            if value is None and self._db is not None:
                row = self._db.execute("SELECT value FROM outputs WHERE key = ?", (key,)).fetchone()
                if row is None:
                    row = self._db.execute("SELECT value FROM outputs WHERE request = ? LIMIT 1", (request,)).fetchone()
                value = json.loads(row[0]) if row is not None else None
            if value is None:
                self.misses += 1
                return None
            self.hits += 1
            self._mem[key] = self._mem[request] = value
            return value

    def put(self, key: str, fingerprint: str, task: str, sample: str, request: str, value: Any) -> None:
        with self._lock:
            self._mem[key] = value
            self._mem[request] = value
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, fingerprint, task, sample, request, json.dumps(value), time.time()),
                )

    def commit(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.commit()

    def close(self) -> None:
        self.commit()
        if self._db is not None:
            self._db.close()
            self._db = None
