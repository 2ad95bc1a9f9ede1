"""Metric implementations against hand-computed cases (POPE, MME, CIDEr-D, BLEU, ROUGE-L, METEOR-lite)."""

from __future__ import annotations

import math

import pytest

from omnibind.eval import answers, metrics


def test_pope_hand_computed() -> None:
    targets = ["yes", "yes", "yes", "no", "no", "no"]
    preds = ["yes", "yes", "no", "yes", "no", None]  # TP=2 FN=1 FP=1 TN=1, one unreadable answer
    m = metrics.pope(preds, targets)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == pytest.approx(3 / 6)
    assert m["unparsed"] == pytest.approx(1 / 6)


def test_pope_always_yes() -> None:
    m = metrics.pope(["yes"] * 4, ["yes", "no", "yes", "no"])
    assert (m["precision"], m["recall"], m["yes_ratio"]) == (0.5, 1.0, 1.0)
    assert m["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def test_mme_accuracy_plus_hand_computed() -> None:
    groups = ["a", "a", "b", "b", "c", "c"]
    targets = ["yes", "no"] * 3
    preds = ["yes", "no", "yes", "yes", "no", "yes"]  # a: both right, b: one right, c: none
    m = metrics.mme(preds, targets, groups)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["accuracy_plus"] == pytest.approx(1 / 3)
    assert m["score"] == pytest.approx(100 * (0.5 + 1 / 3))
    always_yes = metrics.mme(["yes"] * 6, targets, groups)
    assert always_yes["accuracy"] == 0.5 and always_yes["accuracy_plus"] == 0.0


def test_cider_d_small_reference_set() -> None:
    # two images; "a" is in every reference (idf 0), "cat"/"dog"/"a cat" in one (idf ln 2)
    refs = [["a cat"], ["a dog"]]
    out = metrics.cider_d(["a cat", "a cat"], refs)
    # image 1: unigram and bigram cosines are 1, tri/4-grams empty → (1+1+0+0)/4 × 10 = 5
    assert out["per_sample"][0] == pytest.approx(5.0)
    assert out["per_sample"][1] == pytest.approx(0.0)  # "cat" vs "dog": no shared informative n-gram
    assert out["cider"] == pytest.approx(2.5)


def test_cider_d_clipping_and_length_penalty() -> None:
    refs = [["a cat"], ["a dog"]]
    out = metrics.cider_d(["a cat cat", "a dog"], refs)
    ln2 = math.log(2)
    # unigrams: hyp {cat: 2 ln2} clipped to ln2 → ln2·ln2 / (2ln2 · ln2) = 0.5
    # bigrams: hyp {a cat: ln2, cat cat: ln2 (unseen → full idf)} vs ref {a cat: ln2} → 1/√2
    expected = 10 * math.exp(-1 / 72) * (0.5 + 1 / math.sqrt(2)) / 4
    assert ln2 > 0
    assert out["per_sample"][0] == pytest.approx(expected)
    assert out["per_sample"][1] == pytest.approx(5.0)


def test_bleu_hand_computed() -> None:
    b = metrics.bleu(["a cat sat on a mat"], [["the cat sat on the mat"]])
    assert b["bleu1"] == pytest.approx(4 / 6)
    assert b["bleu2"] == pytest.approx(math.sqrt(4 / 6 * 2 / 5))
    assert b["bleu3"] == pytest.approx((4 / 6 * 2 / 5 * 1 / 4) ** (1 / 3))
    assert b["bleu4"] == 0.0  # no matching 4-gram, no smoothing
    assert metrics.bleu(["the cat sat on the mat"], [["the cat sat on the mat"]])["bleu4"] == pytest.approx(1.0)
    short = metrics.bleu(["the cat"], [["the cat sat on the mat"]])
    assert short["bp"] == pytest.approx(math.exp(1 - 3))
    assert short["bleu2"] == pytest.approx(math.exp(-2))
    clipped = metrics.bleu(["the the the the"], [["the cat"]])
    assert clipped["bleu1"] == pytest.approx(1 / 4)


def test_bleu_picks_best_reference_counts() -> None:
    b = metrics.bleu(["cat cat"], [["cat dog", "cat cat dog"]])
    assert b["bleu1"] == pytest.approx(1.0)  # max count of "cat" over references is 2


def test_rouge_l_hand_computed() -> None:
    assert metrics.rouge_l_sentence("the cat sat on the mat", ["the cat is on the mat"]) == pytest.approx(5 / 6)
    p, r, beta2 = 1.0, 0.5, 1.2**2
    want = (1 + beta2) * p * r / (r + beta2 * p)
    assert metrics.rouge_l_sentence("cat on mat", ["the cat sat on the mat"]) == pytest.approx(want)
    assert metrics.rouge_l(["x y", "cat on mat"], [["a b"], ["the cat sat on the mat"]]) == pytest.approx(want / 2)
    assert metrics.lcs_length("abcbdab", "bdcaba") == 4


def test_meteor_lite_hand_computed() -> None:
    # exact: the, sat; stem: cats→cat. One chunk of 3 → penalty 0.5·(1/3)³
    assert metrics.meteor_lite_sentence("the cats sat", ["the cat sat"]) == pytest.approx(1 - 0.5 / 27)
    # reordered: 3 matches in 3 chunks → penalty 0.5
    assert metrics.meteor_lite_sentence("sat cat the", ["the cat sat"]) == pytest.approx(0.5)
    assert metrics.meteor_lite_sentence("dog", ["the cat sat"]) == 0.0
    assert metrics.stem("running") == "run" and metrics.stem("puppies") == "puppy"


def test_caption_metrics_shapes_and_errors() -> None:
    m = metrics.caption_metrics(["a cat", "a dog"], [["a cat"], ["a dog"]])
    assert set(m) == {"bleu1", "bleu4", "rouge_l", "meteor_lite", "cider_d"}
    assert m["rouge_l"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.bleu(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError):
        metrics.cider_d(["a"], ["a"])  # a bare string is not a reference list


def test_classification_confusion_hand_computed() -> None:
    classes = ["cat", "dog", "bird"]
    targets = ["cat", "cat", "dog", "dog", "bird", "bird"]
    preds = ["cat", "dog", "dog", "dog", None, "cat"]
    m = metrics.classification(preds, targets, classes)
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 1]]
    # F1: cat P=1/2 R=1/2 → 0.5; dog P=2/3 R=1 → 0.8; bird 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["unparsed"] == pytest.approx(1 / 6)
    with pytest.raises(ValueError):
        metrics.classification(["cat"], ["fish"], classes)


def test_answer_extraction() -> None:
    assert answers.yes_no("Yes, there is a cat.") == "yes"
    assert answers.yes_no("There is no cat here.") == "no"
    assert answers.yes_no("I cannot tell.") is None
    fm = ["t-shirt", "shirt", "ankle boot", "bag"]
    assert answers.class_name("It looks like an ankle boot.", fm) == "ankle boot"
    assert answers.class_name("A t-shirt, not a shirt.", fm) == "t-shirt"
    assert answers.class_name("Two bags", fm) == "bag"
    assert answers.class_name("a boot", fm, {"ankle boot": ["boot"]}) == "ankle boot"
    assert answers.class_name("a shoe", fm) is None
    assert answers.position("The second one.") == "second"
    assert answers.position("Left.") == "first"
    assert answers.position("It is the image.", ["audio", "image"]) == "second"
    assert answers.position("It is the image.", ["image", "image"]) is None
    assert answers.find_first("x", {"a": ["x"], "b": ["x"]}) is None  # two answers at one place
