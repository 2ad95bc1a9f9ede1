"""Encoder features computed once per run (and optionally kept on disk) so frozen encoders never
run twice: every epoch and every later stage reads the stored features.

Media are keyed by modality + file path (or the part's ``name`` for in-memory data); the store is
split by encoder fingerprint, so a changed encoder never serves stale features. Trainable encoders
(the IMU CNN) are never cached: their outputs change as they learn.

On disk: ``<folder>/<modality>-<fingerprint>.safetensors`` (``pooled.<key hash>`` and, when a
projector reads encoder tokens, ``tokens.<key hash>``) — no pickles.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from omnibind.encoders.base import EncoderOutput
from omnibind.messages import MediaPart, TextPart


def part_key(part: MediaPart | TextPart) -> str | None:
    """A stable identity for a media part (None: cannot be cached, e.g. unnamed arrays)."""
    if isinstance(part, TextPart):
        return "text:" + part.text
    if isinstance(part.source, (str, Path)):
        opts = ";".join(f"{k}={part.options[k]}" for k in sorted(part.options))
        return f"{part.modality}:{Path(part.source).expanduser()}|{opts}"
    if part.name:
        return f"{part.modality}:name:{part.name}"
    return None


def _h(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:20]


class FeatureStore:
    """Precomputed encoder outputs for a model's frozen encoders."""

    def __init__(self, core: Any, *, folder: str | Path | None = None, keep_tokens: bool | None = None):
        self.core = core
        self.folder = Path(folder) if folder else None
        if keep_tokens is None:  # only token-reading projectors (Q-Former) need the token sequences
            keep_tokens = any(getattr(p, "uses_tokens", False) for p in core.projectors.values())
        self.keep_tokens = keep_tokens
        self._mem: dict[str, EncoderOutput] = {}
        self._loaded: set[str] = set()
        self.hits = 0
        self.misses = 0

    # --- identity ------------------------------------------------------------------------
    def _cacheable(self, modality: str) -> bool:
        enc = self.core.encoders[modality] if modality in self.core.encoders else None
        return enc is not None and not enc.trainable

    def _shard(self, modality: str) -> str:
        return f"{modality}-{self.core.encoders[modality].fingerprint()}"

    # --- lookup (the model's FeatureLookup) ------------------------------------------------
    def lookup(self, part: MediaPart | TextPart) -> EncoderOutput | None:
        modality = "text" if isinstance(part, TextPart) else part.modality
        key = part_key(part)
        if key is None or modality not in self.core.encoders or not self._cacheable(modality):
            return None
        self._load_shard(modality)
        out = self._mem.get(f"{self._shard(modality)}/{_h(key)}")
        if out is None:
            self.misses += 1
        else:
            self.hits += 1
        return out

    __call__ = lookup

    # --- filling -------------------------------------------------------------------------
    def precompute(self, parts: Iterable[MediaPart | TextPart], *, batch_size: int = 16, progress: bool = True) -> int:
        """Encode every not-yet-stored part (grouped by modality, batched); returns how many were encoded."""
        from tqdm import tqdm

        from omnibind.modalities import load_part

        todo: dict[str, dict[str, MediaPart | TextPart]] = defaultdict(dict)
        for p in parts:
            modality = "text" if isinstance(p, TextPart) else p.modality
            key = part_key(p)
            if key is None or modality not in self.core.encoders or not self._cacheable(modality):
                continue
            self._load_shard(modality)
            full = f"{self._shard(modality)}/{_h(key)}"
            if full not in self._mem:
                todo[modality][full] = p
        done = 0
        for modality, items in todo.items():
            keys = list(items)
            enc = self.core.encoders[modality]
            bar = tqdm(total=len(keys), desc=f"features {modality}", unit="item", disable=not progress)
            for i in range(0, len(keys), batch_size):
                chunk = keys[i : i + batch_size]
                data = [
                    items[k].text if isinstance(items[k], TextPart) else load_part(items[k], self.core.limits)
                    for k in chunk
                ]
                with torch.no_grad():
                    out = enc.encode(data)
                for j, k in enumerate(chunk):
                    self._mem[k] = _row(out, j, self.keep_tokens)
                bar.update(len(chunk))
                done += len(chunk)
            bar.close()
            self._save_shard(modality)
        return done

    # --- disk ----------------------------------------------------------------------------
    def _path(self, modality: str) -> Path | None:
        return self.folder / f"{self._shard(modality)}.safetensors" if self.folder else None

    def _load_shard(self, modality: str) -> None:
        shard = self._shard(modality)
        if shard in self._loaded:
            return
        self._loaded.add(shard)
        path = self._path(modality)
        if path is None or not path.is_file():
            return
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        for name, t in tensors.items():
            kind, _, h = name.partition(".")
            if kind != "pooled":
                continue
            tok = tensors.get(f"tokens.{h}") if self.keep_tokens else None
            if self.keep_tokens and tok is None:
                continue  # stored without tokens: recompute
            self._mem[f"{shard}/{h}"] = EncoderOutput(pooled=t, tokens=tok)

    def _save_shard(self, modality: str) -> None:
        path = self._path(modality)
        if path is None:
            return
        from safetensors.torch import save_file

        shard = self._shard(modality)
        tensors: dict[str, torch.Tensor] = {}
        for k, out in self._mem.items():
            s, _, h = k.partition("/")
            if s != shard:
                continue
            tensors[f"pooled.{h}"] = out.pooled.contiguous()
            if out.tokens is not None:
                tensors[f"tokens.{h}"] = out.tokens.contiguous()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(path)


def _row(out: EncoderOutput, j: int, keep_tokens: bool) -> EncoderOutput:
    pooled = out.pooled[j].detach().cpu().clone()
    if not keep_tokens or out.tokens is None:
        return EncoderOutput(pooled=pooled)
    tok = out.tokens[j].detach().cpu()
    if out.token_mask is not None:
        tok = tok[out.token_mask[j].bool().cpu()]
    return EncoderOutput(pooled=pooled, tokens=tok.clone())
