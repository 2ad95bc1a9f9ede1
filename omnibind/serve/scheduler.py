"""Continuous batching in front of a llama.cpp model, and the choice of scheduler for the server.

``ContinuousScheduler`` keeps one batch running: between two decode steps its worker thread
answers queued embedding requests, admits newcomers (each gets its own llama.cpp sequence and KV
cells, see ``omnibind.llm.backends.llamacpp_continuous``), drops requests that were cancelled or
passed their deadline (their KV cells are wiped at once), and hands every live request the token
it decoded. A newcomer's prompt is evaluated ``chunk_tokens`` rows per step beside the others'
decode rows, so it never stalls the running streams for more than one chunk per step.

Per-request options (temperature, top_p, top_k, repetition penalty, seed, max_tokens, stop) are
the sequence's own, so any mix shares a batch; greedy answers equal one-at-a-time answers.

Fairness: admission is first come, first served (a newcomer that does not fit the KV cache yet
waits at the head of the line, nobody overtakes it), and the oldest newcomer's prompt is
evaluated first. The transformers backend stays on micro-batching (``batching.Batcher``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from omnibind.errors import ConfigError
from omnibind.serve.batching import Batcher, QueueWorker, ServerClosingError, _Job

SCHEDULERS = ("auto", "continuous", "micro")


@dataclass(eq=False)
class _Live:
    """A request whose sequence is in the running batch."""

    job: _Job
    seq: Any  # StepSequence
    decoder: Any  # api.TextDecoder
    start: float = field(default_factory=time.perf_counter)
    peak: int = 1  # the most sequences that shared a step with it
    count: int = 0


class ContinuousScheduler(QueueWorker):
    """One worker thread running a continuous batch of up to ``max_batch_size`` sequences."""

    kind = "continuous"

    def __init__(self, model: Any, *, chunk_tokens: int = 64, autostart: bool = True, **kw: Any):
        super().__init__(model, autostart=False, **kw)
        llm = _llm(model)
        if llm is None or not hasattr(llm, "continuous"):
            raise ConfigError(
                f"continuous batching needs the llamacpp backend (this model runs on {getattr(llm, 'name', '?')!r}); "
                "use --scheduler micro"
            )
        self.engine = llm.continuous(max_sequences=self.max_batch_size, chunk_tokens=chunk_tokens)
        self.chunk_tokens = self.engine.chunk_tokens
        self._waiting: deque[tuple[_Job, Any]] = deque()  # prepared (prompt embedded), waiting for KV room
        self._live: list[_Live] = []
        if autostart:
            self.start()

    @property
    def depth(self) -> int:
        return len(self._pending) + len(self._waiting)

    # --- the worker ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._live and not self._waiting and (self._paused or not self._pending):
                    self._cond.wait(0.25)
                    self._expire()
                if self._stop:
                    break
                self._expire()
                embeds, chats = self._take()
            try:
                if embeds:
                    self._run_embed(embeds)
                self._prepare(chats)
                self._admit()
                self._step()
            except Exception as e:  # never let the worker die: fail whoever is in the batch
                for live in list(self._live):
                    self._drop(live, e)
        closing = ServerClosingError("the server is shutting down")
        for live in list(self._live):
            self._drop(live, closing)
        while self._waiting:
            self._waiting.popleft()[0].sink(("error", closing))

    def _take(self) -> tuple[list[_Job], list[_Job]]:
        """Queued embedding jobs and as many chat jobs as the batch has seats for (lock held)."""
        if self._paused:  # finish the running batch, start nobody new
            return [], []
        embeds = [j for j in self._pending if j.kind == "embed"][: self.max_batch_size]
        seats = self.max_batch_size - len(self._live) - len(self._waiting)
        chats = [j for j in self._pending if j.kind == "chat"][: max(0, seats)]
        for job in embeds + chats:
            self._pending.remove(job)
        return embeds, chats

    def _prepare(self, chats: list[_Job]) -> None:
        """Assemble each newcomer's prompt embeddings (media encoders run here, between steps)."""
        for job in chats:
            if job.cancelled.is_set():
                self.stats.cancelled += 1
                continue
            try:
                prompt = self.model.prompt_embeds(job.payload, experts=job.options.get("experts"))
            except Exception as e:  # a bad request fails alone
                job.sink(("error", e))
                continue
            self._waiting.append((job, prompt))

    def _admit(self) -> None:
        """Newcomers join in arrival order while a sequence and KV cells are free."""
        from omnibind.api import TextDecoder
        from omnibind.llm.backends.base import GenerationOptions

        while self._waiting:
            job, prompt = self._waiting[0]
            now = time.perf_counter()
            if job.cancelled.is_set() or now > job.deadline:
                self._waiting.popleft()
                self._abandon(job, now)
                continue
            o = job.options
            try:
                opts = GenerationOptions(
                    max_new_tokens=int(o["max_new_tokens"]),
                    temperature=float(o.get("temperature", 0.0) or 0.0),
                    top_p=float(o.get("top_p", 1.0) or 1.0),
                    top_k=int(o.get("top_k", 0) or 0),
                    repetition_penalty=float(o.get("repetition_penalty", 1.0) or 1.0),
                    seed=o.get("seed"),
                    max_prompt_tokens=o.get("max_prompt_tokens"),
                    # the request's own controls (JSON constraint, penalties, logprobs, choice seed:
                    # openai_wire) ride on its one row, as in the micro-batcher
                    rows=[o["row"]] if o.get("row") is not None else None,
                )
                seq = self.engine.add(prompt, opts)
            except Exception as e:  # too long for the context, bad options: this request only
                self._waiting.popleft()
                job.sink(("error", e))
                continue
            if seq is None:
                return  # no room yet: it stays first in line
            self._waiting.popleft()
            detok = self.model.core.llm.detokenize
            self._live.append(_Live(job, seq, TextDecoder(detok, o.get("stop") or [])))

    def _step(self) -> None:
        now = time.perf_counter()
        for live in list(self._live):  # deadlines and disconnects, checked between every two steps
            if live.job.cancelled.is_set() or now > live.job.deadline:
                self._release(live, keep_cache=False)
                self._abandon(live.job, now)
        if not self._live:
            return
        self.stats.running = len(self._live)
        out = self.engine.step()
        self.stats.steps += 1
        self.stats.step_rows += len(self._live)
        by_id = {live.seq.id: live for live in self._live}
        for live in self._live:
            live.peak = max(live.peak, len(self._live))
        for seq, tok in out:
            live = by_id[seq.id]
            if tok is None:
                continue
            live.count += 1
            delta = live.decoder.push(tok)
            if delta:
                live.job.sink(("delta", delta))
            if live.decoder.stopped:
                seq.done = True
        for seq, err in self.engine.failed:
            self._drop(by_id[seq.id], err)
        for live in [x for x in self._live if x.seq.done]:
            reason = "stop" if live.decoder.stopped else (live.seq.finish_reason or "stop")
            self._release(live, keep_cache=True)
            self.stats.record_batch(1, time.perf_counter() - live.start, live.count)
            prompt = live.seq.prompt_len
            self._finish(live.job, live.decoder, prompt, live.count, reason, live.start, live.peak)
        self.stats.running = len(self._live)

    def _release(self, live: _Live, *, keep_cache: bool) -> None:
        if live in self._live:
            self._live.remove(live)
        self.engine.release(live.seq, keep_cache=keep_cache)

    def _drop(self, live: _Live, error: Exception) -> None:
        self._release(live, keep_cache=False)
        live.job.sink(("error", error))


def _llm(model: Any) -> Any:
    return getattr(getattr(model, "core", None), "llm", None)


def resolve_scheduler(requested: str, model: Any) -> str:
    """``auto`` → ``continuous`` on llama.cpp, ``micro`` elsewhere; an explicit choice is checked."""
    if requested not in SCHEDULERS:
        raise ConfigError(f"scheduler {requested!r} is not one of {', '.join(SCHEDULERS)}")
    can = hasattr(_llm(model), "continuous")
    if requested == "auto":
        return "continuous" if can else "micro"
    if requested == "continuous" and not can:
        name = getattr(_llm(model), "name", "?")
        raise ConfigError(f"--scheduler continuous needs the llamacpp backend (this model runs on {name!r})")
    return requested


def make_scheduler(model: Any, settings: Any) -> QueueWorker:
    """The server's request worker for ``settings.scheduler`` (see ``resolve_scheduler``)."""
    kind = resolve_scheduler(settings.scheduler, model)
    kw: dict[str, Any] = dict(
        max_batch_size=settings.max_batch_size,
        batch_wait_s=settings.batch_wait_ms / 1000.0,
        max_queue=settings.max_queue,
        timeout_s=settings.request_timeout_s,
    )
    if kind == "continuous":
        return ContinuousScheduler(model, chunk_tokens=settings.prefill_chunk_tokens, **kw)
    return Batcher(model, **kw)
