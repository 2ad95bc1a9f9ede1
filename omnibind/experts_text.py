"""How modality experts' outputs are phrased for the LLM: the one copy of that wording.

A leaf module (no torch, no encoders) so the dataset reader can use it without loading models.
The experts themselves (image classifier labels, Whisper transcripts) are in
``omnibind.encoders.experts``.
"""

from __future__ import annotations

EXPERT_KINDS = ("labels", "transcript")


def expert_note(kind: str, value: str) -> str:
    """An expert's output phrased as the LLM reads it — the one place this wording lives.

    ``labels``: the 'Detected: …' line as is; ``transcript``: ``(transcript: "…")``. '' for an
    empty value. The model (``experts`` in its config), the dataset reader
    (``Sample.to_messages(experts=True)``) and the caption baseline all phrase it here.

    Why this wording: the two old phrasings were ``(speech: …)`` in the model and
    ``(transcript: "…")`` in the dataset reader. The dataset's is the one training data carries,
    and the shipped default (``omnibind/weights/default``) was trained with the transcript expert
    off (its config: ``experts.transcript = false``), so keeping the dataset phrasing changes none
    of the default's answers.
    """
    if kind not in EXPERT_KINDS:
        raise ValueError(f"unknown expert {kind!r}; expected one of {EXPERT_KINDS}")
    if not value:
        return ""
    return value if kind == "labels" else f'(transcript: "{value}")'
