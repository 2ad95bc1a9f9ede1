"""Reports: ``results.json``, ``results.md``, PNG plots and per-sample JSONL logs.

Layout of an output folder::

    results.json          every metric of every system, run metadata (model, seed, limits, timings)
    results.md            the summary table (model beside its baselines) and per-task details
    tables.md             a suite's own tables, when the suite names a ``report`` hook (``results``)
    plots/summary.png     primary metric per task: model vs chance / text-only / caption
    plots/confusion-<task>.png   the model's confusion matrix on classification tasks
    samples/<task>.jsonl  one line per sample: inputs by name, target, each system's raw output and answer

``rescore(folder)`` recomputes every metric from the JSONL logs (after changing an extraction or
a metric) without running any model.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnibind.errors import InputError
from omnibind.eval.tasks import resolve_hook

SYSTEMS = ("model", "chance", "text_only", "caption")
SYSTEM_LABELS = {"model": "model", "chance": "chance", "text_only": "text-only", "caption": "caption/label"}
DETAIL_KEYS = {
    "classification": ("accuracy", "macro_f1", "unparsed"),
    "pope": ("accuracy", "precision", "recall", "f1", "yes_ratio", "unparsed"),
    "mme": ("accuracy", "accuracy_plus", "score", "yes_ratio"),
    "choice": ("accuracy", "first_ratio", "unparsed"),
    "caption": ("bleu1", "bleu4", "rouge_l", "meteor_lite", "cider_d"),
}


def task_record(res: Any) -> dict[str, Any]:
    """The JSON summary of one ``TaskResult``."""
    t = res.task
    return {
        "task": t.name,
        "description": t.description,
        "method": t.method,
        "metric": t.metric,
        "primary": t.primary,
        "dataset": {"builder": t.dataset, **t.dataset_args},
        "n": len(res.samples) if res.samples else int(res.systems.get("model").metrics.get("n", 0) or 0),
        "seconds": round(res.seconds, 2),
        "systems": {
            name: (
                {"skipped": s.skipped, "seconds": round(s.seconds, 2)}
                if s.skipped
                else {"metrics": s.metrics, "seconds": round(s.seconds, 2)}
            )
            for name, s in res.systems.items()
        },
    }


def sample_lines(res: Any) -> list[dict[str, Any]]:
    """Per-sample log records: the sample, and per system its raw output, answer and correctness."""
    lines = []
    for i, s in enumerate(res.samples):
        rec = s.log_view()
        rec["outputs"] = {}
        for name, sr in res.systems.items():
            if sr.skipped or i >= len(sr.raw):
                continue
            pred = sr.preds[i]
            rec["outputs"][name] = {
                "raw": sr.raw[i],
                "answer": pred,
                "correct": None if res.task.metric == "caption" else pred == s.target,
            }
        lines.append(rec)
    return lines


def write_report(
    folder: str | Path, results: Sequence[Any], meta: dict[str, Any], *, plots: bool = True
) -> dict[str, Path]:
    """Write every output for finished ``TaskResult``s; returns the paths written."""
    out = Path(folder)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    records = [task_record(r) for r in results]
    for r in results:
        write_jsonl(out / "samples" / f"{r.task.name}.jsonl", sample_lines(r))
    return write_summary(out, records, meta, plots=plots)


def write_summary(
    out: Path, records: list[dict[str, Any]], meta: dict[str, Any], *, plots: bool = True
) -> dict[str, Path]:
    """results.json + results.md (+ plots) from task records."""
    body = {"meta": {**environment(), **meta}, "tasks": {r["task"]: r for r in records}}
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    paths["json"].write_text(json.dumps(body, indent=1, default=_json_default) + "\n")
    paths["markdown"].write_text(markdown(body))
    if meta.get("report"):  # the suite's own tables (docs/RESULTS.md's for the results suite)
        paths["tables"] = out / "tables.md"
        paths["tables"].write_text(resolve_hook(meta["report"], where="suite report")(body))
    if plots:
        paths.update(write_plots(out / "plots", records))
    return paths


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("w") as f:
        for line in lines:
            f.write(json.dumps(line, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def environment() -> dict[str, Any]:
    import os

    return {
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


# --- markdown ---------------------------------------------------------------------------------------------
def primary_value(rec: dict[str, Any], system: str) -> float | None:
    s = rec["systems"].get(system)
    if not s or "metrics" not in s:
        return None
    v = s["metrics"].get(rec["primary"])
    return float(v) if isinstance(v, (int, float)) else None


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)


def markdown(body: dict[str, Any]) -> str:
    """The Markdown report: a summary table, then per-task details and skipped systems."""
    meta = body["meta"]
    recs = list(body["tasks"].values())
    model = meta.get("model", {})
    lines = [
        "# omnibind eval results",
        "",
        f"- model: `{model.get('name', '?')}` (fingerprint `{model.get('fingerprint', '?')}`)",
        f"- suite/tasks: {meta.get('suite') or ', '.join(body['tasks'])}; seed {meta.get('seed')}; "
        f"limit {meta.get('limit') or 'per task'}",
        f"- wall time: {meta.get('seconds', 0):.0f} s on {meta.get('cpus')} CPUs; written {meta.get('written')}",
        "",
        "| task | method | n | metric | model | chance | text-only | caption/label | s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in recs:
        cells = []
        for sysname in SYSTEMS:
            s = r["systems"].get(sysname)
            cells.append("skip" if s and s.get("skipped") else _fmt(primary_value(r, sysname)))
        lines.append(
            f"| {r['task']} | {r['method']} | {r['n']} | {r['primary']} | "
            + " | ".join(cells)
            + f" | {r['seconds']:.0f} |"
        )
    lines += ["", "## Details", ""]
    for r in recs:
        lines += [f"### {r['task']}", "", r["description"], ""]
        keys = DETAIL_KEYS.get(r["metric"], (r["primary"],))
        lines.append("| system | " + " | ".join(keys) + " |")
        lines.append("|---|" + "---:|" * len(keys))
        for sysname, s in r["systems"].items():
            if s.get("skipped"):
                continue
            m = s["metrics"]
            lines.append(
                f"| {SYSTEM_LABELS.get(sysname, sysname)} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |"
            )
        per_pair = r["systems"].get("model", {}).get("metrics", {}).get("per_pair")
        if per_pair:
            lines.append("")
            lines.append("model accuracy per pair: " + ", ".join(f"{k} {_fmt(v)}" for k, v in per_pair.items()))
        for sysname, s in r["systems"].items():
            if s.get("skipped"):
                lines.append(f"\n*{SYSTEM_LABELS.get(sysname, sysname)} skipped:* {s['skipped']}")
        lines.append("")
    return "\n".join(lines) + "\n"


# --- plots -------------------------------------------------------------------------------------------------
def write_plots(folder: Path, records: list[dict[str, Any]]) -> dict[str, Path]:
    """summary.png (grouped bars) and one confusion matrix per classification task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if records:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(records) + 2), 4.2))
        width = 0.8 / len(SYSTEMS)
        x = np.arange(len(records))
        for k, sysname in enumerate(SYSTEMS):
            vals = [primary_value(r, sysname) for r in records]
            # CIDEr and MME score are not in [0, 1]: plot them scaled so every bar shares one axis
            scaled = [_unit(v, r["primary"]) for v, r in zip(vals, records)]
            ax.bar(
                x + (k - 1.5) * width, [np.nan if v is None else v for v in scaled], width, label=SYSTEM_LABELS[sysname]
            )
        ax.set_xticks(
            x,
            [f"{r['task']}\n({r['primary']}{_unit_note(r['primary'])})" for r in records],
            rotation=60,
            ha="right",
            fontsize=7,
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("primary metric")
        ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, 1.12))
        fig.tight_layout()
        paths["summary_png"] = folder / "summary.png"
        fig.savefig(paths["summary_png"], dpi=110)
        plt.close(fig)
    for r in records:
        m = r["systems"].get("model", {}).get("metrics", {})
        if "confusion" not in m:
            continue
        conf = np.asarray(m["confusion"], dtype=float)
        classes = m["classes"]
        fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(classes), 0.8 + 0.4 * len(classes)))
        ax.imshow(conf, cmap="Blues")
        ax.set_xticks(range(conf.shape[1]), [*classes, "(none)"], rotation=70, ha="right", fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{r['task']}: accuracy {m['accuracy']:.3f}", fontsize=9)
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, int(v), ha="center", va="center", fontsize=6)
        fig.tight_layout()
        p = folder / f"confusion-{r['task']}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths[f"confusion_{r['task']}"] = p
    return paths


def _unit(v: float | None, metric: str) -> float | None:
    if v is None:
        return None
    return v / 10.0 if metric == "cider_d" else v / 200.0 if metric == "score" else v


def _unit_note(metric: str) -> str:
    return " /10" if metric == "cider_d" else " /200" if metric == "score" else ""


# --- re-scoring ------------------------------------------------------------------------------------------
def rescore(folder: str | Path, registry: Any = None) -> dict[str, Path]:
    """Recompute answers and metrics from ``samples/*.jsonl`` with the current task hooks; rewrite reports."""
    from omnibind.eval.runner import chance_metrics, extract
    from omnibind.eval.tasks import registry as default_registry

    out = Path(folder)
    summary = out / "results.json"
    if not summary.is_file():
        raise InputError(summary, "no results.json here: not an omnibind eval output folder")
    body = json.loads(summary.read_text())
    reg = registry or default_registry()
    records = []
    for name, old in body["tasks"].items():
        log = out / "samples" / f"{name}.jsonl"
        if not log.is_file():
            raise InputError(log, "missing per-sample log; cannot re-score this task")
        task = reg.get(name)
        if task.method == "hook":  # an analysis: no per-sample outputs to re-score
            records.append(old)
            continue
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        samples = [sample_from_log(x) for x in lines]
        for sysname, srec in old["systems"].items():
            if srec.get("skipped"):
                continue
            raw = [x["outputs"].get(sysname, {}).get("raw") for x in lines]
            preds = [extract(task, s, r) for s, r in zip(samples, raw)]
            if sysname == "chance":
                srec["metrics"] = chance_metrics(task, samples, int(body["meta"].get("seed") or 0))
            else:
                srec["metrics"] = task.hook(task.metric)(preds, samples, task)
            for x, p, s in zip(lines, preds, samples):
                if sysname in x["outputs"]:
                    x["outputs"][sysname]["answer"] = p
                    x["outputs"][sysname]["correct"] = None if task.metric == "caption" else p == s.target
        write_jsonl(log, lines)
        records.append(old)
    meta = {**body["meta"], "rescored": time.strftime("%Y-%m-%d %H:%M:%S")}
    return write_summary(out, records, meta)


def sample_from_log(x: dict[str, Any]) -> Any:
    """A sample as a run's ``samples/<task>.jsonl`` row records it (media are not stored: names only),
    enough to re-extract and re-score its outputs or to judge them."""
    from omnibind.eval.datasets import Sample

    return Sample(
        x["id"], x["item"], x["source"], [], x["target"], x["options"], x.get("refs") or [], x["vars"], x["meta"]
    )
