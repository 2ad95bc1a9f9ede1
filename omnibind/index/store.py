"""``MediaIndex``: bind-space vectors of a media collection in FAISS, saved atomically.

ImageBind's cross-modal retrieval: every item of a folder (images, sounds, clips, depth maps, …)
is embedded once into the shared bind space; any query of any modality is embedded the same way
and its nearest items by cosine similarity (inner product of unit vectors) come out.

On disk an index is one folder written with ``omnibind.atomic.atomic_dir`` (a reader sees the old
index or the complete new one): ``vectors.safetensors`` (float32, no pickles) and ``index.json``
(the bind dimension, the fingerprint of the model whose bind space the vectors live in, the
indexed root, the SHA-256 of the vectors file, checked at load, and one entry per vector: path
relative to the root, modality, SHA-256 of the file).
The FAISS indexes (exact inner product, one per modality) are rebuilt from the vectors at load:
a flat index over 10^5 vectors builds in milliseconds, and no FAISS file format is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.atomic import atomic_dir, atomic_write_text, recover_dir
from omnibind.errors import CheckpointError, ConfigError
from omnibind.hashing import content_hash

FORMAT_VERSION = 1
VECTORS_FILE = "vectors.safetensors"
META_FILE = "index.json"


@dataclass(frozen=True)
class Entry:
    """One indexed item: ``path`` relative to the index root (or absolute), its modality and content hash."""

    path: str
    modality: str
    sha256: str


@dataclass(frozen=True)
class Hit:
    """One search result: the item, its cosine similarity to the query and its rank (1 = best)."""

    rank: int
    score: float
    entry: Entry
    id: int
    """The entry's position in the index (stable while the index is unchanged)."""
    file: Path
    """The item's absolute path (the root joined with the entry's path)."""

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": round(self.score, 6), "id": self.id, **asdict(self.entry)}


class MediaIndex:
    """Unit bind-space vectors with their entries; exact inner-product search per modality."""

    def __init__(self, dim: int, *, fingerprint: str = "", root: str | Path | None = None):
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.root = Path(root).resolve() if root is not None else None
        self.entries: list[Entry] = []
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._faiss: dict[str | None, tuple[Any, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def vectors(self) -> np.ndarray:
        """(N, dim) float32 unit vectors, row i belonging to ``entries[i]``."""
        return self._vectors

    def modalities(self) -> dict[str, int]:
        """Entries per modality."""
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.modality] = out.get(e.modality, 0) + 1
        return dict(sorted(out.items()))

    def add(self, entries: Sequence[Entry], vectors: np.ndarray) -> None:
        """Append entries and their vectors (normalised here)."""
        v = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if v.ndim != 2 or v.shape[1] != self.dim or len(v) != len(entries):
            raise ValueError(f"expected ({len(entries)}, {self.dim}) vectors, got {v.shape}")
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        self.entries.extend(entries)
        self._vectors = np.concatenate([self._vectors, v]) if len(self._vectors) else v
        self._faiss.clear()

    def file_of(self, i: int) -> Path:
        """The absolute path of entry ``i``."""
        p = Path(self.entries[i].path)
        return p if p.is_absolute() or self.root is None else self.root / p

    def _subindex(self, modality: str | None) -> tuple[Any, np.ndarray]:
        # one flat FAISS index per result modality (and one over everything), built on first use
        if modality not in self._faiss:
            import faiss

            ids = np.array(
                [i for i, e in enumerate(self.entries) if modality is None or e.modality == modality], dtype=np.int64
            )
            flat = faiss.IndexFlatIP(self.dim)
            if len(ids):
                flat.add(self._vectors[ids])
            self._faiss[modality] = (flat, ids)
        return self._faiss[modality]

    def search(
        self, queries: np.ndarray, k: int = 5, *, modality: str | Sequence[str] | None = None
    ) -> list[list[Hit]]:
        """The ``k`` nearest entries of each (B, dim) query, best first, optionally of given modalities only."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        if q.shape[1] != self.dim:
            raise ConfigError(f"query vectors have {q.shape[1]} dimensions; this index holds {self.dim}")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        wanted = [modality] if isinstance(modality, str) or modality is None else list(modality)
        known = set(self.modalities())
        for m in wanted:
            if m is not None and m not in known:
                raise ConfigError(f"the index holds no {m!r} items; it holds {sorted(known) or 'nothing'}")
        per_query: list[list[tuple[float, int]]] = [[] for _ in range(len(q))]
        for m in wanted:
            flat, ids = self._subindex(m)
            if not len(ids):
                continue
            sims, idx = flat.search(q, min(k, len(ids)))
            for b in range(len(q)):
                per_query[b].extend((float(s), int(ids[j])) for s, j in zip(sims[b], idx[b]) if j >= 0)
        out = []
        for found in per_query:
            found.sort(key=lambda t: (-t[0], t[1]))
            out.append(
                [
                    Hit(rank=r + 1, score=s, entry=self.entries[i], id=i, file=self.file_of(i))
                    for r, (s, i) in enumerate(found[:k])
                ]
            )
        return out

    # --- disk --------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "root": str(self.root) if self.root is not None else None,
            "entries": [asdict(e) for e in self.entries],
        }

    def save(self, folder: str | Path) -> Path:
        """Write the index folder atomically (vectors as safetensors, entries as JSON)."""
        from safetensors.numpy import save_file

        with atomic_dir(folder) as tmp:
            save_file({"vectors": self._vectors}, str(tmp / VECTORS_FILE))
            meta = {**self.meta(), "vectors_sha256": content_hash(tmp / VECTORS_FILE)}
            atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=1))
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> MediaIndex:
        """Read an index folder; a missing or inconsistent one is a ``CheckpointError`` naming the file."""
        from safetensors.numpy import load_file

        d = recover_dir(Path(folder).expanduser())
        meta_path, vec_path = d / META_FILE, d / VECTORS_FILE
        if not meta_path.is_file():
            raise CheckpointError(f"{d}: not a media index (no {META_FILE}; build one with `omnibind index build`)")
        try:
            meta = json.loads(meta_path.read_text())
            want = meta.get("vectors_sha256")  # absent in indexes written before it was recorded
            if want is not None and content_hash(vec_path) != want:
                raise CheckpointError(f"{vec_path}: hash does not match {META_FILE} (corrupt or replaced file)")
            vectors = load_file(str(vec_path))["vectors"]
            entries = [Entry(str(e["path"]), str(e["modality"]), str(e["sha256"])) for e in meta["entries"]]
            dim = int(meta["dim"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{d}: cannot read the media index: {type(e).__name__}: {e}") from None
        if meta.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"{meta_path}: index format {meta.get('format')!r}; omnibind reads {FORMAT_VERSION}")
        if vectors.shape != (len(entries), dim):
            raise CheckpointError(
                f"{vec_path}: {vectors.shape[0]} vectors of {vectors.shape[1:]} for {len(entries)} entries of dim {dim}"
            )
        index = cls(dim, fingerprint=str(meta.get("fingerprint", "")), root=meta.get("root"))
        if len(entries):
            index.add(entries, vectors)
        return index


def bind_fingerprint(model: Any) -> str:
    """What makes two models' bind spaces the same: config of encoders + bind heads, encoder
    fingerprints and the bind heads' weights. An index built by one model is refused by another."""
    import hashlib

    core = model.core
    cfg = model.config.to_dict()
    h = hashlib.sha256(json.dumps([cfg.get("encoders"), cfg.get("bind")], sort_keys=True, default=str).encode())
    for m, enc in sorted(core.encoders.items()):
        h.update(f"{m}:{enc.fingerprint()}".encode())
    for name, t in sorted(core.bind.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    return "bind-" + h.hexdigest()[:20]


def check_compatible(index: MediaIndex, model: Any) -> None:
    """Refuse to search an index whose vectors another model's bind space made."""
    if index.dim != model.config.bind.dim:
        raise ConfigError(f"the index holds {index.dim}-d vectors; this model's bind space has {model.config.bind.dim}")
    fp = bind_fingerprint(model)
    if index.fingerprint and index.fingerprint != fp:
        raise ConfigError(
            f"the index was built by another model's bind space ({index.fingerprint}, this model: {fp}); "
            "rebuild it with `omnibind index build` and this model"
        )
