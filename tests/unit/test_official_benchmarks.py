"""POPE, MME, ESC-50 and ModelNet40 read from tiny synthetic copies in their exact official layouts
(made here, in tmp_path), scored with each benchmark's own metric definition."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnibind.errors import ConfigError, InputError
from omnibind.eval.datasets import build
from omnibind.eval.datasets.official_common import with_data_dir
from omnibind.eval.models import LocalModel
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import official_hooks as H
from omnibind.eval.tasks import registry


def _jpg(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), shade, np.uint8)).save(path)


def make_pope(root: Path, images: int = 2) -> Path:
    """pope/coco/coco_pope_<setting>.json (JSON Lines) + pope/val2014/COCO_val2014_*.jpg."""
    pope = root / "pope"
    for k in range(images):
        _jpg(pope / "val2014" / f"COCO_val2014_{k:012d}.jpg", 40 * k + 30)
    for s, setting in enumerate(("random", "popular", "adversarial")):
        lines = []
        for k in range(images):
            for j, (obj, label) in enumerate([("dog", "yes"), ("cat", "yes"), (f"obj{s}", "no"), ("car", "no")]):
                q = {
                    "question_id": k * 10 + j,
                    "image": f"COCO_val2014_{k:012d}.jpg",
                    "text": f"Is there a {obj} in the image?",
                    "label": label,
                }
                lines.append(json.dumps(q))
        (pope / "coco").mkdir(parents=True, exist_ok=True)
        (pope / "coco" / f"coco_pope_{setting}.json").write_text("\n".join(lines) + "\n")
    return pope


def make_mme(root: Path) -> Path:
    """Both release layouts: existence/<img>.jpg + .txt, artwork/images/ + questions_answers_YN/, one cognition task."""
    mme = root / "MME_Benchmark_release_version"
    for sub in ("existence", "code_reasoning"):
        for k in range(2):
            _jpg(mme / sub / f"{k:04d}.png" if sub == "code_reasoning" else mme / sub / f"{k:04d}.jpg", 60 + k)
            (mme / sub / f"{k:04d}.txt").write_text(
                "Is there a dog in this image? Please answer yes or no.\tYes\n"
                "Is there a cow in this image? Please answer yes or no.\tNo\n"
            )
    for k in range(3):
        _jpg(mme / "artwork" / "images" / f"{k}.jpg", 100 + k)
        qa = mme / "artwork" / "questions_answers_YN" / f"{k}.txt"
        qa.parent.mkdir(parents=True, exist_ok=True)
        qa.write_text(
            "Is this by Monet? Please answer yes or no.\tYes\nIs this by Dali? Please answer yes or no.\tNo\n"
        )
    return mme


def make_esc50(root: Path) -> Path:
    """ESC-50-master/meta/esc50.csv (5 folds) + audio/<fold>-<src>-<take>-<target>.wav."""
    import soundfile as sf

    esc = root / "ESC-50-master"
    (esc / "audio").mkdir(parents=True)
    (esc / "meta").mkdir()
    rows = []
    classes = [(0, "dog", True), (1, "rooster", True), (36, "vacuum_cleaner", False)]
    for fold in range(1, 6):
        for target, cat, esc10 in classes:
            name = f"{fold}-{1000 + target}-A-{target}.wav"
            t = np.arange(8000) / 16000
            sf.write(
                esc / "audio" / name, (0.1 * np.sin(2 * np.pi * (200 + 50 * target) * t)).astype(np.float32), 16000
            )
            rows.append([name, fold, target, cat, str(esc10), 1000 + target, "A"])
    with (esc / "meta" / "esc50.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    return esc


CUBE = "OFF\n8 6 0\n" + "".join(f"{x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1))
CUBE += "4 0 1 3 2\n4 4 5 7 6\n4 0 1 5 4\n4 2 3 7 6\n4 0 2 6 4\n4 1 3 7 5\n"
PYRAMID = "OFF5 4 0\n0 0 0\n2 0 0\n0 2 0\n2 2 0\n1 1 3\n3 0 1 4\n3 1 3 4\n3 3 2 4\n3 2 0 4\n"  # fused header


def make_modelnet(root: Path) -> Path:
    """ModelNet40/<class>/{train,test}/<class>_NNNN.off."""
    mn = root / "ModelNet40"
    for cls, text in (("bed", CUBE), ("night_stand", PYRAMID)):
        for split, ids in (("train", (1,)), ("test", (2, 3))):
            (mn / cls / split).mkdir(parents=True)
            for i in ids:
                (mn / cls / split / f"{cls}_{i:04d}.off").write_text(text)
    return mn


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benchmarks")
    make_pope(root)
    make_mme(root)
    make_esc50(root)
    make_modelnet(root)
    return root


def test_builders_read_the_official_layouts(data_dir: Path) -> None:
    pope = build("pope_official", data_dir=str(data_dir))
    assert len(pope) == 3 * 2 * 4 and {s.meta["setting"] for s in pope} == {"random", "popular", "adversarial"}
    s = pope[0]
    assert s.vars["question"] == "Is there a dog in the image?" and s.target == "yes"
    assert Path(s.media[0].source).is_file() and s.group == "random/COCO_val2014_000000000000.jpg"
    assert build("pope_official", data_dir=str(data_dir / "pope"), settings=["popular"])[0].id.startswith("popular-")

    mme = build("mme_official", data_dir=str(data_dir))
    subs = {s.meta["subtask"] for s in mme}
    assert subs == {"existence", "artwork", "code_reasoning"} and len(mme) == 2 * 2 + 3 * 2 + 2 * 2
    assert [s.target for s in mme if s.group == "artwork/0"] == ["yes", "no"]
    assert mme[0].media[0].source.endswith(".jpg") or mme[0].media[0].source.endswith(".png")

    esc = build("esc50_official", data_dir=str(data_dir))
    assert len(esc) == 15 and esc[0].options == ["dog", "rooster", "vacuum cleaner"]
    assert {s.meta["fold"] for s in esc} == {1, 2, 3, 4, 5}
    assert len(build("esc50_official", data_dir=str(data_dir), folds=[1, 2], esc10=True)) == 4

    mn = build("modelnet40_official", data_dir=str(data_dir))
    assert [s.id for s in mn] == [
        "bed/bed_0002",
        "bed/bed_0003",
        "night_stand/night_stand_0002",
        "night_stand/night_stand_0003",
    ]
    assert mn[2].target == "night stand" and mn[0].options == ["bed", "night stand"]
    from omnibind import modalities

    assert modalities.load_part(mn[2].media[0]).xyz.shape == (2048, 3)  # the fused "OFF5 4 0" header reads


def test_missing_data_dir_and_broken_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data-dir"):
        build("pope_official")
    with pytest.raises(InputError, match="no POPE question files"):
        build("pope_official", data_dir=str(tmp_path))
    pope = make_pope(tmp_path / "a")
    (pope / "coco" / "coco_pope_random.json").write_text('{"question_id": 1, "image": "x.jpg", "text": "?"}\n')
    with pytest.raises(InputError, match=r"coco_pope_random.json:1.*yes/no label"):
        build("pope_official", data_dir=str(pope))
    mme = make_mme(tmp_path / "b")
    (mme / "existence" / "0000.txt").write_text("Is there a dog? Yes\n")
    with pytest.raises(InputError, match=r"0000.txt:1.*question<TAB>Yes"):
        build("mme_official", data_dir=str(mme))
    esc = make_esc50(tmp_path / "c")
    next((esc / "audio").iterdir()).unlink()
    with pytest.raises(InputError, match="missing"):
        build("esc50_official", data_dir=str(tmp_path / "c"))


def test_official_answer_rules() -> None:
    # POPE's evaluate.py: first sentence, words split on spaces; No / no / not → "no", else "yes"
    assert H.pope_answer("No, there is not.") == "no"
    assert H.pope_answer("Yes. But no dog is there.") == "yes"  # only the first sentence counts
    assert H.pope_answer("There is no dog") == "no"
    assert H.pope_answer("I see snow") == "yes"  # words, not substrings
    assert H.pope_answer("Nope") == "yes"
    # MME's calculation.py: exact yes/no, else "yes"/"no" within the first 4 characters, else other
    assert H.mme_answer(" Yes") == "yes" and H.mme_answer("No, it is not.") == "no"
    assert H.mme_answer("The answer is yes") == "other"
    assert H.mme_answer("yes.") == "yes"


def _samples(name: str, data_dir: Path) -> list:
    return build(name, data_dir=str(data_dir))


def test_pope_metric_per_setting_and_mean(data_dir: Path) -> None:
    samples = _samples("pope_official", data_dir)
    # always "yes" on random; perfect on popular; always "no" on adversarial
    preds = [
        "yes" if s.meta["setting"] == "random" else s.target if s.meta["setting"] == "popular" else "no"
        for s in samples
    ]
    m = H.pope_official(preds, samples, None)
    per = m["per_setting"]
    assert per["random"]["precision"] == 0.5 and per["random"]["recall"] == 1.0 and per["random"]["yes_ratio"] == 1.0
    assert per["random"]["f1"] == pytest.approx(2 / 3)
    assert per["popular"]["f1"] == 1.0 and per["adversarial"]["f1"] == 0.0 and per["adversarial"]["accuracy"] == 0.5
    assert m["f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)  # LLaVA-1.5's average: mean of the settings' F1
    assert m["accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    # lmms-eval's pooled F1 is another number: tp=8+8, fp=8, fn=8 → P = R = 2/3
    assert m["pooled"]["f1"] == pytest.approx(2 / 3)


def test_mme_scores_are_sums_of_100_acc_plus_100_acc_plus(data_dir: Path) -> None:
    samples = _samples("mme_official", data_dir)
    preds = []
    for s in samples:
        if s.meta["subtask"] == "existence":
            preds.append("yes")  # acc 0.5, acc+ 0 → 50
        elif s.meta["subtask"] == "artwork":
            preds.append(s.target if s.group != "artwork/2" else "other")  # acc 4/6, acc+ 2/3 → 133.33
        else:
            preds.append(s.target)  # 200
    m = H.mme_official(preds, samples, None)
    assert m["per_subtask"]["existence"]["score"] == pytest.approx(50.0)
    assert m["per_subtask"]["artwork"]["score"] == pytest.approx(100 * 4 / 6 + 100 * 2 / 3)
    assert m["perception"] == pytest.approx(50.0 + 100 * 4 / 6 + 100 * 2 / 3)  # a sum over subtasks
    assert m["cognition"] == pytest.approx(200.0)
    assert (m["perception_max"], m["cognition_max"]) == (400.0, 200.0)


def test_esc50_and_modelnet_metrics(data_dir: Path) -> None:
    esc = _samples("esc50_official", data_dir)
    preds = [s.target if s.meta["fold"] in (1, 2) else "dog" for s in esc]  # folds 3-5: 1/3 right
    m = H.esc50(preds, esc, None)
    assert m["per_fold"] == {1: 1.0, 2: 1.0, 3: pytest.approx(1 / 3), 4: pytest.approx(1 / 3), 5: pytest.approx(1 / 3)}
    assert m["accuracy"] == pytest.approx((2 + 1) / 5)
    mn = _samples("modelnet40_official", data_dir)
    # 3 of 4 right, but classes unbalanced in errors: bed 2/2, night stand 1/2
    m = H.modelnet40(["bed", "bed", "night stand", "bed"], mn, None)
    assert m["oa"] == 0.75 and m["macc"] == pytest.approx(0.75)
    m = H.modelnet40(["bed", "bed", "bed", "bed"], mn, None)
    assert m["oa"] == 0.5 and m["macc"] == 0.5


def test_official_tasks_run_through_the_one_harness(tiny_model, data_dir: Path) -> None:
    reg = with_data_dir(registry(), data_dir)
    assert reg.get("pope_official").dataset_args == {"data_dir": str(data_dir)}
    assert "data_dir" not in registry().get("pope_official").dataset_args  # the bundled registry is untouched
    assert "data_dir" not in reg.get("pope_random").dataset_args
    runner = Runner(LocalModel(tiny_model), seed=0, batch_size=8, progress=False)
    for name, limit, key in (
        ("pope_official", 8, "per_setting"),
        ("mme_official", None, "per_subtask"),
        ("esc50_official", None, "per_fold"),
        ("modelnet40_official", None, "macc"),
    ):
        res = runner.run(reg.get(name), limit)
        for sysname, s in res.systems.items():
            assert s.skipped is None, (name, sysname, s.skipped)
            assert key in s.metrics, (name, sysname)
        primary = res.systems["model"].metrics[res.task.primary]
        assert 0.0 <= primary <= (2000.0 if name == "mme_official" else 1.0)


def test_cli_data_dir_option(tiny_config_dict: dict, data_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from omnibind.eval.cli import app

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(tiny_config_dict))
    runner = CliRunner()
    args = ["run", "modelnet40_official", "--model", str(cfg), "--no-cache", "--no-progress", "--threads", "1"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "none")], env={"OMNIBIND_EVAL_DATA_DIR": ""})
    assert res.exit_code == 2 and "--data-dir" in res.output
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "out"), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    body = json.loads((tmp_path / "out" / "results.json").read_text())
    metrics = body["tasks"]["modelnet40_official"]["systems"]["model"]["metrics"]
    assert {"oa", "macc"} <= set(metrics)
