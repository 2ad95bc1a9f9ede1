"""``omnibind plan CONFIG --gpus N``: parameter counts and memory per GPU before renting the GPUs.

The model is instantiated on the meta device (``omnibind.train.plan``), so a 13B config is sized in
seconds with no memory and no download; the arithmetic is ``omnibind.train.plan_memory``. Only
typer and the standard library are imported at module level (``omnibind --help`` stays instant).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

WIDTH = 80


def load_plan_input(spec: str) -> tuple[Any, Any]:
    """``(ModelConfig, TrainConfig or None)`` of a preset, model config file, checkpoint folder or
    stage config file (a YAML with ``stage:``; its recipe, LoRA and batch then apply)."""
    from omnibind.errors import ConfigError
    from omnibind.train.config import PipelineConfig, load_train_config
    from omnibind.train.stages import resolve_model_config, stage_model_config

    p = Path(spec).expanduser()
    if p.is_file() and p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: cannot parse YAML: {e}") from e
        if isinstance(data, dict) and ("stage" in data or "stages" in data):
            cfg = load_train_config(p)
            if isinstance(cfg, PipelineConfig):
                raise ConfigError(f"{p}: a pipeline of {len(cfg.stages)} stages; plan one of its stage files")
            return stage_model_config(cfg), cfg
    return resolve_model_config(spec), None


def make_plan(
    spec: str,
    *,
    gpus: int = 1,
    batch: int | None = None,
    seq: int = 2048,
    grad_accum: int | None = None,
    stage: str | None = None,
    train: list[str] | None = None,
    lora_r: int | None = None,
    precision: str = "bf16-mixed",
    attention: str = "sdpa",
    gpu_memory: float = 80.0,
    strategies: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The whole plan as a plain dict (what ``--json`` prints): parts, counts, memory per strategy.

    ``batch``/``grad_accum``/``stage``/``train`` default to a stage file's ``optim`` and recipe (else
    batch 8, no accumulation, stage ``instruct`` and its default groups); ``lora_r`` sets the LoRA
    rank (alpha = 2r when the config has no LoRA).
    """
    from omnibind.config import LoRAConfig
    from omnibind.train.plan import default_groups, size_model
    from omnibind.train.plan_memory import STRATEGIES, estimate

    config, stage_cfg = load_plan_input(spec)
    if lora_r is not None:
        lora = config.llm.lora or LoRAConfig(alpha=2 * lora_r)
        lora.r = lora_r
        config.llm.lora = lora
    stage = stage or (stage_cfg.stage if stage_cfg is not None else "instruct")
    default = default_groups(config, stage)  # also refuses an unknown stage
    if train is None:
        train = list(stage_cfg.recipe.train) if stage_cfg is not None else default
    if batch is None:
        batch = stage_cfg.optim.batch_size if stage_cfg is not None else 8
    if grad_accum is None:
        grad_accum = stage_cfg.optim.grad_accum if stage_cfg is not None else 1
    sizing = size_model(config, train)
    memory = estimate(
        sizing,
        gpus=gpus,
        batch=batch,
        seq=seq,
        grad_accum=grad_accum,
        precision=precision,
        attention=attention,
        gpu_memory_gib=gpu_memory,
        strategies=strategies or STRATEGIES,
        runs_llm=stage != "bind",
    )
    return {"config": spec, "stage": stage, **sizing.to_dict(), "memory": memory}


# --- the table ----------------------------------------------------------------------------------
def count(n: float) -> str:
    """6738415616 → '6.74 B', 632829440 → '632.8 M', 4096 → '4.1 K', 0 → '0'."""
    for div, unit, digits in ((1e9, "B", 2), (1e6, "M", 1), (1e3, "K", 1)):
        if abs(n) >= div:
            return f"{n / div:.{digits}f} {unit}"
    return str(int(n))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render(plan: dict[str, Any]) -> str:
    """The plan as an 80-column table: parts and counts, then memory per GPU in GiB per strategy."""
    from omnibind.train.plan_memory import GIB, STRATEGY_TITLES

    m = plan["memory"]
    lines = [
        _cut(f"{plan['name']} ({plan['config']}), stage {plan['stage']}", WIDTH),
        _cut(f"trains: {', '.join(plan['groups'])}", WIDTH),
        "",
        f"{'component':<24} {'what':<24} {'params':>9} {'trainable':>10} {'dtype':>8}",
        "-" * WIDTH,
    ]
    for p in plan["parts"]:
        lines.append(
            f"{_cut(p['name'], 24):<24} {_cut(p['what'], 24):<24} {count(p['params']):>9} "
            f"{count(p['trainable']):>10} {p['dtype']:>8}"
        )
    lines += [
        "-" * WIDTH,
        f"{'total':<49} {count(plan['params']):>9} {count(plan['trainable']):>10}",
        "",
        _cut(f"memory per GPU: {m['gpus']} GPU(s) of {m['gpu_memory_gib']:g} GiB, {m['precision']}", WIDTH),
        _cut(
            f"global batch {m['batch']} = {m['micro_batch']} per GPU x {m['gpus']} GPU(s) x {m['grad_accum']} "
            f"accumulation, {m['seq']} tokens each",
            WIDTH,
        ),
        f"{'':<17}{'':>30}{'':>8} |{'checkpointed':>16}",
        f"{'GiB':<17}{'weights':>8}{'grads':>7}{'optim':>7}{'activ':>8}{'total':>8} |{'activ':>8}{'total':>8}"
        f"{'fits':>6}",
        "-" * WIDTH,
    ]
    for key, s in m["strategies"].items():
        fits = "yes" if s["fits"] else ("ckpt" if s["fits_ckpt"] else "no")
        g = {k: v / GIB for k, v in s.items() if not isinstance(v, bool)}
        lines.append(
            f"{STRATEGY_TITLES[key]:<17}{g['weights']:>8.1f}{g['grads']:>7.1f}{g['optimizer']:>7.1f}"
            f"{g['activations']:>8.1f}{g['total']:>8.1f} |{g['activations_ckpt']:>8.1f}{g['total_ckpt']:>8.1f}"
            f"{fits:>6}"
        )
    b = m["bytes_per_trainable_param"]
    lines += [
        "-" * WIDTH,
        f"trainable: {b['weights']:g} + {b['grads']:g} + {b['optimizer']:g} bytes/param (weights, grads, "
        "Adam + fp32 master).",
        "frozen: their dtype. fits: yes, ckpt (only with gradient checkpointing, which",
        "omnibind train does not switch on yet) or no. Activations are an estimate;",
        f"{m['attention']} attention; CUDA context and communication buffers not counted.",
        "Formulas: docs/TRAINING.md, Scaling out.",
    ]
    lines += [_cut(f"note: {n}", WIDTH) for n in plan.get("notes", [])]
    return "\n".join(lines)


def plan_command(
    config: Annotated[str, typer.Argument(help="Preset name, model config file, checkpoint folder or stage YAML.")],
    gpus: Annotated[int, typer.Option(help="GPUs (processes) the run spreads over.")] = 1,
    batch: Annotated[int | None, typer.Option(help="Global batch size (default: the stage's, else 8).")] = None,
    seq: Annotated[int, typer.Option(help="Tokens per sample, soft tokens included.")] = 2048,
    grad_accum: Annotated[int | None, typer.Option(help="Gradient accumulation steps (default: the stage's).")] = None,
    stage: Annotated[
        str | None, typer.Option(help="bind | align | instruct | per_modality (default instruct).")
    ] = None,
    train: Annotated[
        str | None, typer.Option(help="Comma-separated parameter groups that train (default: the stage's).")
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (adds LoRA when the config has none).")] = None,
    precision: Annotated[str, typer.Option(help="bf16-mixed | fp32.")] = "bf16-mixed",
    attention: Annotated[str, typer.Option(help="sdpa (fused, no attention matrix kept) | eager.")] = "sdpa",
    gpu_memory: Annotated[float, typer.Option(help="GiB per GPU, for the fits column.")] = 80.0,
    strategy: Annotated[str, typer.Option(help="Comma-separated strategies: ddp, zero2, fsdp, qlora, or all.")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Size a config on the meta device: parameters by component, trainable counts, and memory per GPU
    (weights, gradients, optimiser, activations) under DDP, ZeRO-2, FSDP and QLoRA. No weights are
    loaded and no memory is used; real-size presets: pandagpt-7b, pandagpt (13B), llava-1.5-7b."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omnibind.errors import OmnibindError
    from omnibind.train.plan_memory import STRATEGIES

    chosen = STRATEGIES if strategy == "all" else tuple(s.strip() for s in strategy.split(",") if s.strip())
    groups = [g.strip() for g in train.split(",") if g.strip()] if train is not None else None
    try:
        plan = make_plan(
            config,
            gpus=gpus,
            batch=batch,
            seq=seq,
            grad_accum=grad_accum,
            stage=stage,
            train=groups,
            lora_r=lora_r,
            precision=precision,
            attention=attention,
            gpu_memory=gpu_memory,
            strategies=chosen,
        )
    except OmnibindError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(plan, indent=2) if as_json else render(plan))
