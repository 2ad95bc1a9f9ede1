"""``omnibind eval judge FOLDER``: grade a finished eval run's answers with a judge model.

Only typer and the standard library at import time (``omnibind --help`` stays instant).
"""

from __future__ import annotations

from pathlib import Path

import typer


def judge_command(
    folder: Path = typer.Argument(..., help="An output folder of `omnibind eval run` (with generate tasks)."),
    template: str = typer.Option(
        "single", "--template", "-t", help="single | verdict | pairwise, or a judge-template YAML file."
    ),
    judge_endpoint: str | None = typer.Option(
        None, "--judge-endpoint", help="OpenAI-compatible base URL of the judge, e.g. http://localhost:8000/v1."
    ),
    judge_model: str | None = typer.Option(
        None, "--judge-model", help="With --judge-endpoint: the model id; else a checkpoint/preset (default: embedded)."
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="API key of the endpoint."),
    method: str = typer.Option(
        "generate", "--method", help="generate (decode the verdict) | rank (local judge: likeliest verdict)."
    ),
    task: list[str] = typer.Option([], "--task", help="Only this task (repeatable)."),
    system: list[str] = typer.Option([], "--system", help="System to grade (repeatable; default: model)."),
    against: str | None = typer.Option(
        None, "--against", help="Pairwise: the other system (default: text_only; with --against-folder: model)."
    ),
    against_folder: Path | None = typer.Option(None, "--against-folder", help="Pairwise: another run's folder."),
    limit: int | None = typer.Option(None, "--limit", help="Samples per task."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the output cache."),
) -> None:
    """Score a run's answers with a judge: single-answer grading, or pairwise with position swap."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omnibind.errors import OmnibindError
    from omnibind.eval.cache import OutputCache
    from omnibind.eval.judge_report import judge_folder
    from omnibind.eval.models import load_model

    try:
        judge = load_model(judge_model, judge_endpoint, api_key)
        cache = OutputCache(None if no_cache else _default_cache())
        body = judge_folder(folder, judge, template, tasks=task or None, systems=system or None, against=against,
                            against_folder=against_folder, method=method, limit=limit, cache=cache)  # fmt: skip
        cache.close()
    except OmnibindError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    from omnibind.eval.judge_report import markdown

    typer.echo(markdown(body))
    typer.echo(f"written: {folder / ('judge-' + body['meta']['template'] + '.json')} (+ .md, samples/*.judge-*.jsonl)")


def _default_cache() -> Path:
    from omnibind.llm.embedded import cache_root

    return cache_root() / "eval" / "outputs.sqlite"
