"""What a judge's verdicts add up to: scores, agreement with exact match, position-swap consistency.

``single_metrics``: mean rating, pass rate, and — where the task also has an exact-match answer —
agreement of "rating >= pass threshold" with "exact match says correct" (rate and Cohen's kappa,
and the mean rating of answers exact match calls right vs wrong).

``pairwise_metrics`` takes each pair judged twice, answers swapped (MT-Bench's protocol; JudgeLM's
"swap augmentation" measured instead of trained away). A verdict counts only when both orders name
the same winner; otherwise the pair is *inconsistent*. ``consistency`` is the share of pairs with
the same verdict both ways, ``first_position_rate`` the share of decisive verdicts (A or B) that
picked whichever answer was shown first (0.5 = no order bias, 1.0 = always the first), and
``position_bias`` the share of pairs whose two verdicts both followed the position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Agreement of two binary raters beyond chance; None when undefined (one rater constant and the
    other matching it: chance agreement is 1)."""
    if not a:
        return None
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    p_o = float((x == y).mean())
    p_e = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    return None if p_e >= 1.0 else (p_o - p_e) / (1 - p_e)


def single_metrics(
    values: Sequence[float | None], threshold: float | None, correct: Sequence[bool | None]
) -> dict[str, Any]:
    """Ratings of one system's answers (None = the judge's reply could not be read)."""
    parsed = [v for v in values if v is not None]
    out: dict[str, Any] = {
        "n": len(values),
        "parsed": len(parsed),
        "unparsed": (len(values) - len(parsed)) / max(1, len(values)),
        "mean_score": float(np.mean(parsed)) if parsed else None,
    }
    if threshold is None:
        return out
    out["pass_rate"] = float(np.mean([v >= threshold for v in parsed])) if parsed else None
    both = [(v >= threshold, c) for v, c in zip(values, correct) if v is not None and c is not None]
    if both:
        judge, exact = [j for j, _ in both], [c for _, c in both]
        right = [v for v, c in zip(values, correct) if v is not None and c]
        wrong = [v for v, c in zip(values, correct) if v is not None and c is False]
        out["agreement"] = {
            "n": len(both),
            "rate": float(np.mean([j == c for j, c in both])),
            "cohen_kappa": cohen_kappa(judge, exact),
            "exact_match_accuracy": float(np.mean(exact)),
            "judge_pass_rate": float(np.mean(judge)),
            "mean_score_when_exact_right": float(np.mean(right)) if right else None,
            "mean_score_when_exact_wrong": float(np.mean(wrong)) if wrong else None,
        }
    return out


def pair_winner(first: str | None, second: str | None, a: str, b: str) -> str | None:
    """The consistent winner of a pair judged as (a first, b second) then (b first, a second):
    ``a``, ``b``, ``"tie"``, ``"inconsistent"``, or None when a verdict could not be read."""
    if first is None or second is None:
        return None
    w1 = {"A": a, "B": b, "C": "tie"}[first]
    w2 = {"A": b, "B": a, "C": "tie"}[second]
    return w1 if w1 == w2 else "inconsistent"


def pairwise_metrics(
    verdicts: Sequence[tuple[str | None, str | None]],
    a: str,
    b: str,
    correct: Sequence[tuple[bool | None, bool | None]] | None = None,
) -> dict[str, Any]:
    """``verdicts[i]`` = (verdict with ``a`` shown first, verdict with ``b`` shown first), each A/B/C/None."""
    n = len(verdicts)
    winners = [pair_winner(v1, v2, a, b) for v1, v2 in verdicts]
    read = [w for w in winners if w is not None]
    decisive = [v for pair in verdicts for v in pair if v in ("A", "B")]
    both_read = [(v1, v2) for v1, v2 in verdicts if v1 is not None and v2 is not None]

    def share(name: str) -> float | None:
        return read.count(name) / len(read) if read else None

    out: dict[str, Any] = {
        "n": n,
        "parsed_pairs": len(read),
        "unparsed": (n - len(read)) / max(1, n),
        f"win_{a}": share(a),
        f"win_{b}": share(b),
        "tie": share("tie"),
        "inconsistent": share("inconsistent"),
        "consistency": (1 - share("inconsistent")) if read else None,  # type: ignore[operator]
        "first_position_rate": decisive.count("A") / len(decisive) if decisive else None,
        "position_bias": (
            sum(v1 == v2 and v1 in ("A", "B") for v1, v2 in both_read) / len(both_read) if both_read else None
        ),
    }
    if correct is not None:
        # pairs where exact match separates the two answers: does the judge's consistent verdict agree?
        sel = [
            (w, a if ca else b)
            for w, (ca, cb) in zip(winners, correct)
            if w is not None and ca is not None and cb is not None and ca != cb
        ]
        out["agreement"] = {
            "n": len(sel),
            "rate": float(np.mean([w == right for w, right in sel])) if sel else None,
            "note": "pairs where exactly one answer is right by exact match; the judge must pick it consistently",
        }
    return out
