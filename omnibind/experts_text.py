"""How modality experts' outputs are phrased for the LLM: the one copy of that wording.

A leaf module (no torch, no encoders) so the dataset reader can use it without loading models.
The experts themselves (image classifier labels, Whisper transcripts) are in
``omnibind.encoders.experts``.

The phrasing, chosen short because every character costs prompt tokens:

- labels: ``Detected: cat (0.70), dog (0.05)`` — everyday names (ImageNet classes merged by their
  WordNet basic-level name), each with its summed probability;
- transcript: ``Speech: "hello there" (0.82)`` — what Whisper heard and how sure it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXPERT_KINDS = ("labels", "transcript")


def format_labels(labels: Sequence[tuple[str, float]]) -> str:
    """``[("cat", 0.70), ("dog", 0.05)]`` → ``'Detected: cat (0.70), dog (0.05)'`` ('' for none)."""
    if not labels:
        return ""
    return "Detected: " + ", ".join(f"{name} ({float(p):.2f})" for name, p in labels)


def format_transcript(text: str, confidence: float | None = None) -> str:
    """``("hello there", 0.82)`` → ``'Speech: "hello there" (0.82)'`` ('' for no text).

    ``confidence`` None (a transcript stored before confidences existed) leaves the score out.
    """
    text = text.strip()
    if not text:
        return ""
    return f'Speech: "{text}"' + (f" ({float(confidence):.2f})" if confidence is not None else "")


def expert_note(kind: str, value: Any) -> str:
    """An expert's output phrased as the LLM reads it — the one place this wording lives.

    ``labels``: a list of ``(name, probability)`` pairs (or an already phrased line, kept as is);
    ``transcript``: ``(text, confidence)``, ``{"text": ..., "confidence": ...}`` or a bare string.
    '' for an empty value. The model (``experts`` in its config or per call), the dataset reader
    (``Sample.to_messages(experts=True)``) and the caption baseline all phrase it here, so
    training and inference see identical text.
    """
    if kind not in EXPERT_KINDS:
        raise ValueError(f"unknown expert {kind!r}; expected one of {EXPERT_KINDS}")
    if not value:
        return ""
    if kind == "labels":
        if isinstance(value, str):
            return value
        return format_labels([(str(n), float(p)) for n, p in value])
    if isinstance(value, str):
        return format_transcript(value)
    if isinstance(value, dict):
        return format_transcript(str(value.get("text", "")), value.get("confidence"))
    text, confidence = value
    return format_transcript(str(text), confidence)
