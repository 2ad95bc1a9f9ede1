"""``video_frames``: a video as its sampled frames through the image encoder — the frame-averaging
video encoder of PandaGPT/ImageBind-LLM-style systems (ImageBind itself inflates its ViT over 2-frame
clips; with a 2-D image encoder, per-frame features are the honest equivalent).

pooled = mean of the per-frame pooled vectors; tokens = the per-frame vectors (T, D) in time order.
The audio track is not encoded here: the model routes it to the audio encoder as its own slot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from omnibind.encoders._via_image import ViaImageEncoder
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.errors import InputError


@ENCODERS.register("video_frames")
class VideoFramesEncoder(ViaImageEncoder):
    """``encode(list[VideoData])`` → pooled (B, D), tokens (B, T_max, D) with a mask over frames."""

    modalities = ("video",)

    def __init__(self, image_encoder: Encoder, image_encoder_cfg: dict[str, Any] | None = None):
        super().__init__(image_encoder, image_encoder_cfg)
        self.token_dim = self.output_dim

    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no videos to encode", modality="video")
        return self.encode_groups([_frames(v) for v in items])


def _frames(item: Any) -> list[np.ndarray]:
    frames = np.asarray(getattr(item, "frames", item))
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0 or frames.dtype != np.uint8:
        problem = f"expected (T ≥ 1, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}"
        raise InputError("<video>", problem, modality="video")
    return list(frames)
