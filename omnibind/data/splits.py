"""Fixed held-out splits: one deterministic rule shared by the data builders and the evaluation.

``split_of(source, item_id)`` depends on nothing but its two arguments, so the training side and
the evaluation side always agree, on any machine, in any order, with any ``--limit``.

Rule:
1. Sources that ship an official test split (``OFFICIAL_TEST``): item ids start with ``test-`` or
   ``train-``. ``test-…`` → ``"test"``. ``train-…`` items → ``"val"`` for the ``val_pct`` hash
   bucket, else ``"train"`` (the official test split is never used for training or validation).
2. Every other source: bucket = first 8 hex digits of SHA-256(``"<source>/<item_id>"``) mod 100;
   bucket < test_pct → ``"test"``, < test_pct + val_pct → ``"val"``, else ``"train"``.

Item ids name the underlying item, not a sample: all samples built from one image (its caption,
its questions) share the item's split, so no held-out image leaks through another phrasing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class SplitRule:
    """Percentages of items held out (``test_pct``, ``val_pct``); the rest is training data."""

    test_pct: int = 10
    val_pct: int = 5
    official_test: bool = False


DEFAULT_RULE = SplitRule()
RULES: dict[str, SplitRule] = {
    "tuxpaint": SplitRule(test_pct=15, val_pct=5),
    "tuxpaint-sounds": SplitRule(test_pct=20, val_pct=5),
    "fashion-mnist": SplitRule(val_pct=5, official_test=True),
    "easy-vqa": SplitRule(val_pct=5, official_test=True),
    "basicmotions": SplitRule(val_pct=10, official_test=True),
    "stereo": SplitRule(test_pct=100, val_pct=0),  # the one real depth pair is kept for evaluation
    "meshes": SplitRule(test_pct=20, val_pct=10),
    "text-chat": SplitRule(test_pct=5, val_pct=5),
    # the fixed held-out sets of real photos and sounds (omnibind/data/sources/heldout.py): sounds hold
    # out more so the sound test set has at least 10 classes; every scikit-image photo is a test photo
    "gcompris-photos": SplitRule(test_pct=15, val_pct=5),
    "gcompris-sounds": SplitRule(test_pct=25, val_pct=5),
    "skimage-photos": SplitRule(test_pct=100, val_pct=0),
}
"""Per-source rules; any other source (user datasets) gets ``DEFAULT_RULE`` (10% test, 5% val)."""

OFFICIAL_TEST = tuple(k for k, r in RULES.items() if r.official_test)


def bucket(source: str, item_id: str) -> int:
    """A stable number in [0, 100) for an item (SHA-256, so independent of Python's hash seed)."""
    digest = hashlib.sha256(f"{source}/{item_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def split_of(source: str, item_id: str) -> str:
    """The fixed split (``"train"``, ``"val"`` or ``"test"``) of one item of a source."""
    rule = RULES.get(source, DEFAULT_RULE)
    item_id = str(item_id)
    b = bucket(source, item_id)
    if rule.official_test:
        if item_id.startswith("test-"):
            return "test"
        if not item_id.startswith("train-"):
            raise ValueError(f"{source}: item ids must start with 'train-' or 'test-'; got {item_id!r}")
        return "val" if b < rule.val_pct else "train"
    if b < rule.test_pct:
        return "test"
    if b < rule.test_pct + rule.val_pct:
        return "val"
    return "train"
