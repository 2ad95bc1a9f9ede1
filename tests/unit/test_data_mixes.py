"""Training data made of several items (scenes, pairs) and expert notes in training samples.

Real packaged data (Tux Paint stamps, the GCompris/mesh builders) on small limits; the expert-note
test runs the real EfficientNet-Lite0 label expert on two pictures.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from omnibind.data.builders import build
from omnibind.data.splits import split_of


def _rows(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_scenes_ask_about_present_and_absent_training_objects_equally(tmp_path: Path) -> None:
    r = build("scenes", tmp_path, limit=6, seed=0)
    rows = _rows(r.files["train"])
    assert {row["item"] for row in rows} == {f"train-{k}" for k in range(6)}
    answers = Counter(row["conversation"][1]["content"] for row in rows if row["task"] == "yesno")
    assert answers["Yes."] == answers["No."] == 18  # three present, three absent per scene
    from omnibind.data.sources.tuxpaint import stamps

    by_name = {s.name: s for s in stamps()}
    for row in rows:
        assert (tmp_path / row["media"][0]["path"]).is_file()
        # every object in a training scene is a training stamp: held-out stamps stay out
        assert all(split_of("tuxpaint", by_name[n].id) == "train" for n in row["objects"])
        if row["task"] == "yesno":
            asked = row["conversation"][0]["content"].split("Is there ")[1].split(" in the image")[0]
            present = any(asked.endswith(" " + n) for n in row["objects"])
            assert present == (row["conversation"][1]["content"] == "Yes.")
    assert _rows(r.files["test"]) == []  # the held-out scenes are the POPE evaluation's own


def test_pairs_have_one_right_input_and_balanced_positions(tmp_path: Path) -> None:
    for source in ("tuxpaint", "tuxpaint-sounds", "meshes"):
        build(source, tmp_path, limit=8, seed=0, **({"views": 2} if source == "meshes" else {}))
    r = build("pairs", tmp_path, limit=36, seed=0)
    rows = _rows(r.files["train"])
    which = [row for row in rows if row["task"] == "choice"]
    assert len({row["item"] for row in rows}) >= 20
    assert {tuple(m["type"] for m in row["media"]) for row in which} >= {("image", "audio"), ("audio", "image")}
    answers = Counter(row["conversation"][1]["content"] for row in which)
    assert answers["First."] and answers["Second."] and abs(answers["First."] - answers["Second."]) <= len(which) * 0.3
    train_media = {
        m["path"]
        for s in ("tuxpaint", "tuxpaint-sounds", "meshes")
        for row in _rows(tmp_path / f"{s}.train.jsonl")
        for m in row["media"]
    }
    assert all(m["path"] in train_media for row in rows for m in row["media"])  # parts come from train files only
    each = [row for row in rows if row["id"].endswith("#each")]
    assert each and all(row["conversation"][1]["content"].startswith("The first input is ") for row in each)


def test_pairs_without_caption_files_say_what_is_missing(tmp_path: Path) -> None:
    r = build("pairs", tmp_path, limit=2, seed=0)
    assert _rows(r.files["train"]) == []
    assert any("no train image caption samples" in s for s in r.skipped)


def test_expert_share_is_fixed_per_sample_and_close_to_the_share() -> None:
    from omnibind.train.data import with_experts

    ids = [f"s{i}" for i in range(2000)]
    picked = [with_experts(i, 0.7) for i in ids]
    assert picked == [with_experts(i, 0.7) for i in ids]
    assert 0.65 < sum(picked) / len(ids) < 0.75
    assert not any(with_experts(i, 0.0) for i in ids) and all(with_experts(i, 1.0) for i in ids)


def test_train_config_refuses_an_expert_share_outside_0_1() -> None:
    from omnibind.errors import ConfigError
    from omnibind.train.config import TrainConfig

    with pytest.raises(ConfigError, match="data.experts"):
        TrainConfig.from_dict({"stage": "instruct", "model": "embedded", "output": "x", "data": {"experts": 1.5}})


def test_prepare_adds_expert_notes_once_and_training_samples_show_them(tmp_path: Path) -> None:
    from omnibind.train.data import load_samples
    from omnibind.train.stages import prepare_data

    steps = [{"source": "tuxpaint", "out": str(tmp_path), "limit": 1, "experts": True}]
    prepare_data(steps)
    marker = tmp_path / ".tuxpaint.experts"
    assert json.loads(marker.read_text())["images"] >= 1
    rows = _rows(tmp_path / "tuxpaint.train.jsonl")
    labels = rows[0]["media"][0]["labels"]
    assert labels and all(isinstance(n, str) and 0 < p <= 1 for n, p in labels)
    before = (tmp_path / "tuxpaint.train.jsonl").read_text()
    prepare_data(steps)  # a second run neither rebuilds nor relabels
    assert (tmp_path / "tuxpaint.train.jsonl").read_text() == before
    shown = load_samples([tmp_path / "tuxpaint.train.jsonl"], experts=1.0)
    hidden = load_samples([tmp_path / "tuxpaint.train.jsonl"], experts=0.0)
    text = lambda s: " ".join(p.text for m in s.conversation for p in m.content if hasattr(p, "text"))  # noqa: E731
    assert labels[0][0] in text(shown[0]) and labels[0][0] not in text(hidden[0]).replace(rows[0]["caption"], "")
