"""``omnibind bench constrained``: what constrained decoding costs per token, on each backend.

Free decoding, ``json_object``, a ``json_schema`` and a forced tool call are timed on the same
prompt, interleaved repetition by repetition (so load from other work on a shared machine falls
on every arm alike); the figure is the decode rate between the first and the last token (prompt
evaluation excluded), median over repetitions, and the ratio to free decoding in the same run.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import typer

PROMPT = "Describe a cat as JSON: its name, its age, its colour and whether it likes water."
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "colour": {"type": "string"},
        "likes_water": {"type": "boolean"},
    },
    "required": ["name", "age", "colour", "likes_water"],
}
TOOL = {
    "type": "function",
    "function": {
        "name": "describe_cat",
        "parameters": SCHEMA,
    },
}


def arms(template: Any) -> dict[str, dict[str, Any]]:
    """Generation options of each arm (beside max_new_tokens and greedy)."""
    from omnibind.llm.backends.base import RowOptions
    from omnibind.serve.tools import forced_grammar, parse_tools

    forced = forced_grammar(template.tools, parse_tools([TOOL]), "required")
    return {
        "free": {},
        "json_object": {"response_format": {"type": "json_object"}},
        "json_schema": {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}},
        "forced_tool_call": {"rows": [RowOptions(grammar=forced)]},
    }


def decode_rate(model: Any, tokens: int, extra: dict[str, Any]) -> tuple[float, int]:
    """(tokens/s between the first and last token, tokens decoded) of one greedy decode."""
    from omnibind.llm.backends.base import GenerationOptions
    from omnibind.messages import as_conversation

    opts = GenerationOptions(max_new_tokens=tokens, temperature=0.0, stop=list(model.core.template.stop), **extra)
    steps, _ = model.core.generate_ids([as_conversation(PROMPT)], opts)
    stamps = []
    for step in steps:
        if step[0] is None:
            break
        stamps.append(time.perf_counter())
    n = len(stamps)
    return ((n - 1) / (stamps[-1] - stamps[0]) if n > 1 else 0.0), n


def bench_constrained(models: dict[str, Any], *, tokens: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Per backend and arm: median tokens/s, tokens decoded, and the ratio to free decoding."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        plan = arms(model.core.template)
        rates: dict[str, list[float]] = {a: [] for a in plan}
        counts: dict[str, int] = {}
        for extra in plan.values():  # warm-up: builds the vocabulary index once per backend
            decode_rate(model, 4, extra)
        for _ in range(repeats):  # (a row's constraint state is made fresh by each decode)
            for arm, extra in plan.items():
                rate, n = decode_rate(model, tokens, extra)
                rates[arm].append(rate)
                counts[arm] = n
        free = statistics.median(rates["free"])
        out[name] = {
            arm: {
                "tokens_per_s": round(statistics.median(r), 1),
                "tokens": counts[arm],
                "vs_free": round(statistics.median(r) / free, 2) if free else None,
            }
            for arm, r in rates.items()
        }
    return out


def bench_constrained_command(
    tokens: int = typer.Option(48, min=4, max=512, help="Tokens per decode (an arm may stop earlier)."),
    repeats: int = typer.Option(3, min=1, max=20, help="Interleaved repetitions; medians are reported."),
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint, config or preset; default embedded."),
    llamacpp: bool = typer.Option(True, "--llamacpp/--no-llamacpp", help="Also time the llama.cpp backend."),
    out: Path | None = typer.Option(None, "--out", help="Also write the figures as JSON."),
) -> None:
    """Decode speed with constrained output (json_object, json_schema, a forced tool call) vs free."""
    import omnibind

    models = {"transformers": omnibind.load(model)}
    if llamacpp:
        try:
            from omnibind.api import load_llamacpp

            models["llamacpp"] = load_llamacpp(model)
        except ImportError:
            typer.echo("llama-cpp-python is not installed: transformers only", err=True)
    results = bench_constrained(models, tokens=tokens, repeats=repeats)
    typer.echo(f"{'backend':<13} {'arm':<17} {'tokens/s':>9} {'tokens':>7} {'vs free':>8}")
    for backend, row in results.items():
        for arm, r in row.items():
            typer.echo(f"{backend:<13} {arm:<17} {r['tokens_per_s']:>9} {r['tokens']:>7} {r['vs_free']:>8}")
    if out is not None:
        out.write_text(json.dumps({"tokens": tokens, "repeats": repeats, "results": results}, indent=2))
