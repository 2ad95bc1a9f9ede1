"""omnibind: bind every modality to a language model.

import omnibind
from omnibind import Image, Audio, Message
model = omnibind.load()                      # the embedded default, offline on a CPU
print(model.chat([Message.user(Image("cat.png"), "What is this?")]))
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING, Any

# torch's OpenMP runtime (libgomp.so.1) reads its wait policy once, when it loads, i.e. at the first
# `import torch`. Its default, spinning waits, stalls every parallel op whenever a waiting thread is
# descheduled: on 2 cores shared with other jobs, transformers decoded at 2.8 tokens/s and an image
# encode took 1.7 s with spinning waits, 10 tokens/s and 65-72 ms with sleeping ones. llama.cpp used
# to share that runtime and lose 2.4-3x to the sleeping waits; `make install-dev` now builds it with
# GGML_OPENMP=OFF (ggml's own thread pool, which ignores this variable), so the policy is chosen for
# torch alone (docs/BACKENDS.md, "Threads"). A value set by the user wins.
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
