"""The training loop shared by every stage.

AdamW, linear warmup then cosine decay, gradient clipping, gradient accumulation, a tqdm progress
bar, validation loss every ``eval_every`` steps with best-checkpoint selection, and resumable
``last/`` checkpoints. Distributed data parallel runs through 🤗 Accelerate: launched with
``accelerate launch`` (or ``torchrun``) each process takes its share of every (deterministic) global
batch, each share's loss counts by its number of loss terms (assistant tokens) and DDP averages the
gradients, so the same config trains the same model on 1 or N processes (to float rounding).
Under FSDP (``configs/accelerate/fsdp.yaml``) the LLM is sharded with torch's ``fully_shard``
(``omnibind.train.sharding``) and checkpoints gather the full trainable weights and moments, so
they are the same files as a single process writes. A task whose loss gathers across processes
(``global_loss``: the bind stage's global negatives) returns the global batch's loss on every
process and is weighted accordingly.
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
    the whole global batch, whatever the split. ``global_loss = True`` says that under several
    processes ``loss(shard)`` gathers every process's shard itself and returns the loss of the
    whole (global) batch; every process must then call it the same number of times.
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

DEEPSPEED_UNSUPPORTED = (
    "DeepSpeed: not supported by omnibind's training loop yet (ZeRO partitions the optimiser state, which "
    "the checkpoints store by parameter name; DeepSpeed's engine also steps and clips on its own) and never run "
    "here (no GPU); use DDP (configs/accelerate/ddp-gpu.yaml) or, for an LLM that outgrows one GPU, FSDP2 "
    "(configs/accelerate/fsdp.yaml)"
)


def launched_world_size(env: dict[str, str] | None = None) -> int:
    """The process count a launcher (torchrun, accelerate, mpirun) set for this run; 1 when none."""
    import os

    env = dict(os.environ) if env is None else env
    return max([int(env[k]) for k in _WORLD_SIZE_VARS if env.get(k, "").strip().isdigit()], default=1)


def check_launch(env: dict[str, str] | None = None) -> Any:
    """Refuse launches that would not train what the config says, before any model is loaded;
    returns the FSDP settings of an FSDP launch (``sharding.FSDPSettings``), else None.

    - ``accelerate launch --cpu --num_processes N`` (and an accelerate config of type ``MULTI_CPU``)
      goes through accelerate's simple launcher: it starts ONE process per machine and expects MPI
      (``--mpirun_hostfile``) to start the others. It sets ``MASTER_ADDR`` (because N > 1) but no
      world size, so without this check every machine trains the whole batch alone — a
      single-process run that looks like a distributed one.
    - FSDP (``configs/accelerate/fsdp.yaml``): FSDP2 only, without the options the loop does not
      implement (``sharding.fsdp_settings`` names them).
    - DeepSpeed (``deepspeed-zero2.yaml``): not supported (``DEEPSPEED_UNSUPPORTED``); better now
      than at the first checkpoint.
    """
    import os

    from omnibind.errors import ConfigError
    from omnibind.train.sharding import fsdp_settings

    env = dict(os.environ) if env is None else env

    def flag(name: str) -> bool:
        return env.get(name, "").strip().lower() in ("1", "true", "yes")

    if flag("ACCELERATE_USE_DEEPSPEED"):
        raise ConfigError(DEEPSPEED_UNSUPPORTED)
    settings = fsdp_settings(env)
    if flag("ACCELERATE_USE_CPU") and env.get("MASTER_ADDR") and launched_world_size(env) <= 1:
        raise ConfigError(
            "accelerate launch --cpu started only this process (accelerate's CPU launcher runs one process per "
            "machine and leaves the rest to mpirun), so it would train alone; for N CPU processes on one machine "
            "run `accelerate launch --config_file configs/accelerate/ddp-cpu-2.yaml -m omnibind.train.cli CONFIG` "
            "(set num_processes there) or `torchrun --standalone --nproc_per_node N -m omnibind.train.cli CONFIG`"
        )
    return settings


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
    from omnibind.errors import ConfigError
    from omnibind.train import sharding
    from omnibind.train.report import write_report
    from omnibind.train.state import (
        MODEL_DIR,
        gathered_trainable_state,
        load_optimizer_state,
        read_training_state,
        save_training_state,
        set_rng_state,
    )

    out = Path(output)
    fsdp = check_launch()
    acc = Accelerator(cpu=device == "cpu", kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    # (an Accelerator set up in code rather than by accelerate launch, which check_launch cannot see)
    if getattr(acc.state, "deepspeed_plugin", None) is not None:
        raise ConfigError(DEEPSPEED_UNSUPPORTED)
    if fsdp is None and getattr(acc.state, "fsdp_plugin", None) is not None:
        raise ConfigError("FSDP: launch it with accelerate launch --config_file configs/accelerate/fsdp.yaml")
    main = acc.is_main_process
    rank, world = acc.process_index, acc.num_processes
    torch.manual_seed(optim.seed)
    history: list[dict[str, Any]] = []
    start, best_val = 0, math.inf
    last_dir, best_dir = out / "last", out / "best"
    recover_dir(best_dir)  # a kill between best/'s two renames: the previous best comes back
    saved: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None
    if resume and (recover_dir(last_dir) / "trainer_state.json").is_file():  # a kill mid-swap: old back
        from omnibind.train.recipes import load_partial

        load_partial(core, last_dir / MODEL_DIR)  # into the whole (not yet sharded) model
        saved = read_training_state(last_dir)
    module = LossModule(core, task)
    params = list(params)
    replicated: list[nn.Parameter] = []
    if fsdp is not None:
        params, names = _shard(module, core, params, names, fsdp, acc.device)
        replicated = [p for p in params if not sharding.is_dtensor(p)]
    opt = torch.optim.AdamW(params, lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(optim.warmup_steps, optim.max_steps, optim.min_lr_ratio)
    )
    if saved is not None:
        tensors, data = saved
        load_optimizer_state(opt, names, tensors, data["optimizer"])
        sched.load_state_dict({**sched.state_dict(), **data["scheduler"]})
        set_rng_state(tensors, data["rng"])
        start, best_val, history = int(data["step"]), float(data.get("best_val", math.inf)), data.get("history", [])
        if main:
            print(f"resuming {out} at step {start}" + (f" on {world} processes" if world > 1 else ""))
    if fsdp is None:
        module, opt = acc.prepare(module, opt)
    raw_opt = getattr(opt, "optimizer", opt)
    if optim.batch_size < world:
        raise ConfigError(f"optim.batch_size {optim.batch_size} is smaller than the {world} processes")
    global_loss = world > 1 and bool(getattr(task, "global_loss", False))
    if (global_loss or fsdp is not None) and world > 1 and optim.batch_size // world < optim.grad_accum:
        # the gather (global negatives) and FSDP's all-gathers are collectives: every process must run
        # the same number of micro-batches, so each share must fill grad_accum of them
        raise ConfigError(
            f"optim.batch_size {optim.batch_size} over {world} processes gives a share smaller than optim.grad_accum "
            f"{optim.grad_accum}; raise batch_size to at least {world * optim.grad_accum} or lower grad_accum"
        )
    weigh = _weigher(task)
    t0 = time.perf_counter()
    bar = tqdm(total=optim.max_steps, initial=start, desc=out.name, unit="step", disable=not (progress and main))

    def save_last(step: int) -> None:
        info = {"step": step, "best_val": best_val, "history": history, **(extra_info or {})}
        save_training_state(last_dir, core, raw_opt, sched, names, info, write=main)  # every process: gathers
        if main:
            crash_point("train.saved", last_dir)  # fault tests kill here: right after a checkpoint
        acc.wait_for_everyone()

    for step in range(start, optim.max_steps):
        core.train()
        batch = task.batch(step)
        shard = batch[rank::world]
        micros = [shard[i :: optim.grad_accum] for i in range(optim.grad_accum)]
        micros = [m for m in micros if m]
        factors = _micro_factors([float(weigh(m)) for m in micros], world, global_loss, acc)
        total = torch.zeros((), device=acc.device)
        for i, micro in enumerate(micros):
            sync = i == len(micros) - 1
            if fsdp is not None:
                module.set_requires_gradient_sync(sync)  # reduce-scatter once, after the last micro-batch
                loss = module(micro) * factors[i]
                loss.backward()
            else:
                with acc.no_sync(module) if not sync and world > 1 else _Null():
                    loss = module(micro) * factors[i]
                    acc.backward(loss)
            total += loss.detach()
        if fsdp is not None:
            sharding.average_replicated_grads(replicated, world)
        if optim.clip > 0:
            if fsdp is not None:
                sharding.clip_grad_norm(params, optim.clip)
            else:
                acc.clip_grad_norm_(params, optim.clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        mean_loss = float(acc.reduce(total, "mean")) if world > 1 else float(total)
        row: dict[str, Any] = {"step": step + 1, "loss": mean_loss, "lr": sched.get_last_lr()[0]}
        done = step + 1
        if optim.eval_every and (done % optim.eval_every == 0 or done == optim.max_steps):
            val = _validate(core, module, task, acc, global_loss)
            if val is not None:
                row["val_loss"] = val
                if val < best_val:
                    best_val = val
                    weights = gathered_trainable_state(core)  # every process: sharded weights are gathered
                    if main:
                        extra = {"training": {"step": done, "val_loss": val}}
                        save_checkpoint(core, best_dir, extra=extra, state=weights)
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
            "strategy": "fsdp" if fsdp is not None else ("ddp" if world > 1 else "single"),
            **(extra_metrics or {}),
        }
        write_report(out, history, metrics)
    acc.wait_for_everyone()
    return TrainResult(out, best_dir if has_best else None, last_dir, final, optim.max_steps, history, metrics, seconds)


def _shard(
    module: nn.Module, core: Any, params: list[nn.Parameter], names: dict[int, str], settings: Any, device: Any
) -> tuple[list[nn.Parameter], dict[int, str]]:
    """FSDP2 on ``module``; returns the trainable parameters as they are after sharding (``fully_shard``
    replaces the sharded ones by DTensor parameters of the same names) and their checkpoint names.

    Every process first takes the main process's weights (what DDP does when it wraps a model):
    randomly initialised parts (projectors, LoRA) must start equal everywhere, and FSDP keeps each
    process's own values.
    """
    import torch.distributed as dist

    from omnibind.train import sharding

    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)
    where = {id(p): n for n, p in module.named_parameters(remove_duplicate=False)}
    wanted = [(where[id(p)], names[id(p)]) for p in params]
    sharding.shard(module, sharding.replicated_params(core, getattr(module, "llm_model", None)), settings, device)
    after = dict(module.named_parameters(remove_duplicate=False))
    new = [after[q] for q, _ in wanted]
    return new, {**names, **{id(p): n for p, (_, n) in zip(new, wanted)}}


def _micro_factors(weights: list[float], world: int, global_loss: bool, acc: Any) -> list[float]:
    """What each micro-batch's mean loss is multiplied by, so that the step's gradient is that of the
    mean over the whole global batch.

    Per-process losses: a micro-batch counts by its share of the global batch's loss terms, times
    ``world`` because DDP / FSDP average gradients over processes. Global losses (every process
    returns the loss of the global micro-batch, and its gathered rows send each process the sum of
    all processes' gradients, which the averaging divides back): a global micro-batch counts by its
    share of the terms, the same factor on every process.
    """
    if world == 1:
        whole = sum(weights)
        return [w / max(whole, 1e-12) for w in weights]
    if global_loss:
        per_micro = acc.reduce(torch.tensor(weights, device=acc.device), "sum")
        whole = float(per_micro.sum())
        return [float(w) / max(whole, 1e-12) for w in per_micro]
    whole = float(acc.reduce(torch.tensor(sum(weights), device=acc.device), "sum"))
    return [w * world / max(whole, 1e-12) for w in weights]


def _validate(core: Any, module: nn.Module, task: Task, acc: Any, global_loss: bool = False) -> float | None:
    """Mean validation loss over all validation batches (each process takes its share), every
    batch and shard weighted by ``task.weight`` (tokens), so 1 and N processes agree.

    Through the wrapped ``module``, so FSDP gathers its sharded parameters as in training. Every
    process runs a forward for every batch (FSDP's all-gathers and the global negatives' gather are
    collectives): a batch with fewer items than processes is evaluated whole by each, counting
    1/world of it.
    """
    from omnibind.train.losses import local_negatives

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
            if world > 1 and len(b) < world:
                w = float(weigh(b)) / world
                with local_negatives():
                    total += module(b).detach() * w
            else:
                shard = b[rank::world]
                # a global loss is the whole batch's on every process: each counts 1/world of it
                w = float(weigh(b)) / world if global_loss else float(weigh(shard))
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
