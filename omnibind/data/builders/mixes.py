"""Samples made of several items: scenes for "is there an X?" and several inputs at once.

Source ``scenes``: composites of three Tux Paint stamps of one split (``omnibind.data.composite``,
the same composition the POPE evaluation uses on held-out stamps), each with "Is there an X in the
image?" for the three present objects ("Yes.") and three absent ones ("No."): half drawn at
random, half among the objects that co-occur with the present ones (POPE's adversarial setting),
so "yes" is right exactly half the time. One caption sample names the three objects.

Source ``pairs``: two inputs of different modalities in one question (X-InstructBLIP's DisCRn and
"describe each input"), built from the caption samples that other builders already wrote into the
same folder (Tux Paint images and sounds, GCompris photos and sounds, mesh point clouds): "Which
input is an animal / a cow?" with exactly one right input (answer positions balanced) and
"Describe each input." Parts of a pair come from the same split, so held-out items stay out.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, conversation, item_rng
from omnibind.data.composite import compose_grid, scene_stamps
from omnibind.data.format import SPLITS
from omnibind.data.sources.tuxpaint import ATTRIBUTES
from omnibind.data.sources.tuxpaint import ROOT as STAMPS
from omnibind.data.sources.tuxpaint import stamps as read_stamps
from omnibind.data.splits import split_of

POPE_PROMPT = "Is there {a_object} in the image? Please answer yes or no."
DISCRN_PROMPT = "First input: {first}\nSecond input: {second}\n{question} Answer with first or second."
WHAT_IS = {"image": "a picture of {x}", "audio": "the sound of {x}", "points": "a 3D shape of {x}"}


def build_scenes(out: Path, *, limit=None, seed: int = 0, splits=SPLITS, per_split=None, root=STAMPS):
    """``per_split`` scenes (default 300 train, 20 val; none for test) of three stamps, six questions each."""
    w = DatasetWriter(out, "scenes", splits=splits, limit=limit)
    all_stamps = read_stamps(Path(root))
    counts = per_split or {"train": 300, "val": 20}
    for split in splits:
        if split == "test":
            continue  # the held-out scenes are the POPE evaluation's own (omnibind.eval.datasets.composites)
        vocab = scene_stamps(all_stamps, split, lambda sid: split_of("tuxpaint", sid))
        if len(vocab) < 8:
            w.skip(split, f"only {len(vocab)} {split} stamps usable in scenes")
            continue
        rng = np.random.default_rng([seed, len(split)])
        cooc: dict[int, Counter] = defaultdict(Counter)
        by_cat: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(vocab):
            by_cat[s.category].append(i)
        for k in range(counts.get(split, 0)):
            if limit is not None and k >= limit:
                break
            cat = by_cat[sorted(by_cat)[int(rng.integers(len(by_cat)))]]
            first = [int(rng.choice(cat))]
            rest = [i for i in range(len(vocab)) if i not in first]
            picked = first + [int(x) for x in rng.choice(rest, size=2, replace=False)]
            for a in picked:
                cooc[a].update(b for b in picked if b != a)
            item = f"{split}-{k}"
            path = w.media_path(f"{item}.png")
            from PIL import Image

            Image.fromarray(compose_grid([vocab[i].image for i in picked], rng)).save(path)
            media = [{"type": "image", "path": w.rel(path)}]
            names = [vocab[i].name for i in picked]
            absent = [i for i in range(len(vocab)) if i not in picked]
            together: Counter = Counter()
            for p in picked:
                together.update(cooc[p])
            close = [i for i in sorted(absent, key=lambda i: -together[i]) if together[i] > 0][:3]
            negatives = (close[:1] + [int(x) for x in rng.choice(absent, size=3, replace=False)])[:3]
            negatives = list(dict.fromkeys(negatives))
            while len(negatives) < 3:
                negatives.append(int(rng.choice([i for i in absent if i not in negatives])))
            samples: list[dict[str, Any]] = [
                {
                    "id": f"{item}#caption",
                    "media": media,
                    "conversation": conversation(
                        "<image>\n" + T.caption_prompt("image", random.Random(f"{seed}/{item}")),
                        T.sentence(_listing([T.article(n) for n in names])),
                    ),
                    "task": "caption",
                    "objects": names,
                }
            ]
            for answer, idxs in (("Yes.", picked), ("No.", negatives)):
                for i in idxs:
                    name = vocab[i].name
                    samples.append(
                        {
                            "id": f"{item}#{answer[:-1].lower()}-{name.replace(' ', '_')}",
                            "media": media,
                            "conversation": conversation(
                                "<image>\n" + POPE_PROMPT.format(a_object=T.article(name)), answer
                            ),
                            "task": "yesno",
                            "objects": names,
                        }
                    )
            w.add_item(item, samples, split=split)
    return w.write()


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# (source file, modality) read for pairs; a stamp id (Tux Paint) also gives the stamp's attributes
PAIR_SOURCES = (
    ("tuxpaint", "image"),
    ("gcompris-photos", "image"),
    ("tuxpaint-sounds", "audio"),
    ("gcompris-sounds", "audio"),
    ("meshes", "points"),
)
PAIR_KINDS = (("image", "audio"), ("image", "points"), ("audio", "points"))


def _entities(out: Path, split: str) -> dict[str, list[dict[str, Any]]]:
    """One entry per item with a single medium of a pair modality: its media dict, label, attributes."""
    pool: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for source, modality in PAIR_SOURCES:
        path = out / f"{source}.{split}.jsonl"
        if not path.is_file():
            continue
        seen: set[str] = set()
        for line in path.read_text().splitlines():
            row = json.loads(line)
            media = row.get("media") or []
            label = row.get("label")
            if row.get("task") != "caption" or len(media) != 1 or media[0]["type"] != modality or not label:
                continue
            if row["item"] in seen:
                continue
            seen.add(row["item"])
            attrs = [a for a, f in ATTRIBUTES.items() if f(row["item"])] if source.startswith("tuxpaint") else []
            pool[modality].append({"media": media[0], "label": label, "attrs": attrs, "id": row["id"]})
    return pool


def build_pairs(out: Path, *, limit=None, seed: int = 0, splits=SPLITS, per_kind=None):
    """Pairs of inputs of two modalities from the caption samples already built into ``out``
    (build tuxpaint, tuxpaint-sounds, gcompris-photos, gcompris-sounds and meshes first)."""
    w = DatasetWriter(out, "pairs", splits=splits, limit=limit)
    counts = per_kind or {"train": 250, "val": 10}
    for split in splits:
        if split == "test":
            continue  # the held-out pairs are the DisCRn evaluation's own
        pool = _entities(out, split)
        for m1, m2 in PAIR_KINDS:
            if not pool[m1] or not pool[m2]:
                w.skip(f"{split}/{m1}-{m2}", f"no {split} {m1 if not pool[m1] else m2} caption samples in {out}")
                continue
            n = counts.get(split, 0)
            if limit is not None:  # --limit counts items per split: share it between the kinds
                n = min(n, -(-limit // len(PAIR_KINDS)))
            for k in range(n):
                if limit is not None and w.result.items[split] >= limit:
                    break
                item = f"{split}-{m1}-{m2}-{k}"
                rng = item_rng(seed, "pairs", item)
                a, b = rng.choice(pool[m1]), rng.choice(pool[m2])
                if a["label"] == b["label"]:
                    continue
                first, second = (a, b) if rng.random() < 0.5 else (b, a)
                media = [first["media"], second["media"]]
                only = [(x, 0) for x in first["attrs"] if x not in second["attrs"]]
                only += [(x, 1) for x in second["attrs"] if x not in first["attrs"]]
                if only and rng.random() < 0.5:
                    attr, right = rng.choice(only)
                    question = f"Which input is {attr}?"
                else:
                    right = k % 2  # balanced positions, so "always first" is wrong half the time
                    question = f"Which input is {T.article((first, second)[right]['label'])}?"
                tags = [f"<{m['type']}>" for m in media]
                ask = DISCRN_PROMPT.format(first=tags[0], second=tags[1], question=question)
                describe = _describe(first, second)
                samples = [
                    {
                        "id": f"{item}#which",
                        "media": media,
                        "conversation": conversation(ask, "First." if right == 0 else "Second."),
                        "task": "choice",
                    },
                    {
                        "id": f"{item}#each",
                        "media": media,
                        "conversation": conversation(f"{tags[0]}\n{tags[1]}\n" + rng.choice(EACH_PROMPTS), describe),
                        "task": "caption",
                    },
                ]
                w.add_item(item, samples, split=split)
    return w.write()


EACH_PROMPTS = (
    "Describe each input.",
    "What are the two inputs?",
    "Describe both inputs.",
    "What is in each of these inputs?",
    "Tell me what each input shows.",
)


def _describe(first: dict[str, Any], second: dict[str, Any]) -> str:
    def what(e: dict[str, Any]) -> str:
        return WHAT_IS[e["media"]["type"]].format(x=T.article(e["label"]))

    return f"The first input is {what(first)}, and the second is {what(second)}."
