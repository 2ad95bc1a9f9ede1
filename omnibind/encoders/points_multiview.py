"""``points_multiview``: a point cloud as V orthographic depth views through the image encoder,
after PointCLIP (Zhang et al., "PointCLIP: Point Cloud Understanding by CLIP", CVPR 2022), which
projects clouds to multi-view depth maps so a 2-D pretrained network can read them.

Views (``render.view_rotations``): front, right, back, left, top, bottom by default. Rendering
(``render.render_points``): z-buffered orthographic projection, small square splats, nearer =
brighter. pooled = mean of the per-view vectors; tokens = the per-view vectors (V, D). Point
colours are not used: depth views are what PointCLIP showed to transfer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from omnibind.encoders import render
from omnibind.encoders._via_image import ViaImageEncoder
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.errors import ConfigError, InputError


@ENCODERS.register("points_multiview")
class PointsMultiViewEncoder(ViaImageEncoder):
    """``encode(list[PointsData])`` → pooled (B, D), tokens (B, V, D)."""

    modalities = ("points",)

    def __init__(
        self,
        image_encoder: Encoder,
        image_encoder_cfg: dict[str, Any] | None = None,
        views: int = 6,
        size: int = 224,
        splat: int = 2,
        max_points: int = 200_000,
    ):
        super().__init__(image_encoder, image_encoder_cfg, views=views, size=size, splat=splat, max_points=max_points)
        if views < 1 or size < 8 or splat < 0 or max_points < 1:
            raise ConfigError("points_multiview: views ≥ 1, size ≥ 8, splat ≥ 0 and max_points ≥ 1 are required")
        self.views, self.size, self.splat, self.max_points = int(views), int(size), int(splat), int(max_points)
        self.token_dim = self.output_dim

    def render(self, item: Any) -> list[np.ndarray]:
        """The V (size, size, 3) uint8 views this encoder sees for one ``PointsData``."""
        xyz = getattr(item, "xyz", item)
        return render.render_point_views(xyz, self.views, self.size, self.splat, self.max_points)

    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no point clouds to encode", modality="points")
        return self.encode_groups([self.render(p) for p in items])
