"""Openclipart drawings (Debian ``openclipart-png``, public domain), cleaned labels from file names.

``omnibind.data.sources.openclipart.items()`` keeps the pictures of things with a clean English
label (1,562 of 8,121 files with the Debian package). Labels are often long ("dead frogs",
"emperor penguin"): the caption uses the label, and when the WordNet basic-level noun differs
("frog", "penguin") one question asks for it, so the model learns the everyday word too.
At most ``per_label`` drawings per label, so a few prolific labels do not dominate.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, caption_samples, conversation, item_rng
from omnibind.data.sources import openclipart


def build_openclipart(out: Path, *, limit=None, seed: int = 0, splits=("train", "val", "test"), per_label: int = 4):
    """Drawing–caption samples ("A drawing of an emperor penguin.") with label questions."""
    w = DatasetWriter(out, "openclipart", splits=splits, limit=limit)
    items = openclipart.items()
    if not items:
        w.skip("*", "openclipart-png is not installed (make sysdeps)")
    labels = sorted({i.label for i in items})
    per: Counter = Counter()
    for it in items:
        item = f"{it.category}/{it.path.stem}"
        if per[it.label] >= per_label:
            w.skip(item, f"more than {per_label} drawings labelled {it.label!r}")
            continue
        if not w.wants(item):
            continue
        per[it.label] += 1
        rng = item_rng(seed, "openclipart", item)
        media = [{"type": "image", "path": w.copy_image(it.path, f"{item.replace('/', '__')}.png")}]
        samples = caption_samples(item, media, f"A drawing of {T.article(it.label)}.", it.label, labels, rng, n_qa=1)
        if it.basic and it.basic != it.label:
            samples.append(
                {
                    "id": f"{item}#basic",
                    "media": media,
                    "conversation": conversation(
                        "<image>\n" + T.object_prompt("image", rng), T.sentence(T.article(it.basic))
                    ),
                    "task": "qa",
                    "caption": samples[0]["caption"],
                    "label": it.basic,
                }
            )
        w.add_item(item, samples)
    return w.write()
