"""Encoders. Importing registers them; the heavy libraries load only when an encoder is built.

Embedded (real pretrained weights installed offline): ``efficientnet_lite0``, ``whisper_encoder``,
``minilm``. Built from them: ``video_frames``, ``depth_as_image``, ``thermal_as_image``,
``points_multiview``. Trained here: ``imu_cnn``. Brought from a local path: ``imagebind``,
``hf_clip``, ``hf_audio`` (optional modules: a build without them still imports).
"""

import importlib

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput

_MODULES = (
    "efficientnet_lite0",
    "whisper_encoder",
    "minilm",
    "video_frames",
    "depth_as_image",
    "thermal_as_image",
    "points_multiview",
    "imu_cnn",
)
_OPTIONAL_MODULES = ("imagebind", "hf_clip", "hf_audio")

for _name in _MODULES:
    importlib.import_module(f"omnibind.encoders.{_name}")
for _name in _OPTIONAL_MODULES:
    try:
        importlib.import_module(f"omnibind.encoders.{_name}")
    except ModuleNotFoundError as _e:  # only the module itself may be missing, not something it imports
        if _e.name != f"omnibind.encoders.{_name}":
            raise

__all__ = ["ENCODERS", "Encoder", "EncoderOutput"]
