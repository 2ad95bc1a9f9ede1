"""The tiny training set and stage configs shared by the training tests (test_train, test_faults_training).

Grey-level patch images with captions and IMU-like arrays as omnibind JSONL (train/val), and a
stage config over the tiny model (``tiny_config_dict``) that trains in a second or two.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

# the tiny test encoder sees pixel statistics, not hue: the classes differ in brightness
COLOURS = {"black": (20, 20, 20), "grey": (90, 90, 90), "silver": (160, 160, 160), "white": (235, 235, 235)}
# ... and sees text as byte statistics: captions of clearly different lengths and letters
CAPTIONS = {"black": "Black.", "grey": "A grey one.", "silver": "A silver square, quite light.", "white": "WHITE!"}


def sample_row(split: str, i: int, image: str, imu: str) -> dict:
    """One image + IMU sample (its class follows ``i``)."""
    cap = CAPTIONS[list(COLOURS)[i % 4]]
    return {
        "id": f"{split}-{i}",
        "media": [{"type": "image", "path": image}, {"type": "imu", "path": imu, "options": {"sample_rate": 50}}],
        "conversation": [
            {"role": "user", "content": "<image>\n<imu>\nWhat is this?"},
            {"role": "assistant", "content": cap},
        ],
        "caption": cap,
        "source": "test",
    }


def make_dataset(d: Path) -> dict[str, Path]:
    """Write the train (24 + 1 chat) and val (8 + 1 chat) files and their media under ``d``."""
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
            rows[split].append(sample_row(split, i, img.name, imu.name))
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


def stage_cfg(model_file: Path, dataset: dict[str, Path], out: Path, stage: str = "align", **over) -> dict:
    """A 12-step stage config over the tiny model (checkpoints at steps 4 and 8, validation at 6 and 12)."""
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


def run_cfg(d: dict, **kw):
    """``run_stage`` of a stage config dict, without progress bars."""
    from omnibind.train.config import TrainConfig
    from omnibind.train.stages import run_stage

    return run_stage(TrainConfig.from_dict(d), progress=False, **kw)
