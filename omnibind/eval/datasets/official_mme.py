"""MME (Fu et al., 2023, "MME: A Comprehensive Evaluation Benchmark for Multimodal Large Language
Models") from its release folder ``MME_Benchmark_release_version/``.

Every subtask folder holds images and, per image, a ``.txt`` of two tab-separated lines
``question<TAB>Yes`` / ``question<TAB>No`` (one question answered "yes", one "no"), in one of the
two layouts of the release::

    existence/000000006040.jpg + existence/000000006040.txt          (files side by side)
    artwork/images/10002.jpg   + artwork/questions_answers_YN/10002.txt

Perception subtasks: existence, count, position, color, posters, celebrity, scene, landmark,
artwork, OCR; cognition: commonsense_reasoning, numerical_calculation, text_translation,
code_reasoning. Subtasks present are read; others are simply absent from the report.
"""

from __future__ import annotations

from pathlib import Path

from omnibind.errors import InputError
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.eval.datasets.official_common import find_root, need_data_dir
from omnibind.messages import MediaPart

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
SUBTASKS = PERCEPTION + COGNITION
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
FOLDER_NAMES = ("MME_Benchmark_release_version", "MME_Benchmark_release", "MME_Benchmark", "MME", "mme")


def _is_root(p: Path) -> bool:
    return any((p / s).is_dir() for s in SUBTASKS)


def subtask_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, question file) pairs of one subtask folder, in either layout, sorted by name."""
    if (folder / "questions_answers_YN").is_dir():
        qdir, idir = folder / "questions_answers_YN", folder / "images"
    else:
        qdir = idir = folder
    pairs = []
    for q in sorted(qdir.glob("*.txt")):
        img = next((idir / (q.stem + e) for e in IMAGE_EXTS if (idir / (q.stem + e)).is_file()), None)
        if img is None:
            raise InputError(str(q), f"MME question file without its image ({q.stem}.jpg/.png in {idir})")
        pairs.append((img, q))
    return pairs


def read_pairs(qfile: Path) -> list[tuple[str, str]]:
    """(question, "yes"/"no") lines of one MME question file; a bad line raises naming file:line."""
    out = []
    for lineno, line in enumerate(qfile.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        question, sep, answer = line.rpartition("\t")
        answer = answer.strip().lower()
        if not sep or answer not in ("yes", "no"):
            raise InputError(f"{qfile}:{lineno}", "an MME line is 'question<TAB>Yes' or 'question<TAB>No'")
        out.append((question.strip(), answer))
    return out


@DATASETS.register("mme_official")
def mme_official(data_dir: str | None = None, subtasks: list[str] | None = None) -> list[Sample]:
    """Every question of the MME subtasks present (or of ``subtasks``); the group is the image."""
    root = find_root(need_data_dir(data_dir, "mme_official"), FOLDER_NAMES, _is_root, "MME subtask folders")
    names = [s for s in (subtasks or SUBTASKS) if (root / s).is_dir()]
    unknown = [s for s in subtasks or () if s not in SUBTASKS]
    if unknown:
        raise InputError(str(root), f"unknown MME subtasks {unknown}; expected {SUBTASKS}")
    out = []
    for sub in names:
        for img, qfile in subtask_pairs(root / sub):
            group = f"{sub}/{img.stem}"
            for k, (question, answer) in enumerate(read_pairs(qfile)):
                out.append(
                    Sample(
                        f"{group}/{k}",
                        group,
                        "mme",
                        [MediaPart("image", str(img), name=img.name)],
                        answer,
                        ["yes", "no"],
                        vars={"question": question},
                        meta={"group": group, "stratum": sub, "subtask": sub},
                    )
                )
    if not out:
        raise InputError(str(root), "no MME questions found")
    return out
