"""The report of ``omnibind bench backends``: small tables, one row per engine, that fit 80 columns.

Each table has at most seven short columns with numbers only; names that would widen a cell (GGUF
files, the build's details) are printed below the tables instead of inside them. It also prints
results saved before the engine-limits columns (one llama.cpp engine, one chat, no ``limits``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _engines(r: dict[str, Any]) -> tuple[list[str], list[str]]:
    engines = [e for e in r.get("engines", ["transformers", "llamacpp"]) if not e.startswith("raw:")]
    return engines, [e for e in engines if e != "transformers"]


def _x(value: float) -> str:
    return f"{value:.2f}×"


def speed_table(r: dict[str, Any]) -> Any:
    """Load, decode speed, first token with an image and greedy agreement: one row per engine."""
    from rich.table import Table

    engines, _ = _engines(r)
    ld, dc = r["load_seconds"], r["decode"]
    ratios = dc.get("ratios", {"llamacpp": dc.get("ratio", float("nan"))})
    ft = r.get("first_token_with_image_seconds", {})
    by = r.get("agreement_by_engine", {"llamacpp": r["agreement"]} if "agreement" in r else {})
    t = Table(title=f"omnibind bench backends: {r['model']}, {r['threads']} threads")
    for name in ("engine", "load s", "tokens/s", "÷ tf", "1st tok s", "÷ tf", "agree"):
        t.add_column(name, justify="left" if name == "engine" else "right", no_wrap=True)
    for e in engines:
        tf_row = e == "transformers"
        first = ft.get(e)
        agree = "" if tf_row or e not in by else f"{by[e]['agree']}/{by[e]['cases']}"
        t.add_row(
            e,
            f"{ld[e]:.2f}",
            f"{dc[e]['tokens_per_second']:.1f}",
            _x(1.0) if tf_row else _x(ratios[e]),
            "" if first is None else f"{first:.3f}",
            "" if first is None else _x(first / ft["transformers"]),
            agree,
        )
    t.caption = "÷ tf: ratio to transformers; agree: its first 10 greedy tokens"
    return t


def limits_table(r: dict[str, Any]) -> Any | None:
    """omnibind's llama.cpp decode beside llama-cpp-python alone and the memory-bandwidth bound."""
    from rich.table import Table

    lim = r.get("limits")
    if not lim:
        return None
    gbs = lim["copy_bandwidth_bytes_per_second"] / 1e9
    t = Table(title=f"llama.cpp decode vs the engine alone and the bound ({gbs:.1f} GB/s copy)")
    for name in ("engine", "MB/token", "omnibind", "alone", "÷ alone", "bound", "÷ bound"):
        t.add_column(name, justify="left" if name == "engine" else "right", no_wrap=True)
    for e, row in lim["engines"].items():
        raw = row.get("raw_tokens_per_second")
        t.add_row(
            e,
            f"{row['bytes_per_token'] / 1e6:.0f}",
            f"{row['tokens_per_second']:.1f}",
            "" if raw is None else f"{raw:.1f}",
            "" if raw is None else f"{row['vs_raw'] * 100:.0f}%",
            f"{row['bound_tokens_per_second']:.1f}",
            f"{row['vs_bound'] * 100:.0f}%",
        )
    t.caption = "tokens/s; alone: llama-cpp-python, same GGUF, prompt and tokens"
    return t


def kv_table(r: dict[str, Any]) -> Any | None:
    """A chat's second turn with the first one cached vs the whole history re-evaluated (llamacpp)."""
    from rich.table import Table

    kvs = r.get("kv_reuse")
    if not kvs:  # a --decode-only run
        return None
    if "ratio" in kvs:  # one chat (older results)
        kvs = {"chat": kvs}
    t = Table(title="llamacpp: 2nd chat turn, prompt evaluation")
    for name in ("chat", "cached", "cached s", "whole s", "ratio"):
        t.add_column(name, justify="left" if name == "chat" else "right", no_wrap=True)
    for name, kv in kvs.items():
        t.add_row(
            name,
            f"{kv['cached_positions']}/{kv['history_positions']}",
            f"{kv['second_turn_seconds']:.3f}",
            f"{kv['full_history_seconds']:.3f}",
            f"{kv['ratio'] * 100:.0f}% of it",
        )
    t.caption = "cached: positions of the history reused from turn 1"
    return t


def notes(r: dict[str, Any]) -> list[str]:
    """The lines printed under the tables: GGUF files, the llama.cpp build, disagreements."""
    _, lls = _engines(r)
    ggufs = r.get("gguf", {"llamacpp": r.get("llamacpp_gguf", "")})
    lines = [f"{e}: {Path(g).name}" for e, g in ggufs.items()]
    sysinfo = (r.get("limits") or {}).get("system")
    if sysinfo:
        pool = "OpenMP" if sysinfo["openmp"] else "ggml's own thread pool"
        lines.append(
            f"llama-cpp-python {sysinfo['llama_cpp_python']}: {pool}; "
            f"OMP_WAIT_POLICY={sysinfo['omp_wait_policy'] or 'unset'}"
        )
    by = r.get("agreement_by_engine", {"llamacpp": r["agreement"]} if "agreement" in r else {})
    for e in lls:
        for d in by.get(e, {}).get("disagreements", []):
            lines.append(
                f"{e} disagrees at token {d['first_difference']}: {d['prompt']!r}\n"
                f"  transformers: {d['transformers']!r}\n  {e}: {' ' * max(0, 12 - len(e))}{d['llamacpp']!r}"
            )
    return lines


def print_backends_report(r: dict[str, Any]) -> None:
    """Print the results of ``bench_backends`` (also ones saved by older versions)."""
    from rich.console import Console

    c = Console()
    for table in (speed_table(r), limits_table(r), kv_table(r)):
        if table is not None:
            c.print(table)
    for line in notes(r):
        c.print(line, markup=False, highlight=False)
