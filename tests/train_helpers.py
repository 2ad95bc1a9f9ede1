"""Helpers shared by the training tests (tests/unit/test_train*.py): a stage config over the tiny model
and the test dataset (fixtures in tests/unit/conftest.py), and an in-process run of it."""

from __future__ import annotations

from pathlib import Path


def _cfg(model_file: Path, dataset: dict[str, Path], out: Path, stage: str = "align", **over) -> dict:
    d = {
        "stage": stage,
        "model": str(model_file),
        "output": str(out),
        "imports": ["tests.tiny_encoder"],
        "data": {"train": [str(dataset["train"])], "val": [str(dataset["val"])]},
        "recipe": {"train": ["projectors"]},
        "optim": {"lr": 3e-3, "batch_size": 4, "max_steps": 12, "warmup_steps": 2, "eval_every": 6, "save_every": 4},
    }
    for k, v in over.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and isinstance(d.get(k), dict) else v
    return d


def _run(d: dict, **kw):
    from omnibind.train.config import TrainConfig
    from omnibind.train.stages import run_stage

    return run_stage(TrainConfig.from_dict(d), progress=False, **kw)
