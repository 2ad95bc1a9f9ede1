"""``omnibind bench serve``: load-test the HTTP server on loopback, in-process.

``--schedulers`` runs continuous batching and micro-batching at 1, 4, 8 and 16 clients (``--sweep``)
side by side in one run. N closed-loop clients (each sends its next request when the previous one returns) for T seconds
against a server on 127.0.0.1 → throughput, latency percentiles, error rate, peak RSS. With
``--compare`` the same load runs twice, with micro-batching and one-at-a-time
(``max_batch_size=1``), and the ratio is the batching speedup. ``--soak`` samples RSS over a
longer run and checks its growth against a bound. Bounded: at most 64 clients, 600 s per run,
1800 s of soak; nothing but 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import typer

PROMPTS = (
    "Write a short story about a dragon who learns to cook.",
    "Explain how a bicycle works to a child.",
    "Describe a busy market in the morning.",
    "List some things to pack for a camping trip and say why.",
    "Tell me about the life of a honeybee.",
    "Describe the ocean during a storm.",
    "Write a letter to a friend about your weekend.",
    "Explain why the sky is blue.",
)
MAX_CLIENTS = 64
MAX_SECONDS = 600.0
MAX_SOAK = 1800.0


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class _RssSampler:
    """Samples this process's RSS (the server runs in-process) every ``every`` seconds."""

    def __init__(self, every: float = 0.5):
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - t0, _rss()))
            self._stop.wait(self.every)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((self.samples[-1][0] if self.samples else 0.0, _rss()))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def load_run(
    model: Any,
    *,
    clients: int,
    seconds: float,
    max_tokens: int,
    max_batch_size: int,
    image: bytes | None = None,
    rss_every: float = 0.5,
    scheduler: str = "auto",
) -> dict[str, Any]:
    """One timed run: start a server, drive it with ``clients`` closed-loop clients, stop it."""
    import httpx

    from omnibind.messages import MediaPart, Message
    from omnibind.serve.http import BackgroundServer, create_app
    from omnibind.serve.openai_responses import parse_completion
    from omnibind.serve.openai_wire import chat_request
    from omnibind.serve.settings import ServeSettings

    clients = max(1, min(int(clients), MAX_CLIENTS))
    seconds = max(1.0, min(float(seconds), MAX_SECONDS))
    settings = ServeSettings(
        max_batch_size=max_batch_size,
        scheduler=scheduler,
        max_queue=max(clients * 2, 8),
        max_tokens_limit=max(max_tokens, 8),
        request_timeout_s=max(60.0, seconds * 2),
    )
    # Request bodies built (and the image base64-encoded) once, not in the timed loop.
    image_part = MediaPart("image", image, format="jpg") if image is not None else None
    bodies = [
        chat_request(
            [Message.user(image_part, text) if image_part else Message.user(text)],
            model="omnibind",
            max_tokens=max_tokens,
        )
        for text in PROMPTS
    ]
    latencies: list[float] = []
    tokens: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def body(i: int) -> dict[str, Any]:
        return bodies[i % len(bodies)]

    with BackgroundServer(create_app(model, settings)) as srv:
        url = srv.url + "/v1/chat/completions"
        httpx.post(url, json=body(0), timeout=120).raise_for_status()  # warm-up, untimed
        deadline = time.perf_counter() + seconds

        def client(cid: int) -> None:
            n = cid
            with httpx.Client(timeout=settings.request_timeout_s + 10) as http:
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    try:
                        r = http.post(url, json=body(n))
                        ok = r.status_code == 200
                        used = parse_completion(r.json()).completion_tokens if ok else 0
                        err = None if ok else f"HTTP {r.status_code}"
                    except Exception as e:  # a failed request is a data point, not a crash
                        ok, used, err = False, 0, type(e).__name__
                    with lock:
                        if ok:
                            latencies.append(time.perf_counter() - t0)
                            tokens.append(used)
                        else:
                            errors.append(err or "error")
                    n += clients

        threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
        with _RssSampler(rss_every) as rss:
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds + settings.request_timeout_s + 30)
            elapsed = time.perf_counter() - start
        worker = srv.server.config.app.state.batcher
        stats, kind = worker.stats, worker.kind
        # continuous: sequences per decode step; micro: requests per batch
        batches, batched = (
            (stats.steps, stats.step_rows) if kind == "continuous" else (stats.batches, stats.batched_requests)
        )
    done = len(latencies)
    total = done + len(errors)
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "max_batch_size": max_batch_size,
        "scheduler": kind,
        "max_tokens": max_tokens,
        "with_image": image is not None,
        "requests": done,
        "errors": len(errors),
        "error_rate": round(len(errors) / total, 4) if total else 0.0,
        "error_kinds": sorted(set(errors)),
        "requests_per_s": round(done / elapsed, 3),
        "tokens_per_s": round(sum(tokens) / elapsed, 2),
        "mean_completion_tokens": round(sum(tokens) / done, 1) if done else 0.0,
        "latency_p50_s": round(_percentile(latencies, 50), 3),
        "latency_p95_s": round(_percentile(latencies, 95), 3),
        "latency_p99_s": round(_percentile(latencies, 99), 3),
        "mean_batch_size": round(batched / batches, 2) if batches else 0.0,
        "peak_rss_mb": round(max(r for _, r in rss.samples) / 2**20, 1),
        "rss_samples_mb": [(round(t, 1), round(r / 2**20, 1)) for t, r in rss.samples],
    }


def scheduler_sweep(
    model: Any, clients: list[int], seconds: float, max_tokens: int, batch_size: int, image: bytes | None
) -> list[dict[str, Any]]:
    """Continuous batching vs micro-batching at each client count, side by side in one run
    (the two alternate per client count, so a change in machine load hits both)."""
    rows = []
    for n in clients:
        cont, micro = (
            load_run(
                model,
                clients=n,
                seconds=seconds,
                max_tokens=max_tokens,
                max_batch_size=batch_size,
                image=image,
                scheduler=kind,
            )
            for kind in ("continuous", "micro")
        )
        for r in (cont, micro):
            r.pop("rss_samples_mb", None)
        ratio = round(cont["tokens_per_s"] / max(micro["tokens_per_s"], 1e-9), 2)
        rows.append({"clients": n, "continuous": cont, "micro": micro, "throughput_ratio": ratio})
    return rows


def soak_verdict(samples: list[tuple[float, float]], bound_mb: float) -> dict[str, Any]:
    """RSS growth after warm-up: the first quarter's median vs the last quarter's max."""
    values = [r for _, r in samples]
    q = max(1, len(values) // 4)
    base = sorted(values[:q])[len(values[:q]) // 2]
    late = max(values[-q:])
    return {
        "rss_first_quarter_median_mb": base,
        "rss_last_quarter_median_mb": sorted(values[-q:])[len(values[-q:]) // 2],
        "rss_last_quarter_max_mb": late,
        "growth_mb": round(late - base, 1),
        "bound_mb": bound_mb,
        "ok": late - base <= bound_mb,
    }


def bench_serve_command(
    clients: int = typer.Option(8, min=1, max=MAX_CLIENTS, help="Concurrent closed-loop clients."),
    seconds: float = typer.Option(30.0, min=1, max=MAX_SECONDS, help="Duration of each timed run."),
    max_tokens: int = typer.Option(32, min=1, max=512, help="max_tokens of every request."),
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint, config or preset; default embedded."),
    batch_size: int = typer.Option(8, help="max_batch_size of the batched run."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="Also run one-at-a-time for the speedup."),
    image: bool = typer.Option(False, "--image", help="Send the example cat photo with every request."),
    soak: float = typer.Option(0.0, min=0, max=MAX_SOAK, help="Soak: run this many seconds, sampling RSS."),
    rss_bound_mb: float = typer.Option(64.0, help="Soak passes if RSS grows by at most this much."),
    out: Path | None = typer.Option(None, "--out", help="Also write the figures as JSON."),
    backend: str | None = typer.Option(None, "--backend", help="LLM backend override: transformers | llamacpp."),
    schedulers: bool = typer.Option(
        False,
        "--schedulers",
        help="Continuous vs micro-batching at each --sweep client count, in one run (llama.cpp).",
    ),
    sweep: str = typer.Option("1,4,8,16", help="Client counts of --schedulers."),
) -> None:
    """Load-test the HTTP server on 127.0.0.1: throughput, p50/p95/p99 latency, errors, peak RSS,
    batching speedup (batched vs one-at-a-time) and an optional RSS soak."""
    import os

    import torch

    import omnibind

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 8)))
    m = omnibind.load(model, backend=backend)
    img = None
    if image:
        from omnibind.bench.core import example_files

        img = Path(example_files()["image"]).read_bytes()
    results: dict[str, Any] = {"model": m.config.name, "threads": torch.get_num_threads()}
    if schedulers:
        results["schedulers"] = scheduler_sweep(
            m, [int(c) for c in sweep.split(",") if c.strip()], seconds, max_tokens, batch_size, img
        )
    elif soak > 0:
        run = load_run(
            m, clients=clients, seconds=soak, max_tokens=max_tokens, max_batch_size=batch_size, image=img, rss_every=2.0
        )
        results["soak"] = run
        results["soak_verdict"] = soak_verdict(run["rss_samples_mb"], rss_bound_mb)
    else:
        kw = dict(clients=clients, seconds=seconds, max_tokens=max_tokens, image=img)
        results["batched"] = load_run(m, max_batch_size=batch_size, **kw)
        if compare:
            results["one_at_a_time"] = load_run(m, max_batch_size=1, **kw)
            b, s = results["batched"], results["one_at_a_time"]
            results["speedup_tokens_per_s"] = round(b["tokens_per_s"] / max(s["tokens_per_s"], 1e-9), 2)
            results["speedup_requests_per_s"] = round(b["requests_per_s"] / max(s["requests_per_s"], 1e-9), 2)
    _print(results)
    if out:
        out.write_text(json.dumps(results, indent=2))
    if soak > 0 and not results["soak_verdict"]["ok"]:
        raise typer.Exit(1)


def _print(results: dict[str, Any]) -> None:
    typer.echo(f"model {results['model']}, torch threads {results['threads']}, server and clients on 127.0.0.1")
    for name in ("batched", "one_at_a_time", "soak"):
        r = results.get(name)
        if not r:
            continue
        typer.echo(
            f"{name:<14} batch≤{r['max_batch_size']:<2} clients {r['clients']:<3} {r['seconds']:>6.1f} s  "
            f"{r['requests']:>4} req  {r['requests_per_s']:6.2f} req/s  {r['tokens_per_s']:7.1f} tok/s  "
            f"p50 {r['latency_p50_s']:.2f} s  p95 {r['latency_p95_s']:.2f} s  p99 {r['latency_p99_s']:.2f} s  "
            f"errors {r['error_rate']:.1%}  mean batch {r['mean_batch_size']}  peak RSS {r['peak_rss_mb']:.0f} MiB"
        )
    if "schedulers" in results:
        typer.echo("clients  scheduler    tok/s   req/s  p50 s  p95 s  errors  mean batch")
        for row in results["schedulers"]:
            for name in ("continuous", "micro"):
                r = row[name]
                typer.echo(
                    f"{row['clients']:>7}  {name:<10} {r['tokens_per_s']:>7.1f} {r['requests_per_s']:>7.2f} "
                    f"{r['latency_p50_s']:>6.2f} {r['latency_p95_s']:>6.2f} {r['error_rate']:>7.1%}  "
                    f"{r['mean_batch_size']}"
                )
            typer.echo(f"{'':>7}  continuous ÷ micro throughput: {row['throughput_ratio']}×")
    if "speedup_tokens_per_s" in results:
        typer.echo(
            f"batching speedup: {results['speedup_tokens_per_s']}× tokens/s, "
            f"{results['speedup_requests_per_s']}× requests/s"
        )
    if "soak_verdict" in results:
        v = results["soak_verdict"]
        typer.echo(
            f"soak RSS: first-quarter median {v['rss_first_quarter_median_mb']:.0f} MiB → last-quarter median "
            f"{v['rss_last_quarter_median_mb']:.0f}, max {v['rss_last_quarter_max_mb']:.0f} MiB "
            f"(growth {v['growth_mb']:+.1f} MiB, bound {v['bound_mb']:.0f}) {'OK' if v['ok'] else 'FAIL'}"
        )
