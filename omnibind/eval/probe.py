"""The linear probe (CLIP, section 3.2): logistic regression on frozen features, as an eval method.

A ``method: probe`` task names its test set (``dataset``) and, under ``probe``, the training data::

    probe:
      train: {builder: fashion_mnist, split: train}   # a builder and its args, like ``dataset``
      val: {builder: fashion_mnist, split: val}       # where C is chosen; omitted: k-fold CV on train
      train_limit: 2000                               # stratified subsets (``select``), whole groups kept
      val_limit: 1000

Systems: ``model`` probes the bind-space vectors; the ``encoder_probe`` baseline probes the raw
pooled encoder features (before the bind head: what the head keeps of them); ``zero_shot`` is the
task's prompt-ensembled bind zero-shot (its ``templates``), and ``chance``. Features are
standardised on the training set; an L2-regularised multinomial logistic regression (scikit-learn,
L-BFGS) is fitted for each C on a log grid from 1e-4 to 1e4 and refined around the best by
half-decades (CLIP swept C likewise and picked it on a validation split); the best C is refitted on
train + val and scored once on the test set. When the validation split has fewer than
``MIN_VAL`` items (BasicMotions' has 4), C is chosen by stratified k-fold cross-validation on
train + val instead. The chosen C, its validation accuracy and the sizes go into the metrics.
Probe outputs are not cached: the fit is part of the measurement, and features are computed once
per run and shared by the ``model`` and ``encoder_probe`` systems.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from omnibind.errors import ConfigError
from omnibind.eval.cache import media_id
from omnibind.eval.datasets import Sample, build, select
from omnibind.eval.models import LocalModel, UnsupportedMethodError

GRID = tuple(10.0**e for e in range(-4, 5))
MIN_VAL = 20
FEATURES = {"model": "bind", "encoder_probe": "encoder"}
"""System → the features it probes."""


class Prober:
    """Fits and scores probes for one runner: features memoised by media across systems and tasks."""

    def __init__(self, model: Any, batch_size: int = 16, seed: int = 0):
        self.model = model
        self.batch_size = batch_size
        self.seed = seed
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        self.info: dict[str, dict[str, Any]] = {}
        """System → what its last fit chose (C, validation accuracy, sizes, how C was chosen)."""

    def outputs(self, task: Any, samples: Sequence[Sample], system: str) -> list[list[float]]:
        """Per test sample, the probe's class probabilities in the order of the sample's options."""
        kind = FEATURES[system]
        classes = list(samples[0].options or [])
        if not classes:
            raise ConfigError(f"{task.name}: a probe needs samples with options (the classes)")
        spec = task.probe
        train = self._split(spec["train"], spec.get("train_limit"), classes)
        val = self._split(spec["val"], spec.get("val_limit"), classes) if spec.get("val") else []
        x_tr, y_tr = self.features(train, kind), _labels(train, classes)
        x_te = self.features(list(samples), kind)
        if len(val) >= MIN_VAL:
            x_va, y_va = self.features(val, kind), _labels(val, classes)
            c, val_acc = choose_c(x_tr, y_tr, x_va, y_va)
            how = "validation split"
        else:
            x_va, y_va = (self.features(val, kind), _labels(val, classes)) if val else (x_tr[:0], y_tr[:0])
            c, val_acc = choose_c_cv(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), self.seed)
            how = "k-fold cross-validation on train + val"
        fit = fit_probe(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), c)
        probs = np.zeros((len(x_te), len(classes)), dtype=np.float64)
        probs[:, fit.classes_] = fit.predict_proba(_standardise(fit, x_te))
        self.info[system] = {
            "probe": {
                "features": kind,
                "dim": int(x_tr.shape[1]),
                "C": c,
                "val_accuracy": round(val_acc, 4),
                "chosen_by": how,
                "train": len(train),
                "val": len(val),
            }
        }
        return [[round(float(p), 5) for p in row] for row in probs]

    def _split(self, ds: dict[str, Any], limit: int | None, classes: list[str]) -> list[Sample]:
        args = {k: v for k, v in ds.items() if k != "builder"}
        items = [s for s in build(str(ds["builder"]), **args) if s.target in classes]
        return select(items, limit, self.seed)

    def features(self, samples: Sequence[Sample], kind: str) -> np.ndarray:
        """(N, D) frozen features of each sample's first input: bind-space vectors or raw encoder features."""
        keys = [media_id(s.media[0]) for s in samples]
        todo = [i for i, k in enumerate(keys) if (kind, k) not in self._memo]
        for b in range(0, len(todo), self.batch_size):
            chunk = todo[b : b + self.batch_size]
            parts = [samples[i].media[0] for i in chunk]
            both = self._encode(parts, kind)
            for got_kind, vecs in both.items():
                for i, v in zip(chunk, vecs):
                    self._memo[(got_kind, keys[i])] = v
        return np.stack([self._memo[(kind, k)] for k in keys]).astype(np.float32)

    def _encode(self, parts: list[Any], kind: str) -> dict[str, np.ndarray]:
        if not isinstance(self.model, LocalModel):
            if kind == "encoder":
                raise UnsupportedMethodError(f"{self.model.name}: raw encoder features need a local model")
            return {"bind": np.asarray(self.model.embed(parts), dtype=np.float32)}
        import torch

        from omnibind.messages import Message

        core = self.model.model.core
        # one encoder pass gives both: the bind vector and the encoder output it was made from
        prepared = core.prepare([Message.user(*parts)], experts=False)
        firsts = [group[0] for group in prepared.inputs_per_part]
        with torch.no_grad():
            pairs = core.encode_inputs(firsts)
        return {
            "bind": np.stack([v.detach().float().cpu().numpy() for v, _ in pairs]),
            "encoder": np.stack([o.pooled.detach().float().cpu().numpy().reshape(-1) for _, o in pairs]),
        }


def _labels(samples: Sequence[Sample], classes: list[str]) -> np.ndarray:
    return np.array([classes.index(s.target) for s in samples], dtype=np.int64)


def fit_probe(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    """L2 multinomial logistic regression (L-BFGS) on standardised features; the scaler rides along."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y)) < 2:
        raise ConfigError("a linear probe needs training samples of at least two classes")
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(scaler.transform(x), y)
    clf.scaler_ = scaler
    return clf


def _standardise(fit: Any, x: np.ndarray) -> np.ndarray:
    return fit.scaler_.transform(x)


def _accuracy(fit: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float((fit.predict(_standardise(fit, x)) == y).mean())


def _refined(scores: dict[float, float]) -> list[float]:
    best = max(scores, key=lambda c: (scores[c], -abs(np.log10(c))))
    return [c for c in (best / 10**0.5, best * 10**0.5) if c not in scores]


def choose_c(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray) -> tuple[float, float]:
    """The C with the best validation accuracy over the grid, then refined by half-decades (ties: nearest 1)."""
    scores = {c: _accuracy(fit_probe(x_tr, y_tr, c), x_va, y_va) for c in GRID}
    for c in _refined(scores):
        scores[c] = _accuracy(fit_probe(x_tr, y_tr, c), x_va, y_va)
    best = max(scores, key=lambda c: (scores[c], -abs(np.log10(c))))
    return float(best), scores[best]


def choose_c_cv(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Like ``choose_c`` with stratified k-fold cross-validation (k ≤ 5, limited by the rarest class)."""
    from sklearn.model_selection import StratifiedKFold

    k = int(min(5, np.bincount(y).min()))
    if k < 2:
        raise ConfigError("too few training samples per class to choose C by cross-validation")
    folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y))

    def cv(c: float) -> float:
        return float(np.mean([_accuracy(fit_probe(x[a], y[a], c), x[b], y[b]) for a, b in folds]))

    scores = {c: cv(c) for c in GRID}
    for c in _refined(scores):
        scores[c] = cv(c)
    best = max(scores, key=lambda c: (scores[c], -abs(np.log10(c))))
    return float(best), scores[best]
