"""Encoders. Importing registers them; the heavy libraries load when an encoder is built.

Embedded (real pretrained weights installed offline): efficientnet_lite0, whisper_encoder, minilm;
built from them: video_frames, depth_as_image, thermal_as_image, points_multiview; trained here:
imu_cnn. Brought from a local path: imagebind, hf_clip, hf_audio.
"""

import importlib

from omnibind.encoders import efficientnet_lite0, imu_cnn, minilm, rendered, whisper_encoder  # noqa: F401
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput

for _name in ("imagebind", "hf_clip", "hf_audio"):
    try:
        importlib.import_module(f"omnibind.encoders.{_name}")
    except ModuleNotFoundError as _e:  # a backend module not present in this build
        if _e.name != f"omnibind.encoders.{_name}":
            raise

__all__ = ["ENCODERS", "Encoder", "EncoderOutput"]
