"""Builders on small subsets: valid files (every medium decodes), fixed splits, no held-out leaks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omnibind.data.builders import BUILDERS, build
from omnibind.data.check import check_dataset
from omnibind.data.splits import split_of

SMALL = {
    "tuxpaint": {},
    "tuxpaint-sounds": {},
    "fashion-mnist": {},
    "easy-vqa": {"questions": 2},
    "basicmotions": {},
    "meshes": {"views": 3},
    "stereo": {},
    "text-chat": {},
    "gcompris-photos": {},
    "gcompris-sounds": {},
    "openclipart": {},
    "scenes": {},
    "pairs": {},  # built last: it reads the caption files of the builders above
}
MIXED = ("scenes", "pairs")  # items made of other items: their parts' split, not split_of(source, item)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("data")
    results = {name: build(name, out, limit=2, seed=0, **SMALL[name]) for name in BUILDERS}
    return out, results


def _rows(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.parametrize("source", list(BUILDERS))
def test_builder_output_is_valid_and_split_correctly(built, source: str) -> None:
    _, results = built
    r = results[source]
    assert set(r.files) == {"train", "val", "test"}
    items_by_split = {}
    for split, path in r.files.items():
        rows = _rows(path)
        assert all(row["split"] == split and row["source"] == source for row in rows)
        if source not in MIXED:
            assert all(split_of(source, row["item"]) == split for row in rows)
        items_by_split[split] = {row["item"] for row in rows}
        assert len(items_by_split[split]) <= 2  # limit is per split
        report = check_dataset(path)  # decodes every medium with omnibind.modalities
        assert report.ok, [str(i) for i in report.issues]
    assert not items_by_split["train"] & (items_by_split["val"] | items_by_split["test"])
    if source in ("gcompris-photos", "gcompris-sounds", "openclipart") and not r.items["train"]:
        pytest.skip(f"{source}: its Debian package is not installed (make sysdeps)")
    if source != "stereo":  # the one stereo pair is held out by rule
        assert items_by_split["train"], f"{source}: no training items"


def test_basicmotions_train_file_never_holds_the_test_split(built) -> None:
    _, results = built
    train = _rows(results["basicmotions"].files["train"])
    assert train and all(row["item"].startswith("train-") for row in train)
    test = _rows(results["basicmotions"].files["test"])
    assert test and all(row["item"].startswith("test-") for row in test)
    with np.load(Path(results["basicmotions"].files["train"]).parent / train[0]["media"][0]["path"]) as z:
        assert z["samples"].shape == (100, 6) and float(z["sample_rate"]) == 10.0


def test_samples_carry_captions_labels_and_placeholders(built) -> None:
    _, results = built
    rows = _rows(results["tuxpaint"].files["train"])
    tasks = {row["task"] for row in rows}
    assert tasks == {"caption", "qa"}
    for row in rows:
        assert row["caption"] and row["label"] and row["id"].startswith("tuxpaint:")
        assert row["conversation"][0]["content"].startswith("<image>\n")
    sounds = _rows(results["tuxpaint-sounds"].files["train"])
    assert any(row["task"] == "pair" and [m["type"] for m in row["media"]] == ["image", "audio"] for row in sounds)
    vqa = [row for row in _rows(results["easy-vqa"].files["test"]) if row["task"] == "vqa"]
    assert vqa and all(row["answer"] in row["conversation"][1]["content"].lower() for row in vqa)
    meshes = _rows(results["meshes"].files["train"])
    assert {m["type"] for row in meshes for m in row["media"]} == {"image", "depth", "points"}


def test_builds_are_reproducible(tmp_path: Path, built) -> None:
    _, results = built
    again = build("tuxpaint", tmp_path, limit=2, seed=0)
    assert Path(again.files["train"]).read_text() == Path(results["tuxpaint"].files["train"]).read_text()
    other = build("tuxpaint", tmp_path / "s1", limit=2, seed=1)
    first, second = _rows(results["tuxpaint"].files["train"]), _rows(other.files["train"])
    assert [r["item"] for r in first] == [r["item"] for r in second]  # same items: splits ignore the seed
    assert [r["conversation"] for r in first] != [r["conversation"] for r in second]  # other phrasings


def test_collada_reader_reads_the_duck() -> None:
    from omnibind.data.builders.meshes import ASSIMP, read_collada

    path = ASSIMP / "Collada/duck.dae"
    if not path.is_file():
        pytest.skip("assimp-testmodels not installed")
    v, f = read_collada(path)
    assert v.shape == (2108, 3) and f.shape[1] == 3 and f.max() < len(v) and len(f) > 2000


def test_cli_build_and_sources(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from omnibind.data.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["build", "text-chat", "--out", str(tmp_path), "--limit", "3", "--splits", "train"])
    assert res.exit_code == 0, res.output
    assert "text-chat: train: 3 items / 3 samples" in res.output
    assert len(_rows(str(tmp_path / "text-chat.train.jsonl"))) == 3
    assert not (tmp_path / "text-chat.test.jsonl").exists()
    assert runner.invoke(app, ["build", "nope", "--out", str(tmp_path)]).exit_code == 2
    res = runner.invoke(app, ["sources"])
    assert res.exit_code == 0 and all(name in res.output for name in BUILDERS)
