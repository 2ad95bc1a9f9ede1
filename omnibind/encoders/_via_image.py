"""Base of the encoders that turn their modality into images and reuse a shared image encoder
(``video_frames``, ``depth_as_image``, ``thermal_as_image``, ``points_multiview``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput, FeatureDims, SizedNetwork
from omnibind.errors import ConfigError
from omnibind.modalities.base import ImageData

DEFAULT_IMAGE_ENCODER: dict[str, Any] = {"name": "efficientnet_lite0"}


class ViaImageEncoder(Encoder):
    """Holds the inner image encoder built by ``build`` (the model shares one instance between the
    image slot and every wrapper, so EfficientNet is loaded once).

    ``params`` keep the inner config, so the fingerprint changes with the inner encoder's choice,
    and the inner fingerprint (weights) is appended.
    """

    tokens_are_feature_map = False  # True: tokens are the image's feature map (one rendered image)

    def __init__(self, image_encoder: Encoder, image_encoder_cfg: dict[str, Any] | None = None, **params: Any):
        super().__init__(image_encoder=image_encoder_cfg or DEFAULT_IMAGE_ENCODER, **params)
        if "image" not in image_encoder.modalities:
            raise ConfigError(f"{type(self).__name__} needs an image encoder, got {type(image_encoder).__name__}")
        self.image = image_encoder
        self.trainable = image_encoder.trainable  # nothing of its own to train
        self.output_dim = image_encoder.output_dim
        # pooled features live in the image encoder's space, so its classifier reads them too
        self.num_classes = image_encoder.num_classes

    def class_probs(self, pooled: torch.Tensor) -> torch.Tensor:
        """The inner image encoder's class distribution of these pooled features (for frames or
        views: of their mean, which is this encoder's pooled vector)."""
        return self.image.class_probs(pooled)

    @classmethod
    def from_config(cls, params: dict[str, Any], build: Callable[[dict[str, Any]], Encoder]) -> Encoder:
        params = dict(params)
        inner_cfg = dict(params.pop("image_encoder", None) or DEFAULT_IMAGE_ENCODER)
        return cls(build(inner_cfg), image_encoder_cfg=inner_cfg, **params)

    @classmethod
    def declared_dims(cls, params: dict[str, Any]) -> FeatureDims | None:
        """The inner image encoder's widths: pooled and classes are its own; tokens are its feature
        map (``tokens_are_feature_map``: one rendered image) or one pooled vector per frame/view."""
        inner_cfg = dict(params.get("image_encoder") or DEFAULT_IMAGE_ENCODER)
        inner = ENCODERS.get(inner_cfg["name"]).declared_dims(dict(inner_cfg.get("params") or {}))
        if inner is None:
            return None
        if cls.tokens_are_feature_map:
            return FeatureDims(inner.pooled, inner.tokens, inner.grid, inner.classes)
        return FeatureDims(inner.pooled, inner.pooled, None, inner.classes)

    @classmethod
    def meta_network(cls, params: dict[str, Any], build: Callable[[dict[str, Any]], SizedNetwork]) -> SizedNetwork:
        """The inner image encoder's network (the same instance the image slot has, so it counts
        once), with this wrapper's widths (as ``declared_dims``)."""
        inner = build(dict(params.get("image_encoder") or DEFAULT_IMAGE_ENCODER))
        d = inner.dims
        dims = d if cls.tokens_are_feature_map else FeatureDims(d.pooled, d.pooled, None, d.classes)
        return SizedNetwork(inner.network, dims, inner.dtype, inner.trainable)

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}-{self.image.fingerprint()}"

    def encode_images(self, images: list[np.ndarray]) -> EncoderOutput:
        """One inner call for a flat list of (H, W, 3) uint8 images."""
        return self.image.encode([ImageData(im) for im in images])

    def encode_groups(self, groups: list[list[np.ndarray]]) -> EncoderOutput:
        """Several images per item (frames, views): pooled = their mean, tokens = their pooled vectors."""
        out = self.encode_images([im for g in groups for im in g])
        per_item = torch.split(out.pooled, [len(g) for g in groups])
        longest = max(len(t) for t in per_item)
        tokens = out.pooled.new_zeros((len(groups), longest, out.pooled.shape[1]))
        mask = torch.zeros((len(groups), longest), dtype=torch.bool, device=out.pooled.device)
        for i, t in enumerate(per_item):
            tokens[i, : len(t)] = t
            mask[i, : len(t)] = True
        pooled = torch.stack([t.mean(0) for t in per_item])
        return EncoderOutput(pooled=pooled, tokens=tokens, token_mask=mask)
