"""Fashion-MNIST (Debian ``dataset-fashion-mnist``, MIT; Xiao et al. 2017): the IDX reader and the
class names, spelt as the dataset's own README spells them."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from omnibind.errors import InputError

ROOT = Path("/usr/share/datasets/fashion-mnist")
OFFICIAL_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""The dataset's own label names, index = label (its README's table)."""
CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
"""The one spelling of the classes that training data and evaluation use: the official names in
lower case (but "T-shirt"), singular as the dataset spells them, "/top" dropped."""


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format; gzipped when it ends in ``.gz``) as an unsigned-byte array."""
    if not path.is_file():
        raise InputError(path, "missing; install the Debian package dataset-fashion-mnist")
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"not an unsigned-byte IDX file (magic {data[:4].hex()})")
        shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    except (OSError, ValueError, struct.error, EOFError) as e:
        raise InputError(path, f"cannot read IDX data: {e}") from None
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(path, f"truncated: header says {shape}, body has {body.size} bytes")
    return body.reshape(shape)


def load_split(split: str, root: Path = ROOT) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28), labels (N,)) of the official ``train`` or ``test`` split."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(Path(root) / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(Path(root) / f"{prefix}-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise InputError(root, f"{prefix}: {len(images)} images but {len(labels)} labels")
    return images, labels
