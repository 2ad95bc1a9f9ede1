"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL-2): photo cut-outs and clip-art, each
``<stem>.png`` with ``<stem>.txt`` whose first line is an English caption; 131 also have a sound
effect ``<stem>.ogg``.

Sources: ``tuxpaint`` (image–caption, every stamp with a PNG) and ``tuxpaint-sounds``
(image–sound–caption triples and sound-only questions). Stamps with only an SVG are skipped
(listed in the result). The two sources have independent fixed splits, so a held-out sound's
object may be seen in training as an image — the cross-modal transfer the evaluation measures.
"""

from __future__ import annotations

from pathlib import Path

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, caption_samples, conversation, item_rng
from omnibind.data.sources.tuxpaint import ROOT as STAMPS
from omnibind.data.sources.tuxpaint import label_of, stamps


def build_tuxpaint(out: Path, *, limit=None, seed: int = 0, splits=("train", "val", "test"), root=STAMPS):
    """Image–caption samples (caption + 2 questions each) from every stamp with a PNG."""
    w = DatasetWriter(out, "tuxpaint", splits=splits, limit=limit)
    items = stamps(Path(root))
    labels = sorted({label_of(s.caption) for s in items})
    for stamp in items:
        item, caption, png = stamp.id, stamp.caption, stamp.image
        if png is None:
            w.skip(item, "no PNG (SVG-only stamps are not rasterised)")
            continue
        if not w.wants(item):
            continue
        rng = item_rng(seed, "tuxpaint", item)
        media = [{"type": "image", "path": w.copy(png, f"{item}.png")}]
        w.add_item(item, caption_samples(item, media, caption, label_of(caption), labels, rng))
    return w.write()


def build_tuxpaint_sounds(out: Path, *, limit=None, seed: int = 0, splits=("train", "val", "test"), root=STAMPS):
    """Image–sound–caption triples and sound-only questions from stamps with a sound effect."""
    w = DatasetWriter(out, "tuxpaint-sounds", splits=splits, limit=limit)
    items = [s for s in stamps(Path(root)) if s.sound is not None]
    labels = sorted({label_of(s.caption) for s in items})
    for stamp in items:
        item, caption = stamp.id, stamp.caption
        if not w.wants(item):
            continue
        rng = item_rng(seed, "tuxpaint-sounds", item)
        label = label_of(caption)
        audio = {"type": "audio", "path": w.copy(stamp.sound, f"{item}.ogg")}
        media = [audio]
        if stamp.image is not None:
            media = [{"type": "image", "path": w.copy(stamp.image, f"{item}.png")}, audio]
        sound_caption = f"The sound of {T.article(label)}."
        samples = caption_samples(item, [audio], sound_caption, label, labels, rng, n_qa=2, extra={"name": caption})
        if len(media) == 2:
            samples.append(
                {
                    "id": f"{item}#pair",
                    "media": media,
                    "conversation": conversation(
                        "<image>\n<audio>\n" + rng.choice(PAIR_PROMPTS), T.sentence(f"{T.article(label)} and its sound")
                    ),
                    "task": "pair",
                    "caption": caption,
                    "label": label,
                }
            )
        w.add_item(item, samples)
    return w.write()


PAIR_PROMPTS = (
    "Describe the picture and the sound together.",
    "What do you see and hear?",
    "What is shown, and what is making the sound?",
    "Describe both inputs in one sentence.",
)
