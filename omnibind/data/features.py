"""Glue between datasets and the feature cache: (key, loader) items for a dataset's media."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omnibind.data.feature_cache import FeatureCache
from omnibind.data.format import Sample
from omnibind.hashing import media_key


def media_items(samples: list[Sample], modality: str, limits: Any = None) -> list[tuple[str, Callable[[], Any]]]:
    """Distinct media of one modality as ``(content key, loader)`` pairs for ``FeatureCache``.

    The key (``omnibind.hashing.media_key``) hashes the file's bytes, modality and loader options,
    so copies of a file share one entry — the same key training's ``FeatureStore`` uses.
    """
    from omnibind import modalities

    seen: dict[str, Callable[[], Any]] = {}
    for s in samples:
        for m in s.media:
            if m.type != modality:
                continue
            path = str(m.resolve(s.base_dir))
            key = media_key(m.type, path, options=m.options)
            if key not in seen:
                seen[key] = lambda p=path, o=dict(m.options), t=m.type: modalities.load(t, p, options=o, limits=limits)
    return list(seen.items())


def dataset_features(
    samples: list[Sample],
    encoders: Mapping[str, Any],
    cache: FeatureCache,
    *,
    limits: Any = None,
    batch_size: int = 16,
) -> dict[str, int]:
    """Encode every medium of the dataset once per modality (skips what the cache already holds)."""
    counts = {}
    for modality in sorted({m.type for s in samples for m in s.media}):
        if modality not in encoders:
            continue
        items = media_items(samples, modality, limits)
        cache.get_or_compute(encoders[modality], items, batch_size=batch_size, desc=f"encoding {modality}")
        counts[modality] = len(items)
    return counts
