"""Fashion-MNIST (Debian ``dataset-fashion-mnist``, MIT; Xiao et al. 2017): 28×28 greyscale
clothing photos in 10 classes, official 60k train / 10k test IDX files.

Item ids are ``train-<index>`` / ``test-<index>``; the official test split is the held-out test
set (``omnibind.data.splits``). Images are written as PNG upscaled ×4 with nearest-neighbour
resampling (the original pixels stay exactly recoverable).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from omnibind.data.builders.common import DatasetWriter, caption_samples, item_rng, official_parts
from omnibind.errors import InputError

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
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


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array (big-endian header: magic, dims)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"not an unsigned-byte IDX file (magic {data[:4].hex()})")
        shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
        arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(shape)
    except (OSError, ValueError, struct.error, EOFError) as e:
        raise InputError(path, f"cannot read IDX data: {e}") from None


def load_split(split: str, root: Path = ROOT) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise InputError(root, f"{prefix}: {len(images)} images but {len(labels)} labels")
    return images, labels


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
