"""Prometheus metrics of the server: request counts and latency per endpoint, the batcher's gauges.

``GuardMiddleware`` observes every request; ``GET /metrics`` renders ``Metrics.render()`` in the
Prometheus text exposition format.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

from omnibind.serve.batching import QueueWorker

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Request counts and latency histograms per endpoint, plus the batcher's gauges."""

    def __init__(self, batcher: QueueWorker):
        self.batcher = batcher
        self.started = time.time()
        self.in_flight = 0
        self.counts: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.completion_tokens = 0

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        self.counts[(endpoint, status)] += 1
        b = self.buckets[endpoint]
        for i, edge in enumerate(LATENCY_BUCKETS):
            if seconds <= edge:
                b[i] += 1
        b[-1] += 1
        self.sums[endpoint] += seconds

    def tokens(self, n: int) -> None:
        """Count generated tokens."""
        self.completion_tokens += n

    def render(self) -> str:
        """Prometheus text exposition format."""
        s = self.batcher.stats
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, rows: list[tuple[str, float]]) -> None:
            out.append(f"# HELP omnibind_{name} {help_}")
            out.append(f"# TYPE omnibind_{name} {kind}")
            out.extend(f"omnibind_{name}{labels} {value:g}" for labels, value in rows)

        metric(
            "requests_total",
            "counter",
            "HTTP requests by endpoint and status.",
            [(f'{{endpoint="{e}",status="{c}"}}', n) for (e, c), n in sorted(self.counts.items())],
        )
        rows = []
        for e, b in sorted(self.buckets.items()):
            for edge, n in zip(LATENCY_BUCKETS, b):
                rows.append((f'_bucket{{endpoint="{e}",le="{edge}"}}', n))
            rows += [
                (f'_bucket{{endpoint="{e}",le="+Inf"}}', b[-1]),
                (f'_sum{{endpoint="{e}"}}', self.sums[e]),
                (f'_count{{endpoint="{e}"}}', b[-1]),
            ]
        out.append("# HELP omnibind_request_seconds Request latency (for streams: until the last byte).")
        out.append("# TYPE omnibind_request_seconds histogram")
        out.extend(f"omnibind_request_seconds{labels} {value:g}" for labels, value in rows)
        gauges = [
            ("requests_in_flight", "gauge", "HTTP requests being handled.", self.in_flight),
            ("queue_depth", "gauge", "Requests waiting for a batch.", self.batcher.depth),
            ("batch_running", "gauge", "Requests in the batch being decoded.", s.running),
            ("tokens_per_second", "gauge", "Generated tokens per second over the last 30 s.", s.tokens_per_second()),
            ("generated_tokens_total", "counter", "Tokens generated.", s.tokens),
            ("batches_total", "counter", "Batches run (chat and embeddings).", s.batches),
            ("batched_requests_total", "counter", "Requests run inside batches.", s.batched_requests),
            ("rejected_total", "counter", "Requests refused because the queue was full (429).", s.rejected),
            ("cancelled_total", "counter", "Requests cancelled (client disconnected).", s.cancelled),
            ("timeouts_total", "counter", "Requests that passed their deadline.", s.timeouts),
            ("resident_memory_bytes", "gauge", "Resident set size of the server process.", _rss_bytes()),
            ("uptime_seconds", "gauge", "Seconds since the app was created.", time.time() - self.started),
        ]
        for name, kind, help_, value in gauges:
            metric(name, kind, help_, [("", float(value))])
        kind = [(f'{{kind="{self.batcher.kind}"}}', 1.0)]
        metric("scheduler", "gauge", "The request scheduler (label kind: continuous | micro).", kind)
        metric("decode_steps_total", "counter", "Continuous batching: decode steps run.", [("", float(s.steps))])
        return "\n".join(out) + "\n"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
