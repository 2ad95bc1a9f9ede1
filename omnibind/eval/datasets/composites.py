"""Composite held-out sets built from several held-out items: POPE on composites of Tux Paint
stamps, and DisCRn-style questions over two inputs of different modalities."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omnibind.data.composite import compose_grid, scene_stamps
from omnibind.data.sources.tuxpaint import ATTRIBUTES, Stamp, stamps
from omnibind.data.splits import split_of
from omnibind.errors import InputError
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.eval.datasets.standard import STAMPS_DIR, held_out_stamps, shapes_points
from omnibind.messages import MediaPart

# --- POPE on composites of tuxpaint stamps -------------------------------------------------------
POPE_SETTINGS = ("random", "popular", "adversarial")


def pope_objects(root: str = str(STAMPS_DIR)) -> list[Stamp]:
    """Held-out stamps usable as POPE objects: photo-like categories, short unique names."""
    return scene_stamps(stamps(root), "test", lambda sid: split_of("tuxpaint", sid))


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
        img = compose_grid([vocab[i].image for i in sc], np.random.default_rng(seed * 7919 + k))  # type: ignore[misc]
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
