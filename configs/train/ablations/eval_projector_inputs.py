"""Held-out Tux Paint evaluation of the projector-input ablation runs, side by side in one run.

For each checkpoint: open naming ("What is this?" → ``names_object``, the text-only answer as the
baseline) and closed-set ranking (``Model.score`` of the true label against 9 other held-out labels,
drawn with a fixed seed per item; chance 1/10). Every held-out stamp is an object no training stamp
shows, so only what the encoder knows can name it.

Usage: PYTHONPATH=. python configs/train/ablations/eval_projector_inputs.py runs/ablations/projector-*/final \
         --data runs/ablations/data [--limit N] [--out runs/ablations/results.json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any


def closed_set(model: Any, items: list[Any], labels: list[str], n_candidates: int = 10) -> float:
    from omnibind.messages import Message

    hits = 0
    for i, s in enumerate(items):
        true = s.extra["label"]
        others = sorted({lab for lab in labels if lab != true})
        cands = [true, *random.Random(i).sample(others, min(n_candidates - 1, len(others)))]
        img = s.to_messages()[0].media[0]
        scores = model.core.score([Message.user(img, "What is this?")], cands, normalize=True)
        hits += int(scores.argmax()) == 0
    return hits / max(1, len(items))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import omnibind
    from omnibind.data.format import read_dataset
    from omnibind.train.results import tuxpaint_what

    test = [s for s in read_dataset(args.data / "tuxpaint.test.jsonl") if s.id.endswith("#caption")][: args.limit]
    labels = [s.extra["label"] for s in test]
    rows = []
    for path in args.models:
        t0 = time.perf_counter()
        model = omnibind.load(path)
        what = tuxpaint_what(model, args.data, args.limit)
        row = {
            "model": path,
            "inputs": model.config.projector_for("image")[1].inputs,
            "n": what["n"],
            "naming_accuracy": round(what["accuracy"], 3),
            "naming_text_only": round(what["text_only_accuracy"], 3),
            "closed_set_10_accuracy": round(closed_set(model, test, labels), 3),
            "closed_set_chance": 0.1,
            "examples": what["examples"][:6],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "examples"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
