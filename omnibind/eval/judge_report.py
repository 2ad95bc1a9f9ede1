"""``judge_folder``: judge an eval output folder and write ``judge-<template>.json`` / ``.md``.

Per-sample judgments (the judge's reply, the verdict read from it, exact-match correctness beside
it) go to ``samples/<task>.judge-<template>.jsonl``, next to the answers they grade.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from omnibind.errors import ConfigError
from omnibind.eval.cache import OutputCache
from omnibind.eval.judge import Judge, judge_pairwise, judge_single, load_template, read_items
from omnibind.eval.models import EvalModel


def judge_folder(
    folder: str | Path,
    judge_model: EvalModel,
    template: str | Path = "single",
    *,
    tasks: list[str] | None = None,
    systems: list[str] | None = None,
    against: str | None = None,
    against_folder: str | Path | None = None,
    method: str = "generate",
    limit: int | None = None,
    cache: OutputCache | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Judge the text answers of ``folder`` (an ``omnibind eval run`` output) and write the reports.

    Single templates grade ``systems`` (default: ``model``). Pairwise templates compare
    ``systems[0]`` (default ``model``) with ``against`` (default ``text_only``) of the same folder,
    or with ``against`` (default ``model``) of ``against_folder``. ``limit`` caps samples per task.
    """
    tpl = load_template(template)
    judge = Judge(judge_model, tpl, method=method, cache=cache, batch_size=batch_size)
    items = read_items(folder, with_media=tpl.media)
    if against_folder is not None:
        other = read_items(against_folder, with_media=False)
        other_sys = against or "model"
        against = f"other:{other_sys}"
        for name, its in items.items():
            by_id = {it.sample: it for it in other.get(name, [])}
            for it in its:
                if it.sample in by_id and other_sys in by_id[it.sample].answers:
                    it.answers[against] = by_id[it.sample].answers[other_sys]
                    it.correct[against] = by_id[it.sample].correct[other_sys]
    if tasks:
        unknown = sorted(set(tasks) - set(items))
        if unknown:
            raise ConfigError(f"{folder}: no judged (generate) task {unknown}; it has {sorted(items)}")
        items = {k: v for k, v in items.items() if k in tasks}
    if not items:
        raise ConfigError(f"{folder}: no task with text answers to judge (only 'generate' tasks are judged)")
    start = time.perf_counter()
    out: dict[str, Any] = {}
    folder = Path(folder)
    for name, its in items.items():
        its = its[:limit] if limit else its
        if tpl.kind == "single":
            res = judge_single(judge, its, systems or ["model"])
        else:
            res = judge_pairwise(judge, its, (systems or ["model"])[0], against or "text_only")
        records = res.pop("records", {})
        out[name] = res
        with (folder / "samples" / f"{name}.judge-{tpl.name}.jsonl").open("w") as f:
            for sid, rec in records.items():
                f.write(json.dumps({"id": sid, **rec}) + "\n")
    body = {
        "meta": {
            "judge": judge_model.info(),
            "template": tpl.name,
            "kind": tpl.kind,
            "method": method,
            "seconds": round(time.perf_counter() - start, 1),
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "tasks": out,
    }
    (folder / f"judge-{tpl.name}.json").write_text(json.dumps(body, indent=1) + "\n")
    (folder / f"judge-{tpl.name}.md").write_text(markdown(body))
    return body


def _f(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(body: dict[str, Any]) -> str:
    """The judge report as Markdown tables."""
    meta = body["meta"]
    lines = [
        f"# Judge: {meta['template']} ({meta['kind']}, {meta['method']})",
        "",
        f"- judge: `{meta['judge'].get('name')}` (fingerprint `{meta['judge'].get('fingerprint')}`)",
        f"- written {meta['written']} in {meta['seconds']} s",
        "",
    ]
    if meta["kind"] == "single":
        lines += [
            "| task | system | n | unparsed | mean score | pass rate | agreement with exact match | κ | n both |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for task, res in body["tasks"].items():
            for system, m in res["systems"].items():
                ag = m.get("agreement") or {}
                lines.append(
                    f"| {task} | {system} | {m['n']} | {_f(m['unparsed'])} | {_f(m['mean_score'])} | "
                    f"{_f(m.get('pass_rate'))} | {_f(ag.get('rate'))} | {_f(ag.get('cohen_kappa'))} | "
                    f"{ag.get('n', '—')} |"
                )
    else:
        lines += [
            "| task | A vs B | n | unparsed | win A | win B | tie | inconsistent | first-position rate | "
            "agreement with exact match (n) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for task, res in body["tasks"].items():
            if "skipped" in res:
                lines.append(f"| {task} | skipped: {res['skipped']} |||||||||")
                continue
            a, b = res["pair"]
            m = res["metrics"]
            ag = m.get("agreement") or {}
            lines.append(
                f"| {task} | {a} vs {b} | {m['n']} | {_f(m['unparsed'])} | {_f(m[f'win_{a}'])} | "
                f"{_f(m[f'win_{b}'])} | {_f(m['tie'])} | {_f(m['inconsistent'])} | {_f(m['first_position_rate'])} | "
                f"{_f(ag.get('rate'))} ({ag.get('n', 0)}) |"
            )
    return "\n".join(lines) + "\n"
