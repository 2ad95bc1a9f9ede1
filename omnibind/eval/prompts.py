"""Prompts: a task's conversation for one sample under a system (the model, or a baseline with the
media removed or replaced by an expert's text), class prompts, and the ``Describer`` that writes
that expert text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from omnibind.bind.zero_shot import fill_templates
from omnibind.errors import ConfigError
from omnibind.eval.cache import media_id
from omnibind.eval.datasets import Sample
from omnibind.eval.tasks import Task
from omnibind.experts_text import expert_note
from omnibind.messages import MediaPart, Message, TextPart

_MEDIA_SLOT = re.compile(r"\{media(\d+)\}")


class _Vars(dict):
    def __init__(self, data: dict[str, Any], where: str):
        super().__init__(data)
        self.where = where

    def __missing__(self, key: str) -> str:
        raise ConfigError(f"{self.where}: the prompt uses {{{key}}}, which the sample does not provide")


def prompt_vars(task: Task, sample: Sample) -> dict[str, str]:
    """The fields a prompt can use: the sample's ``vars`` plus ``{options}`` / ``{options_or}``."""
    out = dict(sample.vars)
    if sample.options:
        out.setdefault("options", ", ".join(sample.options))
        opts = list(sample.options)
        out.setdefault("options_or", ", ".join(opts[:-1]) + f" or {opts[-1]}" if len(opts) > 1 else opts[0])
    return out


def build_messages(
    task: Task, sample: Sample, system: str, describe: Callable[[MediaPart], str] | None = None
) -> list[Message]:
    """The conversation for one sample under a system (``model`` | ``text_only`` | ``caption``).

    ``{media0}``, ``{media1}``… in the prompt place the inputs; without them the inputs come first.
    """
    vars_ = _Vars(prompt_vars(task, sample), task.path or task.name)
    pieces = _MEDIA_SLOT.split(task.prompt)
    parts: list[Any] = []
    used: set[int] = set()
    for i, piece in enumerate(pieces):
        if i % 2 == 1:
            idx = int(piece)
            if idx >= len(sample.media):
                raise ConfigError(f"{task.name}: prompt uses {{media{idx}}} but the sample has {len(sample.media)}")
            used.add(idx)
            parts.extend(_stand_in(sample.media[idx], system, describe))
        elif piece:
            parts.append(TextPart(piece.format_map(vars_)))
    lead = [p for i, m in enumerate(sample.media) if i not in used for p in _stand_in(m, system, describe)]
    content = _merge_text([*lead, *parts])
    msgs = [Message.system(task.system)] if task.system else []
    return [*msgs, Message("user", content or [TextPart("")])]


def _stand_in(part: MediaPart, system: str, describe: Callable[[MediaPart], str] | None) -> list[Any]:
    if system == "model":
        return [part]
    if system == "caption":
        if describe is None:
            raise ConfigError("the caption baseline needs a describer")
        return [TextPart(f"({part.modality}: {describe(part)})\n")]
    return []


def _merge_text(parts: list[Any]) -> list[Any]:
    """Join neighbouring text parts (a text-only prompt becomes one clean string)."""
    out: list[Any] = []
    for p in parts:
        if isinstance(p, TextPart) and out and isinstance(out[-1], TextPart):
            out[-1] = TextPart(out[-1].text + p.text)
        else:
            out.append(p)
    return [
        TextPart(p.text.strip()) if isinstance(p, TextPart) else p
        for p in out
        if not (isinstance(p, TextPart) and not p.text.strip())
    ]


def class_prompts(templates: Sequence[str], name: str) -> list[str]:
    """Each template filled with a class name (``omnibind.bind.zero_shot.fill_templates``: ``{}``,
    ``{a}``, ``{A}``, ``{N}``)."""
    return fill_templates(templates, name)


class Describer:
    """Text standing in for a media input: ImageNet labels for images, a Whisper transcript for audio."""

    def __init__(self, image_encoder: Any | None = None, k: int = 3):
        self._image = image_encoder
        self.k = k
        self._memo: dict[str, str] = {}

    def _image_encoder(self) -> Any:
        if self._image is None:
            from omnibind.encoders import ENCODERS

            self._image = ENCODERS.get("efficientnet_lite0")()
            self._image.eval()
        return self._image

    def describe(self, part: MediaPart) -> str:
        key = media_id(part)
        if key not in self._memo:
            self._memo[key] = self._describe(part)
        return self._memo[key]

    def _describe(self, part: MediaPart) -> str:
        from omnibind import modalities

        if part.modality == "image":
            from omnibind.encoders.experts import image_labels

            text = image_labels(self._image_encoder(), [modalities.load_part(part)], self.k)[0]
            return expert_note("labels", text) or "no labels"
        if part.modality == "audio":
            from omnibind.encoders.experts import speech_transcript

            # the same phrasing the model and the training data use (omnibind/experts_text.py)
            text = speech_transcript(modalities.load_part(part)).strip()
            return expert_note("transcript", text) if text else "no speech heard"
        return "no description available"
