"""Data builders: packaged data → training sets (JSONL + media under an output folder).

``build(source, out, limit=..., seed=..., splits=...)`` runs one builder; ``BUILDERS`` lists them.
Every builder routes items through ``omnibind.data.splits.split_of`` and writes
``<out>/<source>.<split>.jsonl``; see docs/DATA.md for what each source holds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# name → (module, function, default limit per split). Modules import lazily (pyts, skimage, trimesh).
BUILDERS: dict[str, tuple[str, str, int | None]] = {
    "tuxpaint": ("tuxpaint", "build_tuxpaint", None),
    "tuxpaint-sounds": ("tuxpaint", "build_tuxpaint_sounds", None),
    "fashion-mnist": ("fashion_mnist", "build_fashion_mnist", 2000),
    "easy-vqa": ("easy_vqa", "build_easy_vqa", 1000),
    "basicmotions": ("basicmotions", "build_basicmotions", None),
    "meshes": ("meshes", "build_meshes", None),
    "stereo": ("meshes", "build_stereo", None),
    "text-chat": ("textchat", "build_text_chat", 500),
    "gcompris-photos": ("gcompris", "build_gcompris_photos", None),
    "gcompris-sounds": ("gcompris", "build_gcompris_sounds", None),
    "openclipart": ("openclipart", "build_openclipart", None),
    # made of other items: scenes of training stamps; pairs read the caption files built before them
    "scenes": ("mixes", "build_scenes", None),
    "pairs": ("mixes", "build_pairs", None),
}
UNSET: Any = object()


def builder(source: str) -> Callable[..., Any]:
    if source not in BUILDERS:
        raise ValueError(f"unknown data source {source!r}; expected one of {', '.join(BUILDERS)}")
    module, func, _ = BUILDERS[source]
    return getattr(importlib.import_module(f"omnibind.data.builders.{module}"), func)


def build(source: str, out: str | Path, *, limit: int | None = UNSET, seed: int = 0, splits=None, **options: Any):
    """Build one source into ``out``; ``limit`` = items per split (default: the source's own)."""
    kwargs: dict[str, Any] = {"seed": seed, **options}
    kwargs["limit"] = BUILDERS[source][2] if limit is UNSET and source in BUILDERS else limit
    if splits is not None:
        kwargs["splits"] = tuple(splits)
    return builder(source)(Path(out), **kwargs)
