"""Python hooks that task files name (``metric:``, ``extract:``).

* extract hooks: ``fn(text, sample, task) -> answer | None`` turn a generated reply into a closed answer.
* metric hooks: ``fn(preds, samples, task) -> dict`` score a whole task (``preds[i]`` is the
  extracted answer, or the raw text for captioning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnibind.eval import answers, metrics


# --- extract hooks ---------------------------------------------------------------------------------
def yes_no(text: str, sample: Any, task: Any) -> str | None:
    """ "yes" / "no" (the first one said)."""
    return answers.yes_no(text)


def class_name(text: str, sample: Any, task: Any) -> str | None:
    """The class named first in the reply (task ``synonyms`` count as their class)."""
    return answers.class_name(text, sample.options or [], task.synonyms)


def position(text: str, sample: Any, task: Any) -> str | None:
    """ "first" / "second" from a DisCRn reply (first/left/1/…, or the input's modality name)."""
    return answers.position(text, sample.meta.get("modalities"))


def text(text: str, sample: Any, task: Any) -> str:
    """The reply itself (the metric reads it: ``names_object``)."""
    return text


# --- metric hooks ------------------------------------------------------------------------------------
def classification(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class recall, confusion matrix."""
    classes = samples[0].options if samples else []
    return metrics.classification(preds, [s.target for s in samples], classes)


def pope(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """POPE accuracy / precision / recall / F1 / yes-ratio."""
    return metrics.pope(preds, [s.target for s in samples])


def mme(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """MME accuracy and accuracy+ (per image pair)."""
    return metrics.mme(preds, [s.target for s in samples], [s.group for s in samples])


def choice(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Accuracy of a closed choice, with a breakdown per ``meta["pair"]`` and the first/second answer ratio."""
    out: dict[str, Any] = metrics.accuracy(preds, [s.target for s in samples])
    by: dict[str, list[bool]] = {}
    for p, s in zip(preds, samples):
        by.setdefault(str(s.meta.get("pair", "all")), []).append(p == s.target)
    out["per_pair"] = {k: sum(v) / len(v) for k, v in sorted(by.items())}
    out["first_ratio"] = sum(p == "first" for p in preds) / len(preds) if preds else 0.0
    return out


def caption(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """BLEU-1/4, ROUGE-L, METEOR-lite, CIDEr-D of the generated captions."""
    return metrics.caption_metrics([str(p or "") for p in preds], [s.refs for s in samples])


EXAMPLES = 12
"""Replies kept as examples by ``names_object`` (the first ones, in sample order)."""


def names_object(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Share of replies that name the object, with examples.

    A hit when the reply names the target (its label or head word, ``answers.names_object``) or any
    name in the sample's ``meta["accept"]`` (the held-out photos' and sounds' basic-level noun:
    "whale" for a narwhal, "person" for a child).
    """
    hits = [
        any(answers.names_object(str(p or ""), name) for name in [s.target, *s.meta.get("accept", ())])
        for p, s in zip(preds, samples)
    ]
    n = max(1, len(samples))
    return {
        "accuracy": sum(hits) / n,
        "n": len(samples),
        "examples": [
            {"label": s.target, "answer": p, "hit": h} for p, s, h in list(zip(preds, samples, hits))[:EXAMPLES]
        ],
    }
