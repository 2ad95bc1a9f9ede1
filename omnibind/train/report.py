"""A report per run: ``loss.png`` (training loss, smoothed, and validation loss per step) and
``metrics.json`` (final metrics plus the full history)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omnibind.atomic import atomic_file, atomic_write_text


def _smooth(values: list[float], k: int = 10) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out


def write_report(folder: str | Path, history: list[dict[str, Any]], metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json`` and ``loss.png`` into ``folder``; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "metrics.json", json.dumps({"metrics": metrics, "history": history}, indent=1) + "\n")
    steps = [h["step"] for h in history]
    loss = [h["loss"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if steps:
        ax.plot(steps, loss, alpha=0.3, color="tab:blue", label="train (per step)")
        ax.plot(steps, _smooth(loss), color="tab:blue", label="train (mean of 10)")
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if val:
        ax.plot(*zip(*val), "o-", color="tab:orange", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(folder.name)
    ax.legend()
    fig.tight_layout()
    png = folder / "loss.png"
    with atomic_file(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png
