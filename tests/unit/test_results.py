"""The held-out results command (docs/RESULTS.md): answer matching by hand, and every measurement run
on the tiny random model over a small dataset written in the builders' format (fast, no real weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnibind.train import results as R


@pytest.mark.parametrize(
    ("label", "head"),
    [
        ("US 1 cent piece called a penny", "penny"),
        ("red apple", "apple"),
        ("teddy bear", "bear"),
        ("peacock (a male peafowl)", "peacock"),
        ("cup of coffee", "cup"),
    ],
)
def test_head_word(label, head):
    assert R.head_word(label) == head


@pytest.mark.parametrize(
    ("answer", "label", "hit"),
    [
        ("A bear.", "european bear", True),
        ("Two apples on a table.", "green apple", True),
        ("A pink flamingo!", "pink flamingo", True),
        ("A spoonbill.", "pink flamingo", False),
        ("A bearded man.", "bear", False),  # whole words only
        ("Glasses.", "glass", True),
        ("", "crow", False),
    ],
)
def test_names_object(answer, label, hit):
    assert R.names_object(answer, label) is hit


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "media").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "media" / f"{i}.png")

    def tux(i: int, label: str, split: str) -> dict:
        return {
            "id": f"tuxpaint:x/{label}#caption",
            "media": [{"type": "image", "path": f"media/{i}.png"}],
            "conversation": [
                {"role": "user", "content": "<image>\nDescribe the picture."},
                {"role": "assistant", "content": f"A {label}."},
            ],
            "task": "caption",
            "caption": f"A {label}.",
            "label": label,
        }

    _write(tmp_path / "tuxpaint.train.jsonl", [tux(0, "brown bear", "train"), tux(1, "apple", "train")])
    _write(tmp_path / "tuxpaint.test.jsonl", [tux(2, "polar bear", "test"), tux(3, "crow", "test")])
    vqa = [
        {
            "id": f"easy-vqa:{i}#qa0",
            "media": [{"type": "image", "path": f"media/{i}.png"}],
            "conversation": [
                {"role": "user", "content": "<image>\nIs there a circle?"},
                {"role": "assistant", "content": "Yes." if i % 2 else "No."},
            ],
            "task": "vqa",
            "answer": "yes" if i % 2 else "no",
        }
        for i in range(4, 6)
    ]
    _write(tmp_path / "easy-vqa.test.jsonl", vqa)
    return tmp_path


def test_measurements_on_the_tiny_model(tiny_model, data_dir):
    what = R.tuxpaint_what(tiny_model, data_dir, None, max_new_tokens=3)
    assert what["n"] == 2 and 0 <= what["accuracy"] <= 1 and len(what["examples"]) == 2
    ceiling = R.tuxpaint_ceiling(tiny_model, data_dir, None)
    # "polar bear" shares its head word with the training "brown bear"; "crow" with nothing
    assert ceiling["n"] == 2 and ceiling["train_items"] == 2 and ceiling["vocabulary"] == 0.5
    assert ceiling["nearest_neighbour"] in (0.0, 0.5) and ceiling["imagenet_top3"] == 0.0  # no classifier head
    vqa = R.easyvqa_yesno(tiny_model, data_dir, None)
    assert vqa["n"] == 2 and vqa["majority"] == 0.5 and 0 <= vqa["accuracy"] <= 1
    assert R.zero_shot(tiny_model, data_dir, "sound", None) == {"n": 0}  # no file: skipped, not an error
    recall = R.bind_retrieval(tiny_model, data_dir, None)
    assert set(recall) == {"image->text", "text->image"}
    assert recall["image->text"]["candidates"] == 2 and recall["image->text"]["chance@1"] == 0.5
    assert recall["image->text"]["recall@5"] == 1.0  # 2 candidates: always in the top 5
    table = R.markdown(
        {
            "tuxpaint_what": what,
            "tuxpaint_ceiling": ceiling,
            "easyvqa_yesno": vqa,
            "bind_retrieval": recall,
            "zero_shot": {"sound": {"n": 0}},
        }
    )
    assert "| Tux Paint" in table and "| easy-vqa yes/no | 2 |" in table and "nearest training stamp" in table
    assert "| image->text | 2 | 2 | " in table
