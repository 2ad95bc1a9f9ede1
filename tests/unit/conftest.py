"""Fixtures of the training tests (test_train.py, test_train_distributed.py): a small grey-level image
+ IMU dataset with captions (omnibind JSONL, train/val) and the tiny model's config file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

# the tiny test encoder sees pixel statistics, not hue: the classes differ in brightness
COLOURS = {"black": (20, 20, 20), "grey": (90, 90, 90), "silver": (160, 160, 160), "white": (235, 235, 235)}
# ... and sees text as byte statistics: captions of clearly different lengths and letters
CAPTIONS = {"black": "Black.", "grey": "A grey one.", "silver": "A silver square, quite light.", "white": "WHITE!"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Grey-level patch images with captions and IMU-like arrays, as omnibind JSONL (train/val)."""
    d = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    for split, n in (("train", 24), ("val", 8)):
        for i in range(n):
            name = list(COLOURS)[i % 4]
            px = np.clip(np.array(COLOURS[name]) + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            img = d / f"{split}_{i}.png"
            PILImage.fromarray(px).save(img)
            imu = d / f"{split}_{i}.npy"
            np.save(imu, rng.normal(i % 4, 1.0, (50, 6)).astype(np.float32))
            cap = CAPTIONS[name]
            rows[split].append(
                {
                    "id": f"{split}-{i}",
                    "media": [
                        {"type": "image", "path": img.name},
                        {"type": "imu", "path": imu.name, "options": {"sample_rate": 50}},
                    ],
                    "conversation": [
                        {"role": "user", "content": "<image>\n<imu>\nWhat is this?"},
                        {"role": "assistant", "content": cap},
                    ],
                    "caption": cap,
                    "source": "test",
                }
            )
        rows[split].append(
            {
                "id": f"{split}-chat",
                "conversation": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            }
        )
    out = {}
    for split, rs in rows.items():
        p = d / f"{split}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rs))
        out[split] = p
    return out


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, tiny_config_dict: dict) -> Path:
    p = tmp_path_factory.mktemp("tiny_cfg") / "tiny.json"
    p.write_text(json.dumps(tiny_config_dict))
    return p
