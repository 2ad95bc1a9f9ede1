"""The evaluation sample, the registry of dataset builders, and ``--limit`` selection.

A builder returns ``Sample``s in a fixed order; ``select`` applies ``--limit`` deterministically.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from omnibind.messages import MediaPart
from omnibind.registry import Registry


@dataclass
class Sample:
    """One evaluation sample.

    ``target`` is the gold answer (class name, ``yes``/``no``, ``first``/``second``, or a caption);
    ``options`` the closed answer set (``None`` for open captioning); ``refs`` reference captions;
    ``vars`` fill the task's prompt; ``meta`` holds ``group`` (samples kept together by
    ``--limit``, e.g. the two MME questions of one image) and anything the report shows.
    """

    id: str
    item: str
    source: str
    media: list[MediaPart]
    target: str
    options: list[str] | None = None
    refs: list[str] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return str(self.meta.get("group", self.id))

    def log_view(self) -> dict[str, Any]:
        """A JSON-friendly description for per-sample logs (media by name, not content)."""
        return {
            "id": self.id,
            "item": self.item,
            "source": self.source,
            "media": [{"modality": m.modality, "name": m.display_name} for m in self.media],
            "target": self.target,
            "options": self.options,
            "refs": self.refs or None,
            "vars": self.vars,
            "meta": {k: v for k, v in self.meta.items() if _jsonable(v)},
        }


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))


DATASETS: Registry[Callable[..., list[Sample]]] = Registry("eval dataset")
"""Builders by name: ``builder(**args) -> list[Sample]`` (args come from the task file)."""


def build(name: str, **args: Any) -> list[Sample]:
    """Build (and memoise per process) the full held-out set of one dataset builder."""
    key = json.dumps(args, sort_keys=True, default=str)
    return list(_build_cached(name, key))


@lru_cache(maxsize=32)
def _build_cached(name: str, key: str) -> tuple[Sample, ...]:
    return tuple(DATASETS.get(name)(**json.loads(key)))


def select(samples: Sequence[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """A deterministic subset of about ``limit`` samples.

    Whole groups are kept (MME image pairs, POPE images), and groups are taken round-robin over
    strata (the target class, unless ``meta["stratum"]`` says otherwise) in a seeded order, so a
    small limit still covers every class evenly.
    """
    if limit is None or limit >= len(samples):
        return list(samples)
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    strata: dict[str, list[str]] = defaultdict(list)
    for g, members in groups.items():
        strata[str(members[0].meta.get("stratum", members[0].target))].append(g)
    rng = np.random.default_rng(seed)
    order = {k: list(rng.permutation(v)) for k, v in sorted(strata.items())}
    chosen: list[str] = []
    count = 0
    while count < limit and any(order.values()):
        for k in sorted(order):
            if order[k] and count < limit:
                g = order[k].pop(0)
                chosen.append(g)
                count += len(groups[g])
    keep = set(chosen)
    return [s for s in samples if s.group in keep]
