"""omnibind: bind every modality to a language model.

import omnibind
from omnibind import Image, Audio, Message
model = omnibind.load()                      # the embedded default, offline on a CPU
print(model.chat([Message.user(Image("cat.png"), "What is this?")]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnibind.messages import (
    IMU,
    Audio,
    Depth,
    Image,
    MediaPart,
    Message,
    MixPart,
    Points,
    Text,
    TextPart,
    Thermal,
    Video,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from omnibind.api import Model, Reply, TextStream


def load(*args: Any, **kwargs: Any) -> Model:
    """Load a model (see ``omnibind.api.load``); heavy imports happen here, not at ``import omnibind``."""
    from omnibind.api import load as _load

    return _load(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("Model", "Reply", "TextStream", "presets"):
        import omnibind.api as api

        return getattr(api, name)
    raise AttributeError(name)


__all__ = [
    "IMU",
    "Audio",
    "Depth",
    "Image",
    "MediaPart",
    "Message",
    "MixPart",
    "Model",
    "Points",
    "Reply",
    "Text",
    "TextPart",
    "TextStream",
    "Thermal",
    "Video",
    "load",
]
