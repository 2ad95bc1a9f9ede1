"""The in-memory dataset sample every reader produces: ``Sample`` (media + turns), its checks of
placeholders against media, and ``parse_sample`` for omnibind's own JSON record.

Placeholders ``<image> <audio> <video> <depth> <thermal> <imu> <points>`` in user turns are matched
in order to ``media`` (same count, same types). See docs/DATA.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.errors import InputError
from omnibind.experts_text import expert_note
from omnibind.messages import MEDIA_MODALITIES, MediaPart, Message, TextPart

PLACEHOLDER_RE = re.compile(r"<(" + "|".join(MEDIA_MODALITIES) + r")>")
SPLITS: tuple[str, ...] = ("train", "val", "test")
SAMPLE_KEYS = ("id", "media", "conversation", "source", "split")
MEDIA_KEYS = ("type", "path", "options")
EXPERT_KEYS = ("labels", "transcript")
"""Optional media fields holding modality-expert text (see ``omnibind.data.experts``)."""


class DatasetError(InputError):
    """A dataset file or one of its samples is malformed; ``source`` is ``file:line``."""

    def __init__(self, file: str | Path | None, line: int | None, problem: str):
        self.file = str(file) if file is not None else "<dataset>"
        self.line = line
        super().__init__(f"{self.file}:{line}" if line else self.file, problem)


@dataclass
class MediaItem:
    """One media file of a sample: its modality, path (relative to ``base_dir``), loader options."""

    type: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def resolve(self, base_dir: Path | None) -> Path:
        """The file's absolute path (relative paths are relative to the dataset file's folder)."""
        p = Path(self.path).expanduser()
        return p if p.is_absolute() or base_dir is None else base_dir / p

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "path": self.path}
        if self.options:
            d["options"] = self.options
        d.update(self.extra)
        return d


@dataclass
class Turn:
    """One conversation turn; ``content`` is text with placeholders (user turns only)."""

    role: str
    content: str


@dataclass
class Sample:
    """A parsed sample. ``file``/``line`` say where it came from (errors and checks cite them)."""

    id: str
    media: list[MediaItem]
    conversation: list[Turn]
    source: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    file: Path | None = None
    line: int | None = None
    base_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    """Problems a foreign-format reader found (e.g. 2 ``<image>`` placeholders but 1 path in
    ``images``); reported by ``omnibind data check``, refused by ``to_messages``. Never written out."""

    @property
    def item(self) -> str:
        """The underlying item's id (several samples may share one item; splits are per item)."""
        return str(self.extra.get("item", self.id))

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file is not None else f"<sample {self.id}>"

    def placeholders(self) -> list[str]:
        """Placeholder modalities in order over all user turns."""
        return [m for t in self.conversation if t.role == "user" for m in PLACEHOLDER_RE.findall(t.content)]

    def media_path(self, i: int) -> Path:
        return self.media[i].resolve(self.base_dir)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record (paths as written, not resolved)."""
        d: dict[str, Any] = {
            "id": self.id,
            "media": [m.to_dict() for m in self.media],
            "conversation": [{"role": t.role, "content": t.content} for t in self.conversation],
        }
        if self.source is not None:
            d["source"] = self.source
        if self.split is not None:
            d["split"] = self.split
        d.update(self.extra)
        return d

    def to_messages(self, *, experts: bool = False, system: str | None = None) -> list[Message]:
        """The conversation as ``omnibind.messages.Message`` objects.

        User turns are split at placeholders into ``TextPart``/``MediaPart`` (the newline right
        after a placeholder is dropped: the chat assembly puts its own after each medium). With
        ``experts=True`` a medium's expert text (image labels, speech transcript) follows it as text.
        Raises ``DatasetError`` when placeholders and media disagree.
        """
        problems = placeholder_problems(self)
        if problems:
            raise DatasetError(self.file, self.line, f"sample {self.id!r}: {problems[0]}")
        media = iter(range(len(self.media)))
        out: list[Message] = [Message.system(system)] if system is not None else []
        for turn in self.conversation:
            if turn.role != "user":
                out.append(Message(turn.role, [TextPart(turn.content)]))
                continue
            out.append(Message("user", self._user_parts(turn.content, media, experts)))
        return out

    def _user_parts(self, text: str, media: Iterator[int], experts: bool) -> list[TextPart | MediaPart]:
        parts: list[TextPart | MediaPart] = []
        pos = 0
        for m in PLACEHOLDER_RE.finditer(text):
            _add_text(parts, text[pos : m.start()])
            i = next(media)
            item = self.media[i]
            parts.append(
                MediaPart(item.type, str(self.media_path(i)), options=dict(item.options), name=Path(item.path).name)
            )
            if experts:
                _add_text(parts, expert_text(item))
            pos = m.end() + (1 if text[m.end() : m.end() + 1] == "\n" else 0)
        _add_text(parts, text[pos:])
        return parts


def _add_text(parts: list[Any], text: str) -> None:
    if text.strip():
        parts.append(TextPart(text))


def expert_text(item: MediaItem) -> str:
    """The expert context of one medium as one line ('' when none): labels and/or a transcript.

    Stored values (``[[name, p], ...]`` labels, ``{"text", "confidence"}`` transcripts, or older
    plain strings) are phrased by ``expert_note``, exactly as the model phrases its own notes.
    """
    bits = [expert_note(kind, item.extra[kind]) for kind in EXPERT_KEYS if item.extra.get(kind)]
    bits = [b for b in bits if b]
    return (" ".join(bits) + "\n") if bits else ""


def placeholder_problems(sample: Sample) -> list[str]:
    """Disagreements between the placeholders of the user turns and the media list (empty = fine).

    A foreign-format reader's own findings (``sample.notes``, which name that format's columns) come
    first and replace the generic count message.
    """
    if sample.notes:
        return list(sample.notes)
    found = sample.placeholders()
    types = [m.type for m in sample.media]
    problems = []
    if len(found) != len(types):
        problems.append(f"{len(found)} placeholder(s) {_tags(found)} but {len(types)} media item(s) {types}")
    for i, (ph, mt) in enumerate(zip(found, types)):
        if ph != mt:
            problems.append(f"placeholder {i + 1} is <{ph}> but media[{i}] is {mt!r}")
    return problems


def _tags(names: list[str]) -> str:
    return "".join(f"<{n}>" for n in names) or "(none)"


# --------------------------------------------------------------------------- parsing


def parse_sample(
    obj: Any, *, file: Path | None = None, line: int | None = None, base_dir: Path | None = None
) -> Sample:
    """Parse one JSON object into a ``Sample``; structural problems raise ``DatasetError``.

    Semantic problems (placeholders, roles, empty turns, media files) are left to
    ``omnibind.data.check`` so a checker can report all of them at once.
    """

    def bad(problem: str) -> DatasetError:
        return DatasetError(file, line, problem)

    if not isinstance(obj, dict):
        raise bad(f"a sample must be a JSON object, got {type(obj).__name__}")
    sid = obj.get("id")
    if not isinstance(sid, (str, int)) or isinstance(sid, bool) or str(sid).strip() == "":
        raise bad("missing or empty 'id' (a string)")
    media_raw = obj.get("media", [])
    if not isinstance(media_raw, list):
        raise bad(f"'media' must be a list, got {type(media_raw).__name__}")
    media = [_parse_media(m, i, bad) for i, m in enumerate(media_raw)]
    conv_raw = obj.get("conversation")
    if not isinstance(conv_raw, list) or not conv_raw:
        raise bad("'conversation' must be a non-empty list of {role, content} turns")
    conversation = [_parse_turn(t, i, bad) for i, t in enumerate(conv_raw)]
    for key in ("source", "split"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise bad(f"'{key}' must be a string")
    extra = {k: v for k, v in obj.items() if k not in SAMPLE_KEYS}
    return Sample(
        id=str(sid),
        media=media,
        conversation=conversation,
        source=obj.get("source"),
        split=obj.get("split"),
        extra=extra,
        file=file,
        line=line,
        base_dir=base_dir,
    )


def _parse_media(m: Any, i: int, bad: Any) -> MediaItem:
    if not isinstance(m, dict):
        raise bad(f"media[{i}] must be an object with 'type' and 'path'")
    mtype, path = m.get("type"), m.get("path")
    if mtype not in MEDIA_MODALITIES:
        raise bad(f"media[{i}]: unknown type {mtype!r}; expected one of {', '.join(MEDIA_MODALITIES)}")
    if not isinstance(path, str) or not path.strip():
        raise bad(f"media[{i}]: missing or empty 'path'")
    options = m.get("options", {})
    if not isinstance(options, dict):
        raise bad(f"media[{i}]: 'options' must be an object")
    extra = {k: v for k, v in m.items() if k not in MEDIA_KEYS}
    return MediaItem(type=mtype, path=path, options=dict(options), extra=extra)


def _parse_turn(t: Any, i: int, bad: Any) -> Turn:
    if not isinstance(t, dict):
        raise bad(f"conversation[{i}] must be an object with 'role' and 'content'")
    role, content = t.get("role"), t.get("content")
    if not isinstance(role, str):
        raise bad(f"conversation[{i}]: missing 'role'")
    if not isinstance(content, str):
        raise bad(f"conversation[{i}]: 'content' must be a string, got {type(content).__name__}")
    return Turn(role=role, content=content)


@dataclass
class Record:
    """One raw record of a dataset file: its line, and either the parsed sample or the error."""

    line: int
    sample: Sample | None = None
    error: DatasetError | None = None
