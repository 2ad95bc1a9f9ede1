"""A feature cache for frozen encoders: each medium is encoded once, then reused across epochs,
stages and runs.

Layout: ``<root>/<encoder fingerprint>/shard-*.safetensors`` plus ``encoder.json``. Each shard holds
``pooled`` (n, D), optionally ``tokens`` (n, L, Dt) and ``token_mask`` (n, L), and its item keys in
the safetensors metadata (so there is no separate index to corrupt: the index is rebuilt by reading
shard headers). Shards are written atomically (temp file + rename) under unique names, so a killed
run loses at most the shard in progress and several processes may fill one cache at once; a
shard that cannot be read all the same (copied half, damaged disk) is left out with a warning and
its items are encoded again; temporaries of killed writers are removed when the folder is next
indexed (``omnibind.atomic.sweep_stale``). A new
encoder fingerprint (other weights, other preprocessing params) means a new folder: stale features
are never served. A cache asked for tokens (``store_tokens``, what a token-reading projector
needs) treats an item stored without them (by a pooled-only run) as missing and encodes it again,
so it never hands back pooled features alone. Never pickle: safetensors only.

Keys should identify the *content* (``omnibind.hashing.media_key`` hashes the file bytes, modality
and loader options; ``text_key`` a text), so a renamed file hits the cache and an edited file misses
it. Features are of the un-augmented media;
training with augmentation encodes on the fly instead.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omnibind.atomic import atomic_write_bytes, atomic_write_text, crash_point, sweep_stale
from omnibind.errors import InputError

SHARD_GLOB = "shard-*.safetensors"


class FeatureCache:
    """Encoded features on disk, keyed by encoder fingerprint + item key.

    ``FeatureCache(root).get_or_compute(encoder, [(key, loader), ...])`` returns an
    ``EncoderOutput`` for the items in the given order; only the missing ones are loaded
    (``loader()`` gives the modality data) and encoded, in batches, with a progress bar.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        shard_size: int = 256,
        store_tokens: bool = True,
        dtype: str = "float32",
        progress: bool = True,
    ):
        if dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"unsupported cache dtype {dtype!r}")
        self.root = Path(root)
        self.shard_size = max(1, int(shard_size))
        self.store_tokens = store_tokens
        self.dtype = dtype
        self.progress = progress
        self._index: dict[str, dict[str, tuple[Path, int]]] = {}
        self._with_tokens: dict[str, set[str]] = {}  # per fingerprint: keys stored with their tokens
        self.computed = 0  # items encoded by this instance (for tests and logs)

    # ------------------------------------------------------------------ index

    def folder(self, encoder: Any) -> Path:
        return self.root / _safe_name(encoder.fingerprint())

    def _load_index(self, fp: str) -> dict[str, tuple[Path, int]]:
        if fp not in self._index:
            from safetensors import safe_open

            index: dict[str, tuple[Path, int]] = {}
            with_tokens: set[str] = set()
            from safetensors import SafetensorError

            folder = self.root / _safe_name(fp)
            if folder.is_dir():
                sweep_stale(folder, r"shard-.*")
            for shard in sorted(folder.glob(SHARD_GLOB)):
                try:
                    with safe_open(str(shard), framework="pt") as f:
                        keys = json.loads((f.metadata() or {}).get("keys", "[]"))
                        has_tokens = "tokens" in set(f.keys())
                except (SafetensorError, OSError, ValueError) as e:
                    # never written torn by omnibind (atomic rename), but a copied or damaged cache
                    # may hold one: its items count as missing and are encoded again
                    warnings.warn(f"{shard}: unreadable feature-cache shard, ignored ({e})", stacklevel=2)
                    continue
                self._add(index, with_tokens, keys, shard, has_tokens)
            self._index[fp] = index
            self._with_tokens[fp] = with_tokens
        return self._index[fp]

    @staticmethod
    def _add(
        index: dict[str, tuple[Path, int]], with_tokens: set[str], keys: list[str], shard: Path, has_tokens: bool
    ) -> None:
        """Index a shard's keys: the first shard wins, except that one with tokens replaces one without."""
        for row, key in enumerate(keys):
            if key not in index or (has_tokens and key not in with_tokens):
                index[key] = (shard, row)
                if has_tokens:
                    with_tokens.add(key)

    def _usable(self, fp: str, key: str, want_tokens: bool) -> bool:
        return key in self._load_index(fp) and (not want_tokens or key in self._with_tokens[fp])

    def keys(self, encoder: Any) -> set[str]:
        """Keys cached for this encoder."""
        return set(self._load_index(encoder.fingerprint()))

    def __contains__(self, pair: tuple[Any, str]) -> bool:
        encoder, key = pair
        return key in self._load_index(encoder.fingerprint())

    # ------------------------------------------------------------------ main API

    def get_or_compute(
        self,
        encoder: Any,
        items: Sequence[tuple[str, Callable[[], Any]]],
        *,
        batch_size: int = 16,
        desc: str | None = None,
    ) -> Any:
        """Features for ``items`` (key, loader) in order, encoding only what is not cached yet.

        A loader that raises stops the call (its ``InputError`` names the file); ``fill`` with
        ``on_error`` skips such items instead.
        """
        if not items:
            raise ValueError("get_or_compute needs at least one item")
        self.fill(encoder, items, batch_size=batch_size, desc=desc)
        return self.read(encoder, [k for k, _ in items])

    def fill(
        self,
        encoder: Any,
        items: Sequence[tuple[str, Callable[[], Any]]],
        *,
        batch_size: int = 16,
        desc: str | None = None,
        on_error: Callable[[str, InputError], None] | None = None,
    ) -> set[str]:
        """Encode and store the items not cached yet; returns the keys whose loader failed.

        With ``on_error``, an item whose loader raises ``InputError`` (a corrupt, truncated or
        missing file) is reported as ``on_error(key, error)`` and left out: nothing is stored for
        it, so a later call tries it again. Without, the error propagates.
        """
        fp = encoder.fingerprint()
        self._load_index(fp)
        # an encoder without tokens stores none: only then may pooled-only rows serve a tokens reader
        want_tokens = self.store_tokens and getattr(encoder, "token_dim", None) is not None
        missing = list(dict.fromkeys(k for k, _ in items if not self._usable(fp, k, want_tokens)))
        if not missing:
            return set()
        loaders = dict(items)
        return self._compute(encoder, fp, [(k, loaders[k]) for k in missing], batch_size, desc, on_error)

    def read(self, encoder: Any, keys: Sequence[str]) -> Any:
        """The stored features of ``keys`` (all cached already), in order, as one ``EncoderOutput``."""
        from omnibind.encoders.base import EncoderOutput

        if not keys:
            raise ValueError("read needs at least one key")
        return EncoderOutput(**_stack(self._read(encoder.fingerprint(), list(keys))))

    def _compute(
        self,
        encoder: Any,
        fp: str,
        todo: list[tuple[str, Callable[[], Any]]],
        bs: int,
        desc: str | None,
        on_error: Callable[[str, InputError], None] | None,
    ) -> set[str]:
        from tqdm.auto import tqdm

        self._write_encoder_info(encoder, fp)
        pending: list[dict[str, Any]] = []
        failed: set[str] = set()
        bar = tqdm(total=len(todo), desc=desc or f"encoding ({fp})", unit="item", disable=not self.progress)
        try:
            for start in range(0, len(todo), max(1, bs)):
                chunk = todo[start : start + bs]
                keys, data = [], []
                for key, loader in chunk:
                    try:
                        data.append(loader())
                    except InputError as e:
                        if on_error is None:
                            raise
                        on_error(key, e)
                        failed.add(key)
                        continue
                    keys.append(key)
                if data:
                    out = encoder.encode(data)
                    pending.extend(_split_rows(out, keys, self.store_tokens))
                    self.computed += len(keys)
                bar.update(len(chunk))
                while len(pending) >= self.shard_size:
                    self._write_shard(fp, pending[: self.shard_size])
                    pending = pending[self.shard_size :]
            if pending:
                self._write_shard(fp, pending)
        finally:
            bar.close()
        return failed

    def _write_encoder_info(self, encoder: Any, fp: str) -> None:
        info = self.root / _safe_name(fp) / "encoder.json"
        if not info.exists():
            meta = {"fingerprint": fp, "class": type(encoder).__name__, "params": getattr(encoder, "params", {})}
            atomic_write_text(info, json.dumps(meta, indent=2, sort_keys=True, default=str))

    def _write_shard(self, fp: str, rows: list[dict[str, Any]]) -> None:
        import torch
        from safetensors.torch import save

        dtype = getattr(torch, self.dtype)
        tensors = {"pooled": torch.stack([r["pooled"] for r in rows]).to(dtype).contiguous()}
        if all("tokens" in r for r in rows):
            tokens, mask = _pad([r["tokens"] for r in rows], [r["token_mask"] for r in rows])
            tensors["tokens"], tensors["token_mask"] = tokens.to(dtype).contiguous(), mask.contiguous()
        keys = [r["key"] for r in rows]
        meta = {"keys": json.dumps(keys), "fingerprint": fp, "format": "omnibind-features-1"}
        name = f"shard-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.safetensors"
        path = atomic_write_bytes(self.root / _safe_name(fp) / name, save(tensors, metadata=meta))
        self._add(self._load_index(fp), self._with_tokens[fp], keys, path, "tokens" in tensors)
        crash_point("feature_cache.shard", path)  # fault tests kill here: between two shards

    def _read(self, fp: str, keys: list[str]) -> list[dict[str, Any]]:
        from safetensors import safe_open

        index = self._load_index(fp)
        by_shard: dict[Path, list[tuple[int, str]]] = {}
        for key in dict.fromkeys(keys):
            shard, row = index[key]
            by_shard.setdefault(shard, []).append((row, key))
        found: dict[str, dict[str, Any]] = {}
        for shard, wanted in by_shard.items():
            with safe_open(str(shard), framework="pt") as f:
                names = set(f.keys())
                for row, key in wanted:
                    found[key] = _row_from(f, names, row)
        return [found[k] for k in keys]

    # ------------------------------------------------------------------ maintenance

    def fingerprints(self) -> list[str]:
        """Fingerprints with a folder in this cache."""
        return sorted(p.name for p in self.root.glob("*") if p.is_dir()) if self.root.is_dir() else []

    def stats(self) -> dict[str, Any]:
        """Per fingerprint: number of items, shards and bytes on disk."""
        out = {}
        for fp in self.fingerprints():
            shards = list((self.root / fp).glob(SHARD_GLOB))
            out[fp] = {
                "items": len(self._load_index(fp)),
                "shards": len(shards),
                "bytes": sum(s.stat().st_size for s in shards),
            }
        return out

    def prune(self, keep: Sequence[str]) -> list[str]:
        """Delete the folders of fingerprints not in ``keep`` (features of replaced encoders)."""
        import shutil

        removed = []
        for fp in self.fingerprints():
            if fp not in {_safe_name(k) for k in keep}:
                shutil.rmtree(self.root / fp)
                self._index.pop(fp, None)
                removed.append(fp)
        return removed


def _safe_name(fp: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in fp)


def _split_rows(out: Any, keys: list[str], store_tokens: bool) -> list[dict[str, Any]]:
    """One dict per item from a batched ``EncoderOutput`` (padding tokens removed)."""
    import torch

    rows = []
    for i, key in enumerate(keys):
        row: dict[str, Any] = {"key": key, "pooled": out.pooled[i].detach().float().cpu()}
        if store_tokens and out.tokens is not None:
            toks = out.tokens[i].detach().float().cpu()
            mask = (
                out.token_mask[i].detach().cpu().bool()
                if out.token_mask is not None
                else torch.ones(toks.shape[0], dtype=torch.bool)
            )
            row["tokens"], row["token_mask"] = toks, mask
        rows.append(row)
    return rows


def _pad(tokens: list[Any], masks: list[Any]) -> tuple[Any, Any]:
    import torch

    length = max(t.shape[0] for t in tokens)
    out = torch.zeros(len(tokens), length, tokens[0].shape[-1], dtype=tokens[0].dtype)
    mask = torch.zeros(len(tokens), length, dtype=torch.bool)
    for i, (t, m) in enumerate(zip(tokens, masks)):
        out[i, : t.shape[0]] = t
        mask[i, : m.shape[0]] = m
    return out, mask


def _row_from(f: Any, names: set[str], row: int) -> dict[str, Any]:
    item = {"pooled": f.get_slice("pooled")[row : row + 1][0].float()}
    if "tokens" in names:
        mask = f.get_slice("token_mask")[row : row + 1][0]
        n = int(mask.nonzero().max()) + 1 if bool(mask.any()) else 0
        item["tokens"] = f.get_slice("tokens")[row : row + 1][0][:n].float()
        item["token_mask"] = mask[:n]
    return item


def _stack(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"pooled": torch.stack([r["pooled"] for r in rows])}
    if all("tokens" in r for r in rows):
        out["tokens"], out["token_mask"] = _pad([r["tokens"] for r in rows], [r["token_mask"] for r in rows])
    return out
