"""What every builder shares: per-item randomness, split routing, media files, writing JSONL.

A builder walks the items of one packaged source; for each item it copies or renders the media
under ``<out>/media/<source>/`` and adds samples (a caption sample, question–answer samples...).
``DatasetWriter`` asks ``split_of(source, item)`` where each item goes and writes
``<out>/<source>.<split>.jsonl``; held-out items can never reach the train file.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.atomic import atomic_write_text
from omnibind.data import phrasings as T
from omnibind.data.format import SPLITS
from omnibind.data.splits import split_of


def item_rng(seed: int, source: str, item: str) -> random.Random:
    """Randomness of one item: independent of ``--limit`` and of the order items are visited."""
    return random.Random(f"{seed}/{source}/{item}")


@dataclass
class BuildResult:
    """What a builder wrote: files, sample and item counts per split, and skipped items with reasons."""

    source: str
    files: dict[str, str] = field(default_factory=dict)
    samples: Counter = field(default_factory=Counter)
    items: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": self.files,
            "samples": dict(self.samples),
            "items": dict(self.items),
            "skipped": self.skipped,
        }


class DatasetWriter:
    """Collects samples per split for one source and writes them as JSONL under ``out``."""

    def __init__(self, out: str | Path, source: str, *, splits: Sequence[str] = SPLITS, limit: int | None = None):
        bad = [s for s in splits if s not in SPLITS]
        if bad:
            raise ValueError(f"unknown splits {bad}; expected some of {SPLITS}")
        self.out = Path(out)
        self.source = source
        self.splits = tuple(splits)
        self.limit = limit
        self.media_dir = self.out / "media" / source
        self.rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        self.result = BuildResult(source)

    def split(self, item: str) -> str:
        return split_of(self.source, item)

    def wants(self, item: str) -> bool:
        """Whether the item's split is requested and not full yet (check before making its media)."""
        split = self.split(item)
        return split in self.splits and (self.limit is None or self.result.items[split] < self.limit)

    def full(self) -> bool:
        """True when every requested split has ``limit`` items (builders may stop early)."""
        return self.limit is not None and all(self.result.items[s] >= self.limit for s in self.splits)

    def media_path(self, relative: str) -> Path:
        """Where a media file of this source goes (folders created)."""
        p = self.media_dir / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def copy(self, src: str | Path, relative: str) -> str:
        """Copy a packaged file into the dataset; returns its path relative to ``out``."""
        dst = self.media_path(relative)
        if not dst.exists() or dst.stat().st_size != Path(src).stat().st_size:
            shutil.copyfile(src, dst)
        return self.rel(dst)

    def copy_image(self, src: str | Path, relative: str, *, max_side: int = 1024) -> str:
        """Copy a packaged picture, downscaled to ``max_side`` when larger (a few Openclipart
        drawings are 10,000+ pixels wide, past the image loader's pixel limit for untrusted input)."""
        from PIL import Image

        with Image.open(src) as im:
            if max(im.size) <= max_side:
                return self.copy(src, relative)
            dst = self.media_path(relative)
            if not dst.exists():
                im.draft("RGBA", (max_side, max_side))  # decode no more than needed where the format allows
                small = im.copy()
                small.thumbnail((max_side, max_side))
                small.save(dst)
        return self.rel(dst)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def add_item(self, item: str, samples: list[dict[str, Any]], *, split: str | None = None) -> None:
        """Add all samples of one item (ids must be unique); they get the item's fixed split.

        ``split`` is for items made of other sources' items (a scene of training stamps): the
        caller gives the split its parts share, so a held-out part never reaches a train file."""
        split = split or self.split(item)
        if split not in self.splits:
            return
        for s in samples:
            s["id"] = f"{self.source}:{s['id']}"  # unique across sources when files are concatenated
            s.setdefault("source", self.source)
            s["split"] = split
            s["item"] = item
            self.rows[split].append(s)
        self.result.items[split] += 1
        self.result.samples[split] += len(samples)

    def skip(self, item: str, reason: str) -> None:
        self.result.skipped.append(f"{item}: {reason}")

    def write(self) -> BuildResult:
        self.out.mkdir(parents=True, exist_ok=True)
        for split in self.splits:
            path = self.out / f"{self.source}.{split}.jsonl"
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rows[split])
            atomic_write_text(path, text)
            self.result.files[split] = str(path)
        return self.result


def official_parts(splits: Sequence[str]) -> list[str]:
    """Which official parts of a source with a train/test split must be read for these splits."""
    parts = ["train"] if {"train", "val"} & set(splits) else []
    return [*parts, "test"] if "test" in splits else parts


def conversation(user: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def caption_samples(
    item: str,
    media: list[dict[str, Any]],
    caption: str,
    label: str | None,
    others: list[str],
    rng: random.Random,
    *,
    modality: str | None = None,
    n_qa: int = 2,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A caption sample plus ``n_qa`` label questions for one item whose media are all shown.

    Placeholders come first, one per medium, in media order; ``modality`` picks the wording
    (default: the first medium's type).
    """
    modality = modality or media[0]["type"]
    tags = "".join(f"<{m['type']}>\n" for m in media)
    common = {"caption": caption, **({"label": label} if label else {}), **(extra or {})}
    out = [
        {
            "id": f"{item}#caption",
            "media": media,
            "conversation": conversation(tags + T.caption_prompt(modality, rng), T.sentence(caption)),
            "task": "caption",
            **common,
        }
    ]
    if label:
        for j, (q, a) in enumerate(T.label_qa(modality, label, others, rng, n=n_qa)):
            prompt = T.qa_prompt(modality, q, rng) if j else q
            out.append(
                {
                    "id": f"{item}#qa{j}",
                    "media": media,
                    "conversation": conversation(tags + prompt, a),
                    "task": "qa",
                    **common,
                }
            )
    return out
