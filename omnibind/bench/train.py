"""``omnibind bench train``: training throughput (samples/s) with and without the feature cache, in
one run on the same model, data and batches, so the ratio is meaningful on any machine.

Both arms run the align-stage step (loss through the frozen LLM, backward, AdamW step on the
projector). Without the cache every step decodes and encodes its media; with it, the media are
encoded once up front (timed separately) and steps read stored features. Both step kinds are warmed
up once (first backward, AdamW state) and then timed interleaved, batch by batch in alternating
order, so warm-up and the load of a shared machine fall on both arms alike rather than on whichever
runs first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _synthetic_dataset(folder: Path, n: int) -> Path:
    """n photo-sized images with captions (no packaged data needed)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        p = folder / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 255, (320, 320, 3), dtype=np.uint8)).save(p)
        rows.append(
            {
                "id": f"b{i}",
                "media": [{"type": "image", "path": p.name}],
                "conversation": [
                    {"role": "user", "content": "<image>\nWhat is this?"},
                    {"role": "assistant", "content": f"Picture number {i}."},
                ],
            }
        )
    f = folder / "bench.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def run_train_bench(model: str, data: Path | None, steps: int, batch_size: int, threads: int | None) -> dict[str, Any]:
    import tempfile
    import time

    import torch

    from omnibind.train.config import TrainConfig
    from omnibind.train.data import load_samples
    from omnibind.train.features import FeatureStore
    from omnibind.train.recipes import apply_recipe, select_trainable
    from omnibind.train.stages import build_model

    if threads:
        torch.set_num_threads(threads)
    tmp = tempfile.TemporaryDirectory()
    cfg = TrainConfig(stage="align", model=model, output=tmp.name)
    core = build_model(cfg)
    params = apply_recipe(core, select_trainable(core, ["projectors"]))
    opt = torch.optim.AdamW(params, lr=1e-4)
    path = data or _synthetic_dataset(Path(tmp.name), steps * batch_size)
    samples = load_samples([path], text_only=False)[: steps * batch_size]
    if len(samples) < batch_size:
        raise typer.BadParameter(f"{path}: needs at least {batch_size} media samples")
    batches = [samples[i : i + batch_size] for i in range(0, len(samples) - batch_size + 1, batch_size)][:steps]

    def step(batch: list[Any], lookup: Any) -> float:
        start = time.perf_counter()
        loss = core.loss([s.conversation for s in batch], lookup)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    n = sum(len(b) for b in batches)
    core.train()
    store = FeatureStore(core, folder=Path(tmp.name) / "features")
    t0 = time.perf_counter()
    store.precompute([m for b in batches for s in b for m in s.media], progress=False)
    fill = time.perf_counter() - t0
    step(batches[0][:1], None)  # warm-up, untimed: lazy loads, first backward, optimiser state
    step(batches[0][:1], store.lookup)
    hits0 = store.hits
    times = {"without": 0.0, "with": 0.0}
    for i, b in enumerate(batches):  # interleaved, alternating which arm goes first
        for arm in ("without", "with") if i % 2 == 0 else ("with", "without"):
            times[arm] += step(b, None if arm == "without" else store.lookup)
    without, with_cache = times["without"], times["with"]
    tmp.cleanup()
    return {
        "model": model,
        "data": str(data) if data else "synthetic 320x320 images",
        "steps": len(batches),
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "without_cache_samples_per_s": round(n / without, 2),
        "with_cache_samples_per_s": round(n / with_cache, 2),
        "speedup": round(without / with_cache, 2),
        "without_cache_seconds_per_step": round(without / len(batches), 2),
        "with_cache_seconds_per_step": round(with_cache / len(batches), 2),
        "cache_fill_seconds": round(fill, 2),
        "cache_hits": store.hits - hits0,
    }


def bench_train_command(
    model: Annotated[str, typer.Option(help="Preset, config file or checkpoint folder.")] = "embedded",
    data: Annotated[Path | None, typer.Option(help="A dataset JSONL with image samples (default: synthetic).")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Training steps per arm.")] = 6,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's choice).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON here.")] = None,
) -> None:
    """Training throughput (samples/s) with and without the feature cache, measured in one run."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = run_train_bench(model, data, steps, batch_size, threads)
    typer.echo(
        f"train step ({res['model']}, batch {res['batch_size']}, {res['steps']} steps, {res['threads']} threads): "
        f"{res['without_cache_samples_per_s']} samples/s without cache, "
        f"{res['with_cache_samples_per_s']} with cache ({res['speedup']}x; "
        f"{res['without_cache_seconds_per_step']} vs {res['with_cache_seconds_per_step']} s per step, interleaved; "
        f"filling the cache took {res['cache_fill_seconds']} s)"
    )
    if out:
        out.write_text(json.dumps(res, indent=2) + "\n")
