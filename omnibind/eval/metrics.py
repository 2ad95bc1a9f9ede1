"""Evaluation metrics, implemented here from their papers (pure Python + NumPy, no Java, no downloads).

* ``bleu``      — BLEU-1..4, corpus level (Papineni et al., 2002): clipped n-gram precision,
  geometric mean, brevity penalty against the closest reference length.
* ``rouge_l``   — ROUGE-L (Lin, 2004) as in the COCO caption toolkit: LCS-based F-measure with
  β = 1.2, best precision and best recall over the references, averaged over samples.
* ``meteor_lite`` — METEOR (Banerjee & Lavie, 2005) with the *exact* and *stem* matching modules only
  (no WordNet synonyms, no paraphrase table): F_mean = 10PR/(R+9P), fragmentation penalty
  0.5·(chunks/matches)³, best reference per sample. Scores are a little below official METEOR.
* ``cider_d``   — CIDEr-D (Vedantam et al., 2015): TF-IDF n-gram vectors (n = 1..4) with document
  frequencies over the evaluated references, clipped hypothesis counts, Gaussian length penalty
  (σ = 6), averaged over n and references, ×10.
* ``pope``      — POPE (Li et al., 2023): accuracy, precision, recall, F1 with "yes" as the positive
  class, and the ratio of "yes" answers.
* ``mme``       — MME (Fu et al., 2023): accuracy over questions and accuracy+ over images (both
  questions of an image right); ``score`` = 100·(acc + acc+).
* ``classification`` — accuracy, macro-F1, per-class recall and the confusion matrix.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens with punctuation dropped (the PTB tokenizer's effect on captions)."""
    return _TOKEN_RE.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (as tuples) of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check_pairs(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference sets")
    for i, r in enumerate(refs):
        if isinstance(r, str) or not r:
            raise ValueError(f"sample {i}: references must be a non-empty list of strings")


# --- BLEU ---------------------------------------------------------------------------------------
def bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], max_n: int = 4) -> dict[str, float]:
    """Corpus BLEU-1..max_n. Returns ``{"bleu1": …, …, "bleu4": …, "bp": …}`` in [0, 1]."""
    _check_pairs(hyps, refs)
    matches = [0] * max_n
    totals = [0] * max_n
    hyp_len = ref_len = 0
    for hyp, rs in zip(hyps, refs):
        h = tokenize(hyp)
        rt = [tokenize(r) for r in rs]
        hyp_len += len(h)
        # closest reference length; ties go to the shorter one (Papineni's convention)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rt)[1]
        for n in range(1, max_n + 1):
            hc = ngrams(h, n)
            best: Counter = Counter()
            for r in rt:
                best |= ngrams(r, n)  # max count of each n-gram over the references
            matches[n - 1] += sum(min(c, best[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    bp = 1.0 if hyp_len > ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0)
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals)]
    out: dict[str, float] = {"bp": bp}
    for n in range(1, max_n + 1):
        ps = precisions[:n]
        # geometric mean of p_1..p_n; any zero precision makes BLEU-n zero (no smoothing, as in coco-caption)
        out[f"bleu{n}"] = bp * math.exp(sum(math.log(p) for p in ps) / n) if all(p > 0 for p in ps) else 0.0
    return out


# --- ROUGE-L ------------------------------------------------------------------------------------
def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len(a)·len(b)))."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_sentence(hyp: str, refs: Sequence[str], beta: float = 1.2) -> float:
    """ROUGE-L of one hypothesis: best precision and best recall over references, then F_beta."""
    h = tokenize(hyp)
    if not h:
        return 0.0
    precs, recs = [], []
    for r in refs:
        rt = tokenize(r)
        lcs = lcs_length(h, rt)
        precs.append(lcs / len(h))
        recs.append(lcs / len(rt) if rt else 0.0)
    p, r = max(precs), max(recs)
    if p == 0 or r == 0:
        return 0.0
    return ((1 + beta**2) * p * r) / (r + beta**2 * p)


def rouge_l(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Mean sentence ROUGE-L over the corpus, in [0, 1]."""
    _check_pairs(hyps, refs)
    if not hyps:
        return 0.0
    return float(np.mean([rouge_l_sentence(h, r) for h, r in zip(hyps, refs)]))


# --- METEOR (exact + stem modules) --------------------------------------------------------------
_SUFFIXES = ("ingly", "edly", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A small suffix-stripping stemmer (enough to match cat/cats, run/running in captions)."""
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            base = word[: -len(suf)]
            if suf in ("ies", "ied"):
                return base + "y"
            if len(base) >= 2 and base[-1] == base[-2] and base[-1] not in "aeiouls":
                base = base[:-1]  # running → run, stopped → stop
            return base
    return word


def _align(h: list[str], r: list[str]) -> list[tuple[int, int]]:
    """Greedy one-to-one alignment: exact matches first, then stem matches; left-to-right order."""
    used_h: set[int] = set()
    used_r: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for key in (lambda w: w, stem):
        for i, w in enumerate(h):
            if i in used_h:
                continue
            for j, v in enumerate(r):
                if j not in used_r and key(w) == key(v):
                    pairs.append((i, j))
                    used_h.add(i)
                    used_r.add(j)
                    break
    return sorted(pairs)


def _chunks(pairs: list[tuple[int, int]]) -> int:
    """Number of runs of matches adjacent in both hypothesis and reference."""
    chunks = 0
    prev: tuple[int, int] | None = None
    for i, j in pairs:
        if prev is None or i != prev[0] + 1 or j != prev[1] + 1:
            chunks += 1
        prev = (i, j)
    return chunks


def meteor_lite_sentence(hyp: str, refs: Sequence[str]) -> float:
    """METEOR with exact+stem matching of one hypothesis; the best score over references."""
    h = tokenize(hyp)
    best = 0.0
    for ref in refs:
        r = tokenize(ref)
        pairs = _align(h, r)
        m = len(pairs)
        if m == 0:
            continue
        p, rec = m / len(h), m / len(r)
        fmean = 10 * p * rec / (rec + 9 * p)
        penalty = 0.5 * (_chunks(pairs) / m) ** 3
        best = max(best, fmean * (1 - penalty))
    return best


def meteor_lite(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Mean METEOR-lite over the corpus, in [0, 1]."""
    _check_pairs(hyps, refs)
    if not hyps:
        return 0.0
    return float(np.mean([meteor_lite_sentence(h, r) for h, r in zip(hyps, refs)]))


# --- CIDEr-D ------------------------------------------------------------------------------------
def _tfidf(counts: Counter, df: Counter, log_n: float) -> tuple[dict, float]:
    """TF-IDF vector of one sentence's n-gram counts and its L2 norm."""
    vec = {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in counts.items()}
    return vec, math.sqrt(sum(v * v for v in vec.values()))


def cider_d(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], *, max_n: int = 4, sigma: float = 6.0
) -> dict[str, Any]:
    """CIDEr-D of a corpus: ``{"cider": mean, "per_sample": [...]}`` (×10 scale as in the paper).

    Document frequency counts, for each n-gram, the samples whose references contain it; the IDF
    is ``log(N) - log(max(1, df))``. A hypothesis n-gram's TF-IDF is clipped at the reference's
    value (the "-D" change that stops gaming by repetition), and each (hypothesis, reference)
    similarity is scaled by ``exp(-(len_h - len_r)² / 2σ²)``.
    """
    _check_pairs(hyps, refs)
    if not hyps:
        return {"cider": 0.0, "per_sample": []}
    ref_toks = [[tokenize(r) for r in rs] for rs in refs]
    df: list[Counter] = [Counter() for _ in range(max_n)]
    for rs in ref_toks:
        for n in range(1, max_n + 1):
            seen: set = set()
            for r in rs:
                seen |= set(ngrams(r, n))
            df[n - 1].update(seen)
    log_n = math.log(float(len(hyps)))
    scores = []
    for hyp, rs in zip(hyps, ref_toks):
        h = tokenize(hyp)
        hvec = [_tfidf(ngrams(h, n), df[n - 1], log_n) for n in range(1, max_n + 1)]
        per_ref = []
        for r in rs:
            sim = 0.0
            for n in range(1, max_n + 1):
                (hv, hnorm), (rv, rnorm) = hvec[n - 1], _tfidf(ngrams(r, n), df[n - 1], log_n)
                if hnorm == 0 or rnorm == 0:
                    continue
                dot = sum(min(v, rv[g]) * rv[g] for g, v in hv.items() if g in rv)
                sim += dot / (hnorm * rnorm)
            delta = len(h) - len(r)
            per_ref.append(sim / max_n * math.exp(-(delta**2) / (2 * sigma**2)))
        scores.append(10.0 * float(np.mean(per_ref)))
    return {"cider": float(np.mean(scores)), "per_sample": scores}


def caption_metrics(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, float]:
    """BLEU-4, ROUGE-L, METEOR-lite and CIDEr-D together (BLEU-1 too, it is informative when 4 is 0)."""
    b = bleu(hyps, refs)
    return {
        "bleu1": b["bleu1"],
        "bleu4": b["bleu4"],
        "rouge_l": rouge_l(hyps, refs),
        "meteor_lite": meteor_lite(hyps, refs),
        "cider_d": cider_d(hyps, refs)["cider"],
    }


# --- yes/no probing -----------------------------------------------------------------------------
def pope(preds: Sequence[str | None], targets: Sequence[str]) -> dict[str, float]:
    """POPE metrics; "yes" is positive.

    An answer that is neither yes nor no is wrong for accuracy and a non-"yes" for precision and
    recall (so it can only lower recall); its share is reported as ``unparsed``.
    """
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions but {len(targets)} targets")
    tp = fp = tn = fn = 0
    for p, t in zip(preds, targets):
        said_yes = p == "yes"
        if t == "yes":
            tp += said_yes
            fn += not said_yes
        else:
            fp += said_yes
            tn += p == "no"
    n = len(targets)
    correct = sum(p == t for p, t in zip(preds, targets))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": correct / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": sum(p == "yes" for p in preds) / n if n else 0.0,
        "unparsed": sum(p not in ("yes", "no") for p in preds) / n if n else 0.0,
    }


def mme(preds: Sequence[str | None], targets: Sequence[str], groups: Sequence[str]) -> dict[str, float]:
    """MME accuracy (per question) and accuracy+ (per image: every question of the image right)."""
    if not (len(preds) == len(targets) == len(groups)):
        raise ValueError("preds, targets and groups must have the same length")
    by_group: dict[str, list[bool]] = {}
    for p, t, g in zip(preds, targets, groups):
        by_group.setdefault(g, []).append(p == t)
    acc = sum(p == t for p, t in zip(preds, targets)) / len(preds) if preds else 0.0
    acc_plus = sum(all(v) for v in by_group.values()) / len(by_group) if by_group else 0.0
    return {
        "accuracy": acc,
        "accuracy_plus": acc_plus,
        "score": 100.0 * (acc + acc_plus),
        "yes_ratio": sum(p == "yes" for p in preds) / len(preds) if preds else 0.0,
    }


# --- classification -----------------------------------------------------------------------------
def classification(preds: Sequence[str | None], targets: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over ``classes``, per-class recall and the confusion matrix.

    ``confusion[i][j]`` counts samples of class i predicted as class j; the extra last column
    counts predictions outside ``classes`` (unparsed answers).
    """
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions but {len(targets)} targets")
    idx = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    conf = np.zeros((k, k + 1), dtype=np.int64)
    for p, t in zip(preds, targets):
        if t not in idx:
            raise ValueError(f"target {t!r} is not one of the classes {list(classes)}")
        conf[idx[t], idx.get(p, k) if p is not None else k] += 1
    n = int(conf.sum())
    tp = np.diag(conf[:, :k]).astype(float)
    support = conf.sum(1).astype(float)
    predicted = conf[:, :k].sum(0).astype(float)
    prec = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    rec = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=(prec + rec) > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_recall": {c: float(rec[i]) for i, c in enumerate(classes) if present[i]},
        "unparsed": float(conf[:, k].sum() / n) if n else 0.0,
        "confusion": conf.tolist(),
        "classes": list(classes),
    }


def accuracy(preds: Sequence[Any], targets: Sequence[Any]) -> dict[str, float]:
    """Plain accuracy, plus the share of predictions that could not be read."""
    n = len(targets)
    return {
        "accuracy": sum(p == t for p, t in zip(preds, targets)) / n if n else 0.0,
        "unparsed": sum(p is None for p in preds) / n if n else 0.0,
    }
