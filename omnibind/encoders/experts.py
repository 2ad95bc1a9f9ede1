"""Modality experts as text context: an image classifier's top labels (ImageBind-LLM fed detector
labels this way) and the Whisper transcript of speech."""

from __future__ import annotations

from typing import Any


def image_labels(encoder: Any, images: list[Any], k: int = 3) -> list[str]:
    """'(labels: tabby cat 0.41, tiger cat 0.22)' per image, from an encoder with ``top_labels``."""
    if not hasattr(encoder, "top_labels"):
        return [""] * len(images)
    out = []
    for labels in encoder.top_labels(images, k):
        out.append("(labels: " + ", ".join(f"{name} {p:.2f}" for name, p in labels) + ")")
    return out


def image_labels_from_pooled(encoder: Any, pooled: Any, k: int = 3) -> str:
    """The same text from cached pooled features (used when training from a feature cache)."""
    if not hasattr(encoder, "labels_from_pooled"):
        return ""
    labels = encoder.labels_from_pooled(pooled, k)[0]
    return "(labels: " + ", ".join(f"{name} {p:.2f}" for name, p in labels) + ")"


def speech_transcript(audio: Any) -> str:
    """Whisper tiny.en transcript of the audio ('' when nothing is said)."""
    from omnibind.encoders.whisper_encoder import WhisperEncoder

    return WhisperEncoder().transcribe(audio)
