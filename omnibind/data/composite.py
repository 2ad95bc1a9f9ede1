"""Scenes made of several pictures: cut-outs pasted into the cells of a grid on a white canvas.

One copy for both sides: the POPE evaluation composes held-out Tux Paint stamps
(``omnibind.eval.datasets.composites``) and the ``scenes`` training builder composes training
stamps the same way, so "is there an X?" is learnt on pictures that look like the test ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def compose_grid(images: Sequence[str | Path], rng: np.random.Generator, size: int = 336) -> np.ndarray:
    """Paste up to four pictures into distinct random cells of a 2×2 grid (alpha-composited, each
    scaled to 90% of its cell); returns an (size, size, 3) uint8 RGB array."""
    from PIL import Image as PILImage

    if len(images) > 4:
        raise ValueError(f"compose_grid holds at most 4 pictures, got {len(images)}")
    canvas = PILImage.new("RGBA", (size, size), (255, 255, 255, 255))
    cell = size // 2
    cells = rng.permutation(4)[: len(images)]
    for path, c in zip(images, cells):
        with PILImage.open(path) as im:
            im = im.convert("RGBA")
            im.thumbnail((int(cell * 0.9), int(cell * 0.9)))
            x = (c % 2) * cell + (cell - im.width) // 2
            y = (c // 2) * cell + (cell - im.height) // 2
            canvas.alpha_composite(im, (int(x), int(y)))
    return np.asarray(canvas.convert("RGB"))


# Stamp categories that are not single nameable objects (a "yes, there is a cartoon" answer would
# test the category, not the object): left out of scenes on both sides.
SCENE_SKIP = ("symbols", "cartoon", "people", "seasonal", "military", "medical")


def scene_stamps(stamps: Sequence, split: str, source_split) -> list:
    """The stamps of one split usable as scene objects: photo-like categories, short unique names.

    ``source_split(stamp_id)`` gives a stamp's split (``splits.split_of("tuxpaint", id)``)."""
    seen: set[str] = set()
    out = []
    for s in stamps:
        if s.image is None or source_split(s.id) != split:
            continue
        if s.category in SCENE_SKIP or not s.name or len(s.name.split()) > 3 or s.name in seen:
            continue
        seen.add(s.name)
        out.append(s)
    return out
