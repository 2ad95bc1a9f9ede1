"""Fixed held-out sets of real labelled photos and sounds (GCompris + scikit-image).

The split of each item is fixed by ``omnibind.data.splits.bucket(source, item_id)`` (SHA-256 of
``"<source>/<item id>"``), so training and evaluation agree on any machine and in any order.
The percentages are ``RULES`` below: GCompris sounds hold out more (25%) than photos (15%) so the
sound test set has at least 10 classes; every scikit-image photo is a test photo (like the one
real stereo pair in ``splits.RULES``). With the Debian packages installed the test sets are
45 photos of 41 classes and 14 sounds of 13 classes (``docs/SOURCES.md``).

These rules belong in ``splits.RULES`` (the lead merges them); until then ``split`` applies them
with the same bucket arithmetic as ``splits.split_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnibind.data.sources import gcompris, skimage_photos
from omnibind.data.splits import SplitRule, bucket

RULES: dict[str, SplitRule] = {
    "gcompris-photos": SplitRule(test_pct=15, val_pct=5),
    "gcompris-sounds": SplitRule(test_pct=25, val_pct=5),
    "skimage-photos": SplitRule(test_pct=100, val_pct=0),
}


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
    rule = RULES[source]
    b = bucket(source, item_id)
    if b < rule.test_pct:
        return "test"
    return "val" if b < rule.test_pct + rule.val_pct else "train"


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
