"""GCompris photos and sounds (Debian ``gcompris-qt-data``; licences per file in ``docs/SOURCES.md``).

Sources ``gcompris-photos`` (real photos of animals, fruit, tools, monuments...) and
``gcompris-sounds`` (farm animals, instruments, everyday sound events). Their test splits are the
fixed held-out photo and sound sets of ``omnibind.data.sources.heldout`` (same ``split_of`` rule),
so a built train file never holds a held-out item. Each item gives a caption sample and two label
questions, answered with the label people use ("wind turbine", "cow").
"""

from __future__ import annotations

from pathlib import Path

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, caption_samples, item_rng
from omnibind.data.sources import heldout

SPLITS = ("train", "val", "test")


def _build(out: Path, source: str, items, modality: str, caption, *, limit, seed: int, splits):
    w = DatasetWriter(out, source, splits=splits, limit=limit)
    labels = sorted({i.label for i in items})
    for it in items:
        if not w.wants(it.item_id):
            continue
        rng = item_rng(seed, source, it.item_id)
        name = it.item_id.replace("/", "__")  # ids keep the file's extension ("farm/cow.webp")
        name = name if name.endswith(it.path.suffix) else name + it.path.suffix
        media = [{"type": modality, "path": w.copy(it.path, name)}]
        extra = {"basic": it.basic, "licence": it.licence} if it.basic else {"licence": it.licence}
        w.add_item(
            it.item_id, caption_samples(it.item_id, media, caption(it.label), it.label, labels, rng, extra=extra)
        )
    if not items:
        w.skip("*", "gcompris-qt-data is not installed (make sysdeps)")
    return w.write()


def build_gcompris_photos(out: Path, *, limit=None, seed: int = 0, splits=SPLITS):
    """Photo–caption samples ("A photo of a cow.") from the GCompris and scikit-image photos' source
    ``gcompris-photos`` (the scikit-image photos are all held out and never built here)."""
    items = [i for i in heldout.photo_items() if i.source == "gcompris-photos"]
    return _build(
        out, "gcompris-photos", items, "image", lambda lab: f"A photo of {T.article(lab)}.",
        limit=limit, seed=seed, splits=splits,
    )  # fmt: skip


def build_gcompris_sounds(out: Path, *, limit=None, seed: int = 0, splits=SPLITS):
    """Sound–caption samples ("The sound of a cow.") from the GCompris recordings."""
    items = heldout.sound_items()
    return _build(
        out, "gcompris-sounds", items, "audio", lambda lab: f"The sound of {T.article(lab)}.",
        limit=limit, seed=seed, splits=splits,
    )  # fmt: skip
