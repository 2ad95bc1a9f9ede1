"""Prompt-ensembled zero-shot classification in the bind space (CLIP, section 3.1.4).

Each label is written into several templates ("a photo of a dog.", "a drawing of a dog." …); the
text vectors of one label are averaged and renormalised (the ensemble), and an input's class
probabilities are the softmax of its cosine similarity to each label's vector times a logit scale
(``Model.classify`` uses the bind space's learned one, ``BindHeads.logit_scale``, as CLIP does).
``Model.classify`` and the eval harness's ``bind`` method both use ``class_vectors``, so the two
cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from omnibind.data import phrasings as T
from omnibind.errors import ConfigError

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of {a}.",
    "a picture of {a}.",
    "a drawing of {a}.",
    "the sound of {a}.",
    "{A}.",
)
"""Modality-neutral enough for images, sounds and clips; pass your own for a domain."""
DEFAULT_SCALE = 1 / 0.07


def fill_templates(templates: Sequence[str], name: str) -> list[str]:
    """Fill each template: ``{}`` → the class name, ``{a}`` → the name with "a"/"an" (by its first
    letter), ``{A}`` → the name with its article as the data templates choose it
    (``omnibind.data.phrasings.article``), capitalised, ``{N}`` → the name capitalised."""
    article = "an" if name[:1].lower() in "aeiou" else "a"
    out = []
    for t in templates:
        if "{A}" in t:
            a = T.article(name)
            t = t.replace("{A}", a[:1].upper() + a[1:])
        out.append(
            t.replace("{N}", name[:1].upper() + name[1:]).replace("{a}", f"{article} {name}").replace("{}", name)
        )
    return out


def class_vectors(
    embed: Callable[[list[str]], np.ndarray], labels: Sequence[str], templates: Sequence[str]
) -> np.ndarray:
    """(C, D) unit vectors: each label's template texts embedded, averaged, renormalised."""
    if not labels:
        raise ConfigError("zero-shot classification needs at least one label")
    if not templates:
        raise ConfigError("zero-shot classification needs at least one template")
    prompts = [p for c in labels for p in fill_templates(templates, c)]
    vec = np.asarray(embed(prompts), dtype=np.float32)
    vec = vec.reshape(len(labels), len(templates), vec.shape[-1]).mean(1)
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Classification:
    """One input's zero-shot result: labels best first with their probabilities, and the raw similarities."""

    label: str
    labels: list[str]
    probs: list[float]
    similarities: dict[str, float]

    def __str__(self) -> str:
        return self.label


def classify(
    input_vectors: np.ndarray, labels: Sequence[str], label_vectors: np.ndarray, *, scale: float = DEFAULT_SCALE
) -> list[Classification]:
    """Softmax over scaled cosine similarities of each input vector to each label vector."""
    sims = np.asarray(input_vectors, dtype=np.float32) @ label_vectors.T
    logits = sims * scale
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    out = []
    for s, p in zip(sims, probs):
        order = np.argsort(-p, kind="stable")
        out.append(
            Classification(
                label=labels[int(order[0])],
                labels=[labels[int(i)] for i in order],
                probs=[round(float(p[i]), 6) for i in order],
                similarities={labels[i]: round(float(s[i]), 6) for i in range(len(labels))},
            )
        )
    return out
