"""Modality experts as optional text context in datasets (ImageBind-LLM fed an object detector's
class labels to the LLM this way): an image's top-k everyday names from the EfficientNet-Lite0
ImageNet head, and the Whisper tiny.en transcript of an audio file when it holds speech.

``add_experts(samples, ...)`` stores them on the media items (``labels``: ``[[name, p], ...]``,
``transcript``: ``{"text", "confidence"}``), so a training run can switch them on or off
(``Sample.to_messages(experts=True)``) and measure both; ``omnibind.experts_text.expert_note``
phrases them exactly as the model does at inference. Each distinct file is processed once.

``common_names_module()`` writes ``omnibind/encoders/imagenet_common_names.py`` (class index →
everyday name) from the WordNet reader; ``scripts/make_imagenet_common_names.py`` runs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omnibind.data.format import Sample

COMMON_NAMES_MODULE = "omnibind/encoders/imagenet_common_names.py"


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
    cache: dict[tuple[str, str], Any] = {}
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


def _image_labels(encoder: Any, data: Any, k: int) -> list[list[Any]]:
    from omnibind.encoders.experts import common_labels

    return [[name, round(p, 4)] for name, p in common_labels(encoder, [data], k)[0]]


def _transcript(data: Any) -> dict[str, Any] | str:
    from omnibind.encoders.experts import speech

    heard = speech(data)
    return {"text": heard.text, "confidence": round(heard.confidence, 4)} if heard.text else ""


def imagenet_common_names(wn: Any = None) -> list[str]:
    """Everyday name of each ImageNet-1k class, in class-index order (needs WordNet installed).

    The WordNet basic-level name above the class (tabby → cat, Granny Smith → apple), else the
    class's own name without its disambiguation ("crane (machine)" → crane).
    """
    from omnibind.data.sources import wordnet
    from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES

    wn = wn or wordnet.load()
    out = []
    for index, wnid in enumerate(wordnet.imagenet_wnids()):
        name = wordnet.basic_of_synset(wnid, wn)
        out.append(name or re.sub(r" \(.*\)$", "", IMAGENET_CLASSES[index]))
    return out


def common_names_module(names: list[str] | None = None) -> str:
    """The source text of ``omnibind/encoders/imagenet_common_names.py`` (generated; do not edit)."""
    names = imagenet_common_names() if names is None else names
    body = "".join(f"    {json.dumps(name)},  # {i}\n" for i, name in enumerate(names))
    return (
        '"""Everyday names of the 1000 ImageNet-1k classes, in class-index order (tabby → cat).\n\n'
        "Generated from WordNet 3.0 hypernyms and ``omnibind/data/sources/basic_level.txt`` by\n"
        "``python scripts/make_imagenet_common_names.py`` (``omnibind.data.experts.common_names_module``);\n"
        "do not edit by hand. Shipped so the image-labels expert needs no WordNet on users' machines.\n"
        '"""\n\n'
        f"COMMON_NAMES: tuple[str, ...] = (\n{body})\n"
    )


def annotate_files(
    paths: list[str | Path],
    *,
    labels: bool = True,
    transcripts: bool = True,
    k: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """``add_experts`` over whole dataset files, rewritten in place (atomically, one file at a time).

    The training pipeline's ``prepare`` step calls this with ``experts: true``, so the notes a model
    is trained with are the ones it makes at inference (same encoder, same ``k``, same phrasing).
    """
    from omnibind.data.format import read_dataset, write_jsonl

    samples_by_file = {Path(p): read_dataset(p) for p in paths}
    every = [s for ss in samples_by_file.values() for s in ss]
    counts = add_experts(every, labels=labels, transcripts=transcripts, k=k, progress=progress)
    for path, samples in samples_by_file.items():
        write_jsonl(path, samples)
    return counts
