"""The linear probe as an eval method: C chosen on a validation split (or k-fold CV), probes on bind
vectors and raw encoder features, zero-shot and chance beside them; task validation.

Data: a synthetic IMU set whose classes differ in signal level, so the tiny test encoder's summary
statistics separate them linearly (a probe must beat chance by far; a random one would not).
"""

from __future__ import annotations

import numpy as np
import pytest

from omnibind.errors import ConfigError
from omnibind.eval.datasets import DATASETS, Sample
from omnibind.eval.models import LocalModel
from omnibind.eval.probe import GRID, choose_c, choose_c_cv, fit_probe
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import parse_task
from omnibind.messages import MediaPart

CLASSES = ["still", "walking", "running"]


@DATASETS.register("test_probe_motions")
def _motions(split: str = "test", n: int = 24) -> list[Sample]:
    rng = np.random.default_rng({"train": 0, "val": 1, "test": 2}[split])
    out = []
    for i in range(n):
        c = i % 3
        x = rng.normal(0, 0.2 + c, (60, 6)).astype(np.float32) + c  # level and spread grow with the class
        part = MediaPart("imu", x, options={"sample_rate": 10.0}, name=f"{split}-{i}")
        out.append(Sample(f"{split}-{i}", f"{split}-{i}", "synthetic", [part], CLASSES[c], list(CLASSES)))
    return out


def _task(**over):
    data = {
        "task": "synthetic_probe",
        "dataset": {"builder": "test_probe_motions"},
        "method": "probe",
        "probe": {
            "train": {"builder": "test_probe_motions", "split": "train", "n": 30},
            "val": {"builder": "test_probe_motions", "split": "val", "n": 21},
        },
        "templates": ["a person {}.", "someone {}."],
        "metric": "classification",
        "baselines": ["chance", "encoder_probe", "zero_shot"],
    }
    data.update(over)
    return parse_task(data)


def test_probe_task_runs_every_system(tiny_model):
    res = Runner(LocalModel(tiny_model), progress=False).run(_task())
    assert set(res.systems) == {"model", "chance", "encoder_probe", "zero_shot"}
    for name in ("model", "encoder_probe"):
        m = res.systems[name].metrics
        assert m["accuracy"] >= 0.9, (name, m)  # separable by construction; chance is 1/3
        info = m["probe"]
        assert info["chosen_by"] == "validation split" and info["train"] == 30 and info["val"] == 21
        assert info["C"] > 0 and 0 <= info["val_accuracy"] <= 1
    assert res.systems["model"].metrics["probe"]["dim"] == 16  # the bind space of the tiny config
    assert res.systems["encoder_probe"].metrics["probe"]["dim"] == 24  # the tiny encoder's features
    assert res.systems["chance"].metrics["accuracy"] == pytest.approx(1 / 3, abs=0.08)
    raw = res.systems["model"].raw[0]
    assert len(raw) == 3 and sum(raw) == pytest.approx(1.0, abs=1e-3)  # probabilities over the options


def test_small_validation_split_falls_back_to_cross_validation(tiny_model):
    task = _task(probe={"train": {"builder": "test_probe_motions", "split": "train", "n": 15}})
    res = Runner(LocalModel(tiny_model), progress=False, baselines=False).run(task)
    info = res.systems["model"].metrics["probe"]
    assert info["chosen_by"].startswith("k-fold") and info["val"] == 0


def test_choose_c_regularises_useless_dimensions():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    signal = y[:, None] * 3.0 + rng.normal(0, 1, (120, 1))
    noise = rng.normal(0, 1, (120, 40))  # 40 useless dims: little regularisation overfits them
    x = np.concatenate([signal, noise], 1)
    c, acc = choose_c(x[:60], y[:60], x[60:], y[60:])
    weakest = fit_probe(x[:60], y[:60], GRID[-1])
    acc_weakest = float((weakest.predict(weakest.scaler_.transform(x[60:])) == y[60:]).mean())
    assert c < GRID[-1] and acc > acc_weakest and acc > 0.8
    c_cv, acc_cv = choose_c_cv(x, y)
    assert c_cv < GRID[-1] and acc_cv > 0.7


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"probe": None}, "needs 'probe"),
        ({"probe": {"train": "fashion_mnist"}}, "mapping with 'builder'"),
        ({"probe": {"train": {"builder": "x"}, "epochs": 3}}, "unknown probe keys"),
        ({"probe": {"train": {"builder": "x"}, "train_limit": 0}}, "positive integer"),
        ({"baselines": ["text_only"]}, "baselines are chance"),
        ({"templates": []}, "zero_shot baseline needs 'templates'"),
    ],
)
def test_probe_task_validation(over, needle):
    with pytest.raises(ConfigError, match=needle):
        _task(**over)


def test_probe_keys_belong_to_probe_tasks():
    base = {"task": "t", "dataset": "fashion_mnist", "method": "bind", "templates": ["{}"], "metric": "classification"}
    with pytest.raises(ConfigError, match="belong"):
        parse_task({**base, "baselines": ["encoder_probe"]})
    with pytest.raises(ConfigError, match="belongs"):
        parse_task({**base, "probe": {"train": {"builder": "x"}}})


def test_packaged_probe_tasks_load():
    from omnibind.eval.tasks import registry

    reg = registry()
    for name in ("fmnist_probe", "tuxpaint_category_probe", "imu_probe"):
        t = reg.get(name)
        assert t.method == "probe" and t.probe["train"]["split"] == "train" and t.templates
