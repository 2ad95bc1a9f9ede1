"""The ``results`` suite (docs/RESULTS.md): answer matching by hand, the held-out JSONL reader, and
every results task run on the tiny random model over a small dataset written in the builders'
format (fast, no real weights), down to the Markdown tables."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnibind.eval import report, results
from omnibind.eval.answers import head_word, names_object
from omnibind.eval.datasets import build
from omnibind.eval.models import LocalModel
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import registry, suite_tasks


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
    assert head_word(label) == head


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
    assert names_object(answer, label) is hit


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "media").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "media" / f"{i}.png")

    def tux(i: int, label: str) -> dict:
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

    _write(tmp_path / "tuxpaint.train.jsonl", [tux(0, "brown bear"), tux(1, "apple")])
    _write(tmp_path / "tuxpaint.test.jsonl", [tux(2, "polar bear"), tux(3, "crow")])
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


def test_heldout_reader_takes_the_first_items_and_their_labels(data_dir: Path) -> None:
    full = build("heldout_jsonl", source="tuxpaint", data=str(data_dir), options="labels")
    assert [s.target for s in full] == ["polar bear", "crow"] and full[0].options == ["crow", "polar bear"]
    assert full[0].media[0].modality == "image" and full[0].item == "tuxpaint:x/polar bear"
    first = build("heldout_jsonl", source="tuxpaint", data=str(data_dir), options="labels", limit=1)
    assert [s.target for s in first] == ["polar bear"] and first[0].options == ["polar bear"]  # labels of the taken
    yn = build("heldout_jsonl", source="easy-vqa", data=str(data_dir), kind="yesno")
    assert [s.target for s in yn] == ["no", "yes"] and yn[0].vars == {"question": "Is there a circle?"}
    assert build("heldout_jsonl", source="meshes", data=str(data_dir)) == []  # no file: no samples


def _local(task, data: Path):
    """A results task reading ``data`` instead of runs/embedded/data."""
    opts = dict(task.model_options)
    if "retrieval_cache" in opts:
        opts["retrieval_cache"] = {**opts["retrieval_cache"], "data": str(data), "folder": str(data / "cache")}
    return dataclasses.replace(task, dataset_args={**task.dataset_args, "data": str(data)}, model_options=opts)


def test_results_suite_on_the_tiny_model(tiny_model, data_dir: Path) -> None:
    reg = registry()
    runner = Runner(LocalModel(tiny_model), seed=0, batch_size=1, progress=False)
    done = []
    for name in suite_tasks("results"):
        task = _local(reg.get(name), data_dir)
        if task.dataset == "heldout_jsonl" and not build(task.dataset, **task.dataset_args):
            continue  # this small dataset has no sounds, IMU or meshes
        done.append(runner.run(task, task.limit))
    by = {r.task.name: r for r in done}
    assert set(by) == {
        "results_tuxpaint_what",
        "results_tuxpaint_what_labels",
        "results_tuxpaint_ceiling",
        "results_tuxpaint_rank",
        "results_retrieval",
        "results_easyvqa_yesno",
        "results_chat",
    }
    what = by["results_tuxpaint_what"].systems["model"].metrics
    assert what["n"] == 2 and 0 <= what["accuracy"] <= 1 and len(what["examples"]) == 2
    assert tiny_model.config.experts.image_labels == 0  # the labels task switched the expert on only for itself
    ceiling = by["results_tuxpaint_ceiling"].systems["model"].metrics
    # "polar bear" shares its head word with the training "brown bear"; "crow" with nothing
    assert ceiling["n"] == 2 and ceiling["train_items"] == 2 and ceiling["vocabulary"] == 0.5
    assert ceiling["nearest_neighbour"] in (0.0, 0.5) and ceiling["imagenet_top3"] == 0.0  # no classifier head
    vqa = by["results_easyvqa_yesno"].systems
    assert len(by["results_easyvqa_yesno"].samples) == 2 and 0 <= vqa["model"].metrics["accuracy"] <= 1
    recall = by["results_retrieval"].systems["model"].metrics["pairs"]
    assert set(recall) == {"image->text", "text->image"}
    assert recall["image->text"]["candidates"] == 2 and recall["image->text"]["chance@1"] == 0.5
    assert recall["image->text"]["recall@5"] == 1.0  # 2 candidates: always in the top 5
    assert len(by["results_chat"].systems["model"].metrics["examples"]) == 3
    body = {"tasks": {r.task.name: report.task_record(r) for r in done}}
    table = results.tables(body)
    assert "| Tux Paint" in table and "| easy-vqa yes/no | 2 |" in table and "nearest training stamp" in table
    assert "| image->text | 2 | 2 | " in table and "text->image" not in table
    assert "| same, + image-labels expert at inference | 2 |" in table


def test_calibration_and_cache_tasks(tiny_model, data_dir: Path) -> None:
    """A rank task with ``calibrate`` adds the model-minus-text-only system; ``retrieval_cache`` builds the
    cache from the training images and takes it away afterwards."""
    reg = registry()
    runner = Runner(LocalModel(tiny_model), seed=0, batch_size=1, progress=False)
    base = _local(reg.get("results_sound_rank_cache"), data_dir)
    # the tiny dataset has no sounds: rank the held-out stamps' labels instead
    task = dataclasses.replace(
        base, dataset_args={"source": "tuxpaint", "data": str(data_dir), "options": "labels"}, prompt="What is this?"
    )
    res = runner.run(task)
    assert set(res.systems) == {"model", "text_only", "calibrated"}
    m, t, c = (res.systems[k].raw for k in ("model", "text_only", "calibrated"))
    assert c == [[round(a - b, 5) for a, b in zip(x, y)] for x, y in zip(m, t)]
    assert (data_dir / "cache").is_dir() and tiny_model.core.retrieval_cache is None
