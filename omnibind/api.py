"""The public face: ``omnibind.load()`` and ``Model.chat / stream / generate / embed / score / info``."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.checkpoint import CONFIG_FILE, WEIGHTS_FILE, save_checkpoint
from omnibind.config import ModelConfig, deep_merge, default_inference_backend
from omnibind.errors import BackendUnsupportedError, ConfigError
from omnibind.llm.backends.base import GenerationOptions
from omnibind.llm.embedded import cache_root
from omnibind.llm.sources import resolve_hf_source
from omnibind.loader import build_core
from omnibind.messages import Conversation, MediaPart, Message, MixPart, TextPart, as_conversation

PACKAGE_DIR = Path(__file__).resolve().parent
PRESETS_DIR = PACKAGE_DIR / "configs"
DEFAULT_MODEL_DIR = PACKAGE_DIR / "weights" / "default"
_SAID: set[str] = set()  # stderr notes already given in this process


@dataclass
class Reply:
    """A finished answer with OpenAI-style usage counts. ``str(reply)`` is its text."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    seconds: float = 0.0

    def __str__(self) -> str:
        return self.text


class TextDecoder:
    """Incremental detokenisation with stop strings: emits only text that can no longer change."""

    def __init__(self, detokenize: Any, stop: Sequence[str]):
        self.detokenize = detokenize
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.emitted = 0
        self.text = ""
        self.stopped = False

    def push(self, token: int) -> str:
        self.ids.append(token)
        full = self.detokenize(self.ids)
        for s in self.stop:
            at = full.find(s)
            if at != -1:
                self.stopped = True
                full = full[:at]
        self.text = full
        if self.stopped:
            return self._take(len(full))
        safe = len(full)
        if full.endswith("\ufffd"):  # an unfinished multi-byte character
            safe -= 1
        for s in self.stop:  # hold back a tail that may grow into a stop string
            for k in range(min(len(s) - 1, safe), 0, -1):
                if full[:safe].endswith(s[:k]):
                    safe -= k
                    break
        return self._take(safe)

    def finish(self) -> str:
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        out = self.text[self.emitted : upto]
        self.emitted = upto
        return out


class TextStream:
    """Iterate for text deltas; ``reply`` holds the finished Reply; ``close()`` cancels decoding."""

    def __init__(self, steps: Iterator[list[int | None]], decoder: TextDecoder, prompt_tokens: int, max_new: int):
        self._steps = steps
        self._decoder = decoder
        self._prompt_tokens = prompt_tokens
        self._max_new = max_new
        self._start = time.perf_counter()
        self.reply: Reply | None = None
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        finish = "stop"
        count = 0
        try:
            for step in self._steps:
                if self._closed:
                    break
                tok = step[0]
                if tok is None:
                    break
                count += 1
                delta = self._decoder.push(tok)
                if delta:
                    yield delta
                if self._decoder.stopped:
                    break
            else:
                finish = "length" if count >= self._max_new else "stop"
            if count >= self._max_new and not self._decoder.stopped:
                finish = "length"
            tail = self._decoder.finish()
            if tail:
                yield tail
        finally:
            self._close_steps()
            self.reply = Reply(
                self._decoder.text, self._prompt_tokens, count, finish, time.perf_counter() - self._start
            )

    def close(self) -> None:
        self._closed = True
        self._close_steps()

    def _close_steps(self) -> None:
        close = getattr(self._steps, "close", None)
        if close is not None:
            try:
                close()
            except ValueError:  # "generator already executing" when closed from another thread
                pass


@dataclass
class BatchSteps:
    """A batched decode in progress: iterate for per-step token ids (None = that row finished).

    ``prompt_tokens`` holds each prompt's length; ``detokenize`` turns ids into text (pair it with
    ``TextDecoder`` for per-row stop strings); ``close()`` stops decoding and frees the work.
    """

    steps: Iterator[list[int | None]]
    prompt_tokens: list[int]
    detokenize: Any

    def __iter__(self) -> Iterator[list[int | None]]:
        return self.steps

    def close(self) -> None:
        _close(self.steps)


class Model:
    """A loaded omnibind model. Thread-safe: one decode at a time (the server batches in front)."""

    def __init__(self, core: Any, *, origin: str, trained: bool):
        self.core = core
        self.origin = origin
        self.trained = trained
        self._lock = threading.RLock()

    @property
    def config(self) -> ModelConfig:
        return self.core.config

    # --- chat ----------------------------------------------------------------------------
    def chat(self, messages: str | Message | list[Message], *, experts: Any = None, **options: Any) -> Reply:
        """Answer a conversation (multi-turn: pass the whole history).

        ``experts``: modality-expert notes for this call — ``True`` (image labels and speech
        transcripts), ``False`` (none), an ``ExpertsConfig`` or ``{"image_labels": 3,
        "transcript": True}``; ``None`` keeps the model config's ``experts``.
        """
        stream = self.stream(messages, experts=experts, **options)
        for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply

    def stream(self, messages: str | Message | list[Message], *, experts: Any = None, **options: Any) -> TextStream:
        """Like ``chat`` but yields text as it is decoded."""
        opts = _options(options, self.core.template.stop)
        conv = as_conversation(messages)
        with self._lock:
            steps, lengths = self.core.generate_ids([conv], opts, experts)
        return TextStream(
            _locked(steps, self._lock),
            TextDecoder(self.core.llm.detokenize, opts.stop),
            lengths[0],
            opts.max_new_tokens,
        )

    def open_batch(
        self, conversations: Sequence[str | Message | list[Message]], *, experts: Any = None, **options: Any
    ) -> BatchSteps:
        """Start decoding several conversations together, one batched forward per step.

        The model lock is held only while each step runs, so other calls (embeddings) interleave.
        Stop strings in ``options`` are not applied here: decode each row with ``TextDecoder``.
        ``experts``: as in ``chat``, one for all rows or a list with one per conversation.
        """
        opts = _options(options, self.core.template.stop)
        opts.stop = []
        convs = [as_conversation(c) for c in conversations]
        with self._lock:
            steps, lengths = self.core.generate_ids(convs, opts, experts)
        return BatchSteps(_locked(steps, self._lock), list(lengths), self.core.llm.detokenize)

    def prompt_embeds(self, messages: str | Message | list[Message], *, experts: Any = None) -> torch.Tensor:
        """The (T, H) input embeddings the LLM decodes for this conversation (what ``generate``
        feeds the backend), for a scheduler that drives the backend's steps itself. ``experts`` as in
        ``chat``. The gated injection cannot be expressed as embeddings alone: refused."""
        conv = as_conversation(messages)
        with self._lock, torch.inference_mode():
            prepared = self.core.prepare(conv, experts=experts)
            built, injection, _ = self.core.build_inputs(prepared, add_generation_prompt=True)
        if injection is not None:
            raise BackendUnsupportedError("the gated every-layer injection needs the backend's own decode loop")
        return built.embeds

    def generate(
        self, conversations: Sequence[str | Message | list[Message]], *, experts: Any = None, **options: Any
    ) -> list[Reply]:
        """Decode several conversations together (one batched forward per step); ``experts`` as in ``chat``."""
        if not conversations:
            return []
        opts = _options(options, self.core.template.stop)
        convs = [as_conversation(c) for c in conversations]
        start = time.perf_counter()
        with self._lock:
            steps, lengths = self.core.generate_ids(convs, opts, experts)
            decoders = [TextDecoder(self.core.llm.detokenize, opts.stop) for _ in convs]
            counts = [0] * len(convs)
            done = [False] * len(convs)
            for step in steps:
                for i, tok in enumerate(step):
                    if tok is None or done[i]:
                        done[i] = True
                        continue
                    counts[i] += 1
                    decoders[i].push(tok)
                    done[i] = decoders[i].stopped
                if all(done):
                    break
            _close(steps)
        secs = time.perf_counter() - start
        return [
            Reply(
                d.text,
                lengths[i],
                counts[i],
                "length" if counts[i] >= opts.max_new_tokens and not d.stopped else "stop",
                secs,
            )
            for i, d in enumerate(decoders)
        ]

    # --- embeddings and scoring ----------------------------------------------------------
    def embed(self, inputs: Sequence[MediaPart | TextPart | MixPart | str]) -> np.ndarray:
        """(N, D) L2-normalised bind-space vectors for inputs of any modality (str = text)."""
        parts = [TextPart(x) if isinstance(x, str) else x for x in inputs]
        if not parts:
            return np.zeros((0, self.config.bind.dim), dtype=np.float32)
        with self._lock:
            return self.core.embed(parts).float().cpu().numpy()

    def score(
        self,
        messages: str | Message | list[Message],
        candidates: Sequence[str],
        *,
        normalize: bool = False,
        experts: Any = None,
    ) -> np.ndarray:
        """Log-likelihood of each candidate answer (sum of token log-probs; mean if ``normalize``)."""
        conv = as_conversation(messages)
        with self._lock:
            return self.core.score(conv, list(candidates), normalize=normalize, experts=experts).cpu().numpy()

    # --- introspection -------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Config, encoders, parameter counts, trained or not, cache paths."""
        core = self.core
        enc = {}
        for m, e in core.encoders.items():
            enc[m] = {
                "name": self.config.encoders[m].name,
                "class": type(e).__name__,
                "output_dim": e.output_dim,
                "parameters": int(sum(p.numel() for p in e.parameters())),
                "trainable": bool(e.trainable),
                "fingerprint": e.fingerprint(),
            }
        llm_params = getattr(core.llm, "num_parameters", None) or sum(
            p.numel() for p in getattr(core.llm, "model", torch.nn.Module()).parameters()
        )
        return {
            "name": self.config.name,
            "origin": self.origin,
            "trained": self.trained,
            "llm": {
                "backend": core.llm.name,
                "source": self.config.llm.source,
                "weights": str(_llm_weights_path(core.llm)),
                "hidden_size": core.llm.hidden_size,
                "layers": core.llm.num_layers,
                "parameters": int(llm_params),
                "template": self.config.llm.template,
            },
            "injection": self.config.injection.kind,
            "encoders": enc,
            "bind_dim": self.config.bind.dim,
            "projectors": {k: {"name": v.name, "num_tokens": v.num_tokens} for k, v in self.config.projectors.items()},
            "trainable_parameters": int(sum(t.numel() for t in core.trainable_state_dict().values())),
            "retrieval_cache": self.config.cache.path if core.retrieval_cache is not None else None,
            "cache_dir": str(cache_root()),
            "config": self.config.to_dict(),
        }

    def save(self, folder: str | Path) -> Path:
        """Save config + trainable weights + manifest (see ``omnibind.checkpoint``)."""
        return save_checkpoint(self.core, folder)

    # --- retrieval and zero-shot classification (delegating to omnibind.index / bind.zero_shot) ---
    def search(self, query: Any, index: Any, *, k: int = 5, modality: str | Sequence[str] | None = None) -> list[Any]:
        """The ``k`` indexed media nearest to ``query`` in the bind space (``omnibind.index.search``).

        ``query``: text, a ``Path`` to a media file, a part (``Image(...)``, ``Audio(...)``, a
        ``MixPart``) or a list of those (then one list of hits per query). ``index``: a folder made
        by ``omnibind index build`` or a ``MediaIndex``. ``modality``: results of that kind only.
        """
        from omnibind.index.search import search

        return search(self, index, query, k=k, modality=modality)

    def classify(self, inputs: Any, labels: Sequence[str], *, templates: Sequence[str] | None = None) -> Any:
        """Prompt-ensembled zero-shot classification in the bind space (CLIP's protocol).

        ``inputs``: one input (a part or text) or a list; ``labels``: the class names;
        ``templates``: prompts with ``{}`` / ``{a}`` for the label (default
        ``omnibind.bind.zero_shot.DEFAULT_TEMPLATES``). Returns one ``Classification`` (labels best
        first with probabilities) per input, or one for a single input.
        """
        from omnibind.bind.zero_shot import DEFAULT_TEMPLATES, class_vectors, classify

        single = not isinstance(inputs, (list, tuple))
        vecs = self.embed([inputs] if single else list(inputs))
        label_vecs = class_vectors(self.embed, list(labels), list(templates or DEFAULT_TEMPLATES))
        scale = float(self.core.bind.logit_scale.detach().exp())
        out = classify(vecs, list(labels), label_vecs, scale=scale)
        return out[0] if single else out


def _llm_weights_path(llm: Any) -> Path | str:
    """Where the backend's weights come from: the GGUF llama.cpp runs, else the resolved source."""
    gguf = getattr(llm, "gguf_path", None)
    if gguf is not None:
        return gguf
    return resolve_hf_source(llm.source)


def _options(options: dict[str, Any], template_stop: Sequence[str]) -> GenerationOptions:
    allowed = set(GenerationOptions.__dataclass_fields__)
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unknown generation options {sorted(unknown)}; allowed: {sorted(allowed)}")
    opts = GenerationOptions(**{k: v for k, v in options.items() if v is not None})
    opts.stop = list(opts.stop or [])
    return opts.validate()


def _locked(steps: Iterator[list[int | None]], lock: threading.RLock) -> Iterator[list[int | None]]:
    """Hold the model lock while each decoding step runs (streams from several threads interleave safely)."""
    try:
        while True:
            with lock:
                try:
                    step = next(steps)
                except StopIteration:
                    return
            yield step
    finally:
        _close(steps)


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except ValueError:
            pass


def presets() -> list[str]:
    """Names of the bundled config presets (``omnibind.load(name)`` builds one, untrained)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_llamacpp(name_or_path: str | Path | None = None, *, device: str = "cpu", source: str | None = None) -> Model:
    """``load(name_or_path, backend="llamacpp")``, optionally on another GGUF.

    ``source`` replaces the config's GGUF (e.g. an f32 export of the same base weights; the check
    that the checkpoint was trained on that base is then skipped). LoRA checkpoints need nothing
    special: their LoRA weights become a llama.cpp adapter (``omnibind.loader.build_with_adapter``).
    """
    if source is None:
        return load(name_or_path, backend="llamacpp", device=device)
    return load(
        name_or_path,
        backend="llamacpp",
        device=device,
        config_overrides={"llm": {"source": source}},
        verify_base=False,
    )


def load(
    name_or_path: str | Path | None = None,
    *,
    backend: str | None = None,
    device: str = "cpu",
    config_overrides: dict[str, Any] | None = None,
    verify_base: bool = True,
) -> Model:
    """Load a model.

    ``None``: the embedded default (trained weights shipped in the package when present).
    A preset name (see ``presets()``): that architecture, freshly initialised.
    A checkpoint folder (with ``config.json``): its config and trained weights.
    A Hugging Face LLaVA folder (``model_type`` llava): imported once into omnibind's cache
    (``omnibind.importers.llava``; ``omnibind import llava`` chooses the place) and loaded.
    A ``.yaml``/``.json`` config file: that architecture, freshly initialised.
    ``backend`` overrides ``config.llm.backend`` (e.g. ``"llamacpp"``; a checkpoint's LoRA then runs
    as a llama.cpp adapter). Without it, models on the embedded LLM run on llama.cpp when
    llama-cpp-python is installed (else on transformers, said once on stderr); see
    ``omnibind.config.default_inference_backend`` (``$OMNIBIND_BACKEND`` chooses).
    ``verify_base=False`` skips the check that the checkpoint was trained on this base LLM (for
    another file of the same weights, e.g. a GGUF export).
    """
    weights_dir: Path | None = None
    if name_or_path is None:
        if (DEFAULT_MODEL_DIR / CONFIG_FILE).is_file():
            weights_dir = DEFAULT_MODEL_DIR
            config = ModelConfig.load(DEFAULT_MODEL_DIR / CONFIG_FILE)
        else:
            config = ModelConfig.load(PRESETS_DIR / "embedded.yaml")
        origin = "embedded default"
    else:
        p = Path(name_or_path).expanduser()
        from omnibind.importers.llava import imported_copy, is_llava_folder

        if p.is_dir() and is_llava_folder(p):  # a llava-hf folder: imported once into the cache
            p = imported_copy(p, cache_root())
        if p.is_dir():
            if not (p / CONFIG_FILE).is_file():
                raise ConfigError(f"{p}: not an omnibind checkpoint (no {CONFIG_FILE})")
            config = ModelConfig.load(p / CONFIG_FILE)
            weights_dir = p if (p / WEIGHTS_FILE).is_file() else None
        elif p.is_file():
            config = ModelConfig.load(p)
        elif (PRESETS_DIR / f"{name_or_path}.yaml").is_file():
            config = ModelConfig.load(PRESETS_DIR / f"{name_or_path}.yaml")
        else:
            raise ConfigError(f"{name_or_path}: no such checkpoint, config file or preset (presets: {presets()})")
        origin = str(name_or_path)
    if config_overrides:
        config = ModelConfig.from_dict(deep_merge(config.to_dict(), config_overrides))
    if backend is None:
        backend, note = default_inference_backend(config, device)
        if note and note not in _SAID:  # once per process, however many models load
            _SAID.add(note)
            print(note, file=sys.stderr, flush=True)
    config.llm.backend = backend
    core = build_core(config, weights_dir, device=device, verify_base=verify_base)
    return Model(core, origin=origin, trained=weights_dir is not None)


__all__ = [
    "BatchSteps",
    "Conversation",
    "Model",
    "Reply",
    "TextDecoder",
    "TextStream",
    "load",
    "load_llamacpp",
    "presets",
]
