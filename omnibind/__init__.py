"""omnibind: bind every modality to a language model.

import omnibind
from omnibind import Image, Audio, Message
model = omnibind.load()                      # the embedded default, offline on a CPU
print(model.chat([Message.user(Image("cat.png"), "What is this?")]))
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING, Any

# torch and llama.cpp share one OpenMP runtime in a process (libgomp.so.1, loaded by whichever comes
# first), and it reads its wait policy only when it loads, i.e. at the first `import torch`. Its
# default, spinning waits, stalls every parallel op whenever a waiting thread is descheduled: on 2
# cores shared with other jobs, decoding measured 2.8 tokens/s (transformers) and 1-18 (llama.cpp)
# with spinning waits, 10 and ~40 with sleeping ones. A value set by the user wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
