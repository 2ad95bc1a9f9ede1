"""``python -m tests.train_driver CONFIG --stop-after N``: a stage that stops with an error right after
step N (as ``run_stage(..., stop_after=N)`` does in-process), for the multi-process tests: launched by
``accelerate launch`` it is a distributed run killed after a checkpoint. Exit status 3 when stopped."""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    from omnibind.train.config import load_train_config
    from omnibind.train.loop import KilledForTestError
    from omnibind.train.stages import run_stage

    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--stop-after", type=int, required=True)
    args = ap.parse_args()
    try:
        run_stage(load_train_config(args.config), progress=False, stop_after=args.stop_after)
    except KilledForTestError as e:
        print(f"killed: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
