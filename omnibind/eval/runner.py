"""Run tasks against a model and its baselines, with every model output cached.

Methods (``task.method``):

* ``bind`` — CLIP-style zero-shot: the input's bind-space vector against the mean of each class's
  prompt-template vectors (prompt ensembling); the nearest class wins.
* ``rank`` — X-InstructBLIP-style closed vocabulary: the log-likelihood of each candidate answer
  as the assistant's reply (``model.score``); the most likely wins. With ``calibrate: true`` a
  ``calibrated`` system subtracts the text-only score of each candidate (PMI: the answer's gain
  from the medium).
* ``generate`` — open generation (greedy), then answer extraction.
* ``probe`` — CLIP's linear probe: logistic regression on frozen bind-space vectors (``model``)
  and on raw encoder features (the ``encoder_probe`` baseline), C chosen on a validation split,
  beside the task's bind zero-shot (the ``zero_shot`` baseline); see ``omnibind.eval.probe``.
* ``hook`` — an analysis that is not one model output per sample (``hook: module:function``).

Systems scored on every task: ``model`` and the task's baselines — ``chance`` (a uniformly random
option; for captions a random other sample's reference), ``text_only`` (the same prompt with the
media removed), ``caption`` (the media replaced by a modality expert's text: ImageNet labels of
the image classifier, a Whisper transcript; ImageBind-LLM's and X-InstructBLIP's caption baselines)
and, for ``generate`` tasks on images, ``imagenet_top1`` (no LLM: the reply is the image
classifier's top-1 class as its everyday name, ``omnibind.encoders.experts.common_labels``; does
the classifier alone name the object?).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnibind.errors import ConfigError, OmnibindError
from omnibind.eval.cache import OutputCache, conversation_key, media_id
from omnibind.eval.datasets import Sample, build, select
from omnibind.eval.models import EndpointModel, EvalModel, UnsupportedMethodError
from omnibind.eval.prompts import Describer, build_messages, class_prompts
from omnibind.eval.tasks import Task
from omnibind.hashing import digest
from omnibind.messages import MediaPart, Message


@dataclass
class SystemResult:
    """One system's outputs on a task: raw outputs, extracted answers, metrics (or why it was skipped)."""

    raw: list[Any] = field(default_factory=list)
    preds: list[Any] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None


@dataclass
class TaskResult:
    task: Task
    samples: list[Sample]
    systems: dict[str, SystemResult]
    seconds: float


class Runner:
    """Runs tasks for one model with a shared cache and caption describer."""

    def __init__(
        self,
        model: EvalModel,
        *,
        cache: OutputCache | None = None,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = True,
        baselines: bool = True,
    ):
        self.model = model
        self.cache = cache or OutputCache(None)
        self.seed = seed
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.baselines = baselines
        self._describer: Describer | None = None
        self._classifier: Any | None = None  # the imagenet_top1 baseline's image classifier
        self._prober: Any | None = None  # linear probes (features memoised across systems)

    # -- public -----------------------------------------------------------------------------------------
    def run(self, task: Task, limit: int | None = None) -> TaskResult:
        """Every system of one task on its (limited) samples."""
        start = time.perf_counter()
        if task.method == "hook":
            return self._run_hook(task, limit, start)
        samples = self.samples(task, limit)
        if not samples:
            raise ConfigError(f"{task.name}: the dataset gave no samples")
        systems = ["model", *(task.baselines if self.baselines else [])]
        out: dict[str, SystemResult] = {}
        try:
            with self.model.configured(task.model_options):
                for system in systems:
                    out[system] = self._system(task, samples, system)
        except UnsupportedMethodError as e:  # the model cannot take the task's options
            out = {name: SystemResult(skipped=str(e)) for name in systems}
        if task.calibrate and "text_only" in out:
            out["calibrated"] = self._calibrated(task, samples, out["model"], out["text_only"])
        return TaskResult(task, samples, out, time.perf_counter() - start)

    def samples(self, task: Task, limit: int | None) -> list[Sample]:
        """The task's samples: ``select``ed by ``--limit``, or limited by the builder (``select: dataset``)."""
        if task.select == "dataset":
            return build(task.dataset, **task.dataset_args, limit=limit)
        return select(build(task.dataset, **task.dataset_args), limit, self.seed)

    def _system(self, task: Task, samples: list[Sample], system: str) -> SystemResult:
        t0 = time.perf_counter()
        res = SystemResult()
        try:
            res.raw = self._outputs(task, samples, system)
            res.preds = [extract(task, s, r) for s, r in zip(samples, res.raw)]
            if system == "chance":
                res.metrics = chance_metrics(task, samples, self.seed)
            else:
                res.metrics = task.hook(task.metric)(res.preds, samples, task)
            if task.method == "probe" and self._prober is not None:
                res.metrics.update(self._prober.info.get(system, {}))  # the chosen C, validation accuracy
        except UnsupportedMethodError as e:
            res.skipped = str(e)
        except OmnibindError:
            raise
        except Exception as e:  # e.g. an endpoint refusing a modality: report it, keep going
            if not isinstance(self.model, EndpointModel) or system == "chance":
                raise
            res.skipped = f"{type(e).__name__}: {e}"
        res.seconds = time.perf_counter() - t0
        self.cache.commit()
        return res

    def _calibrated(self, task: Task, samples: list[Sample], model: SystemResult, text: SystemResult) -> SystemResult:
        """PMI calibration: each candidate's score with the media minus its score without them."""
        if model.skipped or text.skipped:
            return SystemResult(skipped=model.skipped or text.skipped)
        res = SystemResult()
        res.raw = [[round(a - b, 5) for a, b in zip(m, t)] for m, t in zip(model.raw, text.raw)]
        res.preds = [extract(task, s, r) for s, r in zip(samples, res.raw)]
        res.metrics = task.hook(task.metric)(res.preds, samples, task)
        return res

    def _run_hook(self, task: Task, limit: int | None, start: float) -> TaskResult:
        res = SystemResult()
        try:
            with self.model.configured(task.model_options):
                res.metrics = task.hook(task.metric)(self.model, task, limit)
        except UnsupportedMethodError as e:
            res.skipped = str(e)
        res.seconds = time.perf_counter() - start
        return TaskResult(task, [], {"model": res}, time.perf_counter() - start)

    # -- per system ---------------------------------------------------------------------------------------
    def _outputs(self, task: Task, samples: list[Sample], system: str) -> list[Any]:
        if system == "chance":
            return chance_outputs(task, samples, self.seed)
        if system == "imagenet_top1":
            return self._imagenet_top1(task, samples)
        if system == "caption" and self._describer is None:
            self._describer = Describer(self.model.image_encoder())
        if task.method == "probe":
            if system == "zero_shot":
                return self._bind(task, samples, "model")
            if self._prober is None:
                from omnibind.eval.probe import Prober

                self._prober = Prober(self.model, batch_size=self.batch_size, seed=self.seed)
            return self._prober.outputs(task, samples, system)
        if task.method == "bind":
            return self._bind(task, samples, system)
        if task.method == "rank":
            return self._rank(task, samples, system)
        return self._generate(task, samples, system)

    def _imagenet_top1(self, task: Task, samples: list[Sample]) -> list[Any]:
        """Per sample, the image classifier's best everyday name ('' when it has none) as the reply."""
        if task.method != "generate":
            raise ConfigError(f"{task.name}: the imagenet_top1 baseline answers 'generate' tasks only")
        from omnibind.encoders.experts import common_labels
        from omnibind.modalities import load_part

        out: list[Any] = [None] * len(samples)
        for i, s in enumerate(samples):
            part = s.media[0]
            if part.modality != "image":
                raise ConfigError(f"{task.name}: the imagenet_top1 baseline needs an image, got {part.modality}")
            key, req, hit = self._cached(task, s, {"method": "imagenet_top1", "media": media_id(part)})
            if hit is None:
                if self._classifier is None:
                    self._classifier = self.model.image_encoder() or _shipped_image_classifier()
                best = common_labels(self._classifier, [load_part(part)], k=1)[0]
                hit = best[0][0] if best else ""
                self._store(task, s, key, req, hit)
            out[i] = hit
        return out

    def _describe(self, part: MediaPart) -> str:
        assert self._describer is not None
        return self._describer.describe(part)

    def _cached(self, task: Task, sample: Sample, request: Any) -> tuple[str, str, Any]:
        # model options (an expert switched on, a retrieval cache) change the outputs: part of the key
        options = [task.model_options] if task.model_options else []
        req = digest([self.model.fingerprint, request, *options])
        key = self.cache.key(self.model.fingerprint, task.name, sample.id, req)
        return key, req, self.cache.get(key, req)

    def _store(self, task: Task, sample: Sample, key: str, req: str, value: Any) -> None:
        self.cache.put(key, self.model.fingerprint, task.name, sample.id, req, value)

    def _bar(self, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    def _bind(self, task: Task, samples: list[Sample], system: str) -> list[Any]:
        classes = list(samples[0].options or [])
        if not classes:
            raise ConfigError(f"{task.name}: bind needs samples with options (the classes)")
        base_req = {"method": "bind", "templates": task.templates, "classes": classes, "system": system}
        out: list[Any] = [None] * len(samples)
        todo: list[tuple[int, str, str, Any]] = []
        for i, s in enumerate(samples):
            query: Any
            if system == "model":
                query = media_id(s.media[0])
            elif system == "caption":
                # the expert text is a function of the media: key on the media, describe only on a miss
                query = ["caption", media_id(s.media[0])]
            else:
                query = task.prompt or "a photo"
            key, req, hit = self._cached(task, s, {**base_req, "query": query})
            if hit is not None:
                out[i] = hit
            else:
                todo.append((i, key, req, query))
        if todo:
            cls_vec = self._class_vectors(task, classes)
            bar = self._bar(len(todo), f"{task.name}/{system}")
            for b in range(0, len(todo), self.batch_size):
                chunk = todo[b : b + self.batch_size]
                inputs: list[Any] = []
                for i, _, _, _ in chunk:
                    s = samples[i]
                    if system == "model":
                        inputs.append(s.media[0])
                    elif system == "caption":
                        inputs.append(self._describe(s.media[0]))
                    else:
                        inputs.append(task.prompt or "a photo")
                sims = self.model.embed(inputs) @ cls_vec.T
                for (i, key, req, _), row in zip(chunk, sims):
                    out[i] = [round(float(x), 5) for x in row]
                    self._store(task, samples[i], key, req, out[i])
                bar.update(len(chunk))
            bar.close()
        return out

    def _class_vectors(self, task: Task, classes: list[str]) -> np.ndarray:
        from omnibind.bind.zero_shot import class_vectors

        return class_vectors(self.model.embed, classes, task.templates)  # prompt ensembling: mean over templates

    def _rank(self, task: Task, samples: list[Sample], system: str) -> list[Any]:
        out: list[Any] = [None] * len(samples)
        bar = self._bar(len(samples), f"{task.name}/{system}")
        for i, s in enumerate(samples):
            msgs = build_messages(task, s, system, self._describe if system == "caption" else None)
            cands = [class_prompts([task.answer_format], o)[0] for o in s.options or []]
            request = {"method": "rank", "conv": conversation_key(msgs), "cands": cands, "norm": task.normalize}
            key, req, hit = self._cached(task, s, request)
            if hit is None:
                hit = [round(float(x), 5) for x in self.model.score(msgs, cands, task.normalize)]
                self._store(task, s, key, req, hit)
            out[i] = hit
            bar.update(1)
        bar.close()
        return out

    def _generate(self, task: Task, samples: list[Sample], system: str) -> list[Any]:
        out: list[Any] = [None] * len(samples)
        todo: dict[str, list[tuple[int, str, str]]] = {}  # request → samples asking it (text-only repeats)
        convs: dict[str, list[Message]] = {}
        for i, s in enumerate(samples):
            msgs = build_messages(task, s, system, self._describe if system == "caption" else None)
            request = {"method": "generate", "conv": conversation_key(msgs), "max_new": task.max_new_tokens}
            key, req, hit = self._cached(task, s, request)
            if hit is not None:
                out[i] = hit
            else:
                todo.setdefault(req, []).append((i, key, req))
                convs[req] = msgs
        reqs = list(todo)
        bar = self._bar(len(reqs), f"{task.name}/{system}")
        for b in range(0, len(reqs), self.batch_size):
            chunk = reqs[b : b + self.batch_size]
            texts = self.model.generate([convs[r] for r in chunk], task.max_new_tokens)
            for r, text in zip(chunk, texts):
                for i, key, req in todo[r]:
                    out[i] = text
                    self._store(task, samples[i], key, req, text)
            bar.update(len(chunk))
        bar.close()
        return out


def _shipped_image_classifier() -> Any:
    """The packaged EfficientNet-Lite0 with its ImageNet head (a model or endpoint without one)."""
    from omnibind.encoders import ENCODERS

    enc = ENCODERS.get("efficientnet_lite0")()
    enc.eval()
    return enc


def extract(task: Task, sample: Sample, raw: Any) -> Any:
    """Raw output → answer: argmax for bind/rank scores, the extract hook for generated text."""
    if raw is None:
        return None
    if isinstance(raw, dict) and "choice" in raw:  # chance baseline
        return raw["choice"]
    if task.method in ("bind", "rank", "probe") and isinstance(raw, list):
        return (sample.options or [])[int(np.argmax(raw))]
    if task.metric == "caption" or not task.extract:
        return raw
    return task.hook(task.extract)(str(raw), sample, task)


CHANCE_DRAWS = 200


def chance_metrics(task: Task, samples: Sequence[Sample], seed: int, draws: int = CHANCE_DRAWS) -> dict[str, Any]:
    """The chance baseline's metrics: the mean over ``draws`` random guessers (one draw is too noisy
    on a small ``--limit``); non-numeric entries (confusion matrix) come from the first draw."""
    hook = task.hook(task.metric)
    runs = []
    for d in range(draws):
        raw = chance_outputs(task, samples, seed, draw=d)
        runs.append(hook([extract(task, s, r) for s, r in zip(samples, raw)], samples, task))
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(np.mean([r[k] for r in runs]))
    out["chance_draws"] = draws
    return out


def chance_outputs(task: Task, samples: Sequence[Sample], seed: int, draw: int = 0) -> list[Any]:
    """A uniformly random option per sample (captions: a random other sample's reference), seeded by task."""
    rng = np.random.default_rng([seed, zlib.crc32(task.name.encode()), draw])
    if task.metric == "caption":
        refs = [s.refs[0] for s in samples]
        out = []
        for i in range(len(samples)):
            j = int(rng.integers(len(samples) - 1)) if len(samples) > 1 else 0
            j = j + 1 if j >= i and len(samples) > 1 else j
            out.append(refs[j])
        return out
    return [{"choice": s.options[int(rng.integers(len(s.options)))]} if s.options else None for s in samples]


def run_tasks(
    runner: Runner,
    tasks: dict[str, int | None],
    registry: Any,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Run named tasks (name → limit) in order; ``on_result`` sees each as it finishes."""
    results = []
    for name, limit in tasks.items():
        task = registry.get(name)
        res = runner.run(task, limit if limit is not None else task.limit)
        results.append(res)
        if on_result is not None:
            on_result(res)
    return results
