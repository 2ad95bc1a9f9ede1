"""ESC-50 (Piczak, 2015, "ESC: Dataset for Environmental Sound Classification") from its release
folder ``ESC-50-master/``::

    ESC-50-master/meta/esc50.csv     filename,fold,target,category,esc10,src_file,take
    ESC-50-master/audio/1-100032-A-0.wav ...   2000 five-second clips, 40 per class, 50 classes

The 5 folds are the dataset's own (clips of one source recording share a fold). Class names are
the ``category`` column with underscores as spaces ("chirping birds").
"""

from __future__ import annotations

import csv
from pathlib import Path

from omnibind.errors import InputError
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.eval.datasets.official_common import find_root, need_data_dir
from omnibind.messages import MediaPart

COLUMNS = ("filename", "fold", "target", "category")


def _is_root(p: Path) -> bool:
    return (p / "meta" / "esc50.csv").is_file()


def read_meta(path: Path) -> list[dict[str, str]]:
    """The rows of ``esc50.csv``; missing columns or a fold outside 1..5 raise naming file:line."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(str(path), f"esc50.csv lacks columns {missing}")
        rows = []
        for lineno, row in enumerate(reader, 2):
            if row["fold"] not in ("1", "2", "3", "4", "5"):
                raise InputError(f"{path}:{lineno}", f"fold must be 1..5, got {row['fold']!r}")
            rows.append(row)
    return rows


@DATASETS.register("esc50_official")
def esc50_official(data_dir: str | None = None, folds: list[int] | None = None, esc10: bool = False) -> list[Sample]:
    """Every clip of the chosen folds (default all five); ``esc10: true`` keeps the ESC-10 subset.

    Options are the class names of the clips read (50, or 10 for ESC-10), sorted by ``target``.
    """
    root = find_root(
        need_data_dir(data_dir, "esc50_official"), ("ESC-50-master", "ESC-50", "esc50"), _is_root, "ESC-50"
    )
    rows = read_meta(root / "meta" / "esc50.csv")
    if esc10:
        rows = [r for r in rows if str(r.get("esc10", "")).lower() == "true"]
    keep = {str(f) for f in (folds or (1, 2, 3, 4, 5))}
    rows = [r for r in rows if r["fold"] in keep]
    names = {int(r["target"]): r["category"].replace("_", " ") for r in rows}
    options = [names[t] for t in sorted(names)]
    out = []
    for r in rows:
        wav = root / "audio" / r["filename"]
        if not wav.is_file():
            raise InputError(str(wav), "ESC-50 clip named in meta/esc50.csv is missing")
        out.append(
            Sample(
                r["filename"],
                r["filename"],
                "esc50",
                [MediaPart("audio", str(wav), name=r["filename"])],
                r["category"].replace("_", " "),
                options,
                meta={"fold": int(r["fold"])},
            )
        )
    return out
