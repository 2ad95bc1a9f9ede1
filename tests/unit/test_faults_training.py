"""Faults on the training side: a run killed with SIGKILL resumes to the weights of an uninterrupted
run, the feature cache a killed run filled is reused, and corrupt media are skipped and reported by
``file:line`` without stopping a 100-step run (or stop it before step 0 under ``on_bad_media: error``).

Tiny random configs (``tiny_config_dict``). The kills land at named crash points (``tests/crash.py``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.crash import kill_command, kill_forked
from tests.train_data import make_dataset, run_cfg, sample_row, stage_cfg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_dataset(tmp_path_factory.mktemp("fault_data"))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, tiny_config_dict: dict) -> Path:
    p = tmp_path_factory.mktemp("fault_cfg") / "tiny.json"
    p.write_text(json.dumps(tiny_config_dict))
    return p


@pytest.fixture(scope="module")
def reference(model_file, dataset, tmp_path_factory):
    """The uninterrupted 12-step run every resumed run is compared with."""
    return run_cfg(stage_cfg(model_file, dataset, tmp_path_factory.mktemp("ref") / "run"))


def _same_weights(a_dir: Path, b_dir: Path) -> None:
    # Exact up to float rounding: the killed part ran in a child on 1 thread, the reference on the
    # parent's threads (sums in another order); observed differences are ~1e-7.
    a = load_file(str(a_dir / "weights.safetensors"))
    b = load_file(str(b_dir / "weights.safetensors"))
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def _saved_step(out: Path) -> int:
    """The step of the training state a reader would find, without repairing anything on disk (the
    resumed run must do that itself)."""
    last = out / "last"
    folder = last if last.exists() else out / ".last.old"  # the latter: killed between the renames
    return json.loads((folder / "trainer_state.json").read_text())["step"]


# crash point in the run ({last}: its last/ folder) → the step the resumed run starts from
TRAIN_POINTS = {
    "train.saved#2": 8,  # right after the checkpoint of step 8
    "state.tensors@{last}#2": 4,  # mid-save of step 8 (in the temporary folder): step 4 stays
    # between the two renames of step 8's save (the first save has no old folder to move aside):
    # the old last/ comes back
    "atomic.dir.between@{last}#1": 4,
    "atomic.dir.swapped@{last}#2": 8,  # step 8 in place, the old one not yet removed
}


@pytest.mark.parametrize("point", list(TRAIN_POINTS))
def test_run_killed_mid_way_resumes_to_the_uninterrupted_weights(
    model_file, dataset, reference, tmp_path, capsys, point
):
    out = tmp_path / "run"
    cfg = stage_cfg(model_file, dataset, out)
    kill_forked(point.format(last=out / "last"), lambda: run_cfg(cfg), tmp_path / "marks")
    assert _saved_step(out) == TRAIN_POINTS[point]
    capsys.readouterr()
    resumed = run_cfg(cfg)
    assert f"resuming {out} at step {TRAIN_POINTS[point]}" in capsys.readouterr().out  # not started over
    _same_weights(reference.last / "model", resumed.last / "model")
    _same_weights(reference.final, resumed.final)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in reference.history], rel=1e-5)
    assert sorted(p.name for p in out.iterdir()) == ["best", "final", "last", "loss.png", "metrics.json"]


def test_feature_cache_a_killed_run_filled_is_reused_on_resume(model_file, dataset, reference, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "features"
    cfg = stage_cfg(model_file, dataset, out, data={"feature_cache": str(cache)})

    def shards() -> dict[str, list[str]]:
        from safetensors import safe_open

        found = {}
        for p in sorted(cache.glob("*/shard-*.safetensors")):
            with safe_open(str(p), framework="pt") as f:
                found[p.name] = json.loads(f.metadata()["keys"])
        return found

    # killed while computing features: after the image shard, before the IMU one
    kill_forked("feature_cache.shard#1", lambda: run_cfg(cfg), tmp_path / "marks")
    first = shards()
    assert len(first) == 1 and not (out / "last").exists()
    # killed again after its first checkpoint: it encoded only the IMU media
    kill_forked("train.saved#1", lambda: run_cfg(cfg), tmp_path / "marks")
    second = shards()
    assert set(first) < set(second) and len(second) == 2 and _saved_step(out) == 4
    resumed = run_cfg(cfg)
    assert shards() == second  # the resumed run encoded nothing: every feature came from the cache
    keys = [k for ks in second.values() for k in ks]
    assert len(keys) == len(set(keys)) == 2 * 32  # every image and IMU file of train + val, once
    _same_weights(reference.last / "model", resumed.last / "model")


@pytest.mark.slow
def test_train_cli_killed_after_a_checkpoint_resumes_exactly(model_file, dataset, reference, tmp_path):
    """The real command, killed with SIGKILL from outside (a fresh interpreter, ~10 s)."""
    out = tmp_path / "run"
    cfg_file = tmp_path / "stage.yaml"
    cfg_file.write_text(yaml.safe_dump(stage_cfg(model_file, dataset, out)))
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
    }
    argv = [sys.executable, "-m", "omnibind.train.cli", str(cfg_file), "--no-progress"]
    kill_command("train.saved#2", argv, tmp_path / "marks", env=env, cwd=ROOT)
    assert _saved_step(out) == 8
    resumed = run_cfg(stage_cfg(model_file, dataset, out))
    assert resumed.history[7]["step"] == 8 and len(resumed.history) == 12
    _same_weights(reference.final, resumed.final)


# --------------------------------------------------------------------------- corrupt media


@pytest.fixture()
def dirty_dataset(dataset, tmp_path) -> dict[str, Path]:
    """The training set plus a truncated PNG (line 3), a garbage WAV (line 6), a missing file
    (line 9), and a truncated PNG in the validation set (line 2)."""
    base = dataset["train"].parent
    good = base / "train_0.png"
    trunc = tmp_path / "truncated.png"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    wav = tmp_path / "garbage.wav"
    wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)

    def absolute(row: dict) -> dict:  # the new files live elsewhere: their media paths must not be relative
        for m in row.get("media", []):
            m["path"] = str(base / m["path"])
        return row

    rows = [absolute(json.loads(x)) for x in dataset["train"].read_text().splitlines()]
    bad_image = sample_row("train", 100, str(trunc), str(base / "train_1.npy"))
    bad_audio = {
        "id": "train-wav",
        "media": [{"type": "audio", "path": str(wav)}],
        "conversation": [
            {"role": "user", "content": "<audio>\nWhat is this?"},
            {"role": "assistant", "content": "A sound."},
        ],
    }
    missing = sample_row("train", 101, str(tmp_path / "gone.png"), str(base / "train_2.npy"))
    rows[2:2] = [bad_image]
    rows[5:5] = [bad_audio]
    rows[8:8] = [missing]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    val_rows = [absolute(json.loads(x)) for x in dataset["val"].read_text().splitlines()]
    val_rows.insert(1, sample_row("val", 100, str(trunc), str(base / "val_1.npy")))
    val = tmp_path / "val.jsonl"
    val.write_text("".join(json.dumps(r) + "\n" for r in val_rows))
    return {"train": train, "val": val, "trunc": trunc, "wav": wav, "missing": tmp_path / "gone.png"}


def test_corrupt_media_are_skipped_and_named_and_a_100_step_run_completes(model_file, dirty_dataset, tmp_path, capfd):
    out = tmp_path / "run"
    cfg = stage_cfg(
        model_file,
        dirty_dataset,
        out,
        optim={"max_steps": 100, "batch_size": 2, "eval_every": 50, "save_every": 50, "warmup_steps": 5},
    )
    res = run_cfg(cfg)
    assert len(res.history) == 100 and res.steps == 100
    report = json.loads((out / "metrics.json").read_text())["metrics"]["bad_media"]
    assert report["policy"] == "skip"
    assert report["skipped_samples"] == {"train": 3, "val": 1}
    train, val = str(dirty_dataset["train"]), str(dirty_dataset["val"])
    files = {Path(f["path"]).name: f for f in report["files"]}
    assert set(files) == {"truncated.png", "garbage.wav", "gone.png"}
    assert files["truncated.png"]["samples"] == [f"{train}:3", f"{val}:2"]
    assert files["garbage.wav"]["samples"] == [f"{train}:6"] and files["garbage.wav"]["modality"] == "audio"
    assert files["gone.png"]["samples"] == [f"{train}:9"] and "no such file" in files["gone.png"]["problem"]
    assert "truncated" in files["truncated.png"]["problem"]
    err = capfd.readouterr().err
    assert f"{train}:3" in err and "skipped 4 samples (3 train, 1 val) with 3 undecodable media" in err
    # every clean media sample trained (align keeps media samples only: 24 train, 8 val)
    assert res.metrics["train_samples"] == 24 and res.metrics["val_samples"] == 8


def test_on_bad_media_error_stops_before_the_first_step_naming_the_line(model_file, dirty_dataset, tmp_path):
    from omnibind.data.format import DatasetError

    out = tmp_path / "run"
    cfg = stage_cfg(model_file, dirty_dataset, out, data={"on_bad_media": "error"})
    with pytest.raises(DatasetError) as err:
        run_cfg(cfg)
    assert err.value.file == str(dirty_dataset["train"]) and err.value.line == 3
    assert "truncated.png" in str(err.value) and "2 more undecodable media" in str(err.value)
    assert "on_bad_media" in str(err.value)
    assert not (out / "last").exists()


def test_on_bad_media_is_validated():
    from omnibind.errors import ConfigError
    from omnibind.train.config import TrainConfig

    with pytest.raises(ConfigError, match="data.on_bad_media"):
        TrainConfig.from_dict({"data": {"on_bad_media": "ignore"}})


def test_feature_store_reports_bad_media_of_frozen_and_trainable_encoders(tiny_model, dirty_dataset):
    """``precompute`` names each undecodable medium once; without ``on_error`` the first one raises."""
    from omnibind.errors import InputError
    from omnibind.train.data import load_samples
    from omnibind.train.features import FeatureStore

    samples = load_samples([dirty_dataset["train"]], text_only=False)
    media = [m for s in samples for m in s.media]
    seen: list[tuple[str, str]] = []
    store = FeatureStore(tiny_model.core)
    done = store.precompute(media, progress=False, on_error=lambda p, e: seen.append((Path(p.source).name, p.modality)))
    assert sorted(seen) == [("garbage.wav", "audio"), ("gone.png", "image"), ("truncated.png", "image")]
    assert done == len({(m.modality, str(m.source)) for m in media}) - 3  # distinct good media, encoded once
    with pytest.raises(InputError):
        FeatureStore(tiny_model.core).precompute(media, progress=False)
    assert np.isfinite(store.lookup(media[0]).pooled.numpy()).all()
