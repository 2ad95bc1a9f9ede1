"""Answer extraction and metrics of the official-layout benchmarks, each as its authors define it.

* **POPE** (RUCAIBox/POPE ``evaluate.py``, also LLaVA's ``llava/eval/eval_pope.py``): a reply is cut
  at its first ".", commas removed, split on spaces; it is "no" when a word is ``No``, ``no`` or
  ``not``, else "yes". Accuracy, precision, recall, F1 ("yes" positive) and the yes-ratio are
  computed **per setting** (random / popular / adversarial), as the paper's tables report them.
  Averages differ in the wild: LLaVA-1.5 reports the **mean of the three settings' F1**, which is
  the ``f1`` here (and ``accuracy`` etc. are the same means); lmms-eval pools all questions into one
  set, reported here as ``pooled``.
* **MME** (its ``eval_tool/calculation.py``): the lower-cased reply is "yes"/"no" when it is exactly
  that, else "yes" if its first 4 characters contain "yes", "no" if they contain "no", else
  "other" (always wrong). Per subtask: ``acc`` = questions right, ``acc+`` = images with both
  questions right, score = 100·acc + 100·acc+ (max 200). The **perception score is the sum over the
  10 perception subtasks** (max 2000), the cognition score the sum over the 4 cognition subtasks
  (max 800): sums, not means.
* **ESC-50** (Piczak 2015): accuracy; with 5-fold cross-validation the reported figure is the mean
  of the per-fold accuracies (``accuracy``); zero-shot models are scored on every fold the same way.
* **ModelNet40**: overall accuracy over the test meshes (``oa``, PointNet's "accuracy overall") and
  the mean of the per-class accuracies (``macc``, "avg. class accuracy").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from omnibind.eval import metrics
from omnibind.eval.datasets.official_mme import COGNITION as MME_COGNITION
from omnibind.eval.datasets.official_mme import PERCEPTION as MME_PERCEPTION
from omnibind.eval.datasets.official_pope import SETTINGS as POPE_SETTINGS


# --- extraction ------------------------------------------------------------------------------------------
def pope_answer(text: str, sample: Any = None, task: Any = None) -> str:
    """POPE's own rule (see the module docstring): "no" if the first sentence says No/no/not."""
    first = text.split(".")[0] if "." in text else text
    words = first.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def mme_answer(text: str, sample: Any = None, task: Any = None) -> str:
    """MME's own rule (see the module docstring): "yes" / "no" / "other"."""
    pred = text.strip().lower()
    if pred in ("yes", "no"):
        return pred
    head = pred[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


# --- metrics ---------------------------------------------------------------------------------------------
def _by(samples: Sequence[Any], key: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        out[str(s.meta.get(key))].append(i)
    return out


def pope_official(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Per-setting POPE metrics, their mean over the settings present, and the pooled figures."""
    per: dict[str, dict[str, float]] = {}
    for setting, idx in sorted(_by(samples, "setting").items(), key=lambda kv: _order(kv[0], POPE_SETTINGS)):
        per[setting] = metrics.pope([preds[i] for i in idx], [samples[i].target for i in idx])
    keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
    mean = {k: sum(m[k] for m in per.values()) / len(per) if per else 0.0 for k in keys}
    return {**mean, "per_setting": per, "pooled": metrics.pope(list(preds), [s.target for s in samples])}


def _order(name: str, known: Sequence[str]) -> int:
    return known.index(name) if name in known else len(known)


def mme_official(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Per-subtask acc / acc+ / score, and the perception and cognition sums of the subtasks present."""
    per: dict[str, dict[str, float]] = {}
    for sub, idx in sorted(_by(samples, "subtask").items()):
        m = metrics.mme([preds[i] for i in idx], [samples[i].target for i in idx], [samples[i].group for i in idx])
        per[sub] = {"acc": m["accuracy"], "acc_plus": m["accuracy_plus"], "score": m["score"], "n": len(idx)}
    perception = [s for s in MME_PERCEPTION if s in per]
    cognition = [s for s in MME_COGNITION if s in per]
    overall = metrics.mme(list(preds), [s.target for s in samples], [s.group for s in samples])
    return {
        "perception": sum(per[s]["score"] for s in perception),
        "cognition": sum(per[s]["score"] for s in cognition),
        "perception_max": 200.0 * len(perception),
        "cognition_max": 200.0 * len(cognition),
        "accuracy": overall["accuracy"],
        "accuracy_plus": overall["accuracy_plus"],
        "other_ratio": sum(p == "other" for p in preds) / len(preds) if preds else 0.0,
        "per_subtask": per,
    }


def esc50(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Mean per-fold accuracy (ESC-50's protocol), with every fold's accuracy and the pooled figures."""
    classes = samples[0].options if samples else []
    pooled = metrics.classification(list(preds), [s.target for s in samples], classes)
    folds = {
        int(f): sum(preds[i] == samples[i].target for i in idx) / len(idx) for f, idx in _by(samples, "fold").items()
    }
    folds = dict(sorted(folds.items()))
    return {
        **pooled,
        "accuracy": sum(folds.values()) / len(folds) if folds else 0.0,
        "pooled_accuracy": pooled["accuracy"],
        "per_fold": folds,
    }


def modelnet40(preds: Sequence[Any], samples: Sequence[Any], task: Any) -> dict[str, Any]:
    """Overall accuracy (``oa``) and mean class accuracy (``macc``) on ModelNet40's test split."""
    classes = samples[0].options if samples else []
    m = metrics.classification(list(preds), [s.target for s in samples], classes)
    recalls = list(m["per_class_recall"].values())
    return {**m, "oa": m["accuracy"], "macc": sum(recalls) / len(recalls) if recalls else 0.0}
