"""Typed chat messages: a role plus content parts (text and media of any modality).

The same types flow through the Python API, the CLI, the HTTP server and evaluation.
A media part holds a *source* — a path, raw file bytes, or already-decoded data — and is
decoded lazily by ``omnibind.modalities`` when the model needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

MEDIA_MODALITIES: tuple[str, ...] = ("image", "audio", "video", "depth", "thermal", "imu", "points")
"""Modalities that carry media (text is a modality too, but travels as ``TextPart``)."""

ALL_MODALITIES: tuple[str, ...] = (*MEDIA_MODALITIES, "text")

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class TextPart:
    """Plain text."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, eq=False)
class MediaPart:
    """One media input.

    Attributes:
        modality: one of ``MEDIA_MODALITIES``.
        source: a file path (``str``/``Path``), raw file bytes, or decoded data
            (e.g. an ``np.ndarray`` image, a waveform with ``options["sample_rate"]``).
        format: file-type hint for bytes (``"png"``, ``"wav"``...); ignored for paths.
        options: modality-specific hints, e.g. ``{"sample_rate": 50}`` for IMU arrays,
            ``{"kind": "disparity"}`` for depth, ``{"unit": "celsius"}`` for thermal.
        name: a display name (file name) used in logs and errors.
    """

    modality: str
    source: Any
    format: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    type: Literal["media"] = "media"

    def __post_init__(self) -> None:
        if self.modality not in MEDIA_MODALITIES:
            raise ValueError(f"unknown modality {self.modality!r}; expected one of {MEDIA_MODALITIES}")

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if isinstance(self.source, (str, Path)):
            return str(self.source)
        if isinstance(self.source, (bytes, bytearray)):
            return f"<{self.format or 'bytes'}>"
        return f"<{type(self.source).__name__}>"


@dataclass(frozen=True, eq=False)
class MixPart:
    """A weighted mix of inputs in the bind space (ImageBind-LLM's embedding arithmetic).

    ``MixPart([Image("a.png"), Audio("b.wav")], weights=[0.7, 0.3])`` becomes ONE bind-space
    vector, the normalised weighted sum, injected as one input.
    """

    parts: tuple[MediaPart | TextPart, ...]
    weights: tuple[float, ...]
    type: Literal["mix"] = "mix"

    def __init__(self, parts: list[MediaPart | TextPart], weights: list[float] | None = None):
        parts_t = tuple(parts)
        if not parts_t:
            raise ValueError("MixPart needs at least one part")
        w = tuple(float(x) for x in (weights if weights is not None else [1.0] * len(parts_t)))
        if len(w) != len(parts_t):
            raise ValueError(f"MixPart: {len(parts_t)} parts but {len(w)} weights")
        if not any(abs(x) > 0 for x in w):
            raise ValueError("MixPart: weights are all zero")
        object.__setattr__(self, "parts", parts_t)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "type", "mix")


@dataclass(frozen=True)
class RetrievedPart:
    """An indexed media item an assistant reply points to (media out by retrieval, ``omnibind.index``).

    Only assistant messages carry these: the reply's text plus the items of the media index nearest
    to the user's turn in the bind space. ``path`` is relative to the index root; ``id`` is the
    item's position in the index (``/v1/search/media/{id}`` serves its bytes); ``score`` the cosine
    similarity to the query; ``rank`` 1 = best.
    """

    modality: str
    path: str
    score: float
    rank: int = 1
    id: int = -1
    type: Literal["retrieved"] = "retrieved"


Part = Union[TextPart, MediaPart, MixPart]  # noqa: UP007 - a runtime alias, valid on Python 3.10


@dataclass
class Message:
    """One chat turn: a role and an ordered list of parts."""

    role: Role
    content: list[Part]

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")
        if isinstance(self.content, str):
            self.content = [TextPart(self.content)]
        self.content = [TextPart(p) if isinstance(p, str) else p for p in self.content]
        for p in self.content:
            if not isinstance(p, (TextPart, MediaPart, MixPart, RetrievedPart)):
                raise TypeError(
                    f"message part must be TextPart, MediaPart, MixPart or RetrievedPart, got {type(p).__name__}"
                )
        if self.role != "user" and any(isinstance(p, (MediaPart, MixPart)) for p in self.content):
            raise ValueError(f"only user messages may carry media; got media in a {self.role} message")
        if self.role != "assistant" and any(isinstance(p, RetrievedPart) for p in self.content):
            raise ValueError(f"only assistant messages may carry retrieved items; got one in a {self.role} message")

    @classmethod
    def user(cls, *parts: Part | str) -> Message:
        return cls("user", list(parts))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", [TextPart(text)])

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", [TextPart(text)])

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def media(self) -> list[MediaPart | MixPart]:
        return [p for p in self.content if isinstance(p, (MediaPart, MixPart))]

    @property
    def retrieved(self) -> list[RetrievedPart]:
        """The retrieved items of an assistant reply."""
        return [p for p in self.content if isinstance(p, RetrievedPart)]


Conversation = list[Message]


def _media(modality: str):
    def make(source: Any, *, format: str | None = None, name: str | None = None, **options: Any) -> MediaPart:
        return MediaPart(modality, source, format=format, options=options, name=name)

    make.__name__ = modality.capitalize()
    make.__doc__ = (
        f"A {modality} part from a path, file bytes or decoded data; keyword options are passed to the loader."
    )
    return make


Image = _media("image")
Audio = _media("audio")
Video = _media("video")
Depth = _media("depth")
Thermal = _media("thermal")
IMU = _media("imu")
Points = _media("points")


def Text(text: str) -> TextPart:  # noqa: N802 - mirrors the media constructors
    """A text part."""
    return TextPart(text)


def as_conversation(messages: str | Message | list[Message] | list[dict]) -> Conversation:
    """Normalise a prompt string, one message or a list into a conversation."""
    if isinstance(messages, str):
        return [Message.user(messages)]
    if isinstance(messages, Message):
        messages = [messages]
    out: Conversation = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict) and "role" in m:
            out.append(Message(m["role"], m.get("content", [])))
        else:
            raise TypeError(f"cannot read a message from {type(m).__name__}")
    if not out:
        raise ValueError("empty conversation")
    # retrieved items point at outputs the model never reads: a history passed back keeps their text only
    return [
        Message(m.role, [p for p in m.content if not isinstance(p, RetrievedPart)]) if m.retrieved else m for m in out
    ]
