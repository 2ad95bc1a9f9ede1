"""Fixed held-out sets of real labelled photos and sounds (GCompris + scikit-image).

The split of each item is ``omnibind.data.splits.split_of(source, item_id)`` (SHA-256 of
``"<source>/<item id>"``), so training and evaluation agree on any machine and in any order.
The percentages live in ``splits.RULES`` (``RULES`` here is the view of this module's three
sources): GCompris sounds hold out more (25%) than photos (15%) so the sound test set has at least
10 classes; every scikit-image photo is a test photo (like the one real stereo pair). With the
Debian packages installed the test sets are 46 photos of 40 classes and 14 sounds of 13 classes
(``docs/SOURCES.md``); the eval datasets ``heldout_photos`` / ``heldout_sounds`` and the ``seeing``
suite read them (docs/EVALUATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnibind.data import splits
from omnibind.data.sources import gcompris, skimage_photos
from omnibind.data.splits import SplitRule

SOURCES = ("gcompris-photos", "gcompris-sounds", "skimage-photos")
RULES: dict[str, SplitRule] = {s: splits.RULES[s] for s in SOURCES}
"""This module's rules, as ``splits.RULES`` defines them (one definition)."""


@dataclass(frozen=True)
class LabelledFile:
    """One item of a held-out set: source, item id, file, label, basic-level noun and licence."""

    source: str
    item_id: str
    path: Path
    label: str
    basic: str | None
    licence: str


def split(source: str, item_id: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for an item of one of the ``RULES`` sources."""
    if source not in RULES:  # another source's items are not part of these sets
        raise KeyError(source)
    return splits.split_of(source, item_id)


def photo_items() -> list[LabelledFile]:
    """Every labelled real photo of both sources (GCompris webp, scikit-image bundled files)."""
    out = [LabelledFile("gcompris-photos", i.name, i.path, i.label, i.basic, i.licence) for i in gcompris.photos()]
    out += [
        LabelledFile("skimage-photos", p.name, p.path, p.label, p.basic, p.licence) for p in skimage_photos.photos()
    ]
    return out


def sound_items() -> list[LabelledFile]:
    """Every labelled GCompris sound (farm animals, instruments, memory-sound recordings)."""
    return [LabelledFile("gcompris-sounds", i.name, i.path, i.label, i.basic, i.licence) for i in gcompris.sounds()]


def photo_set(which: str = "test") -> list[LabelledFile]:
    """The photos of one split (``"test"`` is the held-out photo set)."""
    return [i for i in photo_items() if split(i.source, i.item_id) == which]


def sound_set(which: str = "test") -> list[LabelledFile]:
    """The sounds of one split (``"test"`` is the held-out sound set)."""
    return [i for i in sound_items() if split(i.source, i.item_id) == which]
