"""Declarative evaluation tasks (YAML files in this folder) and the suites that group them.

A task file names its data (a builder in ``omnibind.eval.datasets``), how the model is asked
(``method``: ``bind`` similarity, candidate ``rank``ing, or open ``generate``), the prompt, the
answer extraction, the metric and the baselines; Python hooks (``hooks.py`` or any
``package.module:function``) cover what YAML cannot say, in the style of lmms-eval::

    task: fmnist_rank
    description: Fashion-MNIST test split, candidate log-likelihood ranking.
    dataset: {builder: fashion_mnist}
    method: rank
    prompt: "What piece of clothing is this? Answer with its name."
    answer_format: "{}"          # each candidate as the assistant's reply
    metric: classification
    baselines: [chance, text_only]

``method: probe`` tasks fit a linear probe on frozen features (``omnibind/eval/probe.py``; its
training data under ``probe: {train: {builder: …}, val: {…}, train_limit, val_limit}``).

``method: hook`` tasks run one Python function instead (``metric: package.module:function``,
``fn(model, task, limit) -> metrics``): analyses that are not one model output per sample (the
``results`` suite's retrieval recall and Tux Paint ceiling); their ``dataset`` mapping needs no
``builder`` and is passed to the function as ``task.dataset_args``.

Keys for the ``results`` suite (docs/RESULTS.md): ``calibrate`` (rank: add a ``calibrated`` system,
the model's scores minus the text-only scores), ``select: dataset`` (the builder applies
``--limit`` itself, taking the first items in file order, as the candidate set depends on them)
and ``model_options`` (``experts: {image_labels: 3}``, ``retrieval_cache: {…}``: applied to a
local model for the task's duration and part of every cached request's key).

Task names are unique: loading a second file with a known name raises ``RegistryError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.errors import ConfigError, RegistryError
from omnibind.registry import Registry

TASKS_DIR = Path(__file__).resolve().parent
RESULTS_DIR = TASKS_DIR / "results"
"""The ``results`` suite's tasks (docs/RESULTS.md): they read the data builders' held-out files."""
RESULTS_TAG = "results"
OFFICIAL_DIR = TASKS_DIR / "official"
"""Benchmarks read from a user's copy in their official layout (``--data-dir``; docs/EVALUATION.md)."""
OFFICIAL_TAG = "official"
SUITES_FILE = TASKS_DIR / "suites.yaml"
METHODS = ("bind", "rank", "generate", "hook", "probe")
SELECTIONS = ("stratified", "dataset")
BASELINES = ("chance", "text_only", "caption", "imagenet_top1", "encoder_probe", "zero_shot")
PROBE_BASELINES = ("encoder_probe", "zero_shot")
"""Baselines of ``probe`` tasks only: the probe on raw encoder features, and the bind zero-shot."""
PROBE_KEYS = {"train", "val", "train_limit", "val_limit"}
_KEYS = {
    "task",
    "description",
    "measures",
    "tags",
    "dataset",
    "method",
    "prompt",
    "system",
    "templates",
    "answer_format",
    "normalize",
    "extract",
    "synonyms",
    "max_new_tokens",
    "metric",
    "primary",
    "baselines",
    "limit",
    "calibrate",
    "select",
    "model_options",
    "probe",
}


@dataclass
class Task:
    """One evaluation task, as read from its YAML file (see the module docstring)."""

    name: str
    description: str
    dataset: str
    dataset_args: dict[str, Any]
    method: str
    metric: str
    prompt: str = ""
    system: str | None = None
    measures: str = ""
    tags: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    answer_format: str = "{}"
    normalize: bool = True
    extract: str | None = None
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    max_new_tokens: int = 16
    primary: str = "accuracy"
    baselines: list[str] = field(default_factory=lambda: ["chance", "text_only"])
    limit: int | None = None
    calibrate: bool = False
    select: str = "stratified"
    model_options: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    """``probe`` tasks: the training (and validation) data of the linear probe."""
    path: str | None = None

    def hook(self, name: str) -> Callable[..., Any]:
        """Resolve a hook: a name in ``omnibind.eval.tasks.hooks`` or ``package.module:function``."""
        return resolve_hook(name, where=self.path or self.name)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "path"}


def resolve_hook(name: str, *, where: str = "task") -> Callable[..., Any]:
    """``"pope"`` → ``omnibind.eval.tasks.hooks.pope``; ``"pkg.mod:fn"`` → that function."""
    module, _, attr = name.rpartition(":") if ":" in name else ("omnibind.eval.tasks.hooks", ":", name)
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{where}: cannot resolve hook {name!r} ({e})") from None
    if not callable(fn):
        raise ConfigError(f"{where}: hook {name!r} is not callable")
    return fn


def parse_task(data: dict[str, Any], path: str | Path | None = None) -> Task:
    """Validate one task mapping (from YAML) into a ``Task``; errors name the file and the field."""
    where = str(path or data.get("task") or "<task>")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a task file must hold a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    for key in ("task", "method", "metric"):
        if key not in data:
            raise ConfigError(f"{where}: missing required key {key!r}")
    method = data["method"]
    if method not in METHODS:
        raise ConfigError(f"{where}: method must be one of {METHODS}, got {method!r}")
    ds = data.get("dataset", {} if method == "hook" else None)
    if ds is None:
        raise ConfigError(f"{where}: missing required key 'dataset'")
    if isinstance(ds, str):
        ds = {"builder": ds}
    if not isinstance(ds, dict) or ("builder" not in ds and method != "hook"):
        raise ConfigError(f"{where}: 'dataset' must be a builder name or a mapping with 'builder'")
    selection = str(data.get("select", "stratified"))
    if selection not in SELECTIONS:
        raise ConfigError(f"{where}: select must be one of {SELECTIONS}, got {selection!r}")
    model_options = data.get("model_options") or {}
    unknown_opts = set(model_options) - {"experts", "retrieval_cache"}
    if unknown_opts:
        raise ConfigError(f"{where}: unknown model_options {sorted(unknown_opts)}; known: experts, retrieval_cache")
    baselines = list(data.get("baselines", [] if method == "hook" else ["chance", "text_only"]))
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise ConfigError(f"{where}: unknown baselines {bad}; known: {BASELINES}")
    if data.get("calibrate") and (method != "rank" or "text_only" not in baselines):
        raise ConfigError(f"{where}: 'calibrate' needs method 'rank' and the text_only baseline")
    if method == "bind" and not data.get("templates"):
        raise ConfigError(f"{where}: a 'bind' task needs 'templates' (prompt ensembling)")
    probe = _probe_spec(data.get("probe"), method, baselines, where)
    if method == "probe" and "zero_shot" in baselines and not data.get("templates"):
        raise ConfigError(f"{where}: the zero_shot baseline needs 'templates' (prompt ensembling)")
    if method == "generate" and not data.get("extract") and data["metric"] != "caption":
        raise ConfigError(f"{where}: a 'generate' task needs 'extract' (how to read the answer)")
    task = Task(
        name=str(data["task"]),
        description=str(data.get("description", "")),
        measures=str(data.get("measures", "")),
        dataset=str(ds.get("builder", "")),
        dataset_args={k: v for k, v in ds.items() if k != "builder"},
        method=method,
        metric=str(data["metric"]),
        prompt=str(data.get("prompt", "")),
        system=data.get("system"),
        tags=list(data.get("tags", [])),
        templates=list(data.get("templates", [])),
        answer_format=str(data.get("answer_format", "{}")),
        normalize=bool(data.get("normalize", True)),
        extract=data.get("extract"),
        synonyms={k: list(v) for k, v in (data.get("synonyms") or {}).items()},
        max_new_tokens=int(data.get("max_new_tokens", 16)),
        primary=str(data.get("primary", "accuracy")),
        baselines=baselines,
        limit=data.get("limit"),
        calibrate=bool(data.get("calibrate", False)),
        select=selection,
        model_options=dict(model_options),
        probe=probe,
        path=str(path) if path else None,
    )
    task.hook(task.metric)  # fail at load time, not after an hour of generation
    if task.extract:
        task.hook(task.extract)
    return task


def _probe_spec(spec: Any, method: str, baselines: list[str], where: str) -> dict[str, Any]:
    """A ``probe`` task's training data: ``{train: {builder, …}, val: {builder, …}, train_limit, val_limit}``."""
    if method != "probe":
        if spec is not None:
            raise ConfigError(f"{where}: 'probe' belongs to 'method: probe' tasks")
        wrong = [b for b in baselines if b in PROBE_BASELINES]
        if wrong:
            raise ConfigError(f"{where}: baselines {wrong} belong to 'method: probe' tasks")
        return {}
    if not isinstance(spec, dict) or "train" not in spec:
        raise ConfigError(f"{where}: a 'probe' task needs 'probe: {{train: {{builder: …}}}}'")
    other = [b for b in baselines if b not in ("chance", *PROBE_BASELINES)]
    if other:
        raise ConfigError(f"{where}: a 'probe' task's baselines are chance, {', '.join(PROBE_BASELINES)}; got {other}")
    unknown = set(spec) - PROBE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown probe keys {sorted(unknown)}; allowed: {sorted(PROBE_KEYS)}")
    for key in ("train", "val"):
        ds = spec.get(key)
        if ds is not None and not (isinstance(ds, dict) and "builder" in ds):
            raise ConfigError(f"{where}: probe.{key} must be a mapping with 'builder'")
    for key in ("train_limit", "val_limit"):
        v = spec.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ConfigError(f"{where}: probe.{key} must be a positive integer, got {v!r}")
    return dict(spec)


def load_task_file(path: str | Path) -> Task:
    """Read one YAML task file."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: cannot read task file ({e})") from None
    return parse_task(data, p)


class TaskRegistry(Registry[Task]):
    """Tasks by name; adding a second task with a known name raises ``RegistryError``."""

    def add_file(self, path: str | Path) -> Task:
        task = load_task_file(path)
        if task.name in self:
            raise RegistryError(
                f"eval task: {task.name!r} in {path} is already registered (by {self.get(task.name).path})"
            )
        self.add(task.name, task)
        return task

    def add_folder(self, folder: str | Path) -> list[Task]:
        return [self.add_file(p) for p in sorted(Path(folder).glob("*.yaml")) if p.name != SUITES_FILE.name]


_DEFAULT: TaskRegistry | None = None


def registry(extra_dirs: list[str | Path] | None = None) -> TaskRegistry:
    """The bundled tasks (loaded once), plus tasks from ``extra_dirs`` in a fresh registry."""
    global _DEFAULT
    if _DEFAULT is None:
        reg = TaskRegistry("eval task")
        reg.add_folder(TASKS_DIR)
        reg.add_folder(RESULTS_DIR)
        reg.add_folder(OFFICIAL_DIR)
        _DEFAULT = reg
    if not extra_dirs:
        return _DEFAULT
    reg = TaskRegistry("eval task")
    for name in _DEFAULT:
        reg.add(name, _DEFAULT.get(name))
    for d in extra_dirs:
        reg.add_folder(d)
    return reg


def suites() -> dict[str, dict[str, Any]]:
    """Suites from ``suites.yaml``: name → ``{"description", "tasks": {task: limit or None}, "report"}``
    (``report``: an optional ``module:function`` writing the suite's own Markdown tables)."""
    import yaml

    data = yaml.safe_load(SUITES_FILE.read_text()) or {}
    out = {}
    for name, body in data.items():
        tasks = body.get("tasks", {})
        if isinstance(tasks, list):
            tasks = {t: None for t in tasks}
        out[name] = {"description": body.get("description", ""), "tasks": dict(tasks), "report": body.get("report")}
    return out


def suite_tasks(name: str, reg: TaskRegistry | None = None) -> dict[str, int | None]:
    """Task → limit of a suite; ``"*"`` in a suite means every registered task at its own default limit,
    except the ``results`` suite's (tagged ``results``: they need ``omnibind data build`` first) and the
    official-layout benchmarks (tagged ``official``: they need the user's copy, ``--data-dir``)."""
    reg = reg or registry()
    all_suites = suites()
    if name not in all_suites:
        raise RegistryError(f"unknown eval suite {name!r}; known: {', '.join(sorted(all_suites))}")
    out: dict[str, int | None] = {}
    for t, lim in all_suites[name]["tasks"].items():
        if t == "*":
            skip = {RESULTS_TAG, OFFICIAL_TAG}
            out.update({n: reg.get(n).limit for n in reg if n not in out and not skip & set(reg.get(n).tags)})
        else:
            reg.get(t)  # unknown names fail here
            out[t] = lim
    return out
