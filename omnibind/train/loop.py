"""The training loop shared by every stage.

AdamW, linear warmup then cosine decay, gradient clipping, gradient accumulation, a tqdm progress
bar, validation loss every ``eval_every`` steps with best-checkpoint selection, and resumable
``last/`` checkpoints. Distributed data parallel runs through 🤗 Accelerate: launched with
``accelerate launch`` (or ``torchrun``) each process takes its share of every (deterministic) global
batch, each share's loss counts by its number of loss terms (assistant tokens) and DDP averages the
gradients, so the same config trains the same model on 1 or N processes (to float rounding).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from omnibind.atomic import atomic_dir, crash_point, recover_dir
from omnibind.train.config import OptimConfig


class Task(Protocol):
    """What a stage trains: a deterministic global batch per step, a loss, validation batches.

    A task may also define ``weight(batch) -> number``: how many terms its (mean) loss averages over
    for that batch (assistant tokens for the language-model stages); the default is ``len(batch)``.
    Micro-batches and DDP shards are weighted by it, so the loss and gradient of a step are those of
    the whole global batch, whatever the split.
    """

    def batch(self, step: int) -> list[Any]: ...

    def loss(self, batch: list[Any]) -> torch.Tensor: ...

    def val_batches(self) -> list[list[Any]]: ...

    def final_metrics(self) -> dict[str, Any]: ...


class Batcher:
    """Deterministic batches over ``n`` items: a fresh permutation per epoch, seeded by (seed, epoch).

    ``batch(step)`` depends only on the step, so a resumed run sees exactly the batches it would
    have seen, and every DDP process agrees on the global batch without communicating.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < 1:
            raise ValueError("no training items")
        self.n, self.bs, self.seed = n, batch_size, seed
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        start = step * self.bs
        out = []
        for pos in range(start, start + self.bs):
            out.append(int(self._perm(pos // self.n)[pos % self.n]))
        return out


def warmup_cosine(warmup: int, total: int, min_ratio: float):
    """LR multiplier: linear 0→1 over ``warmup`` steps, then cosine 1→``min_ratio`` at ``total``."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


class LossModule(nn.Module):
    """Wraps the model so DDP sees one ``forward``: batch in, scalar loss out."""

    def __init__(self, core: nn.Module, task: Task):
        super().__init__()
        self.core = core
        self.task = task
        # the LLM backend is not an nn.Module child of the core: register its network here so DDP
        # averages LoRA / bias-norm gradients and FSDP finds (and wraps) the decoder layers
        llm_model = getattr(core.llm, "model", None)
        if isinstance(llm_model, nn.Module):
            self.llm_model = llm_model

    def forward(self, batch: list[Any]) -> torch.Tensor:
        return self.task.loss(batch)


@dataclass
class TrainResult:
    """Where a stage's run went. For ``per_modality``, ``output``/``final`` are the stage's and
    ``last`` is the last modality's (each modality's run lives in ``output/<modality>/``)."""

    output: Path
    best: Path | None
    last: Path
    final: Path
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

FSDP_UNSUPPORTED = (
    "FSDP: checkpoints of sharded parameters and optimiser state are not supported yet; use DDP "
    "(configs/accelerate/ddp-gpu.yaml)"
)
DEEPSPEED_UNSUPPORTED = (
    "DeepSpeed: not supported by omnibind's training loop yet (ZeRO partitions the optimiser state, which "
    "the checkpoints store by parameter name from one process; DeepSpeed's engine also steps and clips on its "
    "own); use DDP (configs/accelerate/ddp-gpu.yaml)"
)


def launched_world_size(env: dict[str, str] | None = None) -> int:
    """The process count a launcher (torchrun, accelerate, mpirun) set for this run; 1 when none."""
    import os

    env = dict(os.environ) if env is None else env
    return max([int(env[k]) for k in _WORLD_SIZE_VARS if env.get(k, "").strip().isdigit()], default=1)


def check_launch(env: dict[str, str] | None = None) -> None:
    """Refuse launches that would not train what the config says, before any model is loaded.

    - ``accelerate launch --cpu --num_processes N`` (and an accelerate config of type ``MULTI_CPU``)
      goes through accelerate's simple launcher: it starts ONE process per machine and expects MPI
      (``--mpirun_hostfile``) to start the others. It sets ``MASTER_ADDR`` (because N > 1) but no
      world size, so without this check every machine trains the whole batch alone — a
      single-process run that looks like a distributed one.
    - FSDP and DeepSpeed (``configs/accelerate/fsdp.yaml``, ``deepspeed-zero2.yaml``): not supported
      yet (see ``FSDP_UNSUPPORTED``, ``DEEPSPEED_UNSUPPORTED``); better now than at the first checkpoint.
    """
    import os

    from omnibind.errors import ConfigError

    env = dict(os.environ) if env is None else env

    def flag(name: str) -> bool:
        return env.get(name, "").strip().lower() in ("1", "true", "yes")

    if flag("ACCELERATE_USE_FSDP"):
        raise ConfigError(FSDP_UNSUPPORTED)
    if flag("ACCELERATE_USE_DEEPSPEED"):
        raise ConfigError(DEEPSPEED_UNSUPPORTED)
    if flag("ACCELERATE_USE_CPU") and env.get("MASTER_ADDR") and launched_world_size(env) <= 1:
        raise ConfigError(
            "accelerate launch --cpu started only this process (accelerate's CPU launcher runs one process per "
            "machine and leaves the rest to mpirun), so it would train alone; for N CPU processes on one machine "
            "run `accelerate launch --config_file configs/accelerate/ddp-cpu-2.yaml -m omnibind.train.cli CONFIG` "
            "(set num_processes there) or `torchrun --standalone --nproc_per_node N -m omnibind.train.cli CONFIG`"
        )


class KilledForTestError(RuntimeError):
    """Raised by ``stop_after`` (tests simulate a kill right after a checkpoint)."""


def run_training(
    core: Any,
    task: Task,
    params: Sequence[nn.Parameter],
    names: dict[int, str],
    optim: OptimConfig,
    output: str | Path,
    *,
    device: str = "cpu",
    resume: bool = True,
    select: str = "best",
    progress: bool = True,
    stop_after: int | None = None,
    extra_info: dict[str, Any] | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``params`` of ``core`` on ``task``; checkpoints and the report go under ``output``.

    ``extra_metrics`` joins the final metrics in the report (e.g. the media skipped as undecodable).
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from tqdm import tqdm

    from omnibind.checkpoint import save_checkpoint
    from omnibind.train.report import write_report
    from omnibind.train.state import MODEL_DIR, read_training_state, save_training_state, set_rng_state

    out = Path(output)
    check_launch()
    acc = Accelerator(cpu=device == "cpu", kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    main = acc.is_main_process
    torch.manual_seed(optim.seed)
    opt = torch.optim.AdamW(list(params), lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(optim.warmup_steps, optim.max_steps, optim.min_lr_ratio)
    )
    history: list[dict[str, Any]] = []
    start, best_val = 0, math.inf
    last_dir, best_dir = out / "last", out / "best"
    recover_dir(best_dir)  # a kill between best/'s two renames: the previous best comes back
    if resume and (recover_dir(last_dir) / "trainer_state.json").is_file():  # a kill mid-swap: old back
        from omnibind.train.recipes import load_partial

        load_partial(core, last_dir / MODEL_DIR)
        tensors, data = read_training_state(last_dir)
        from omnibind.train.state import load_optimizer_state

        load_optimizer_state(opt, names, tensors, data["optimizer"])
        sched.load_state_dict({**sched.state_dict(), **data["scheduler"]})
        set_rng_state(tensors, data["rng"])
        start, best_val, history = int(data["step"]), float(data.get("best_val", math.inf)), data.get("history", [])
        if main:
            print(f"resuming {out} at step {start}")
    module = LossModule(core, task)
    # (also for an Accelerator set up in code rather than by accelerate launch, which check_launch sees)
    if getattr(acc.state, "fsdp_plugin", None) is not None:
        from omnibind.errors import ConfigError

        # checked on an H100: training steps run under FSDP2 (with the bind heads, whose 0-d temperature
        # FSDP refuses, left out via plugin.ignored_modules), but saving sharded parameters and optimiser
        # state (DTensors) needs a gather that is not written yet — fail now, not at the first checkpoint
        raise ConfigError(FSDP_UNSUPPORTED)
    if getattr(acc.state, "deepspeed_plugin", None) is not None:
        from omnibind.errors import ConfigError

        raise ConfigError(DEEPSPEED_UNSUPPORTED)
    module, opt = acc.prepare(module, opt)
    rank, world = acc.process_index, acc.num_processes
    if optim.batch_size < world:
        from omnibind.errors import ConfigError

        raise ConfigError(f"optim.batch_size {optim.batch_size} is smaller than the {world} processes")
    weigh = _weigher(task)
    t0 = time.perf_counter()
    bar = tqdm(total=optim.max_steps, initial=start, desc=out.name, unit="step", disable=not (progress and main))

    def save_last(step: int) -> None:
        if main:
            info = {"step": step, "best_val": best_val, "history": history, **(extra_info or {})}
            save_training_state(last_dir, core, opt.optimizer, sched, names, info)
            crash_point("train.saved", last_dir)  # fault tests kill here: right after a checkpoint
        acc.wait_for_everyone()

    for step in range(start, optim.max_steps):
        core.train()
        batch = task.batch(step)
        shard = batch[rank::world]
        micros = [shard[i :: optim.grad_accum] for i in range(optim.grad_accum)]
        micros = [m for m in micros if m]
        # each micro-batch's mean loss counts by its share of the global batch's loss terms; DDP
        # averages gradients over processes, hence the factor world: sum of shares = the global mean
        weights = [float(weigh(m)) for m in micros]
        whole = torch.tensor(sum(weights), device=acc.device)
        whole = float(acc.reduce(whole, "sum")) if world > 1 else float(whole)
        total = torch.zeros((), device=acc.device)
        for i, micro in enumerate(micros):
            sync = i == len(micros) - 1
            ctx = acc.no_sync(module) if not sync and world > 1 else _Null()
            with ctx:
                loss = module(micro) * (weights[i] * world / max(whole, 1e-12))
                acc.backward(loss)
            total += loss.detach()
        if optim.clip > 0:
            acc.clip_grad_norm_(params, optim.clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        mean_loss = float(acc.reduce(total, "mean")) if world > 1 else float(total)
        row: dict[str, Any] = {"step": step + 1, "loss": mean_loss, "lr": sched.get_last_lr()[0]}
        done = step + 1
        if optim.eval_every and (done % optim.eval_every == 0 or done == optim.max_steps):
            val = _validate(core, module, task, acc)
            if val is not None:
                row["val_loss"] = val
                if val < best_val:
                    best_val = val
                    if main:
                        save_checkpoint(core, best_dir, extra={"training": {"step": done, "val_loss": val}})
                    acc.wait_for_everyone()
        history.append(row)
        bar.update(1)
        if done % max(1, optim.log_every) == 0 or "val_loss" in row:
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in ("loss", "val_loss", "lr")})
        if optim.save_every and done % optim.save_every == 0 and done != optim.max_steps:
            save_last(done)
        if stop_after is not None and done >= stop_after:
            bar.close()
            raise KilledForTestError(f"stopped after step {done}")
    bar.close()
    save_last(optim.max_steps)
    metrics = task.final_metrics() if main else {}
    seconds = time.perf_counter() - t0
    has_best = (best_dir / "weights.safetensors").is_file()
    chosen = best_dir if select == "best" and has_best else last_dir / MODEL_DIR
    final = out / "final"
    if main:
        _copy_dir(chosen, final)
        metrics = {
            **metrics,
            "steps": optim.max_steps,
            "best_val_loss": best_val if has_best else None,
            "selected": "best" if chosen == best_dir else "last",
            "seconds_this_session": round(seconds, 1),
            "processes": world,
            **(extra_metrics or {}),
        }
        write_report(out, history, metrics)
    acc.wait_for_everyone()
    return TrainResult(out, best_dir if has_best else None, last_dir, final, optim.max_steps, history, metrics, seconds)


def _validate(core: Any, module: nn.Module, task: Task, acc: Any) -> float | None:
    """Mean validation loss over all validation batches (each process takes its share), every
    batch and shard weighted by ``task.weight`` (tokens), so 1 and N processes agree.

    Through the wrapped ``module``, so FSDP gathers its sharded parameters as in training.
    """
    batches = task.val_batches()
    if not batches:
        return None
    core.eval()
    rank, world = acc.process_index, acc.num_processes
    weigh = _weigher(task)
    total = torch.zeros((), device=acc.device)
    count = torch.zeros((), device=acc.device)
    with torch.no_grad():
        for b in batches:
            shard = b[rank::world]
            if not shard:
                continue
            w = float(weigh(shard))
            total += module(shard).detach() * w
            count += w
    if world > 1:
        total, count = acc.reduce(total, "sum"), acc.reduce(count, "sum")
    core.train()
    return float(total / count.clamp(min=1))


def _weigher(task: Task) -> Any:
    """``task.weight`` when the task defines it, else the number of items."""
    return getattr(task, "weight", None) or len


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _copy_dir(src: Path, dest: Path) -> None:
    """Copy a checkpoint folder into place atomically (the previous one stays until the copy is in)."""
    with atomic_dir(dest) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
