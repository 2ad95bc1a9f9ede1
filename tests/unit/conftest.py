"""Fixtures of the training tests (test_train.py, test_train_distributed.py): the tiny image + IMU
dataset with captions (``tests/train_data.py``, omnibind JSONL, train/val) and the tiny model's
config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train_data import make_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Grey-level patch images with captions and IMU-like arrays, as omnibind JSONL (train/val)."""
    return make_dataset(tmp_path_factory.mktemp("train_data"))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, tiny_config_dict: dict) -> Path:
    p = tmp_path_factory.mktemp("tiny_cfg") / "tiny.json"
    p.write_text(json.dumps(tiny_config_dict))
    return p
