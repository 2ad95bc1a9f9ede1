"""``omnibind eval``: run benchmark tasks and suites, list them, re-score saved outputs.

Only typer and the standard library at import time (``omnibind --help`` stays instant).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Benchmark a model (or an OpenAI-compatible endpoint) against chance, text-only and caption baselines.",
    no_args_is_help=True,
    add_completion=False,
)

LimitOpt = typer.Option(None, "--limit", help="Samples per task (overrides the suite's limits); whole groups kept.")
SeedOpt = typer.Option(0, "--seed", help="Seed for sample selection and the chance baseline.")
BatchOpt = typer.Option(8, "--batch-size", help="Conversations per generate() call / inputs per embed() call.")
OutOpt = typer.Option(None, "--out", help="Output folder (default: eval-results/<suite or first task>).")
ModelOpt = typer.Option(
    None, "--model", "-m", help="Checkpoint folder, config file or preset; with --endpoint: the model id."
)
EndpointOpt = typer.Option(
    None, "--endpoint", help="Base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1."
)
KeyOpt = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="API key for --endpoint.")
CacheOpt = typer.Option(None, "--cache", help="Output cache file (default: <omnibind cache>/eval/outputs.sqlite).")
NoCacheOpt = typer.Option(False, "--no-cache", help="Do not read or write the output cache.")
BaselinesOpt = typer.Option(True, "--baselines/--no-baselines", help="Also score chance / text-only / caption.")
TasksDirOpt = typer.Option([], "--tasks-dir", help="Extra folder of task YAML files (repeatable).")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Progress bars.")
DataDirOpt = typer.Option(
    None,
    "--data-dir",
    envvar="OMNIBIND_EVAL_DATA_DIR",
    help="Folder holding your copies of official benchmarks (POPE, MME, ESC-50, ModelNet40) for *_official tasks.",
)
ThreadsOpt = typer.Option(
    0, "--threads", help="Torch CPU threads; 0 = the cores the load average leaves free (at least 1)."
)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _execute(
    tasks: dict[str, int | None],
    *,
    suite: str | None,
    limit: int | None,
    seed: int,
    batch_size: int,
    out: Path | None,
    model: str | None,
    endpoint: str | None,
    api_key: str | None,
    cache: Path | None,
    no_cache: bool,
    baselines: bool,
    tasks_dir: list[Path],
    progress: bool,
    threads: int = 0,
    data_dir: Path | None = None,
) -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    used_threads = _set_threads(threads)
    from omnibind.errors import OmnibindError
    from omnibind.eval import report
    from omnibind.eval.cache import OutputCache
    from omnibind.eval.models import load_model
    from omnibind.eval.runner import Runner, run_tasks
    from omnibind.eval.tasks import registry, suites

    start = time.perf_counter()
    try:
        from omnibind.eval.datasets.official_common import with_data_dir

        reg = with_data_dir(registry([str(d) for d in tasks_dir]), data_dir)
        for name in tasks:
            reg.get(name)
        if limit is not None:
            tasks = dict.fromkeys(tasks, limit)
        folder = out or Path("eval-results") / (suite or next(iter(tasks)))
        typer.echo(f"loading {'endpoint ' + endpoint if endpoint else 'model ' + (model or '(embedded default)')} …")
        ev = load_model(model, endpoint, api_key)
        cache_path = None if no_cache else (cache or _default_cache())
        suite_report = suites()[suite].get("report") if suite else None
        runner = Runner(
            ev,
            cache=OutputCache(cache_path),
            seed=seed,
            batch_size=batch_size,
            progress=progress,
            baselines=baselines,
        )
        typer.echo(
            f"model {ev.name} [{ev.fingerprint}] loaded in {time.perf_counter() - start:.0f} s; "
            f"{used_threads} torch thread(s)"
        )
        done: list[Any] = []

        def show(res: Any) -> None:
            done.append(res)
            bits = []
            for sysname, s in res.systems.items():
                v = None if s.skipped else s.metrics.get(res.task.primary)
                bits.append(f"{sysname}={'skip' if s.skipped else f'{v:.3f}' if isinstance(v, float) else v}")
            n = len(res.samples) or res.systems["model"].metrics.get("n", 0)  # a hook task reports its own n
            head = f"  {res.task.name:<26} n={n:<4} {res.task.primary}:"
            typer.echo(f"{head} {' '.join(bits)} ({res.seconds:.0f} s)")
            # write after every task so an interrupted run still leaves a report
            report.write_report(
                folder, done, _meta(ev, suite, seed, limit, batch_size, start, runner, suite_report), plots=False
            )

        run_tasks(runner, tasks, reg, on_result=show)
        paths = report.write_report(
            folder, done, _meta(ev, suite, seed, limit, batch_size, start, runner, suite_report)
        )
        runner.cache.close()
    except OmnibindError as e:
        _fail(e)
        return
    typer.echo(
        f"done in {time.perf_counter() - start:.0f} s; cache hits {runner.cache.hits}, misses {runner.cache.misses}"
    )
    for kind, p in paths.items():
        typer.echo(f"  {kind}: {p}")


def _meta(
    ev: Any, suite: str | None, seed: int, limit: int | None, batch: int, start: float, runner: Any, suite_report: Any
) -> dict:
    return {
        "report": suite_report,
        "model": ev.info(),
        "suite": suite,
        "seed": seed,
        "limit": limit,
        "batch_size": batch,
        "seconds": round(time.perf_counter() - start, 1),
        "cache": str(runner.cache.path) if runner.cache.path else None,
    }


def _set_threads(threads: int) -> int:
    """Pick torch's thread count. On a shared CPU, more threads than free cores makes every op
    wait on preempted workers (measured here: 2 threads on 2 busy cores ran 2-8x slower than 1)."""
    import os

    import torch

    cores = os.cpu_count() or 1
    if threads <= 0:
        try:
            busy = os.getloadavg()[0]
        except OSError:  # not on every platform
            busy = 0.0
        threads = max(1, min(cores, round(cores - busy)))
    torch.set_num_threads(threads)
    return threads


def _default_cache() -> Path:
    from omnibind.llm.embedded import cache_root

    return cache_root() / "eval" / "outputs.sqlite"


def _suite(name: str, tasks_dir: list[Path]) -> dict[str, int | None]:
    from omnibind.errors import OmnibindError
    from omnibind.eval.tasks import registry, suite_tasks

    try:
        return suite_tasks(name, registry([str(d) for d in tasks_dir]))
    except OmnibindError as e:
        _fail(e)
        raise


@app.command("run")
def run_cmd(
    tasks: list[str] = typer.Argument(None, help="Task names (see `omnibind eval list`)."),
    suite: str | None = typer.Option(None, "--suite", help="Run a suite instead of / besides named tasks."),
    limit: int | None = LimitOpt,
    seed: int = SeedOpt,
    batch_size: int = BatchOpt,
    out: Path | None = OutOpt,
    model: str | None = ModelOpt,
    endpoint: str | None = EndpointOpt,
    api_key: str | None = KeyOpt,
    cache: Path | None = CacheOpt,
    no_cache: bool = NoCacheOpt,
    baselines: bool = BaselinesOpt,
    tasks_dir: list[Path] = TasksDirOpt,
    progress: bool = ProgressOpt,
    threads: int = ThreadsOpt,
    data_dir: Path | None = DataDirOpt,
) -> None:
    """Run tasks: `omnibind eval run fmnist_bind pope_random --limit 50`."""
    selected: dict[str, int | None] = dict(_suite(suite, tasks_dir)) if suite else {}
    for t in tasks or []:
        selected.setdefault(t, None)
    if not selected:
        _fail(ValueError("name at least one task or --suite (see `omnibind eval list`)"))
    _execute(selected, suite=suite, limit=limit, seed=seed, batch_size=batch_size, out=out, model=model,
             endpoint=endpoint, api_key=api_key, cache=cache, no_cache=no_cache, baselines=baselines,
             tasks_dir=tasks_dir, progress=progress, threads=threads, data_dir=data_dir)  # fmt: skip


def _suite_command(name: str, doc: str) -> None:
    def command(
        limit: int | None = LimitOpt,
        seed: int = SeedOpt,
        batch_size: int = BatchOpt,
        out: Path | None = OutOpt,
        model: str | None = ModelOpt,
        endpoint: str | None = EndpointOpt,
        api_key: str | None = KeyOpt,
        cache: Path | None = CacheOpt,
        no_cache: bool = NoCacheOpt,
        baselines: bool = BaselinesOpt,
        tasks_dir: list[Path] = TasksDirOpt,
        progress: bool = ProgressOpt,
        threads: int = ThreadsOpt,
    ) -> None:
        _execute(_suite(name, tasks_dir), suite=name, limit=limit, seed=seed, batch_size=batch_size, out=out,
                 model=model, endpoint=endpoint, api_key=api_key, cache=cache, no_cache=no_cache,
                 baselines=baselines, tasks_dir=tasks_dir, progress=progress, threads=threads)  # fmt: skip

    command.__doc__ = doc
    app.command(name)(command)


_suite_command("quick", "The quick suite: every task family on small held-out samples (≤ 10 min on 2 CPU cores).")
_suite_command(
    "full", "The full suite: every task on its whole held-out set (see docs/EVALUATION.md for its duration)."
)


@app.command("list")
def list_cmd(tasks_dir: list[Path] = TasksDirOpt) -> None:
    """List tasks (name, method, metric, data) and suites."""
    from omnibind.errors import OmnibindError
    from omnibind.eval.tasks import registry, suites

    try:
        reg = registry([str(d) for d in tasks_dir])
        all_suites = suites()
    except OmnibindError as e:
        _fail(e)
        return
    typer.echo("tasks:")
    for name in reg:
        t = reg.get(name)
        typer.echo(f"  {name:<26} {t.method:<9} {t.metric:<15} {t.dataset:<20} {t.description}")
    typer.echo("suites:")
    for name, body in all_suites.items():
        typer.echo(f"  {name:<10} {len(body['tasks'])} entries — {body['description']}")


@app.command("rescore")
def rescore_cmd(folder: Path = typer.Argument(..., help="An output folder of `omnibind eval`.")) -> None:
    """Recompute answers and metrics from the per-sample logs (no model is run)."""
    from omnibind.errors import OmnibindError
    from omnibind.eval.report import rescore

    try:
        paths = rescore(folder)
    except OmnibindError as e:
        _fail(e)
        return
    for kind, p in paths.items():
        typer.echo(f"  {kind}: {p}")


from omnibind.eval.judge_cli import judge_command  # noqa: E402 - typer-only, mounted last

app.command("judge")(judge_command)
