"""Encoder features computed once per run (and optionally kept on disk) so frozen encoders never
run twice: every epoch and every later stage reads the stored features.

Media are keyed by content (``omnibind.hashing.media_key``: the file's bytes or the in-memory
data, modality, format and loader options — the same key the on-disk cache and the eval cache
use); the store is split by encoder fingerprint, so a changed encoder never serves stale features.
Trainable encoders (the IMU CNN) are never cached: their outputs change as they learn.

What is kept follows the projectors' inputs (``ProjectorConfig.inputs``): pooled features always
(the bind heads, the ``pooled`` input, and the ``classes`` input, which the encoder's classifier
derives from them), token sequences only for modalities whose projector reads tokens (a Q-Former,
or ``feature_mlp`` with ``tokens``), since an image's 7×7×1280 map is 50× its pooled vector.

On disk (``folder`` given): the shared ``omnibind.data.feature_cache`` — content-keyed safetensors
shards per encoder fingerprint, reused across runs and stages; no pickles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from omnibind.encoders.base import EncoderOutput
from omnibind.errors import ConfigError, InputError
from omnibind.hashing import media_key, text_key
from omnibind.messages import MediaPart, TextPart


def part_key(part: MediaPart | TextPart) -> str | None:
    """The content key of a part (``omnibind.hashing``), or None when it cannot be cached.

    None: a source with no content hash (an arbitrary object), or a file that cannot be read — the
    decoder then reports the unreadable file as the typed ``InputError`` it always did.
    """
    if isinstance(part, TextPart):
        return text_key(part.text)
    try:
        return media_key(part.modality, part.source, format=part.format, options=part.options)
    except (ValueError, OSError):
        return None


class FeatureStore:
    """Precomputed encoder outputs for a model's frozen encoders."""

    def __init__(self, core: Any, *, folder: str | Path | None = None, keep_tokens: bool | None = None):
        """``keep_tokens``: keep token sequences for every modality (True), none (False), or — the
        default — for the modalities whose projector reads them (``token_modalities``)."""
        self.core = core
        self.folder = Path(folder) if folder else None
        if keep_tokens is None:
            self.token_modalities = token_modalities(core)
        else:
            self.token_modalities = set(core.encoders) if keep_tokens else set()
        self.keep_tokens = bool(self.token_modalities)
        self._mem: dict[str, EncoderOutput] = {}
        self._fingerprints: dict[str, str] = {}
        self.hits = 0
        self.misses = 0

    # --- identity ------------------------------------------------------------------------
    def _cacheable(self, modality: str) -> bool:
        enc = self.core.encoders[modality] if modality in self.core.encoders else None
        return enc is not None and not enc.trainable

    def _shard(self, modality: str) -> str:
        # frozen encoders cannot change during a run: hash their weights once, not per lookup
        if modality not in self._fingerprints:
            self._fingerprints[modality] = f"{modality}-{self.core.encoders[modality].fingerprint()}"
        return self._fingerprints[modality]

    def _mem_key(self, modality: str, key: str) -> str:
        return f"{self._shard(modality)}/{key}"

    # --- lookup (the model's FeatureLookup) ------------------------------------------------
    def lookup(self, part: MediaPart | TextPart) -> EncoderOutput | None:
        modality = "text" if isinstance(part, TextPart) else part.modality
        key = part_key(part)
        if key is None or modality not in self.core.encoders or not self._cacheable(modality):
            return None
        out = self._mem.get(self._mem_key(modality, key))
        if out is None:
            self.misses += 1
        else:
            self.hits += 1
        return out

    __call__ = lookup

    # --- filling -------------------------------------------------------------------------
    def precompute(
        self,
        parts: Iterable[MediaPart | TextPart],
        *,
        batch_size: int = 16,
        progress: bool = True,
        on_error: Callable[[MediaPart, InputError], None] | None = None,
    ) -> int:
        """Encode every not-yet-stored part (grouped by modality, batched); returns how many were encoded.

        With a folder, features go through ``omnibind.data.feature_cache.FeatureCache`` (content-keyed
        safetensors shards written as encoding proceeds, so a killed run keeps what it computed).

        ``on_error``: a medium that cannot be decoded (corrupt, truncated or missing file: an
        ``InputError``) is reported as ``on_error(part, error)`` and skipped, and so is one whose
        encoder trains (its features are not stored), which is decoded once here to find out. A
        part ``on_error`` saw is never looked up as stored; the caller drops the samples that use
        it. Without ``on_error`` the first such error propagates.
        """
        from omnibind.modalities import load_part

        todo: dict[str, dict[str, MediaPart | TextPart]] = defaultdict(dict)
        checked: set[tuple[str, str]] = set()
        for p in parts:
            modality = "text" if isinstance(p, TextPart) else p.modality
            if modality not in self.core.encoders:
                continue
            key = part_key(p)
            if on_error is not None and isinstance(p, MediaPart) and (key is None or not self._cacheable(modality)):
                if (modality, key or repr(p.source)) not in checked:
                    checked.add((modality, key or repr(p.source)))
                    self._check_decodes(p, on_error)
            if key is None or not self._cacheable(modality):
                continue
            if self._mem_key(modality, key) not in self._mem:
                todo[modality][key] = p
        done = 0
        for modality, items in todo.items():
            enc = self.core.encoders[modality]

            def loader(part: MediaPart | TextPart) -> Any:
                if isinstance(part, TextPart):
                    return lambda: part.text
                return lambda: load_part(part, self.core.limits)

            def failed(key: str, err: InputError, items: dict[str, Any] = items) -> None:
                if on_error is None:
                    raise err
                on_error(items[key], err)  # type: ignore[arg-type]

            keep = modality in self.token_modalities
            keys = list(items)
            on_disk = [k for k in keys if _has_file(items[k])] if self.folder is not None else []
            if on_disk:
                from omnibind.data.feature_cache import FeatureCache

                cache = FeatureCache(self.folder, store_tokens=keep, progress=progress)  # type: ignore[arg-type]
                pairs = [(k, loader(items[k])) for k in on_disk]  # the same content key on disk
                with torch.no_grad():
                    bad = cache.fill(enc, pairs, batch_size=batch_size, desc=f"features {modality}", on_error=failed)
                good = [k for k in on_disk if k not in bad]
                done += cache.computed
                if good:
                    out = cache.read(enc, good)
                    for j, k in enumerate(good):
                        self._mem[self._mem_key(modality, k)] = _row(out, j, keep)
                keys = [k for k in keys if k not in set(on_disk)]
            if not keys:
                continue
            from tqdm import tqdm

            bar = tqdm(total=len(keys), desc=f"features {modality}", unit="item", disable=not progress)
            for i in range(0, len(keys), batch_size):
                chunk, data = [], []
                for k in keys[i : i + batch_size]:
                    try:
                        data.append(loader(items[k])())
                    except InputError as e:
                        failed(k, e)
                        continue
                    chunk.append(k)
                if chunk:
                    with torch.no_grad():
                        out = enc.encode(data)
                    for j, k in enumerate(chunk):
                        self._mem[self._mem_key(modality, k)] = _row(out, j, keep)
                bar.update(len(keys[i : i + batch_size]))
                done += len(chunk)
            bar.close()
        return done

    def _check_decodes(self, part: MediaPart, on_error: Callable[[MediaPart, InputError], None]) -> None:
        """Decode a medium whose features are not stored, once, so a bad file is found before training."""
        from omnibind.modalities import load_part

        try:
            load_part(part, self.core.limits)
        except InputError as e:
            on_error(part, e)


def token_modalities(core: Any) -> set[str]:
    """The encoder modalities whose projector reads encoder tokens (``Projector.uses_tokens``)."""
    out = set()
    for m in core.encoders:
        try:
            proj = core.projector_of(m)
        except ConfigError:  # a modality no projector serves (bind-only models) needs no tokens
            continue
        if getattr(proj, "uses_tokens", False):
            out.add(m)
    return out


def _has_file(part: MediaPart | TextPart) -> bool:
    return isinstance(part, TextPart) or isinstance(part.source, (str, Path))


def _row(out: EncoderOutput, j: int, keep_tokens: bool) -> EncoderOutput:
    """Item ``j`` as kept in memory: on the CPU, detached, tokens only when a projector reads them."""
    r = out.row(j)
    tokens = r.tokens.detach().cpu().clone() if keep_tokens and r.tokens is not None else None
    return EncoderOutput(pooled=r.pooled.detach().cpu().clone(), tokens=tokens)
