"""``thermal_as_image``: a thermal image rendered in colour (``render.render_thermal``: °C clipped to
a fixed range, default [-20, 120] °C, or per-image percentiles; inferno, hot = bright) through the
image encoder. ImageBind's thermal ViT was trained on LLVIP; no thermal weights install offline.
"""

from __future__ import annotations

from typing import Any

from omnibind.encoders import render
from omnibind.encoders._via_image import ViaImageEncoder
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.errors import ConfigError, InputError


@ENCODERS.register("thermal_as_image")
class ThermalAsImageEncoder(ViaImageEncoder):
    """``encode(list[ThermalData])`` → the image encoder's output on the rendered images.

    ``celsius_range``: [low, high] °C mapped to the colour map's ends, or null for per-image
    percentiles (more contrast, but a colour no longer means a temperature).
    """

    modalities = ("thermal",)
    tokens_are_feature_map = True

    def __init__(
        self,
        image_encoder: Encoder,
        image_encoder_cfg: dict[str, Any] | None = None,
        celsius_range: tuple[float, float] | list[float] | None = render.DEFAULT_CELSIUS_RANGE,
        colormap: str = "inferno",
    ):
        rng = list(celsius_range) if celsius_range is not None else None
        super().__init__(image_encoder, image_encoder_cfg, celsius_range=rng, colormap=colormap)
        if rng is not None and (len(rng) != 2 or not rng[0] < rng[1]):
            raise ConfigError(
                f"thermal_as_image: celsius_range must be [low, high] with low < high, got {celsius_range}"
            )
        render.colormap(colormap)
        self.celsius_range = (float(rng[0]), float(rng[1])) if rng is not None else None
        self.colormap = colormap
        self.token_dim = image_encoder.token_dim
        self.token_grid = image_encoder.token_grid  # one rendered image: the image's feature map

    def render(self, item: Any) -> Any:
        """The (H, W, 3) uint8 image this encoder sees for one ``ThermalData``."""
        return render.render_thermal(item.values, getattr(item, "unit", "relative"), self.celsius_range, self.colormap)

    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no thermal images to encode", modality="thermal")
        return self.encode_images([self.render(t) for t in items])
