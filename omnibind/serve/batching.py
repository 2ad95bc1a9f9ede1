"""The request queue in front of one model (``QueueWorker``) and dynamic micro-batching (``Batcher``).

``omnibind.serve.scheduler`` holds the continuous-batching worker for llama.cpp and the choice
between the two (``--scheduler``). What follows describes micro-batching.

Requests wait in a bounded queue; one worker thread takes the oldest request plus every queued
request it can decode together (same sampling settings, up to ``max_batch_size``), waiting at
most ``batch_wait_s`` for companions, and decodes them in ONE batched forward per token step.
Tokens go back to each request as they are decoded, so streaming requests batch too.

Micro-batching serves backends whose decoder takes a fixed batch per call (transformers): a
request that arrives while a batch runs waits for it to finish. Greedy rows are independent of
their batch-mates, so answers match one-at-a-time runs.

Safety: a full queue rejects at once (``QueueFullError`` with a Retry-After estimate) instead of
growing; each request has a deadline; a cancelled request (client gone) is dropped from the
queue or stops decoding at the next step; a failing batch is retried row by row so one bad
request cannot fail its batch-mates.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


class QueueFullError(Exception):
    """The queue holds ``max_queue`` requests already; retry after ``retry_after`` seconds."""

    def __init__(self, depth: int, retry_after: int):
        super().__init__(f"the server is busy ({depth} requests queued); retry in {retry_after} s")
        self.retry_after = retry_after


class ServerClosingError(Exception):
    """The batcher is shutting down."""


class RequestTimeoutError(Exception):
    """The request passed its deadline (queued or decoding)."""


class RequestCancelledError(Exception):
    """The request was cancelled (its client went away)."""


@dataclass
class ChatResult:
    """The finished answer of one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    queue_seconds: float
    seconds: float
    batch_size: int


@dataclass
class _Job:
    kind: str  # "chat" | "embed"
    payload: Any
    sink: Callable[[tuple[str, Any]], None]
    deadline: float
    options: dict[str, Any] = field(default_factory=dict)
    key: tuple[Any, ...] = ()
    enqueued: float = field(default_factory=time.perf_counter)
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: int = field(default_factory=lambda: next(_ids))


class ChatHandle:
    """The caller's side of a queued chat request: iterate ``events()``, or ``cancel()``."""

    def __init__(self, batcher: QueueWorker, job: _Job, queue: asyncio.Queue[tuple[str, Any]]):
        self._batcher = batcher
        self._job = job
        self._queue = queue

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """Yields ``("delta", str)`` events and finally ``("done", ChatResult)``; raises on errors."""
        while True:
            kind, value = await self._queue.get()
            if kind == "error":
                raise value
            yield kind, value
            if kind == "done":
                return

    async def result(self) -> ChatResult:
        """Wait for the whole answer."""
        async for kind, value in self.events():
            if kind == "done":
                return value
        raise RuntimeError("stream ended without a result")  # unreachable: events() ends on "done"

    def cancel(self) -> None:
        """Stop this request (queued: removed; decoding: stops at the next token step)."""
        self._batcher.cancel(self._job)


class QueueWorker:
    """A bounded request queue in front of ``model`` and the one worker thread that serves it.

    Subclasses decide how the worker runs chat requests (``_loop``): ``Batcher`` micro-batches,
    ``omnibind.serve.scheduler.ContinuousScheduler`` batches continuously. Admission, deadlines in
    the queue, cancellation, shutdown and embeddings are shared.
    """

    kind = ""
    """The scheduler's name in /health and /metrics."""

    def __init__(
        self,
        model: Any,
        *,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.015,
        max_queue: int = 64,
        timeout_s: float = 120.0,
        autostart: bool = True,
    ):
        self.model = model
        self.max_batch_size = max(1, int(max_batch_size))
        self.batch_wait_s = max(0.0, float(batch_wait_s))
        self.max_queue = max(1, int(max_queue))
        self.timeout_s = float(timeout_s)
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._paused = False
        self._thread: threading.Thread | None = None
        self.stats = BatchStats()
        if autostart:
            self.start()

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="omnibind-batcher", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking batches; queued requests fail with ``ServerClosingError``."""
        with self._cond:
            self._stop = True
            pending = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in pending:
            job.sink(("error", ServerClosingError("the server is shutting down")))
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        """Finish the running batch, then start no new one until ``resume()`` (queue still admits)."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop

    @property
    def depth(self) -> int:
        return len(self._pending)

    # --- submitting ----------------------------------------------------------------------------
    def submit_chat(self, conversation: Any, options: dict[str, Any]) -> ChatHandle:
        """Queue a conversation (call from the event loop); raises ``QueueFullError`` when full."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        job = _Job("chat", conversation, _sink(loop, queue), self._deadline(), dict(options), _sampling_key(options))
        self._enqueue(job)
        return ChatHandle(self, job, queue)

    async def embed(self, parts: list[Any]) -> Any:
        """Bind-space vectors (N, D) for ``parts``, batched with other embedding requests."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        job = _Job("embed", list(parts), _sink(loop, queue), self._deadline(), key=("embed",))
        self._enqueue(job)
        try:
            kind, value = await queue.get()
        except asyncio.CancelledError:
            self.cancel(job)
            raise
        if kind == "error":
            raise value
        return value

    def cancel(self, job: _Job) -> None:
        if job.cancelled.is_set():
            return
        job.cancelled.set()
        # wake whoever still waits on this job's events; later events are simply never read
        job.sink(("error", RequestCancelledError("cancelled")))
        with self._cond:
            try:
                self._pending.remove(job)
            except ValueError:
                return  # already running (stops at its next step) or finished
        self.stats.cancelled += 1

    def _deadline(self) -> float:
        return time.perf_counter() + self.timeout_s

    def _enqueue(self, job: _Job) -> None:
        with self._cond:
            if self._stop:
                raise ServerClosingError("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                self.stats.rejected += 1
                raise QueueFullError(len(self._pending), self.retry_after())
            self._pending.append(job)
            self.stats.submitted += 1
            self._cond.notify_all()

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained by one batch's worth."""
        batches = len(self._pending) / self.max_batch_size + 1
        return max(1, math.ceil(self.stats.batch_seconds_ema * batches))

    # --- the worker (shared parts) -----------------------------------------------------------
    def _loop(self) -> None:
        raise NotImplementedError

    def _expire(self) -> None:
        """Fail queued jobs past their deadline (caller holds the condition's lock)."""
        now = time.perf_counter()
        for job in [j for j in self._pending if j.deadline < now]:
            self._pending.remove(job)
            self.stats.timeouts += 1
            job.sink(("error", RequestTimeoutError(f"timed out after {self.timeout_s:g} s in the queue")))

    def _run_embed(self, batch: list[_Job]) -> None:
        parts = [p for job in batch for p in job.payload]
        start = time.perf_counter()
        try:
            vectors = self.model.embed(parts)
        except Exception as e:
            if len(batch) > 1:  # find the culprit: each request alone
                for job in batch:
                    self._run_embed([job])
                return
            batch[0].sink(("error", e))
            return
        # recorded before anyone is answered, so a client that got its vectors sees its batch counted
        self.stats.record_batch(len(batch), time.perf_counter() - start, 0)
        row = 0
        for job in batch:
            n = len(job.payload)
            job.sink(("done", vectors[row : row + n]))
            row += n

    def _finish(self, job: _Job, decoder: Any, prompt: int, count: int, reason: str, start: float, size: int) -> None:
        tail = decoder.finish()
        if tail:
            job.sink(("delta", tail))
        now = time.perf_counter()
        job.sink(("done", ChatResult(decoder.text, prompt, count, reason, start - job.enqueued, now - start, size)))

    def _abandon(self, job: _Job, now: float) -> None:
        if job.cancelled.is_set():
            self.stats.cancelled += 1
            return
        self.stats.timeouts += 1
        job.sink(("error", RequestTimeoutError(f"timed out after {self.timeout_s:g} s")))


class Batcher(QueueWorker):
    """Micro-batching: the oldest request plus every compatible queued one decode together to the end."""

    kind = "micro"

    # --- the worker ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            self.stats.running = len(batch)
            try:
                if batch[0].kind == "embed":
                    self._run_embed(batch)
                else:
                    self._run_chat(batch)
            except Exception as e:  # never let the worker die: report to every job of the batch
                for job in batch:
                    job.sink(("error", e))
            finally:
                self.stats.running = 0

    def _next_batch(self) -> list[_Job] | None:
        """Wait for work, give companions ``batch_wait_s`` to arrive, then take compatible jobs."""
        with self._cond:
            while not self._stop and (not self._pending or self._paused):
                self._cond.wait(0.25)
                self._expire()
            if self._stop:
                return None
            first_seen = time.perf_counter()
            while len(self._pending) < self.max_batch_size and not self._stop and not self._paused:
                left = self.batch_wait_s - (time.perf_counter() - first_seen)
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._stop or self._paused or not self._pending:
                return [] if not self._stop else None
            self._expire()
            if not self._pending:
                return []
            key = self._pending[0].key
            batch = [j for j in self._pending if j.key == key][: self.max_batch_size]
            for job in batch:
                self._pending.remove(job)
            return batch

    def _run_chat(self, batch: list[_Job]) -> None:
        from omnibind.api import TextDecoder

        start = time.perf_counter()
        try:
            steps, lengths, detok = _open_batch(self.model, [j.payload for j in batch], batch)
        except Exception as e:
            if len(batch) > 1:
                for job in batch:
                    self._run_chat([job])
                return
            batch[0].sink(("error", e))
            return
        decoders = [TextDecoder(detok, j.options.get("stop") or []) for j in batch]
        counts = [0] * len(batch)
        done = [False] * len(batch)
        tokens = 0
        try:
            for step in steps:
                now = time.perf_counter()
                for i, job in enumerate(batch):
                    if done[i]:
                        continue
                    tok = step[i] if i < len(step) else None
                    if job.cancelled.is_set() or now > job.deadline:
                        done[i] = True
                        self._abandon(job, now)
                        continue
                    if tok is None:
                        done[i] = True
                        self._finish(job, decoders[i], lengths[i], counts[i], "stop", start, len(batch))
                        continue
                    counts[i] += 1
                    tokens += 1
                    delta = decoders[i].push(tok)
                    if delta:
                        job.sink(("delta", delta))
                    if decoders[i].stopped or counts[i] >= job.options["max_new_tokens"]:
                        done[i] = True
                        reason = "stop" if decoders[i].stopped else "length"
                        self._finish(job, decoders[i], lengths[i], counts[i], reason, start, len(batch))
                if all(done):
                    break
        finally:
            _close(steps)
        for i, job in enumerate(batch):  # the decoder ran out (every row hit EOS or the batch's max)
            if not done[i]:
                reason = "length" if counts[i] >= job.options["max_new_tokens"] else "stop"
                self._finish(job, decoders[i], lengths[i], counts[i], reason, start, len(batch))
        self.stats.record_batch(len(batch), time.perf_counter() - start, tokens)


def _open_batch(model: Any, conversations: list[Any], jobs: list[_Job]) -> tuple[Iterator[Any], list[int], Any]:
    """Start one batched decode: (per-step token lists, prompt lengths, detokenize).

    Rows share the sampling settings of the first job; each job's own stop strings and token
    budget are applied by its decoder in the loop above.
    """
    first = jobs[0].options
    batch = model.open_batch(
        conversations,
        max_new_tokens=max(j.options["max_new_tokens"] for j in jobs),
        temperature=first.get("temperature", 0.0),
        top_p=first.get("top_p", 1.0),
        top_k=first.get("top_k", 0),
        repetition_penalty=first.get("repetition_penalty", 1.0),
        seed=first.get("seed"),
        # the context check runs on the batch's largest max_tokens; a row it refuses is retried
        # alone (``_run_chat``), so each request is judged on its own budget
        max_prompt_tokens=first.get("max_prompt_tokens"),
        experts=[j.options.get("experts") for j in jobs],  # per row: the experts switch is the request's own
        rows=[j.options.get("row") for j in jobs],  # per row: constraint, seed, penalties, logprobs (openai_wire)
    )
    return iter(batch), batch.prompt_tokens, batch.detokenize


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except ValueError:  # "generator already executing"
            pass


def _sampling_key(options: dict[str, Any]) -> tuple[Any, ...]:
    """Requests with equal keys share a batch. A seeded sampled request decodes alone, so its
    random stream (and answer) does not depend on who else was queued."""
    temp = options.get("temperature", 0.0)
    seed = options.get("seed")
    # the n choices of one request share a "group": they decode together, each row with its own seed
    solo = ("solo", options.get("group") or next(_ids)) if (temp > 0 and seed is not None) else ()
    return (
        "chat",
        temp,
        options.get("top_p", 1.0) if temp > 0 else 1.0,
        options.get("top_k", 0) if temp > 0 else 0,
        options.get("repetition_penalty", 1.0),
        *solo,
    )


def _sink(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Any]]) -> Callable[[tuple[str, Any]], None]:
    def put(event: tuple[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:  # the event loop is gone (server stopped): nobody is listening
            pass

    return put


class BatchStats:
    """Counters the /metrics endpoint reads (written by the worker thread, read racily: fine for metrics)."""

    def __init__(self) -> None:
        self.submitted = 0
        self.rejected = 0
        self.cancelled = 0
        self.timeouts = 0
        self.batches = 0
        self.batched_requests = 0
        self.tokens = 0
        self.running = 0
        self.steps = 0  # continuous batching: decode steps run, and sequences summed over them
        self.step_rows = 0
        self.batch_seconds_ema = 1.0
        self._recent: deque[tuple[float, int]] = deque(maxlen=4096)

    def record_batch(self, size: int, seconds: float, tokens: int) -> None:
        self.batches += 1
        self.batched_requests += size
        self.tokens += tokens
        self.batch_seconds_ema = 0.8 * self.batch_seconds_ema + 0.2 * seconds
        self._recent.append((time.time(), tokens))

    def tokens_per_second(self, window: float = 30.0) -> float:
        """Generated tokens per second over the last ``window`` seconds."""
        now = time.time()
        recent = [(t, n) for t, n in list(self._recent) if now - t <= window]
        return sum(n for _, n in recent) / window if recent else 0.0
