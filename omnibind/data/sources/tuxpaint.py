"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL-2): the one reader of the stamp folder.

Each stamp is ``<stem>.txt`` (first line: an English caption) with ``<stem>.png`` (photo cut-out
or clip-art; SVG-only stamps have none) and, for 131 of them, a sound effect ``<stem>.ogg``. A
stamp's id is its stem's path under the stamp folder, e.g. ``animals/mammals/badger``.

Two names come from a caption, for two uses that must stay as they are (they feed trained data
and measured numbers): ``label_of`` (the training label, the caption's first sentence without its
article) and ``stamp_name`` (a short lower-case name for closed-vocabulary evaluation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from omnibind.errors import InputError

ROOT = Path("/usr/share/tuxpaint/stamps")


@dataclass(frozen=True)
class Stamp:
    """One stamp: id (path stem), caption, short name, image and sound paths (``None`` when absent)."""

    id: str
    caption: str
    name: str
    image: Path | None
    sound: Path | None

    @property
    def category(self) -> str:
        """The top-level stamp folder (``animals``, ``food``, …)."""
        return self.id.split("/", 1)[0]


def read_caption(txt: Path) -> str:
    """The first line of a stamp's description file (the English caption)."""
    with txt.open(encoding="utf-8", errors="replace") as fh:
        return fh.readline().strip()


def label_of(caption: str) -> str:
    """'A badger.' → 'badger'; 'A US 1 cent piece ($.01) called a penny.' → 'US 1 cent piece ($.01) called a penny'."""
    first = re.split(r"(?<=[.!?])\s", caption.strip(), maxsplit=1)[0].rstrip(".!? ")
    first = re.sub(r"^(a|an|the)\s+", "", first, flags=re.IGNORECASE)
    return first[:1].lower() + first[1:] if first[1:2].islower() or len(first) == 1 else first


def stamp_name(caption: str) -> str:
    """'A baby sheep (a lamb).' → 'baby sheep'; '“School Crossing”.' → 'school crossing'."""
    first = re.split(r"(?<=[a-z0-9)”\"])\.\s|\.$", caption.strip())[0]
    first = re.sub(r"\([^)]*\)", "", first)
    first = re.split(r"\s*[—–]\s*", first)[0]  # 'Hard candy—yum!' → 'Hard candy'
    first = re.sub(r"[“”\"'‘’!?.:;,]", " ", first.lower())
    first = re.sub(r"^\s*(a|an|the|some)\s+", "", first)
    return re.sub(r"\s+", " ", first).strip()


def stamps(root: str | Path = ROOT) -> tuple[Stamp, ...]:
    """Every stamp with an English caption, sorted by id (read once per folder and process)."""
    return _stamps(str(root))


@lru_cache(maxsize=4)
def _stamps(root: str) -> tuple[Stamp, ...]:
    base = Path(root)
    if not base.is_dir():
        raise InputError(base, "missing; install the Debian package tuxpaint-stamps-default")
    out = []
    for txt in sorted(base.rglob("*.txt")):
        caption = read_caption(txt)
        if not caption:
            continue
        stem = txt.with_suffix("")
        png, ogg = stem.with_suffix(".png"), stem.with_suffix(".ogg")
        out.append(
            Stamp(
                stem.relative_to(base).as_posix(),
                caption,
                stamp_name(caption),
                png if png.is_file() else None,
                ogg if ogg.is_file() else None,
            )
        )
    return tuple(out)


ATTRIBUTES: dict[str, Callable[[str], bool]] = {
    "an animal": lambda sid: sid.startswith("animals/"),
    "a musical instrument": lambda sid: sid.startswith("hobbies/music"),
    "food": lambda sid: sid.startswith("food/"),
    "a vehicle": lambda sid: sid.startswith("vehicles/"),
    "a plant": lambda sid: sid.startswith("plants/"),
    "a household object": lambda sid: sid.startswith("household/"),
    "a letter or a digit": lambda sid: sid.startswith(("symbols/alphabets", "symbols/math")),
}
"""Properties a DisCRn-style question asks about (\"which input is an animal?\"), decided from the
stamp's category folder; the evaluation and the training pairs both read them."""
