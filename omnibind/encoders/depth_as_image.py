"""``depth_as_image``: a depth map rendered as a colour image (``render.render_depth``: inverse
depth, robust percentiles, viridis, invalid = black) through the image encoder.

ImageBind encodes depth as a 1-channel disparity image with a ViT trained on SUN RGB-D; no such
weights install offline, so a colour-mapped render lets an ImageNet network see the scene's layout,
and the bind head learns the rest. pooled/tokens are the image encoder's.
"""

from __future__ import annotations

from typing import Any

from omnibind.encoders import render
from omnibind.encoders._via_image import ViaImageEncoder
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.errors import InputError


@ENCODERS.register("depth_as_image")
class DepthAsImageEncoder(ViaImageEncoder):
    """``encode(list[DepthData])`` → the image encoder's output on the rendered maps."""

    modalities = ("depth",)
    tokens_are_feature_map = True

    def __init__(
        self, image_encoder: Encoder, image_encoder_cfg: dict[str, Any] | None = None, colormap: str = "viridis"
    ):
        super().__init__(image_encoder, image_encoder_cfg, colormap=colormap)
        render.colormap(colormap)  # unknown names fail at build time, not on the first request
        self.colormap = colormap
        self.token_dim = image_encoder.token_dim
        self.token_grid = image_encoder.token_grid  # one rendered image: the image's feature map

    def render(self, item: Any) -> Any:
        """The (H, W, 3) uint8 image this encoder sees for one ``DepthData``."""
        return render.render_depth(item.depth, getattr(item, "kind", "metric"), self.colormap)

    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no depth maps to encode", modality="depth")
        return self.encode_images([self.render(d) for d in items])
