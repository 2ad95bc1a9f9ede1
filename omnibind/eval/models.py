"""The models the harness evaluates: a local omnibind model or an OpenAI-compatible endpoint.

``LocalModel`` wraps an ``omnibind.load``-ed model (any preset, config file or checkpoint);
``EndpointModel`` talks to any OpenAI-compatible server (embeddings through ``/v1/embeddings``;
candidate scoring does not exist in that API, so ``rank`` tasks are skipped with a note). A task's
``model_options`` (an inference-time expert, a retrieval cache) are applied by ``configured``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import ConfigError, OmnibindError
from omnibind.hashing import digest
from omnibind.messages import MediaPart, Message
from omnibind.serve.openai_responses import parse_embeddings, reply_text
from omnibind.serve.openai_wire import encode_messages, encode_part


class UnsupportedMethodError(OmnibindError):
    """The model cannot run this method (e.g. no log-likelihoods from an OpenAI endpoint)."""


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

    @contextlib.contextmanager
    def configured(self, options: dict[str, Any]) -> Iterator[None]:
        """Apply a task's ``model_options`` for the duration of the task (only a local model can)."""
        if options:
            raise UnsupportedMethodError(f"{self.name}: cannot apply model options {sorted(options)}")
        yield


class LocalModel(EvalModel):
    """An omnibind ``Model`` in this process."""

    def __init__(self, model: Any):
        self.model = model
        self._caches: dict[str, Any] = {}
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

    @contextlib.contextmanager
    def configured(self, options: dict[str, Any]) -> Iterator[None]:
        """``experts``: expert settings (``image_labels: 3`` switches the ImageNet-labels expert on at
        inference); ``retrieval_cache``: ImageBind-LLM's cache of training-image bind vectors, see
        ``retrieval_cache``. Everything is restored afterwards."""
        core = self.model.core
        experts, cache_cfg = core.config.experts, core.config.cache
        saved_experts = {k: getattr(experts, k) for k in (options.get("experts") or {})}
        saved_cache = (core.retrieval_cache, cache_cfg.modalities, cache_cfg.top_k, cache_cfg.alpha)
        try:
            for k, v in (options.get("experts") or {}).items():
                if not hasattr(experts, k):
                    raise ConfigError(f"model_options.experts: unknown expert setting {k!r}")
                setattr(experts, k, v)
            spec = options.get("retrieval_cache")
            if spec:
                core.retrieval_cache = self.retrieval_cache(spec)
                cache_cfg.modalities = list(spec.get("modalities", cache_cfg.modalities))
                cache_cfg.top_k = int(spec.get("top_k", cache_cfg.top_k))
                cache_cfg.alpha = float(spec.get("alpha", cache_cfg.alpha))
            yield
        finally:
            for k, v in saved_experts.items():
                setattr(experts, k, v)
            core.retrieval_cache, cache_cfg.modalities, cache_cfg.top_k, cache_cfg.alpha = saved_cache

    def retrieval_cache(self, spec: dict[str, Any]) -> Any:
        """A retrieval cache of the TRAINING image bind vectors of ``spec["images_from"]`` (data-builder
        sources under ``spec["data"]``), built into ``<data>/../retrieval-cache`` once per process."""
        from omnibind.bind.cache import RetrievalCache, build_image_cache
        from omnibind.data.format import read_dataset

        data = Path(spec.get("data", "runs/embedded/data"))
        folder = Path(spec.get("folder") or data.parent / "retrieval-cache")
        key = str(folder.resolve())
        if key not in self._caches:
            paths: list[Path] = []
            for name in spec.get("images_from", ("tuxpaint", "meshes")):
                f = data / f"{name}.train.jsonl"
                if f.is_file():
                    paths += [
                        s.media_path(i) for s in read_dataset(f) for i, m in enumerate(s.media) if m.type == "image"
                    ]
            build_image_cache(self.model, sorted(set(paths)), folder)
            self._caches[key] = RetrievalCache.load(folder)
        return self._caches[key]

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
        self.fingerprint = "endpoint-" + digest([base_url, self.model_id], 20)

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
        payload = [x if isinstance(x, str) else encode_part(x) for x in inputs]
        resp = self.client.embeddings.create(model=self.model_id, input=payload)  # type: ignore[arg-type]
        vecs = np.asarray(parse_embeddings(resp.model_dump()), dtype=np.float32)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def generate(self, conversations: Sequence[list[Message]], max_new_tokens: int) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        def one(conv: list[Message]) -> str:
            resp = self.client.chat.completions.create(
                model=self.model_id,
                messages=encode_messages(conv),  # type: ignore[arg-type]
                max_tokens=max_new_tokens,
                temperature=0.0,
            )
            return reply_text(resp.model_dump())

        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(one, conversations))


def load_model(model: str | None = None, endpoint: str | None = None, api_key: str | None = None) -> EvalModel:
    """``--endpoint URL [--model NAME]`` → ``EndpointModel``; else ``omnibind.load(model)`` → ``LocalModel``."""
    if endpoint:
        return EndpointModel(endpoint, model, api_key)
    import omnibind

    return LocalModel(omnibind.load(model))
