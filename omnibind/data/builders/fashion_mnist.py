"""Fashion-MNIST (Debian ``dataset-fashion-mnist``, MIT; Xiao et al. 2017): 28×28 greyscale
clothing photos in 10 classes, official 60k train / 10k test IDX files.

Item ids are ``train-<index>`` / ``test-<index>``; the official test split is the held-out test
set (``omnibind.data.splits``). Images are written as PNG upscaled ×4 with nearest-neighbour
resampling (the original pixels stay exactly recoverable).
"""

from __future__ import annotations

from pathlib import Path

from omnibind.data.builders.common import DatasetWriter, caption_samples, item_rng, official_parts
from omnibind.data.sources.fashion_mnist import CLASSES, ROOT, load_split

CAPTIONS = (
    "A photo of a T-shirt.",
    "A photo of a pair of trousers.",
    "A photo of a pullover.",
    "A photo of a dress.",
    "A photo of a coat.",
    "A photo of a sandal.",
    "A photo of a shirt.",
    "A photo of a sneaker.",
    "A photo of a bag.",
    "A photo of an ankle boot.",
)


def build_fashion_mnist(out: Path, *, limit=2000, seed: int = 0, splits=("train", "val", "test"), root=ROOT):
    """Caption + 2 label questions per image; ``limit`` items per split (taken in file order)."""
    from PIL import Image

    w = DatasetWriter(out, "fashion-mnist", splits=splits, limit=limit)
    for official in official_parts(splits):
        images, labels = load_split(official, Path(root))
        for idx in range(len(images)):
            if w.full():
                break
            item = f"{official}-{idx:05d}"
            if not w.wants(item):
                continue
            rng = item_rng(seed, "fashion-mnist", item)
            path = w.media_path(f"{item}.png")
            Image.fromarray(images[idx]).resize((112, 112), Image.NEAREST).save(path)
            c = int(labels[idx])
            media = [{"type": "image", "path": w.rel(path)}]
            w.add_item(item, caption_samples(item, media, CAPTIONS[c], CLASSES[c], list(CLASSES), rng))
    return w.write()
