"""POPE (Li et al., 2023, "Evaluating Object Hallucination in Large Vision-Language Models") from
its official question files, as RUCAIBox/POPE and LLaVA's ``playground/data/eval/pope`` ship them.

Layout (``--data-dir`` may be ``pope/`` itself or a folder holding it)::

    pope/coco/coco_pope_random.json        JSON Lines: {"question_id", "image", "text", "label"}
    pope/coco/coco_pope_popular.json       (the file name says .json; each line is one object)
    pope/coco/coco_pope_adversarial.json
    pope/val2014/COCO_val2014_000000310196.jpg ...   the COCO val2014 images the questions name

The question files may also lie directly in the folder, and the images in ``val2014/`` beside it,
``coco/val2014/`` or ``images/``. Every setting asks 500 COCO images × 6 questions (3 present
objects "yes", 3 absent "no"); the absent objects are drawn at random, among the most frequent
objects (popular) or among those co-occurring most with the present ones (adversarial).
"""

from __future__ import annotations

import json
from pathlib import Path

from omnibind.errors import InputError
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.eval.datasets.official_common import find_root, need_data_dir
from omnibind.messages import MediaPart

SETTINGS = ("random", "popular", "adversarial")
IMAGE_DIRS = ("val2014", "coco/val2014", "images", "../val2014", "../coco/val2014")


def question_file(root: Path, setting: str) -> Path:
    for folder in (root / "coco", root, root / "output" / "coco"):
        for ext in (".json", ".jsonl"):
            p = folder / f"coco_pope_{setting}{ext}"
            if p.is_file():
                return p
    raise InputError(str(root), f"no coco_pope_{setting}.json (looked in coco/, ./ and output/coco/)")


def _has_questions(p: Path) -> bool:
    return any((f / f"coco_pope_{s}.json").is_file() for f in (p / "coco", p, p / "output" / "coco") for s in SETTINGS)


def image_folder(root: Path, qfile: Path) -> Path:
    for base in (root, qfile.parent):
        for d in IMAGE_DIRS:
            if (base / d).is_dir():
                return (base / d).resolve()
    raise InputError(str(root), "no COCO val2014 image folder (looked for val2014/, coco/val2014/, images/)")


def read_questions(path: Path) -> list[dict]:
    """The records of one question file; a malformed line raises ``InputError`` naming file:line."""
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{lineno}", f"invalid JSON: {e.msg}") from None
        missing = [k for k in ("question_id", "image", "text", "label") if k not in rec]
        if missing or str(rec.get("label")).lower() not in ("yes", "no"):
            need = "question_id, image, text and a yes/no label"
            raise InputError(f"{path}:{lineno}", f"a POPE question needs {need}; got {rec}")
        out.append(rec)
    return out


@DATASETS.register("pope_official")
def pope_official(data_dir: str | None = None, settings: list[str] | None = None) -> list[Sample]:
    """The official POPE questions of the chosen settings (default all three), one sample each.

    ``meta["setting"]`` keeps each question's setting (the metric reports each and their mean);
    the group is the image within its setting, so ``--limit`` keeps an image's six questions.
    """
    root = find_root(need_data_dir(data_dir, "pope_official"), ("pope", "POPE"), _has_questions, "POPE question files")
    chosen = list(settings or SETTINGS)
    bad = [s for s in chosen if s not in SETTINGS]
    if bad:
        raise InputError(str(root), f"unknown POPE settings {bad}; expected {SETTINGS}")
    out = []
    for setting in chosen:
        qfile = question_file(root, setting)
        images = image_folder(root, qfile)
        for rec in read_questions(qfile):
            img = images / rec["image"]
            group = f"{setting}/{rec['image']}"
            out.append(
                Sample(
                    f"{setting}-{rec['question_id']}",
                    str(rec["image"]),
                    "pope",
                    [MediaPart("image", str(img), name=rec["image"])],
                    str(rec["label"]).lower(),
                    ["yes", "no"],
                    vars={"question": str(rec["text"])},
                    meta={"group": group, "stratum": setting, "setting": setting},
                )
            )
    return out
