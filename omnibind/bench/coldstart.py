"""``omnibind bench coldstart``: a question answered from a fresh ``omnibind chat`` process, by part.

Each case runs ``python -m omnibind chat ...`` in a new subprocess (the interpreter, imports, model
load, encoders and first token all paid again), several times, interleaved across cases so a load
spike on a shared machine hits every case alike. The child writes wall-clock phase marks to the file
named by ``$OMNIBIND_TIMINGS`` (``omnibind.serve.cli``); the parts are:

* ``imports``: process start → ``omnibind.api`` imported (interpreter, CLI, torch, ...),
* ``load``: ``omnibind.load`` without the encoders built inside it,
* ``encoders``: building encoders (at load when eager, at the first image when lazy),
* ``first_token``: load done → first token printed, without encoder building,
* ``total``: process start → process exit (the wait a CLI user sees).

``--eager`` cases (``OMNIBIND_EAGER_ENCODERS=1``: every encoder built at load, as before lazy
building) run beside the lazy ones in the same run, so both columns share the machine's load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from omnibind.bench.backends import EXAMPLES

PARTS = ("imports", "load", "encoders", "first_token", "total")
TEXT_QUESTION = "What is the capital of France?"
IMAGE_QUESTION = "What is in this picture?"


@dataclass
class Case:
    """One fresh-process question: its backend, optional image, and whether encoders are eager."""

    name: str
    backend: str
    image: Path | None = None
    eager: bool = False
    runs: list[dict[str, float]] = field(default_factory=list)

    def argv(self, question: str, max_new_tokens: int, model: str | None) -> list[str]:
        args = [sys.executable, "-m", "omnibind", "chat", question, "--backend", self.backend]
        args += ["--max-new-tokens", str(max_new_tokens)]
        if self.image is not None:
            args += ["--image", str(self.image)]
        if model:
            args += ["--model", model]
        return args


def parts_of(marks: dict[str, Any], start: float, end: float) -> dict[str, float]:
    """The parts (see the module docstring) from a child's marks and the parent's start/exit times."""
    enc_at_load = float(marks.get("loaded:encoder_seconds", 0.0))
    enc_at_first = float(marks.get("first_token:encoder_seconds", enc_at_load))
    return {
        "imports": marks["imported"] - start,
        "load": marks["loaded"] - marks["imported"] - enc_at_load,
        "encoders": enc_at_first,
        "first_token": marks["first_token"] - marks["loaded"] - (enc_at_first - enc_at_load),
        "total": end - start,
    }


def run_once(case: Case, *, question: str, max_new_tokens: int, model: str | None, timeout: float) -> dict[str, float]:
    """One fresh process; its parts in seconds. A failing child raises with its stderr tail."""
    import omnibind

    with tempfile.TemporaryDirectory() as tmp:
        marks_file = Path(tmp) / "marks.json"
        env = dict(os.environ)
        env["OMNIBIND_TIMINGS"] = str(marks_file)
        env["OMNIBIND_EAGER_ENCODERS"] = "1" if case.eager else "0"
        # the child runs this very package (not another install that `omnibind` on PATH may point at)
        root = str(Path(omnibind.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        start = time.time()
        proc = subprocess.run(
            case.argv(question, max_new_tokens, model), env=env, capture_output=True, text=True, timeout=timeout
        )
        end = time.time()
        if proc.returncode != 0 or not marks_file.is_file():
            raise RuntimeError(f"{case.name}: omnibind chat failed (rc {proc.returncode}): {proc.stderr[-800:]}")
        marks = json.loads(marks_file.read_text())
    out = parts_of(marks, start, end)
    out["encoders_built"] = len(marks.get("encoders_built", []))
    return out


def default_cases(*, eager: bool, transformers: bool, image: Path | None) -> list[Case]:
    """llama.cpp text and image (lazy, and eager beside them), and transformers text and image."""
    cases = [Case("llamacpp text", "llamacpp")]
    if image is not None:
        cases.append(Case("llamacpp image", "llamacpp", image))
    if transformers:
        cases.append(Case("transformers text", "transformers"))
        if image is not None:
            cases.append(Case("transformers image", "transformers", image))
    if eager:
        cases += [Case(f"{c.name} (eager)", c.backend, c.image, eager=True) for c in list(cases)]
    return cases


def bench_coldstart(
    cases: list[Case], *, repeats: int, max_new_tokens: int, model: str | None, timeout: float = 300.0
) -> dict[str, Any]:
    """Run every case ``repeats`` times, interleaved, after one unmeasured warm-up each (file cache)."""
    for c in cases:  # warm the file cache and any first-time conversion: not part of a cold *process*
        question = IMAGE_QUESTION if c.image else TEXT_QUESTION
        run_once(c, question=question, max_new_tokens=max_new_tokens, model=model, timeout=timeout)
    for _ in range(repeats):
        for c in cases:
            question = IMAGE_QUESTION if c.image else TEXT_QUESTION
            c.runs.append(run_once(c, question=question, max_new_tokens=max_new_tokens, model=model, timeout=timeout))
    rows = {}
    for c in cases:
        med = {p: statistics.median(r[p] for r in c.runs) for p in PARTS}
        rows[c.name] = {
            "backend": c.backend,
            "image": c.image is not None,
            "eager": c.eager,
            "median": med,
            "runs": c.runs,
            "encoders_built": c.runs[-1]["encoders_built"],
        }
    return {
        "repeats": repeats,
        "max_new_tokens": max_new_tokens,
        "load_average": _load_average(),
        "cpus": os.cpu_count(),
        "cases": rows,
    }


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def format_report(results: dict[str, Any]) -> str:
    """The median parts per case in an 80-column table, and lazy ÷ eager totals where both ran."""
    lines = [
        f"cold start from a fresh process, median of {results['repeats']} runs, in seconds",
        f"(load average {results['load_average']} on {results['cpus']} CPUs)",
        f"{'case':<27}{'imports':>8}{'load':>7}{'enc.':>7}{'first':>7}{'total':>7}{'built':>7}",
    ]
    for name, row in results["cases"].items():
        m = row["median"]
        lines.append(
            f"{name[:26]:<27}{m['imports']:>8.2f}{m['load']:>7.2f}{m['encoders']:>7.2f}"
            f"{m['first_token']:>7.2f}{m['total']:>7.2f}{row['encoders_built']:>7}"
        )
    cases = results["cases"]
    for name, row in cases.items():
        eager = cases.get(f"{name} (eager)")
        if eager is not None:
            ratio = row["median"]["total"] / eager["median"]["total"]
            lines.append(f"{name}: lazy ÷ eager total = {ratio:.2f}")
    return "\n".join(lines)


def bench_coldstart_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint folder, config or preset."),
    repeats: int = typer.Option(3, help="Fresh processes per case (median reported)."),
    max_new_tokens: int = typer.Option(8, help="Tokens each answer generates."),
    eager: bool = typer.Option(
        True, "--eager/--no-eager", help="Also run each case with every encoder built at load (as before)."
    ),
    transformers: bool = typer.Option(True, "--transformers/--no-transformers", help="Also run transformers."),
    image: Path | None = typer.Option(None, help="Image for the image question (default: examples/image_cat.jpg)."),
    out: Path | None = typer.Option(None, "--out", help="Write the results as JSON."),
) -> None:
    """A question from a fresh `omnibind chat` process, by part: imports, load, encoders, first token."""
    img = image or (EXAMPLES / "image_cat.jpg")
    cases = default_cases(eager=eager, transformers=transformers, image=img if img.is_file() else None)
    results = bench_coldstart(cases, repeats=repeats, max_new_tokens=max_new_tokens, model=model)
    typer.echo(format_report(results))
    if out:
        out.write_text(json.dumps(results, indent=2))
