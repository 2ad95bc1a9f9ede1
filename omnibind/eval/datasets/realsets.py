"""The fixed held-out sets of real photos and sounds (``omnibind.data.sources.heldout``) as eval samples.

``heldout_photos``: the test split of the GCompris + scikit-image photos (46 photos of 40 classes
with the Debian packages installed); ``heldout_sounds``: the test split of the GCompris sounds (14
sounds of 13 classes). Splits come from ``omnibind.data.splits.split_of`` through
``heldout.photo_set`` / ``sound_set``, so no training file built from these sources holds them.

Each sample's target is the item's label ("narwhal", "solar panel"), its options the sorted labels
of the whole held-out set (the closed answer set of ``rank`` / ``bind`` tasks and of the chance
baseline), and ``meta["accept"]`` the item's basic-level noun when it has one ("whale", "person"):
the ``names_object`` metric counts a reply as naming the object when it names the label *or* that
noun (``omnibind.eval.tasks.hooks.names_object``), as a person would accept "a whale" for a
narwhal photo. Sample ids are ``<source>:<item id>``, plus the file name when one item has several
files (scikit-image's two motorcycle views); the item is the group ``--limit`` keeps whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from omnibind.data.sources import heldout
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.messages import MediaPart


def samples_of(items: Sequence[heldout.LabelledFile], modality: str) -> list[Sample]:
    """One sample per held-out file (see the module docstring for ids, options and ``accept``)."""
    options = sorted({i.label for i in items})
    per_item: dict[tuple[str, str], int] = {}
    for i in items:
        per_item[(i.source, i.item_id)] = per_item.get((i.source, i.item_id), 0) + 1
    out = []
    for i in items:
        item = f"{i.source}:{i.item_id}"
        sid = item if per_item[(i.source, i.item_id)] == 1 else f"{item}/{i.path.name}"
        accept = [i.basic] if i.basic and i.basic != i.label else []
        out.append(
            Sample(
                sid,
                item,
                i.source,
                [MediaPart(modality, str(i.path), name=i.path.name)],
                i.label,
                options,
                meta={"group": item, "accept": accept, "licence": i.licence},
            )
        )
    return out


@DATASETS.register("heldout_photos")
def heldout_photos() -> list[Sample]:
    """The held-out real photos (GCompris + scikit-image), labelled with their object."""
    return samples_of(heldout.photo_set("test"), "image")


@DATASETS.register("heldout_sounds")
def heldout_sounds() -> list[Sample]:
    """The held-out GCompris sounds (farm animals, instruments, everyday noises), labelled with their source."""
    return samples_of(heldout.sound_set("test"), "audio")
