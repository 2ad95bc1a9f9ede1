"""Helpers shared by the pretrained (frozen) encoders: weight-file hashing for fingerprints, and a
base class that keeps a frozen network frozen."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omnibind import hashing
from omnibind.encoders.base import Encoder


def file_hash(path: str | Path) -> str:
    """SHA-256 prefix of a file, or of every file in a folder (sorted), computed once per version.

    A file's hash is ``omnibind.hashing.file_hash`` (memoised by size and mtime, so a replaced
    weight file is hashed again); 16 hex digits keep fingerprints as they were.
    """
    p = Path(path)
    if p.is_dir():
        parts = [file_hash(f) for f in sorted(p.rglob("*")) if f.is_file() and "__pycache__" not in f.parts]
        return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
    return hashing.file_hash(p)[:16]


class FrozenEncoder(Encoder):
    """A pretrained encoder that never trains: no gradients, and ``train()`` leaves it in eval mode.

    Keeping eval mode matters for batch-norm networks (EfficientNet): a ``model.train()`` call would
    otherwise update running statistics and silently change the features a fingerprint vouches for.
    """

    trainable = False

    def freeze(self) -> None:
        """Call at the end of ``__init__``, once the weights are loaded."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenEncoder:
        return super().train(False)

    def weights_fingerprint(self, weights: str | Path) -> str:
        """Hash of the weight file(s) plus the params (the base fingerprint)."""
        return f"{file_hash(weights)}-{Encoder.fingerprint(self)}"
