"""Modality experts: short text that goes beside a media input's soft tokens.

ImageBind-LLM fed an image classifier's/detector's labels to the LLM as text, and speech is best
given as a transcript; the model adds these notes when ``experts`` is enabled in its config.
"""

from __future__ import annotations

from typing import Any


def format_labels(labels: list[tuple[str, float]]) -> str:
    """``[("tabby cat", 0.41), ...]`` → 'Detected: tabby cat (0.41), ...' ('' for no labels)."""
    if not labels:
        return ""
    return "Detected: " + ", ".join(f"{name} ({p:.2f})" for name, p in labels)


def image_labels(encoder: Any, images: list[Any], k: int = 3) -> list[str]:
    """One 'Detected: …' line per image from an encoder with ``top_labels`` ('' if it has no classifier)."""
    if not hasattr(encoder, "top_labels"):
        return [""] * len(images)
    return [format_labels(labels) for labels in encoder.top_labels(images, k)]


def image_labels_from_pooled(encoder: Any, pooled: Any, k: int = 3) -> str:
    """The same line from cached pooled features of one image (training from a feature cache)."""
    if not hasattr(encoder, "labels_from_pooled"):
        return ""
    return format_labels(encoder.labels_from_pooled(pooled, k)[0])


def speech_transcript(audio: Any, encoder: Any = None) -> str:
    """Whisper tiny.en transcript of ``AudioData`` ('' when nothing is said).

    ``encoder``: a ``whisper_encoder`` to reuse; by default the packaged model (loaded once per process).
    """
    if encoder is not None and hasattr(encoder, "transcribe"):
        return encoder.transcribe(audio)
    from omnibind.encoders.whisper_encoder import model_dir, transcribe, whisper_model

    return transcribe(whisper_model(model_dir()), audio)
