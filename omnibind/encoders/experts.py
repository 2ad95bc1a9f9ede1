"""Modality experts: short text that goes beside a media input's soft tokens.

ImageBind-LLM fed an image classifier's/detector's labels to the LLM as text, and speech is best
given as a transcript; the model adds these notes when experts are on (``experts`` in its config,
or per call). The wording is ``omnibind.experts_text``'s; this module computes what goes in it:

- image labels: the EfficientNet-Lite0 ImageNet-1k probabilities summed per everyday name
  (``imagenet_common_names``: tabby 0.4 + tiger cat 0.2 + Egyptian cat 0.1 → cat 0.70), best k;
- speech: Whisper tiny.en's transcript with its confidence, only when Whisper judges the audio to
  hold speech (``whisper_encoder.speech_from_segments``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES
from omnibind.encoders.imagenet_common_names import COMMON_NAMES
from omnibind.experts_text import expert_note, format_labels

__all__ = [
    "common_labels",
    "common_labels_from_pooled",
    "format_labels",
    "image_labels",
    "image_labels_from_pooled",
    "merge_by_common_name",
    "speech",
    "speech_transcript",
]

_INDEX = {name: i for i, name in enumerate(IMAGENET_CLASSES)}
MIN_LABEL_P = 0.01
"""Merged names below this probability are left out of the line (noise that only costs tokens)."""


def merge_by_common_name(
    class_probs: Sequence[tuple[str, float]], k: int, min_p: float = MIN_LABEL_P
) -> list[tuple[str, float]]:
    """ImageNet ``(class name, p)`` pairs → the ``k`` best ``(everyday name, summed p)``, best first.

    Classes that share an everyday name add up; names below ``min_p`` are dropped. A class name the
    table does not know (another head) keeps its own name.
    """
    total: dict[str, float] = defaultdict(float)
    for name, p in class_probs:
        i = _INDEX.get(name)
        total[COMMON_NAMES[i] if i is not None else name] += float(p)
    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(n, p) for n, p in ranked[: max(0, int(k))] if p >= min_p]


def common_labels(encoder: Any, images: list[Any], k: int = 3) -> list[list[tuple[str, float]]]:
    """Per image, the ``k`` best everyday names with their summed probabilities ([] without a classifier)."""
    if not hasattr(encoder, "top_labels"):
        return [[] for _ in images]
    # every class's probability is needed to sum a name's share, hence k = all classes
    return [merge_by_common_name(row, k) for row in encoder.top_labels(images, len(IMAGENET_CLASSES))]


def common_labels_from_pooled(encoder: Any, pooled: Any, k: int = 3) -> list[tuple[str, float]]:
    """The same names from cached pooled features of one image (training from a feature cache)."""
    if not hasattr(encoder, "labels_from_pooled"):
        return []
    return merge_by_common_name(encoder.labels_from_pooled(pooled, len(IMAGENET_CLASSES))[0], k)


def image_labels(encoder: Any, images: list[Any], k: int = 3) -> list[str]:
    """One 'Detected: cat (0.70), …' line per image ('' if the encoder has no classifier)."""
    return [expert_note("labels", labels) for labels in common_labels(encoder, images, k)]


def image_labels_from_pooled(encoder: Any, pooled: Any, k: int = 3) -> str:
    """The same line from cached pooled features of one image."""
    return expert_note("labels", common_labels_from_pooled(encoder, pooled, k))


def speech(audio: Any, encoder: Any = None) -> Any:
    """What Whisper tiny.en heard in ``AudioData``: a ``Heard`` (text '' when no speech).

    ``encoder``: a ``whisper_encoder`` to reuse; by default the packaged model (loaded once per process).
    """
    from omnibind.encoders.whisper_encoder import hear, model_dir, whisper_model

    if encoder is not None and hasattr(encoder, "hear"):
        return encoder.hear(audio)
    return hear(whisper_model(model_dir()), audio)


def speech_transcript(audio: Any, encoder: Any = None) -> str:
    """The transcript text alone ('' when nothing is said)."""
    return speech(audio, encoder).text
