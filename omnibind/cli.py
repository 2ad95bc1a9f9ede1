"""The root ``omnibind`` command: one Typer app that mounts the commands living beside their subsystems.

Only typer and the stdlib are imported here and by the mounted modules at import time (heavy
libraries load inside the commands), so ``omnibind --help`` is instant.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import typer

app = typer.Typer(
    name="omnibind",
    help="Bind every modality to a language model: chat, embed, train, evaluate and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

bench_app = typer.Typer(
    help="Performance measurements (figures and ratios measured in one run).", invoke_without_command=True
)


@bench_app.callback()
def bench(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint folder, config file or preset; default: embedded."
    ),
    tokens: int = typer.Option(32, help="Tokens generated per timing."),
    repeats: int = typer.Option(3, help="Timed repetitions (median reported)."),
    backends: bool = typer.Option(
        True, "--backends/--no-backends", help="Also run transformers and llama.cpp side by side (needs the extra)."
    ),
    decode_tokens: int = typer.Option(64, help="Tokens per decode-speed timing in the backends comparison."),
    out: Path | None = typer.Option(None, "--out", help="Also write the figures as JSON."),
) -> None:
    """Load time, per-modality encode time, the glue overhead, and transformers vs llama.cpp."""
    if ctx.invoked_subcommand is not None:
        return
    from omnibind.bench.core import print_report, run_core_bench

    results = run_core_bench(model, tokens=tokens, repeats=repeats)
    print_report(results)
    if backends:
        from omnibind.bench.backends import bench_backends, llamacpp_missing, print_backends_report

        missing = llamacpp_missing()
        if missing:
            typer.echo(f"transformers vs llama.cpp skipped: {missing}")
            results["backends"] = {"skipped": missing}
        else:
            results["backends"] = bench_backends(model, tokens=decode_tokens, repeats=repeats)
            print_backends_report(results["backends"])
    if out:
        out.write_text(json.dumps(results, indent=2))


# (module, attribute, how it mounts, command name), in the order `omnibind --help` lists them (module
# None: this one). "command" adds a function as a command, "group" a Typer app as a command group,
# "bench" a function under `omnibind bench`.
MOUNTS: tuple[tuple[str | None, str, str, str], ...] = (
    ("omnibind.serve.cli", "chat", "command", "chat"),
    ("omnibind.serve.cli", "embed", "command", "embed"),
    ("omnibind.serve.cli", "info", "command", "info"),
    ("omnibind.serve.cli", "cache_app", "group", "cache"),
    (None, "bench_app", "group", "bench"),
    ("omnibind.data.cli", "app", "group", "data"),
    ("omnibind.train.cli", "train_command", "command", "train"),
    ("omnibind.train.plan_cli", "plan_command", "command", "plan"),
    ("omnibind.eval.cli", "app", "group", "eval"),
    ("omnibind.serve.server_cli", "serve_command", "command", "serve"),
    ("omnibind.serve.server_cli", "web_command", "command", "web"),
    ("omnibind.index.cli", "app", "group", "index"),
    ("omnibind.index.cli", "search_command", "command", "search"),
    ("omnibind.export", "app", "group", "export"),
    ("omnibind.importers.cli", "app", "group", "import"),
    ("omnibind.bench.serve", "bench_serve_command", "bench", "serve"),
    ("omnibind.bench.backends", "bench_backends_command", "bench", "backends"),
    ("omnibind.bench.train", "bench_train_command", "bench", "train"),
    ("omnibind.bench.constrained", "bench_constrained_command", "bench", "constrained"),
    ("omnibind.bench.coldstart", "bench_coldstart_command", "bench", "coldstart"),
    ("omnibind.bench.retrieval", "bench_retrieval_command", "bench", "retrieval"),
)


def _mount() -> None:
    """Attach every command; a subsystem left out of this build (its module missing) is skipped."""
    for module, attr, kind, name in MOUNTS:
        try:
            obj = globals()[attr] if module is None else getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue  # subsystem not installed in this build
            raise
        if kind == "group":
            app.add_typer(obj, name=name)
        elif kind == "command":
            app.command(name)(obj)
        else:
            bench_app.command(name)(obj)


_mount()


def main() -> None:
    """Entry point of the ``omnibind`` script and of ``python -m omnibind``."""
    app()


if __name__ == "__main__":
    main()
