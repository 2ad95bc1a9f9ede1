"""The training config: one YAML file per stage (or a pipeline of stages), strictly validated.

A stage config names the model to build (a preset, a config file or a checkpoint folder), an
optional earlier checkpoint to start from, the data, the recipe (which weights train) and the
optimiser. Unknown keys are errors, so a typo never silently trains the wrong thing.

Example (``configs/train/align.yaml``)::

    stage: align
    model: embedded                      # preset | config file | checkpoint folder
    init_from: runs/embedded/bind/best   # weights of an earlier stage (optional)
    output: runs/embedded/align
    data: {train: [data/tuxpaint/train.jsonl], val: [data/tuxpaint/val.jsonl]}
    recipe: {train: [projectors]}
    optim: {lr: 1.0e-3, batch_size: 8, max_steps: 400, warmup_steps: 20}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omnibind.config import build_strict
from omnibind.errors import ConfigError

STAGES = ("bind", "align", "instruct", "per_modality")
"""bind: contrastive heads. align: projector only, frozen LLM, image–caption data (PandaGPT).
instruct: projector + LoRA (+ bias/norm) on instruction data. per_modality: one projector per
modality, each trained separately into the frozen LLM (X-InstructBLIP)."""

PARAM_GROUPS = ("bind_heads", "logit_scale", "projectors", "gates", "encoders", "lora", "bias_norm")


@dataclass
class DataConfig:
    """Where samples come from.

    ``train``/``val``: JSONL dataset files (omnibind's format or LLaVA JSON). ``modalities`` keeps
    only samples whose media are all of these kinds (empty = all). ``max_samples`` caps each split.
    ``feature_cache``: folder of the shared feature cache (None = in-memory features for this run).
    ``on_bad_media``: what a medium that cannot be decoded (corrupt, truncated, missing) does:
    ``skip`` (default) drops the samples using it, warns and names each (file:line) in the run's
    report; ``error`` stops before the first step, naming the first one (``omnibind.train.bad_media``).
    """

    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    modalities: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # keep samples whose ``task`` is listed (caption, qa...)
    max_samples: int | None = None
    max_val_samples: int = 64
    feature_cache: str | None = None
    # share of samples shown with their media's expert notes (labels, transcript) stored by the
    # prepare step's ``experts: true``; the rest without, so the model learns both and when to trust them
    experts: float = 0.0
    on_bad_media: str = "skip"


@dataclass
class RecipeConfig:
    """Which weights train: parameter groups (see ``PARAM_GROUPS``) and per-modality narrowing.

    ``modalities`` narrows ``bind_heads``/``projectors``/``encoders`` to these modalities' parts.
    ``lora`` and ``train_bias_norm`` change the model config (LoRA adapters are added when the
    model is built) before the stage starts.
    """

    train: list[str] = field(default_factory=lambda: ["projectors"])
    modalities: list[str] = field(default_factory=list)
    lora: dict[str, Any] | None = None
    train_bias_norm: bool | None = None


@dataclass
class BindStageConfig:
    """Contrastive (symmetric InfoNCE) pairs: ``[a, b]`` modality names; ``text`` is the caption."""

    pairs: list[list[str]] = field(default_factory=lambda: [["image", "text"]])
    init_heads_from: dict[str, str] = field(default_factory=dict)  # e.g. {depth: image}: copy a head to start
    max_logit_scale: float = 100.0
    recall_at: list[int] = field(default_factory=lambda: [1, 5])
    # several processes: InfoNCE over the global batch (embeddings gathered with their gradients);
    # false: each process contrasts its own share only (1/N of the negatives)
    global_negatives: bool = True


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to ``min_lr_ratio`` × lr; grads clipped to ``clip``."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = 100
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    clip: float = 1.0
    eval_every: int = 50
    save_every: int = 50
    log_every: int = 10
    seed: int = 0


@dataclass
class TrainConfig:
    """One training stage."""

    stage: str = "align"
    model: str = "embedded"
    output: str = "runs/omnibind"
    init_from: str | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)  # modules that register custom encoders/projectors
    data: DataConfig = field(default_factory=DataConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    bind: BindStageConfig = field(default_factory=BindStageConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    resume: bool = True
    select: str = "best"  # which checkpoint the stage exports as final: best (lowest val loss) | last
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"stage: unknown stage {self.stage!r}; expected one of {STAGES}")
        bad = [g for g in self.recipe.train if g not in PARAM_GROUPS]
        if bad:
            raise ConfigError(f"recipe.train: unknown parameter groups {bad}; expected some of {PARAM_GROUPS}")
        if self.select not in ("best", "last"):
            raise ConfigError(f"select: expected 'best' or 'last', got {self.select!r}")
        for pair in self.bind.pairs:
            if len(pair) != 2:
                raise ConfigError(f"bind.pairs: each pair needs two modalities, got {pair}")
        if self.optim.batch_size < 1 or self.optim.max_steps < 1 or self.optim.grad_accum < 1:
            raise ConfigError("optim: batch_size, grad_accum and max_steps must be ≥ 1")
        if self.data.on_bad_media not in ("skip", "error"):
            raise ConfigError(f"data.on_bad_media: expected 'skip' or 'error', got {self.data.on_bad_media!r}")
        if not 0.0 <= float(self.data.experts) <= 1.0:
            raise ConfigError(f"data.experts: a share between 0 and 1, got {self.data.experts!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train config") -> TrainConfig:
        return build_strict(cls, d, where)


@dataclass
class PipelineConfig:
    """Several stages run in order; each starts from the previous stage's exported checkpoint.

    ``final``: where the last stage's checkpoint is copied (e.g. ``omnibind/weights/default``).
    """

    stages: list[TrainConfig]
    final: str | None = None
    prepare: list[dict[str, Any]] = field(default_factory=list)  # data-building steps (see embedded.py)


def _resolve(base: Path, value: str | None) -> str | None:
    """Paths in a config file are relative to the file (presets and checkpoint names are kept)."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    cand = base / p
    if cand.exists() or "/" in value or value.endswith((".yaml", ".yml", ".json", ".jsonl")):
        return str(cand)
    return value  # a preset name such as "embedded"


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such train config") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: cannot parse YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a train config must be a mapping")
    return data


def _stage_from(data: dict[str, Any], base: Path, where: str) -> TrainConfig:
    data = dict(data)
    for key in ("model", "output", "init_from"):
        if key in data:
            data[key] = _resolve(base, data[key])
    if isinstance(data.get("data"), dict):
        d = dict(data["data"])
        for key in ("train", "val"):
            if key in d:
                d[key] = [_resolve(base, x) for x in (d[key] if isinstance(d[key], list) else [d[key]])]
        if d.get("feature_cache"):
            d["feature_cache"] = _resolve(base, d["feature_cache"])
        data["data"] = d
    try:
        return TrainConfig.from_dict(data, where)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def load_train_config(path: str | Path, *, root: str | Path | None = None) -> TrainConfig | PipelineConfig:
    """Read a stage config or a pipeline config (``stages:`` list of files or inline stages).

    Relative paths are resolved against ``root`` (default: the repository/working directory that
    holds the file's ``configs`` folder, else the file's folder).
    """
    path = Path(path)
    data = _read_yaml(path)
    base = Path(root) if root is not None else _default_root(path)
    if "stages" in data:
        unknown = set(data) - {"stages", "final", "prepare"}
        if unknown:
            raise ConfigError(f"{path}: unknown pipeline keys {sorted(unknown)}")
        stages = []
        for i, item in enumerate(data["stages"] or []):
            if isinstance(item, str):  # stage files sit beside the pipeline file (else under the root)
                sub = str(path.parent / item) if (path.parent / item).is_file() else _resolve(base, item)
                stages.append(_stage_from(_read_yaml(Path(sub)), base, f"{sub}"))
            elif isinstance(item, dict):
                stages.append(_stage_from(item, base, f"{path}: stages[{i}]"))
            else:
                raise ConfigError(f"{path}: stages[{i}] must be a file name or a mapping")
        if not stages:
            raise ConfigError(f"{path}: pipeline has no stages")
        prepare = [
            {**st, "out": _resolve(base, st["out"])} if isinstance(st, dict) and "out" in st else st
            for st in data.get("prepare") or []
        ]
        return PipelineConfig(stages=stages, final=_resolve(base, data.get("final")), prepare=prepare)
    return _stage_from(data, base, str(path))


def _default_root(path: Path) -> Path:
    """Configs under ``<root>/configs/train/`` resolve paths against ``<root>``."""
    p = path.resolve()
    for parent in p.parents:
        if parent.name == "configs":
            return parent.parent
    return p.parent
