"""Modality experts as optional text context in datasets (ImageBind-LLM fed an object detector's
class labels to the LLM this way): an image's top-k ImageNet labels from the EfficientNet-Lite0
head, and the Whisper tiny.en transcript of an audio file.

``add_experts(samples, ...)`` stores them on the media items (``labels``, ``transcript``), so a
training run can switch them on or off (``Sample.to_messages(experts=True)``) and measure both.
Each distinct file is processed once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnibind.data.format import Sample


def add_experts(
    samples: list[Sample],
    *,
    labels: bool = True,
    transcripts: bool = True,
    k: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Annotate image media with ``labels`` and audio media with ``transcript`` in place.

    Returns counts of annotated files. Decoding goes through ``omnibind.modalities.load`` (a bad
    file raises ``InputError`` naming it; run ``omnibind data check`` first).
    """
    from omnibind import modalities

    wanted = {"image"} if labels else set()
    wanted |= {"audio"} if transcripts else set()
    todo = [(s, m) for s in samples for m in s.media if m.type in wanted]
    cache: dict[tuple[str, str], str] = {}
    label_encoder = _label_encoder() if labels and any(m.type == "image" for _, m in todo) else None
    for n, (s, m) in enumerate(todo):
        path = str(m.resolve(s.base_dir))
        key = (m.type, path)
        if key not in cache:
            data = modalities.load(m.type, path, options=m.options)
            cache[key] = _image_labels(label_encoder, data, k) if m.type == "image" else _transcript(data)
        m.extra["labels" if m.type == "image" else "transcript"] = cache[key]
        if progress is not None:
            progress(n + 1, len(todo))
    return {
        "images": len({p for t, p in cache if t == "image"}),
        "audio": len({p for t, p in cache if t == "audio"}),
    }


def _label_encoder() -> Any:
    from omnibind.encoders.efficientnet_lite0 import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder()


def _image_labels(encoder: Any, data: Any, k: int) -> str:
    from omnibind.encoders.experts import image_labels

    return image_labels(encoder, [data], k)[0]


def _transcript(data: Any) -> str:
    from omnibind.encoders.experts import speech_transcript

    return speech_transcript(data)
