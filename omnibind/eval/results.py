"""The ``results`` suite's analyses and its tables (the figures of docs/RESULTS.md).

Every figure of docs/RESULTS.md is a task of the ``results`` suite (``omnibind eval run --suite
results``; task files under ``omnibind/eval/tasks/results/``). Most are ordinary ``generate`` /
``rank`` / ``bind`` tasks on the data builders' held-out files (``heldout_jsonl``); three are
``method: hook`` analyses defined here, because they are not one model output per sample:

* ``ceiling`` — how far the image features alone could take "What is this?" on held-out stamps;
* ``retrieval`` — bind-space Recall@1/@5 both ways per pair kind on the test pairs, with chance;
* ``chat_examples`` — three text-only replies, shown as examples.

``tables`` renders the suite's results as the Markdown tables pasted into docs/RESULTS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.eval.answers import head_word, names_object
from omnibind.eval.datasets.heldout import read_split
from omnibind.eval.models import EvalModel, LocalModel, UnsupportedMethodError
from omnibind.messages import Message

ZERO_SHOT = ("sound", "imu", "depth", "points")
"""The zero-shot modalities, in table order (task ``results_<m>_rank`` / ``_rank_cache`` / ``_bind``)."""

CHAT_PROMPTS = (
    "What is the capital of France?",
    "Give me two tips for sleeping better.",
    "Write one sentence about the sea.",
)

BIND_PAIRS = {
    # test file: the pair kinds measured on it (each way), as the bind stages trained them
    "tuxpaint": [("image", "text")],
    "tuxpaint-sounds": [("audio", "image"), ("audio", "text")],
    "basicmotions": [("imu", "text")],
    "meshes": [("depth", "image"), ("depth", "text"), ("points", "image"), ("points", "text")],
}


def _local(model: EvalModel) -> Any:
    if not isinstance(model, LocalModel):
        raise UnsupportedMethodError(f"{model.name}: this analysis needs a local model (its encoders)")
    return model.model


def _captions(data: str | Path, source: str, split: str) -> list[Any]:
    return [s for s in read_split(data, source, split) if s.id.endswith("#caption")]


# --- hooks (method: hook) ------------------------------------------------------------------------------
def ceiling(model: EvalModel, task: Any, limit: int | None) -> dict[str, Any]:
    """How far the image features alone could take "What is this?" on held-out stamps.

    Every held-out stamp is an object the model never saw, so an answer can only name it through
    what the training stamps share with it. Three measurements bound that:
    ``vocabulary``: the object's head word is some training label's head word (any model that only
    learned training names is capped here); ``nearest_neighbour``: the training stamp closest in the
    image encoder's pooled features has a label naming the object (what the features separate);
    ``imagenet_top3``: the image-labels expert's top 3 ImageNet classes name it.
    """
    import torch

    from omnibind.encoders.experts import format_labels
    from omnibind.modalities import load_part

    enc = _local(model).core.encoders["image"]
    data = task.dataset_args.get("data", "runs/embedded/data")
    train = _captions(data, "tuxpaint", "train")
    test = _captions(data, "tuxpaint", "test")[:limit]

    def pooled(items: list[Any]) -> torch.Tensor:
        out = [
            enc.encode([load_part(s.to_messages()[0].media[0]) for s in items[i : i + 32]]).pooled
            for i in range(0, len(items), 32)
        ]
        return torch.nn.functional.normalize(torch.cat(out).float(), dim=-1)

    train_heads = {head_word(s.extra["label"]) for s in train}
    f_test = pooled(test)
    nearest = (f_test @ pooled(train).T).argmax(dim=1).tolist()
    labels = enc.labels_from_pooled(f_test, 3) if hasattr(enc, "labels_from_pooled") else [[]] * len(test)
    n = max(1, len(test))
    return {
        "n": len(test),
        "train_items": len(train),
        "vocabulary": sum(head_word(s.extra["label"]) in train_heads for s in test) / n,
        "nearest_neighbour": sum(names_object(train[j].extra["label"], s.extra["label"]) for j, s in zip(nearest, test))
        / n,
        "imagenet_top3": sum(names_object(format_labels(lab), s.extra["label"]) for lab, s in zip(labels, test)) / n,
    }


def retrieval(model: EvalModel, task: Any, limit: int | None) -> dict[str, Any]:
    """Recall@1/@5 both ways per pair kind in the bind space, on the TEST pairs, with chance.

    Candidates are the distinct partners (a caption shared by several items counts once), so chance
    is k / candidates (see ``omnibind.train.losses.recall_at_k``). ``limit`` caps the pairs per kind.
    """
    import torch

    from omnibind.train.data import load_samples, pairs_of
    from omnibind.train.features import part_key
    from omnibind.train.losses import recall_at_k

    data = Path(task.dataset_args.get("data", "runs/embedded/data"))
    vectors: dict[str, np.ndarray] = {}

    def embed(parts: list[Any]) -> torch.Tensor:
        keys = [part_key(p) or f"object:{id(p)}" for p in parts]
        todo = {k: p for k, p in zip(keys, parts) if k not in vectors}
        items = list(todo.items())
        for i in range(0, len(items), 32):
            chunk = items[i : i + 32]
            for (k, _), v in zip(chunk, model.embed([p for _, p in chunk])):
                vectors[k] = v
        return torch.from_numpy(np.stack([vectors[k] for k in keys]))

    pairs_out: dict[str, Any] = {}
    for name, kinds in BIND_PAIRS.items():
        path = data / f"{name}.test.jsonl"
        if not path.is_file():
            continue
        for kind, pairs in pairs_of(load_samples([path]), kinds).items():
            pairs = pairs[:limit] if limit else pairs
            if len(pairs) < 2:
                continue
            za, zb = embed([p.a for p in pairs]), embed([p.b for p in pairs])
            pairs_out[f"{kind[0]}->{kind[1]}"] = recall_at_k(za, zb, [p.key_b for p in pairs], (1, 5))
            pairs_out[f"{kind[1]}->{kind[0]}"] = recall_at_k(zb, za, [p.key_a for p in pairs], (1, 5))
    return {"n": sum(int(r["queries"]) for r in pairs_out.values()), "pairs": pairs_out}


def chat_examples(model: EvalModel, task: Any, limit: int | None) -> dict[str, Any]:
    """Replies to three text-only prompts (examples of what the LLM still says, not a figure)."""
    prompts = CHAT_PROMPTS[:limit] if limit else CHAT_PROMPTS
    answers = [model.generate([[Message.user(p)]], task.max_new_tokens)[0] for p in prompts]
    return {"n": len(prompts), "examples": [{"prompt": p, "answer": a} for p, a in zip(prompts, answers)]}


# --- the RESULTS.md tables ---------------------------------------------------------------------------
def _metrics(body: dict[str, Any], task: str, system: str = "model") -> dict[str, Any] | None:
    rec = body["tasks"].get(task)
    s = (rec or {}).get("systems", {}).get(system)
    return s.get("metrics") if s and "metrics" in s else None


def _majority(m: dict[str, Any]) -> float:
    rows = [sum(r) for r in m.get("confusion", [])]
    return max(rows) / max(1, sum(rows)) if rows else 0.0


def tables(body: dict[str, Any]) -> str:
    """The ``results`` suite's summary (``results.json`` body) as docs/RESULTS.md's Markdown tables."""
    pct: Callable[[float], str] = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    lines = ["| task (held-out) | n | model | text-only | chance/majority |", "|---|---|---|---|---|"]
    for name, title in (
        ("results_tuxpaint_what", 'Tux Paint "What is this?" names the object'),
        ("results_tuxpaint_what_labels", "same, + image-labels expert at inference"),
        ("results_openclipart_what", 'Openclipart "What is this?" names the object'),
    ):
        m, t = _metrics(body, name), _metrics(body, name, "text_only")
        if m and t:
            lines.append(f"| {title} | {m['n']} | {pct(m['accuracy'])} | {pct(t['accuracy'])} | – |")
    v, vt = _metrics(body, "results_easyvqa_yesno"), _metrics(body, "results_easyvqa_yesno", "text_only")
    if v and vt:
        n = sum(sum(r) for r in v["confusion"])
        lines.append(f"| easy-vqa yes/no | {n} | {pct(v['accuracy'])} | {pct(vt['accuracy'])} | {pct(_majority(v))} |")
    c = _metrics(body, "results_tuxpaint_ceiling")
    if c:
        lines += [
            "",
            "| held-out Tux Paint: what the image features allow | n | share |",
            "|---|---|---|",
            f"| object's head word is a training label's head word | {c['n']} | {pct(c['vocabulary'])} |",
            f"| nearest training stamp (image features) names it | {c['n']} | {pct(c['nearest_neighbour'])} |",
            f"| ImageNet top-3 labels (the expert) name it | {c['n']} | {pct(c['imagenet_top3'])} |",
        ]
    r = _metrics(body, "results_retrieval")
    if r and r.get("pairs"):
        lines += [
            "",
            "| bind-space retrieval (test pairs) | queries | candidates | R@1 | chance@1 | R@5 | chance@5 |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {pair} | {x['queries']} | {x['candidates']} | {pct(x['recall@1'])} | {pct(x['chance@1'])} | "
                f"{pct(x['recall@5'])} | {pct(x['chance@5'])} |"
                for pair, x in r["pairs"].items()
                # text → medium is ill-posed where items share a caption (10 recordings say "walking";
                # only one counts as the partner): reported in the JSON, left out of the table
                if not pair.startswith("text->")
            ),
        ]
    lines += [
        "",
        "| other modalities through the LLM | n | labels | chance | text-only | LLM | LLM, calibrated | "
        "LLM + cache | LLM + cache, calibrated | bind space only |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    dash = "–"
    for mod in ZERO_SHOT:
        z = _metrics(body, f"results_{mod}_rank")
        if not z:
            continue
        n, labels = sum(sum(row) for row in z["confusion"]), len(z["classes"])
        zt, zc = _metrics(body, f"results_{mod}_rank", "text_only"), _metrics(body, f"results_{mod}_rank", "calibrated")
        k, kc = _metrics(body, f"results_{mod}_rank_cache"), _metrics(body, f"results_{mod}_rank_cache", "calibrated")
        b = _metrics(body, f"results_{mod}_bind")
        lines.append(
            f"| {mod} | {n} | {labels} | {pct(1 / labels)} | {pct(zt['accuracy']) if zt else dash} | "
            f"{pct(z['accuracy'])} | {pct(zc['accuracy']) if zc else dash} | "
            f"{pct(k['accuracy']) if k else dash} | {pct(kc['accuracy']) if kc else dash} | "
            f"{pct(b['accuracy']) if b else dash} |"
        )
    return "\n".join(lines) + "\n"
