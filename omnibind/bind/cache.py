"""Cache-enhanced inference (ImageBind-LLM, eq. 3–4).

A FAISS index holds bind-space *image* features. A non-image input retrieves its top-k nearest
images, averages them weighted by softmax similarity, and is blended with weight ``alpha``:
``f' = normalise(alpha * retrieved + (1 - alpha) * f)``. This pulls features of modalities the
projector never saw in training toward the image distribution it did see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.atomic import atomic_file, atomic_write_text
from omnibind.errors import CheckpointError


class RetrievalCache:
    """An inner-product FAISS index over L2-normalised image features."""

    def __init__(self, dim: int):
        import faiss

        self.dim = dim
        self.index = faiss.IndexFlatIP(dim)
        self.keys: list[str] = []

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, vectors: np.ndarray | torch.Tensor, keys: list[str] | None = None) -> None:
        v = _as_f32(vectors)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) vectors, got {v.shape}")
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
        self.index.add(v)
        self.keys.extend(keys if keys is not None else [str(len(self.keys) + i) for i in range(len(v))])

    def retrieve(self, queries: np.ndarray | torch.Tensor, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) queries → (B, k) similarities and (B, k) indices."""
        if len(self) == 0:
            raise ValueError("retrieval cache is empty")
        k = min(top_k, len(self))
        return self.index.search(_as_f32(queries), k)

    def blend(self, queries: torch.Tensor, *, top_k: int, alpha: float, temperature: float = 0.05) -> torch.Tensor:
        """ImageBind-LLM's blend of each query with its softmax-weighted top-k images."""
        sims, idx = self.retrieve(queries.detach(), top_k)
        stored = self.index.reconstruct_n(0, len(self))
        w = torch.softmax(torch.from_numpy(sims) / temperature, dim=-1)
        retrieved = torch.einsum("bk,bkd->bd", w, torch.from_numpy(stored[idx])).to(queries)
        out = alpha * retrieved + (1 - alpha) * queries
        return torch.nn.functional.normalize(out, dim=-1)

    def save(self, folder: str | Path) -> None:
        """Write vectors and keys atomically into ``folder``; no pickles.

        ``cache.safetensors`` holds the vectors *and* their keys (in its metadata), so the one file
        that is swapped in last is the whole truth: a kill between the two writes leaves the old or
        the new cache, never new vectors under old keys. ``cache_keys.json`` is kept for readers of
        the older layout.
        """
        from safetensors.numpy import save_file

        d = Path(folder)
        keys = json.dumps({"dim": self.dim, "keys": self.keys})
        atomic_write_text(d / "cache_keys.json", keys)
        with atomic_file(d / "cache.safetensors") as tmp:
            save_file({"vectors": self.index.reconstruct_n(0, len(self))}, str(tmp), metadata={"keys": keys})

    @classmethod
    def load(cls, folder: str | Path) -> RetrievalCache:
        from safetensors import SafetensorError, safe_open

        d = Path(folder)
        try:
            with safe_open(str(d / "cache.safetensors"), framework="numpy") as f:
                vectors = f.get_tensor("vectors")
                embedded = (f.metadata() or {}).get("keys")
            meta = json.loads(embedded if embedded is not None else (d / "cache_keys.json").read_text())
        except (OSError, ValueError, KeyError, SafetensorError) as e:
            raise CheckpointError(f"{d}: cannot read retrieval cache: {e}") from e
        if len(meta["keys"]) != len(vectors):
            raise CheckpointError(f"{d}: retrieval cache holds {len(vectors)} vectors for {len(meta['keys'])} keys")
        cache = cls(int(meta["dim"]))
        cache.add(vectors, list(meta["keys"]))
        return cache


def _as_f32(v: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.ascontiguousarray(v, dtype=np.float32)


def build_image_cache(model: Any, images: list[Path], out: str | Path, *, batch_size: int = 16) -> RetrievalCache:
    """Embed ``images`` with ``model`` (an ``omnibind.Model``) into a saved retrieval cache."""
    from tqdm import tqdm

    from omnibind.messages import MediaPart

    cache = RetrievalCache(model.config.bind.dim)
    for i in tqdm(range(0, len(images), batch_size), desc="image features", unit="batch"):
        chunk = images[i : i + batch_size]
        vecs = model.embed([MediaPart("image", str(p)) for p in chunk])
        cache.add(vecs, [str(p) for p in chunk])
    cache.save(out)
    return cache
