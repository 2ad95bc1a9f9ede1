"""Fixed splits (deterministic, disjoint, official test kept out) and instruction templates."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import Counter

import pytest

from omnibind.data import phrasings as T
from omnibind.data.splits import RULES, bucket, split_of
from omnibind.messages import MEDIA_MODALITIES


def test_split_rule_is_deterministic_across_processes() -> None:
    ids = [f"animals/x{i}" for i in range(50)]
    here = [split_of("tuxpaint", i) for i in ids]
    code = f"from omnibind.data.splits import split_of;print(','.join(split_of('tuxpaint', i) for i in {ids!r}))"
    # a fresh interpreter has another str-hash seed: the rule must not depend on it
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other.split(",") == here


def test_split_proportions_and_disjointness() -> None:
    ids = [f"item-{i}" for i in range(4000)]
    counts = Counter(split_of("tuxpaint", i) for i in ids)
    rule = RULES["tuxpaint"]
    assert abs(counts["test"] / 4000 - rule.test_pct / 100) < 0.03
    assert abs(counts["val"] / 4000 - rule.val_pct / 100) < 0.02
    assert sum(counts.values()) == 4000 and set(counts) == {"train", "val", "test"}
    # the same item in another source is split independently
    assert [split_of("tuxpaint", i) for i in ids[:200]] != [split_of("meshes", i) for i in ids[:200]]
    assert all(0 <= bucket("s", i) < 100 for i in ids[:100])


def test_official_test_split_is_always_test() -> None:
    for source in ("fashion-mnist", "easy-vqa", "basicmotions"):
        assert all(split_of(source, f"test-{i:05d}") == "test" for i in range(300))
        train = Counter(split_of(source, f"train-{i:05d}") for i in range(2000))
        assert set(train) == {"train", "val"} and train["val"] > 0
        with pytest.raises(ValueError, match="train-"):
            split_of(source, "00012")


def test_unknown_sources_get_the_default_rule() -> None:
    counts = Counter(split_of("my-own-data", str(i)) for i in range(2000))
    assert counts["test"] > 100 and counts["val"] > 40


def test_template_counts_and_every_modality_fills() -> None:
    assert len(T.CAPTION_TEMPLATES) >= 32 and len(set(T.CAPTION_TEMPLATES)) == len(T.CAPTION_TEMPLATES)
    assert len(T.QA_TEMPLATES) >= 21 and len(set(T.QA_TEMPLATES)) == len(T.QA_TEMPLATES)
    assert all("{question" in t for t in T.QA_TEMPLATES)
    rng = random.Random(0)
    for m in MEDIA_MODALITIES:
        for t in T.CAPTION_TEMPLATES:
            text = t.format(noun=T.NOUNS[m][0], verb=T.VERBS[m][0])
            assert "{" not in text
        prompts = {T.caption_prompt(m, rng) for _ in range(200)}
        assert len(prompts) > 40  # many phrasings, per-modality nouns
        assert any(noun in p for p in prompts for noun in T.NOUNS[m])
        q = T.qa_prompt(m, "Is it red?", rng)
        assert "s it red?" in q


def test_label_questions_are_balanced_and_correct() -> None:
    rng = random.Random(1)
    yes = no = 0
    for _ in range(400):
        pairs = T.label_qa("image", "badger", ["fox", "owl", "badger"], rng, n=3)
        assert pairs[0][1] == "A badger."
        for q, a in pairs[1:]:
            if a.startswith("Yes"):
                yes += 1
                assert "badger" in q
            elif a.startswith("No"):
                no += 1
                assert "badger" not in q and a == "No, it is a badger."
            else:
                assert a == "A badger." and "badger" in q and ("fox" in q or "owl" in q)
    assert yes > 50 and no > 50 and abs(yes - no) < 0.3 * (yes + no)
    assert T.article("apple") == "an apple" and T.article("the moon") == "the moon"


def test_text_tasks_answers_are_computed() -> None:
    rng = random.Random(3)
    seen = Counter()
    for _ in range(500):
        q, a = T.text_task(rng)
        assert q and a
        m = re.fullmatch(r"(?:What is|Compute|How much is) (\d+) (\+|-|\*|plus|minus|times) (\d+)[.?]", q)
        if m:
            x, op, y = int(m[1]), m[2], int(m[3])
            op = {"plus": "+", "minus": "-", "times": "*"}.get(op, op)
            assert a == f"{x} {op} {y} = {eval(f'{x}{op}{y}')}."
            seen["arith"] += 1
        if q.startswith("Sort these") or q.startswith("Put these numbers"):
            nums = [int(n) for n in re.findall(r"\d+", q)]
            assert a == ", ".join(map(str, sorted(nums))) + "."
            seen["sort"] += 1
    assert seen["arith"] > 20 and seen["sort"] > 20
