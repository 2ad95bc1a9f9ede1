"""The held-out real photo and sound sets as eval datasets (``heldout_photos`` / ``heldout_sounds``) on
tiny synthetic copies, the ``seeing`` suite's tasks, the ``imagenet_top1`` baseline and
``names_object``'s basic-level noun, and the whole suite end to end on the tiny random model."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnibind.data import splits
from omnibind.data.sources import heldout
from omnibind.eval import report
from omnibind.eval.datasets import DATASETS, Sample, heldout_photos, heldout_sounds, select
from omnibind.eval.models import LocalModel
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import hooks, registry, suite_tasks, suites

SEEING = {
    "photos_what",
    "photos_what_experts",
    "photos_rank",
    "photos_bind",
    "sounds_what",
    "sounds_rank",
    "sounds_bind",
}


def _ids_in(source: str, which: str, n: int) -> list[str]:
    """The first ``n`` ids ``item<k>`` that ``split_of`` puts in split ``which``."""
    return [i for i in (f"item{k}" for k in range(400)) if splits.split_of(source, i) == which][:n]


def _wav(path: Path, freq: float) -> Path:
    t = np.arange(16000) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture()
def tiny_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[heldout.LabelledFile]]:
    """Three held-out photos (one item with two files), one training photo, two held-out sounds, one
    training sound: generated files standing in for GCompris and scikit-image."""
    rng = np.random.default_rng(0)

    def png(name: str) -> Path:
        p = tmp_path / name
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(p)
        return p

    test_photo, train_photo = _ids_in("gcompris-photos", "test", 1)[0], _ids_in("gcompris-photos", "train", 1)[0]
    photos = [
        heldout.LabelledFile("gcompris-photos", test_photo, png("narwhal.png"), "narwhal", "whale", "GPL"),
        heldout.LabelledFile("gcompris-photos", train_photo, png("train.png"), "teapot", None, "GPL"),
        heldout.LabelledFile("skimage-photos", "motorcycle", png("left.png"), "motorcycle", "motorcycle", "CC0"),
        heldout.LabelledFile("skimage-photos", "motorcycle", png("right.png"), "motorcycle", "motorcycle", "CC0"),
    ]
    test_sounds, train_sound = _ids_in("gcompris-sounds", "test", 2), _ids_in("gcompris-sounds", "train", 1)[0]
    sounds = [
        heldout.LabelledFile("gcompris-sounds", test_sounds[0], _wav(tmp_path / "cow.wav", 220), "cow", "cow", "GPL"),
        heldout.LabelledFile(
            "gcompris-sounds", test_sounds[1], _wav(tmp_path / "drum.wav", 440), "drum kit", None, "GPL"
        ),
        heldout.LabelledFile("gcompris-sounds", train_sound, _wav(tmp_path / "pig.wav", 330), "pig", "pig", "GPL"),
    ]
    monkeypatch.setattr(heldout, "photo_items", lambda: photos)
    monkeypatch.setattr(heldout, "sound_items", lambda: sounds)
    return {"photos": photos, "sounds": sounds}


def test_heldout_rules_live_in_splits() -> None:
    assert set(heldout.RULES) == set(heldout.SOURCES)
    assert all(heldout.RULES[s] is splits.RULES[s] for s in heldout.SOURCES)  # one definition
    for source in heldout.SOURCES:
        assert all(heldout.split(source, f"x{i}") == splits.split_of(source, f"x{i}") for i in range(100))
    with pytest.raises(KeyError):
        heldout.split("tuxpaint", "a")  # another source's items are not part of these sets


def test_datasets_hold_only_the_test_split(tiny_sets) -> None:
    photos = heldout_photos()
    assert [s.target for s in photos] == ["narwhal", "motorcycle", "motorcycle"]  # the training teapot is left out
    assert photos[0].options == ["motorcycle", "narwhal"] and photos[0].meta["accept"] == ["whale"]
    assert photos[1].meta["accept"] == []  # the basic noun is the label itself
    left, right = photos[1:]
    assert left.id == "skimage-photos:motorcycle/left.png" and right.id == "skimage-photos:motorcycle/right.png"
    assert left.group == right.group == "skimage-photos:motorcycle"  # one scene: --limit keeps both views
    assert photos[0].id == f"gcompris-photos:{tiny_sets['photos'][0].item_id}"
    assert all(s.media[0].modality == "image" and Path(s.media[0].source).is_file() for s in photos)
    sounds = heldout_sounds()
    assert [s.target for s in sounds] == ["cow", "drum kit"] and sounds[0].options == ["cow", "drum kit"]
    assert all(s.media[0].modality == "audio" for s in sounds)


def test_names_object_accepts_the_basic_level_noun() -> None:
    narwhal = Sample("a", "a", "x", [], "narwhal", meta={"accept": ["whale"]})
    child = Sample("b", "b", "x", [], "child", meta={"accept": ["person"]})
    plain = Sample("c", "c", "x", [], "solar panel")
    preds = ["A whale in the sea.", "A person walking.", "Some panels on a roof."]
    m = hooks.names_object(preds, [narwhal, child, plain], None)
    assert [e["hit"] for e in m["examples"]] == [True, True, True] and m["accuracy"] == 1.0
    m = hooks.names_object(["A dolphin.", "A dog.", "A roof."], [narwhal, child, plain], None)
    assert m["accuracy"] == 0.0


def test_seeing_suite_resolves_and_stays_out_of_quick_and_results() -> None:
    reg = registry()
    assert set(suite_tasks("seeing")) == SEEING and "seeing" in suites()
    assert not SEEING & set(suite_tasks("quick")) and not SEEING & set(suite_tasks("results"))
    assert reg.get("photos_what").baselines == ["chance", "text_only", "imagenet_top1"]
    assert reg.get("photos_what_experts").model_options == {"experts": {"image_labels": 3}}
    assert reg.get("photos_rank").calibrate and reg.get("sounds_rank").calibrate
    assert {reg.get(n).dataset for n in SEEING} == {"heldout_photos", "heldout_sounds"}
    assert reg.get("sounds_bind").method == "bind" and "chance" in reg.get("sounds_bind").baselines


class _FreshRunner(Runner):
    """Builds samples without the per-process dataset memo (the tiny sets are monkeypatched per test)."""

    def samples(self, task, limit):
        return select(DATASETS.get(task.dataset)(**task.dataset_args), limit, self.seed)


def test_seeing_suite_on_the_tiny_model(tiny_model, tiny_sets) -> None:
    reg = registry()
    runner = _FreshRunner(LocalModel(tiny_model), seed=0, batch_size=1, progress=False)
    done = {name: runner.run(reg.get(name), limit) for name, limit in suite_tasks("seeing").items()}
    assert set(done) == SEEING
    what = done["photos_what"].systems
    assert set(what) == {"model", "chance", "text_only", "imagenet_top1"}
    assert what["model"].metrics["n"] == 3 and 0 <= what["model"].metrics["accuracy"] <= 1
    top1 = what["imagenet_top1"].raw
    assert len(top1) == 3 and all(isinstance(r, str) for r in top1)  # the classifier's everyday names
    assert 0 <= what["chance"].metrics["accuracy"] <= 1
    assert tiny_model.config.experts.image_labels == 0  # the experts task switched labels on only for itself
    rank = done["photos_rank"].systems
    assert set(rank) == {"model", "chance", "text_only", "calibrated"} and len(rank["model"].raw[0]) == 2
    assert set(done["sounds_bind"].systems) == {"model", "chance"}
    assert done["sounds_what"].systems["model"].metrics["n"] == 2
    md = report.markdown({"meta": {}, "tasks": {n: report.task_record(r) for n, r in done.items()}})
    assert "| photos_what | generate | 3 |" in md and "imagenet_top1" in md


def test_imagenet_top1_baseline_refuses_other_methods(tiny_model, tiny_sets) -> None:
    import dataclasses

    from omnibind.errors import ConfigError

    task = dataclasses.replace(registry().get("photos_rank"), baselines=["imagenet_top1"], calibrate=False)
    with pytest.raises(ConfigError, match="generate"):
        _FreshRunner(LocalModel(tiny_model), progress=False).run(task)
