"""easy-VQA (PyPI ``easy-vqa``, MIT): 64×64 images of one coloured shape with questions about its
shape, colour and presence (answers: 3 shapes, 8 colours, yes/no), official 4k train / 1k test.

Item ids are ``train-<image id>`` / ``test-<image id>``; the official test split is held out.
Each image gives a caption ("A blue circle.", derived from its colour and shape answers) and up to
``questions`` of its own questions wrapped in QA templates.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, conversation, item_rng, official_parts
from omnibind.data.sources import easy_vqa as easy_vqa_source

SHAPES = ("circle", "rectangle", "triangle")


def caption_from_questions(qas: list[tuple[str, str]]) -> str | None:
    """'A blue circle.' from the image's colour and shape answers (None when either is missing)."""
    color = next((a for q, a in qas if "color" in q), None)
    shape = next((a for q, a in qas if a in SHAPES), None)
    return f"A {color} {shape}." if color and shape else None


def _by_image(official: str) -> tuple[dict[int, list[tuple[str, str]]], dict[int, str]]:
    qs, answers, ids, paths = easy_vqa_source.split(official)
    grouped: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for q, a, i in zip(qs, answers, ids):
        grouped[int(i)].append((q, a))
    return grouped, paths


def build_easy_vqa(out: Path, *, limit=1000, seed: int = 0, splits=("train", "val", "test"), questions: int = 4):
    """Caption + up to ``questions`` VQA pairs per image; ``limit`` images per split."""
    w = DatasetWriter(out, "easy-vqa", splits=splits, limit=limit)
    for official in official_parts(splits):
        grouped, paths = _by_image(official)
        for image_id in sorted(grouped):
            if w.full():
                break
            item = f"{official}-{image_id:05d}"
            if not w.wants(item):
                continue
            if image_id not in paths:
                w.skip(item, "image file missing from the easy-vqa package")
                continue
            rng = item_rng(seed, "easy-vqa", item)
            media = [{"type": "image", "path": w.copy(paths[image_id], f"{item}.png")}]
            qas = grouped[image_id]
            caption = caption_from_questions(qas)
            samples = []
            if caption:
                samples.append(
                    {
                        "id": f"{item}#caption",
                        "media": media,
                        "conversation": conversation("<image>\n" + T.caption_prompt("image", rng), caption),
                        "task": "caption",
                        "caption": caption,
                    }
                )
            for j, (q, a) in enumerate(rng.sample(qas, min(questions, len(qas)))):
                question = T.sentence(q)[:-1] + "?" if not q.endswith("?") else q[:1].upper() + q[1:]
                samples.append(
                    {
                        "id": f"{item}#qa{j}",
                        "media": media,
                        "conversation": conversation("<image>\n" + T.qa_prompt("image", question, rng), T.sentence(a)),
                        "task": "vqa",
                        "question": question,
                        "answer": a,
                        **({"caption": caption} if caption else {}),
                    }
                )
            w.add_item(item, samples)
    return w.write()
