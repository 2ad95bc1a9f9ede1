"""What the official-layout benchmarks share: finding the user's copy, and pointing tasks at it.

omnibind ships none of these benchmarks (their licences and sizes forbid it). A user who has them
passes the folder that holds them: ``omnibind eval run pope_official --data-dir DIR`` (or sets
``OMNIBIND_EVAL_DATA_DIR``). Each builder takes that folder as ``data_dir`` and accepts either the
benchmark's own folder or a parent holding it under its customary name (``pope/``, ``MME_Benchmark_release_version/``,
``ESC-50-master/``, ``ModelNet40/``), so one ``--data-dir`` serves every official task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omnibind.errors import ConfigError, InputError

DATA_DIR_ENV = "OMNIBIND_EVAL_DATA_DIR"


def need_data_dir(data_dir: str | None, task: str) -> Path:
    """``data_dir`` as a folder, or a ``ConfigError`` saying how to give it."""
    if not data_dir:
        raise ConfigError(
            f"{task} reads your copy of the benchmark in its official layout: "
            f"pass --data-dir DIR (or set {DATA_DIR_ENV}); docs/EVALUATION.md lists the layouts"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise InputError(str(root), f"{task}: --data-dir is not a folder")
    return root


def find_root(data_dir: Path, names: Iterable[str], is_root: Callable[[Path], bool], what: str) -> Path:
    """The benchmark folder: ``data_dir`` itself or ``data_dir/<name>`` for a customary name."""
    candidates = [data_dir, *(data_dir / n for n in names)]
    for c in candidates:
        if c.is_dir() and is_root(c):
            return c
    tried = ", ".join(str(c) for c in candidates)
    raise InputError(str(data_dir), f"no {what} found (looked in {tried})")


def builder_takes_data_dir(builder: Callable[..., Any]) -> bool:
    import inspect

    return "data_dir" in inspect.signature(builder).parameters


def with_data_dir(registry: Any, data_dir: str | Path | None) -> Any:
    """A registry whose official tasks read ``data_dir`` (the others unchanged); the given one when
    ``data_dir`` is empty. Tasks are copied, never modified: the bundled registry is shared."""
    if not data_dir:
        return registry
    from omnibind.eval.datasets.base import DATASETS
    from omnibind.eval.tasks import TaskRegistry

    out = TaskRegistry("eval task")
    for name in registry:
        task = registry.get(name)
        if task.dataset in DATASETS and builder_takes_data_dir(DATASETS.get(task.dataset)):
            task = dataclasses.replace(task, dataset_args={**task.dataset_args, "data_dir": str(data_dir)})
        out.add(name, task)
    return out
