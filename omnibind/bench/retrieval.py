"""``omnibind bench retrieval``: Recall@1/@5 of media search on the packaged held-out pairs, with chance.

The pairs are the Tux Paint stamps of the test split (``omnibind.eval.datasets.standard``): each
held-out stamp image with its caption (image → text and text → image) and each held-out stamp
sound with its picture and caption (audio → image, audio → text). Each candidate set is put in a
``MediaIndex`` and searched through the same FAISS path as ``omnibind search``, so the figures are
those of the feature, not of a side computation. A query counts as found at k when its own
partner is among the k best; candidates are distinct (a caption two stamps share is one
candidate, and both stamps' queries are right to find it), so chance is ``k / candidates``.
Index build time and the median search latency are reported beside the recalls.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

KS = (1, 5)


@dataclass
class _Side:
    """Items of one modality: the parts to embed and each item's key (equal keys = the same candidate)."""

    modality: str
    parts: list[Any]
    keys: list[str]


def heldout_pairs() -> dict[str, tuple[_Side, _Side]]:
    """The held-out pair sets: name → (queries, candidates), aligned row by row."""
    from omnibind.eval.datasets.standard import held_out_stamps
    from omnibind.hashing import file_hash
    from omnibind.messages import MediaPart, TextPart

    images = [s for s in held_out_stamps("image") if s.image is not None and s.caption]
    sounds = [s for s in held_out_stamps("sound") if s.sound is not None and s.image is not None and s.caption]

    def image_side(stamps: list[Any]) -> _Side:
        return _Side(
            "image",
            [MediaPart("image", str(s.image), name=s.image.name) for s in stamps],
            [file_hash(s.image) for s in stamps],
        )

    def text_side(stamps: list[Any]) -> _Side:
        return _Side("text", [TextPart(s.caption) for s in stamps], [s.caption.strip().lower() for s in stamps])

    sound_side = _Side(
        "audio", [MediaPart("audio", str(s.sound), name=s.sound.name) for s in sounds], [s.id for s in sounds]
    )
    return {
        "image->text": (image_side(images), text_side(images)),
        "text->image": (text_side(images), image_side(images)),
        "audio->image": (sound_side, image_side(sounds)),
        "audio->text": (sound_side, text_side(sounds)),
    }


def _embed(model: Any, parts: list[Any], batch: int = 16) -> Any:
    import numpy as np

    return np.concatenate([model.embed(parts[i : i + batch]) for i in range(0, len(parts), batch)])


def recall(model: Any, queries: _Side, candidates: _Side, ks: tuple[int, ...] = KS) -> dict[str, Any]:
    """Recall@k of ``queries`` against the distinct ``candidates`` in a ``MediaIndex``, with chance."""
    import numpy as np

    from omnibind.index.store import Entry, MediaIndex, bind_fingerprint

    first: dict[str, int] = {}
    for i, k in enumerate(candidates.keys):
        first.setdefault(k, i)
    uniq = list(first)
    t0 = time.perf_counter()
    cand_vecs = _embed(model, [candidates.parts[first[k]] for k in uniq])
    index = MediaIndex(model.config.bind.dim, fingerprint=bind_fingerprint(model))
    index.add([Entry(k, candidates.modality, k) for k in uniq], cand_vecs)
    build_s = time.perf_counter() - t0
    q_vecs = _embed(model, queries.parts)
    lat = []
    found = {k: 0 for k in ks}
    for q, own in zip(q_vecs, candidates.keys):
        t = time.perf_counter()
        hits = index.search(q, max(ks))[0]
        lat.append(time.perf_counter() - t)
        rank = next((h.rank for h in hits if h.entry.path == own), None)
        for k in ks:
            found[k] += int(rank is not None and rank <= k)
    out: dict[str, Any] = {"queries": len(q_vecs), "candidates": len(uniq)}
    for k in ks:
        out[f"recall@{k}"] = found[k] / max(1, len(q_vecs))
        out[f"chance@{k}"] = min(1.0, k / max(1, len(uniq)))
    out["index_build_seconds"] = round(build_s, 3)
    out["search_ms_median"] = round(1000 * float(np.median(lat)), 3) if lat else None
    return out


def run_retrieval_bench(model_name: str | None) -> dict[str, Any]:
    """Every held-out pair set, one model, one run."""
    import omnibind

    t0 = time.perf_counter()
    model = omnibind.load(model_name)
    load_s = time.perf_counter() - t0
    results = {name: recall(model, q, c) for name, (q, c) in heldout_pairs().items()}
    return {
        "model": model_name or "embedded default",
        "trained": model.trained,
        "load_seconds": round(load_s, 2),
        "data": "Tux Paint stamps, test split (omnibind.eval.datasets.standard.held_out_stamps)",
        "pairs": results,
    }


def print_retrieval_report(res: dict[str, Any]) -> None:
    typer.echo(f"retrieval on held-out pairs — {res['model']}{'' if res['trained'] else ' (UNTRAINED heads)'}")
    head = f"  {'pair':<14}{'queries':>8}{'cands':>7}{'R@1':>8}{'chance':>8}{'R@5':>8}{'chance':>8}"
    typer.echo(head + f"{'search ms':>11}")
    for name, r in res["pairs"].items():
        typer.echo(
            f"  {name:<14}{r['queries']:>8}{r['candidates']:>7}{r['recall@1']:>8.3f}{r['chance@1']:>8.3f}"
            f"{r['recall@5']:>8.3f}{r['chance@5']:>8.3f}{r['search_ms_median']:>11.3f}"
        )


def bench_retrieval_command(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint folder, config file or preset; default: embedded."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the figures as JSON."),
) -> None:
    """Media search Recall@1/@5 (image↔text, audio→image, audio→text) on the held-out pairs, with chance."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omnibind.errors import OmnibindError

    try:
        res = run_retrieval_bench(model)
    except OmnibindError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    print_retrieval_report(res)
    if out:
        out.write_text(json.dumps(res, indent=2))
