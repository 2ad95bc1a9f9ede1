"""Encoders that render a modality to images and reuse a (shared) image encoder:

- ``video_frames``: sampled frames → image encoder; pooled = mean over frames, tokens = per-frame vectors.
- ``depth_as_image`` / ``thermal_as_image``: colour-mapped renders (``render.py``) → image encoder.
- ``points_multiview``: V depth views (PointCLIP) → image encoder; pooled = mean, tokens = per-view vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from omnibind.encoders import render
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.modalities.base import ImageData

DEFAULT_IMAGE_ENCODER = {"name": "efficientnet_lite0"}


class _ViaImageEncoder(Encoder):
    """Base: holds the shared image encoder (not re-registered as a submodule twice in state dicts)."""

    def __init__(self, image_encoder: Encoder, **params: Any):
        super().__init__(**params)
        self.image = image_encoder
        self.output_dim = image_encoder.output_dim

    @classmethod
    def from_config(cls, params: dict[str, Any], build: Callable[[dict[str, Any]], Encoder]) -> Encoder:
        params = dict(params)
        inner_cfg = params.pop("image_encoder", DEFAULT_IMAGE_ENCODER)
        return cls(build(inner_cfg), image_encoder_cfg=inner_cfg, **params)

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}-{self.image.fingerprint()}"

    def _encode_groups(self, groups: list[list[ImageData]]) -> EncoderOutput:
        flat = [im for g in groups for im in g]
        pooled = self.image.encode(flat).pooled
        out, tokens, pos = [], [], 0
        for g in groups:
            chunk = pooled[pos : pos + len(g)]
            pos += len(g)
            out.append(chunk.mean(0))
            tokens.append(chunk)
        longest = max(len(t) for t in tokens)
        tok = pooled.new_zeros((len(groups), longest, pooled.shape[1]))
        mask = torch.zeros((len(groups), longest), dtype=torch.bool)
        for i, t in enumerate(tokens):
            tok[i, : len(t)] = t
            mask[i, : len(t)] = True
        return EncoderOutput(pooled=torch.stack(out), tokens=tok, token_mask=mask)


@ENCODERS.register("video_frames")
class VideoFramesEncoder(_ViaImageEncoder):
    modalities = ("video",)

    def __init__(self, image_encoder: Encoder, image_encoder_cfg: Any = None):
        super().__init__(image_encoder, image_encoder_cfg=image_encoder_cfg)
        self.token_dim = self.output_dim

    def encode(self, items: list[Any]) -> EncoderOutput:
        return self._encode_groups([[ImageData(f) for f in v.frames] for v in items])


@ENCODERS.register("depth_as_image")
class DepthAsImageEncoder(_ViaImageEncoder):
    modalities = ("depth",)

    def __init__(self, image_encoder: Encoder, image_encoder_cfg: Any = None):
        super().__init__(image_encoder, image_encoder_cfg=image_encoder_cfg)
        self.token_dim = image_encoder.token_dim

    def encode(self, items: list[Any]) -> EncoderOutput:
        return self.image.encode([ImageData(render.render_depth(d.depth, d.kind)) for d in items])


@ENCODERS.register("thermal_as_image")
class ThermalAsImageEncoder(_ViaImageEncoder):
    modalities = ("thermal",)

    def __init__(self, image_encoder: Encoder, image_encoder_cfg: Any = None, fixed_range: list[float] | None = None):
        super().__init__(image_encoder, image_encoder_cfg=image_encoder_cfg, fixed_range=fixed_range)
        self.token_dim = image_encoder.token_dim
        self.fixed_range = tuple(fixed_range) if fixed_range else (-20.0, 120.0)

    def encode(self, items: list[Any]) -> EncoderOutput:
        return self.image.encode([ImageData(render.render_thermal(t.values, t.unit, self.fixed_range)) for t in items])


@ENCODERS.register("points_multiview")
class PointsMultiViewEncoder(_ViaImageEncoder):
    modalities = ("points",)

    def __init__(self, image_encoder: Encoder, image_encoder_cfg: Any = None, views: int = 6, size: int = 224):
        super().__init__(image_encoder, image_encoder_cfg=image_encoder_cfg, views=views, size=size)
        self.token_dim = self.output_dim
        self.rotations = render.view_rotations(views)
        self.size = size

    def encode(self, items: list[Any]) -> EncoderOutput:
        groups = [[ImageData(render.render_points(p.xyz, r, self.size)) for r in self.rotations] for p in items]
        return self._encode_groups(groups)
