"""Run tasks against a model and its baselines, with every model output cached.

Models: ``LocalModel`` (an ``omnibind.load``-ed model: any preset, config file or checkpoint) or
``EndpointModel`` (any OpenAI-compatible server; embeddings through ``/v1/embeddings``; candidate
scoring does not exist in that API, so ``rank`` tasks are skipped with a note).

Methods (``task.method``):

* ``bind`` — CLIP-style zero-shot: the input's bind-space vector against the mean of each class's
  prompt-template vectors (prompt ensembling); the nearest class wins.
* ``rank`` — X-InstructBLIP-style closed vocabulary: the log-likelihood of each candidate answer
  as the assistant's reply (``model.score``); the most likely wins.
* ``generate`` — open generation (greedy), then answer extraction.

Systems scored on every task: ``model`` and the task's baselines — ``chance`` (a uniformly random
option; for captions a random other sample's reference), ``text_only`` (the same prompt with the
media removed) and ``caption`` (the media replaced by a modality expert's text: ImageNet labels of
the image classifier, a Whisper transcript; ImageBind-LLM's and X-InstructBLIP's caption baselines).

Outputs are cached in SQLite keyed by (model fingerprint, task, sample id, request hash), so a
second run — or a re-score with another extraction — needs no generation.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import ConfigError, OmnibindError
from omnibind.eval.datasets import Sample, build, select
from omnibind.eval.tasks import Task
from omnibind.messages import MediaPart, Message, TextPart


class UnsupportedMethodError(OmnibindError):
    """The model cannot run this method (e.g. no log-likelihoods from an OpenAI endpoint)."""


# --- hashing ---------------------------------------------------------------------------------------
def media_hash(part: MediaPart) -> str:
    """A content hash of a media part: file path + size + mtime, or the bytes of in-memory data."""
    h = hashlib.sha256()
    src = part.source
    if isinstance(src, (str, Path)):
        p = Path(src)
        st = p.stat() if p.exists() else None
        h.update(f"path:{p.resolve()}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1}".encode())
    elif isinstance(src, (bytes, bytearray)):
        h.update(b"bytes:" + bytes(src))
    elif isinstance(src, np.ndarray):
        h.update(f"array:{src.dtype}:{src.shape}:".encode() + np.ascontiguousarray(src).tobytes())
    else:
        h.update(f"object:{type(src).__name__}:{src!r}".encode())
    h.update(
        json.dumps({"m": part.modality, "f": part.format, "o": part.options}, sort_keys=True, default=str).encode()
    )
    return h.hexdigest()[:24]


def conversation_key(messages: Sequence[Message]) -> list[Any]:
    """A JSON-able description of a conversation with media replaced by their hashes."""
    out = []
    for m in messages:
        parts = []
        for p in m.content:
            if isinstance(p, TextPart):
                parts.append(p.text)
            elif isinstance(p, MediaPart):
                parts.append({p.modality: media_hash(p)})
            else:
                parts.append({"mix": [media_hash(q) if isinstance(q, MediaPart) else q.text for q in p.parts]})
        out.append([m.role, parts])
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# --- output cache ------------------------------------------------------------------------------------
class OutputCache:
    """Model outputs in SQLite: (fingerprint, task, sample, request hash) → JSON value."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._mem: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, fingerprint TEXT, task TEXT, "
                "sample TEXT, request TEXT, value TEXT, created REAL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS outputs_request ON outputs (request)")
            self._db.commit()

    @staticmethod
    def key(fingerprint: str, task: str, sample: str, request: str) -> str:
        return _digest([fingerprint, task, sample, request])

    def get(self, key: str, request: str) -> Any | None:
        """The cached value of ``key``; else of the same request for another sample or task.

        Identical requests (a text-only prompt shared by every sample) are answered once; the
        answer is then also filed under each asking sample's key.
        """
        with self._lock:
            if key in self._mem:
                self.hits += 1
                return self._mem[key]
            value = self._mem.get(request)
            if value is None and self._db is not None:
                row = self._db.execute("SELECT value FROM outputs WHERE key = ?", (key,)).fetchone()
                if row is None:
                    row = self._db.execute("SELECT value FROM outputs WHERE request = ? LIMIT 1", (request,)).fetchone()
                value = json.loads(row[0]) if row is not None else None
            if value is None:
                self.misses += 1
                return None
            self.hits += 1
            self._mem[key] = self._mem[request] = value
            return value

    def put(self, key: str, fingerprint: str, task: str, sample: str, request: str, value: Any) -> None:
        with self._lock:
            self._mem[key] = value
            self._mem[request] = value
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, fingerprint, task, sample, request, json.dumps(value), time.time()),
                )

    def commit(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.commit()

    def close(self) -> None:
        self.commit()
        if self._db is not None:
            self._db.close()
            self._db = None


# --- models ----------------------------------------------------------------------------------------
class EvalModel:
    """What the harness needs from a model. Subclasses set ``name`` and ``fingerprint``."""

    name: str = "model"
    fingerprint: str = ""

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint}

    def embed(self, inputs: Sequence[MediaPart | str]) -> np.ndarray:
        raise UnsupportedMethodError(f"{self.name}: no bind-space embeddings")

    def score(self, messages: list[Message], candidates: Sequence[str], normalize: bool) -> np.ndarray:
        raise UnsupportedMethodError(f"{self.name}: no candidate log-likelihoods")

    def generate(self, conversations: Sequence[list[Message]], max_new_tokens: int) -> list[str]:
        raise UnsupportedMethodError(f"{self.name}: no generation")

    def image_encoder(self) -> Any | None:
        """An image encoder with ``top_labels`` to reuse for the caption baseline, if the model has one."""
        return None


class LocalModel(EvalModel):
    """An omnibind ``Model`` in this process."""

    def __init__(self, model: Any):
        self.model = model
        self.name = f"{model.config.name} ({model.origin}{', trained' if model.trained else ', untrained'})"
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> str:
        """Config + encoder fingerprints + every trainable tensor: any change invalidates cached outputs."""
        core = self.model.core
        h = hashlib.sha256(json.dumps(self.model.config.to_dict(), sort_keys=True, default=str).encode())
        for m, e in sorted(core.encoders.items()):
            h.update(f"{m}:{e.fingerprint()}".encode())
        gguf = getattr(core.llm, "gguf_path", None)
        if gguf is not None:  # one source name can mean different files (the embedded f16 vs Q4_1 GGUF)
            gguf = Path(gguf)
            h.update(f"gguf:{gguf.name}:{gguf.stat().st_size}".encode())
        for k, t in sorted(core.trainable_state_dict().items()):
            h.update(k.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
        return "local-" + h.hexdigest()[:20]

    def info(self) -> dict[str, Any]:
        info = self.model.info()
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "origin": info.get("origin"),
            "trained": info.get("trained"),
            "llm": info.get("llm"),
            "encoders": {k: v.get("name") for k, v in info.get("encoders", {}).items()},
            "bind_dim": info.get("bind_dim"),
            "injection": info.get("injection"),
        }

    def embed(self, inputs: Sequence[MediaPart | str]) -> np.ndarray:
        return self.model.embed(list(inputs))

    def score(self, messages: list[Message], candidates: Sequence[str], normalize: bool) -> np.ndarray:
        return self.model.score(messages, list(candidates), normalize=normalize)

    def generate(self, conversations: Sequence[list[Message]], max_new_tokens: int) -> list[str]:
        replies = self.model.generate(list(conversations), max_new_tokens=max_new_tokens, temperature=0.0)
        return [r.text for r in replies]

    def image_encoder(self) -> Any | None:
        encoders = self.model.core.encoders
        enc = encoders["image"] if "image" in encoders else None
        return enc if hasattr(enc, "top_labels") else None


class EndpointModel(EvalModel):
    """An OpenAI-compatible server (``omnibind serve`` or any other) through the ``openai`` client.

    Media travel as content parts: ``image_url`` data URLs and ``input_audio`` (OpenAI's shapes), and
    omnibind's ``input_imu`` / ``input_points`` / … extensions, which other servers refuse.
    """

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, workers: int = 4):
        import os

        try:
            from openai import OpenAI
        except ImportError as e:
            raise ConfigError("the openai package is needed for --endpoint (pip install openai)") from e
        self.client = OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "none")
        self.base_url = base_url
        self.model_id = model or self._first_model()
        self.workers = max(1, workers)
        self.name = f"{self.model_id} @ {base_url}"
        self.fingerprint = "endpoint-" + _digest([base_url, self.model_id])[:20]

    def _first_model(self) -> str:
        try:
            models = self.client.models.list()
            return models.data[0].id
        except Exception as e:  # the server may not list models; make the user name one
            raise ConfigError(f"{self.base_url}: cannot list models ({e}); pass --model NAME") from None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint, "endpoint": self.base_url, "model": self.model_id}

    def score(self, messages: list[Message], candidates: Sequence[str], normalize: bool) -> np.ndarray:
        raise UnsupportedMethodError(
            "OpenAI-compatible endpoints give no candidate log-likelihoods: rank tasks are skipped"
        )

    def embed(self, inputs: Sequence[MediaPart | str]) -> np.ndarray:
        payload = [x if isinstance(x, str) else openai_part(x) for x in inputs]
        resp = self.client.embeddings.create(model=self.model_id, input=payload)  # type: ignore[arg-type]
        vecs = np.asarray([d.embedding for d in sorted(resp.data, key=lambda d: d.index)], dtype=np.float32)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def generate(self, conversations: Sequence[list[Message]], max_new_tokens: int) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        def one(conv: list[Message]) -> str:
            resp = self.client.chat.completions.create(
                model=self.model_id,
                messages=[openai_message(m) for m in conv],  # type: ignore[misc]
                max_tokens=max_new_tokens,
                temperature=0.0,
            )
            return resp.choices[0].message.content or ""

        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(one, conversations))


def openai_message(m: Message) -> dict[str, Any]:
    """An omnibind message as OpenAI chat JSON (media as content parts)."""
    if all(isinstance(p, TextPart) for p in m.content):
        return {"role": m.role, "content": m.text}
    return {
        "role": m.role,
        "content": [{"type": "text", "text": p.text} if isinstance(p, TextPart) else openai_part(p) for p in m.content],
    }


def openai_part(part: MediaPart) -> dict[str, Any]:
    """One media part as an OpenAI content part (base64 payload)."""
    import base64

    data, fmt = _media_bytes(part)
    b64 = base64.b64encode(data).decode()
    if part.modality == "image":
        return {"type": "image_url", "image_url": {"url": f"data:image/{fmt};base64,{b64}"}}
    body: dict[str, Any] = {"data": b64, "format": fmt}
    if part.options:
        body["options"] = dict(part.options)
    kind = f"input_{part.modality}"
    return {"type": kind, kind: body}


def _media_bytes(part: MediaPart) -> tuple[bytes, str]:
    import io

    src = part.source
    if isinstance(src, (str, Path)):
        p = Path(src)
        return p.read_bytes(), p.suffix.lower().lstrip(".") or (part.format or "bin")
    if isinstance(src, (bytes, bytearray)):
        return bytes(src), part.format or "bin"
    if isinstance(src, np.ndarray):
        buf = io.BytesIO()
        if part.modality == "image":
            from PIL import Image as PILImage

            PILImage.fromarray(src).save(buf, format="PNG")
            return buf.getvalue(), "png"
        if part.modality == "audio":
            import soundfile as sf

            sf.write(buf, src, int(part.options.get("sample_rate", 16000)), format="WAV")
            return buf.getvalue(), "wav"
        np.save(buf, src)
        return buf.getvalue(), "npy"
    raise ConfigError(f"cannot send a {type(src).__name__} {part.modality} input to an endpoint")


def load_model(model: str | None = None, endpoint: str | None = None, api_key: str | None = None) -> EvalModel:
    """``--endpoint URL [--model NAME]`` → ``EndpointModel``; else ``omnibind.load(model)`` → ``LocalModel``."""
    if endpoint:
        return EndpointModel(endpoint, model, api_key)
    import omnibind

    return LocalModel(omnibind.load(model))


# --- the caption baseline's modality experts ------------------------------------------------------------
class Describer:
    """Text standing in for a media input: ImageNet labels for images, a Whisper transcript for audio."""

    def __init__(self, image_encoder: Any | None = None, k: int = 3):
        self._image = image_encoder
        self.k = k
        self._memo: dict[str, str] = {}

    def _image_encoder(self) -> Any:
        if self._image is None:
            from omnibind.encoders import ENCODERS

            self._image = ENCODERS.get("efficientnet_lite0")()
            self._image.eval()
        return self._image

    def describe(self, part: MediaPart) -> str:
        key = media_hash(part)
        if key not in self._memo:
            self._memo[key] = self._describe(part)
        return self._memo[key]

    def _describe(self, part: MediaPart) -> str:
        from omnibind import modalities

        if part.modality == "image":
            from omnibind.encoders.experts import image_labels

            text = image_labels(self._image_encoder(), [modalities.load_part(part)], self.k)[0]
            return text or "no labels"
        if part.modality == "audio":
            from omnibind.encoders.experts import speech_transcript

            text = speech_transcript(modalities.load_part(part)).strip()
            return f"speech: {text}" if text else "no speech heard"
        return "no description available"


# --- prompts -----------------------------------------------------------------------------------------------
_MEDIA_SLOT = re.compile(r"\{media(\d+)\}")


class _Vars(dict):
    def __init__(self, data: dict[str, Any], where: str):
        super().__init__(data)
        self.where = where

    def __missing__(self, key: str) -> str:
        raise ConfigError(f"{self.where}: the prompt uses {{{key}}}, which the sample does not provide")


def prompt_vars(task: Task, sample: Sample) -> dict[str, str]:
    """The fields a prompt can use: the sample's ``vars`` plus ``{options}`` / ``{options_or}``."""
    out = dict(sample.vars)
    if sample.options:
        out.setdefault("options", ", ".join(sample.options))
        opts = list(sample.options)
        out.setdefault("options_or", ", ".join(opts[:-1]) + f" or {opts[-1]}" if len(opts) > 1 else opts[0])
    return out


def build_messages(
    task: Task, sample: Sample, system: str, describe: Callable[[MediaPart], str] | None = None
) -> list[Message]:
    """The conversation for one sample under a system (``model`` | ``text_only`` | ``caption``).

    ``{media0}``, ``{media1}``… in the prompt place the inputs; without them the inputs come first.
    """
    vars_ = _Vars(prompt_vars(task, sample), task.path or task.name)
    pieces = _MEDIA_SLOT.split(task.prompt)
    parts: list[Any] = []
    used: set[int] = set()
    for i, piece in enumerate(pieces):
        if i % 2 == 1:
            idx = int(piece)
            if idx >= len(sample.media):
                raise ConfigError(f"{task.name}: prompt uses {{media{idx}}} but the sample has {len(sample.media)}")
            used.add(idx)
            parts.extend(_stand_in(sample.media[idx], system, describe))
        elif piece:
            parts.append(TextPart(piece.format_map(vars_)))
    lead = [p for i, m in enumerate(sample.media) if i not in used for p in _stand_in(m, system, describe)]
    content = _merge_text([*lead, *parts])
    msgs = [Message.system(task.system)] if task.system else []
    return [*msgs, Message("user", content or [TextPart("")])]


def _stand_in(part: MediaPart, system: str, describe: Callable[[MediaPart], str] | None) -> list[Any]:
    if system == "model":
        return [part]
    if system == "caption":
        if describe is None:
            raise ConfigError("the caption baseline needs a describer")
        return [TextPart(f"({part.modality}: {describe(part)})\n")]
    return []


def _merge_text(parts: list[Any]) -> list[Any]:
    """Join neighbouring text parts (a text-only prompt becomes one clean string)."""
    out: list[Any] = []
    for p in parts:
        if isinstance(p, TextPart) and out and isinstance(out[-1], TextPart):
            out[-1] = TextPart(out[-1].text + p.text)
        else:
            out.append(p)
    return [
        TextPart(p.text.strip()) if isinstance(p, TextPart) else p
        for p in out
        if not (isinstance(p, TextPart) and not p.text.strip())
    ]


def class_prompts(templates: Sequence[str], name: str) -> list[str]:
    """Fill each template: ``{}`` → the class name, ``{a}`` → the name with "a"/"an"."""
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return [t.replace("{a}", f"{article} {name}").replace("{}", name) for t in templates]


# --- running ---------------------------------------------------------------------------------------------
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

    # -- public -----------------------------------------------------------------------------------------
    def run(self, task: Task, limit: int | None = None) -> TaskResult:
        start = time.perf_counter()
        samples = select(build(task.dataset, **task.dataset_args), limit, self.seed)
        if not samples:
            raise ConfigError(f"{task.name}: the dataset gave no samples")
        systems = ["model", *(task.baselines if self.baselines else [])]
        out: dict[str, SystemResult] = {}
        for system in systems:
            t0 = time.perf_counter()
            res = SystemResult()
            try:
                res.raw = self._outputs(task, samples, system)
                res.preds = [extract(task, s, r) for s, r in zip(samples, res.raw)]
                if system == "chance":
                    res.metrics = chance_metrics(task, samples, self.seed)
                else:
                    res.metrics = task.hook(task.metric)(res.preds, samples, task)
            except UnsupportedMethodError as e:
                res.skipped = str(e)
            except OmnibindError:
                raise
            except Exception as e:  # e.g. an endpoint refusing a modality: report it, keep going
                if not isinstance(self.model, EndpointModel) or system == "chance":
                    raise
                res.skipped = f"{type(e).__name__}: {e}"
            res.seconds = time.perf_counter() - t0
            out[system] = res
            self.cache.commit()
        return TaskResult(task, samples, out, time.perf_counter() - start)

    # -- per system ---------------------------------------------------------------------------------------
    def _outputs(self, task: Task, samples: list[Sample], system: str) -> list[Any]:
        if system == "chance":
            return chance_outputs(task, samples, self.seed)
        if system == "caption" and self._describer is None:
            self._describer = Describer(self.model.image_encoder())
        if task.method == "bind":
            return self._bind(task, samples, system)
        if task.method == "rank":
            return self._rank(task, samples, system)
        return self._generate(task, samples, system)

    def _describe(self, part: MediaPart) -> str:
        assert self._describer is not None
        return self._describer.describe(part)

    def _cached(self, task: Task, sample: Sample, request: Any) -> tuple[str, str, Any]:
        req = _digest([self.model.fingerprint, request])
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
        prompts = [p for c in classes for p in class_prompts(task.templates, c)]
        base_req = {"method": "bind", "templates": task.templates, "classes": classes, "system": system}
        out: list[Any] = [None] * len(samples)
        todo: list[tuple[int, str, str, Any]] = []
        for i, s in enumerate(samples):
            query: Any
            if system == "model":
                query = media_hash(s.media[0])
            elif system == "caption":
                # the expert text is a function of the media: key on the media, describe only on a miss
                query = ["caption", media_hash(s.media[0])]
            else:
                query = task.prompt or "a photo"
            key, req, hit = self._cached(task, s, {**base_req, "query": query})
            if hit is not None:
                out[i] = hit
            else:
                todo.append((i, key, req, query))
        if todo:
            cls_vec = self._class_vectors(prompts, len(classes))
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

    def _class_vectors(self, prompts: list[str], n_classes: int) -> np.ndarray:
        vec = np.asarray(self.model.embed(prompts), dtype=np.float32)
        vec = vec.reshape(n_classes, -1, vec.shape[-1]).mean(1)  # prompt ensembling: mean over templates
        return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)

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


def extract(task: Task, sample: Sample, raw: Any) -> Any:
    """Raw output → answer: argmax for bind/rank scores, the extract hook for generated text."""
    if raw is None:
        return None
    if isinstance(raw, dict) and "choice" in raw:  # chance baseline
        return raw["choice"]
    if task.method in ("bind", "rank") and isinstance(raw, list):
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
