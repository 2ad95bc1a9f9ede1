"""The OpenAI-compatible HTTP server: ``create_app(model, settings)`` builds the FastAPI app.

Endpoints: ``POST /v1/chat/completions`` and ``POST /v1/completions`` (SSE streaming or not;
both run through ``chat_flow``), ``GET /v1/models``,
``POST /v1/embeddings`` (bind-space vectors of any modality), ``GET /v1/info``, ``GET /health``,
``GET /metrics`` (Prometheus text), ``POST /v1/search`` (media out by retrieval, ``serve/search.py``),
and the demo page at ``/`` when ``settings.web``.
Every error is JSON in OpenAI's shape; no bad input stops the server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from omnibind.serve import chat_flow
from omnibind.serve import search as media_search
from omnibind.serve.batching import QueueFullError, QueueWorker
from omnibind.serve.errors import APIError, to_api_error
from omnibind.serve.metrics import Metrics
from omnibind.serve.openai_responses import embeddings_body, model_card, with_retrieved
from omnibind.serve.requests import decode_media, parse_chat_request, parse_embedding_inputs
from omnibind.serve.scheduler import make_scheduler
from omnibind.serve.settings import ServeSettings

WEB_DIR = Path(__file__).resolve().parent / "web"
ENDPOINTS = (
    "/",
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/info",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/search",
)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def create_app(model: Any, settings: ServeSettings | None = None) -> Any:
    """Build the app around a loaded ``omnibind.Model`` (or ``None`` to load ``omnibind.load()``)."""
    settings = settings or ServeSettings()
    if model is None:
        import omnibind

        model = omnibind.load()
    batcher = make_scheduler(model, settings)  # continuous on llama.cpp, micro-batching elsewhere
    metrics = Metrics(batcher)
    served = list(dict.fromkeys([settings.model_name, model.config.name]))
    decode_slots = asyncio.Semaphore(4)  # media decoding in threads: bounded, as it holds decoded arrays
    info_cache: dict[str, Any] = {}
    template = getattr(getattr(model, "core", None), "template", None)  # its tool format, default system prompt
    index = media_search.open_server_index(model, settings)  # None without --index

    @asynccontextmanager
    async def lifespan(_app: Any):
        yield
        batcher.close()

    app = FastAPI(title="omnibind", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.settings = settings
    app.state.model = model
    app.state.metrics = metrics
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(GuardMiddleware, settings=settings, metrics=metrics)

    # --- errors, always in OpenAI's shape ------------------------------------------------------
    @app.exception_handler(APIError)
    async def _api_error(_req: Request, e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, e: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        err = APIError(e.status_code, str(e.detail), type=kind)
        return JSONResponse(err.body(), status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_req: Request, e: Exception) -> JSONResponse:
        err = APIError(500, f"internal error: {type(e).__name__}: {e}", type="server_error")
        return JSONResponse(err.body(), status_code=500)

    # --- plain endpoints -----------------------------------------------------------------------
    @app.get("/health")
    async def health() -> JSONResponse:
        ok = batcher.alive
        body = {
            "status": "ok" if ok else "unavailable",
            "model": served[0],
            "queue_depth": batcher.depth,
            "scheduler": batcher.kind,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(m) for m in served]}

    @app.get("/v1/models/{model_id}")
    async def one_model(model_id: str) -> dict[str, Any]:
        if model_id not in served:
            raise APIError(404, f"The model {model_id!r} does not exist on this server", code="model_not_found")
        return model_card(model_id)

    @app.get("/v1/info")
    async def info() -> dict[str, Any]:
        if not info_cache:
            info_cache.update(await run_in_threadpool(public_info, model, settings))
            info_cache["search"] = index.modalities() if index is not None else None
        return info_cache

    if settings.web:

        @app.get("/")
        async def page() -> Response:
            headers = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
            return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=headers)

    # --- chat ----------------------------------------------------------------------------------
    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes, settings.body_timeout_s)
        req = parse_chat_request(body, settings, served, template)
        retrieve = media_search.parse_retrieve(body, index)
        if retrieve is not None and req.stream:
            raise APIError(400, "omnibind_retrieve is not available with stream: true", param="omnibind_retrieve")
        _admit(batcher)
        async with decode_slots:
            messages = await run_in_threadpool(decode_media, req.messages, settings.limits)
        choices = chat_flow.submit(batcher, [(req, messages)])
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if req.stream:
            stream = chat_flow.chat_sse(choices, cid, created, req.model, req.include_usage, metrics)
            return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
        results = await chat_flow.collect(choices, lambda h: _wait(h, request, settings.request_timeout_s))
        metrics.tokens(sum(r.completion_tokens for r in results))
        out = chat_flow.chat_json(cid, created, req.model, choices, results)
        if retrieve is not None:
            query = media_search.turn_query(messages)
            hits = await media_search.run_search(batcher, index, query, retrieve, settings.request_timeout_s + 5)
            out = with_retrieved(out, media_search.retrieved_parts(hits))
        return JSONResponse(out)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = await read_json(request, settings.max_body_bytes, settings.body_timeout_s)
        reqs, stream, include_usage = chat_flow.parse_completion_request(body, settings, served, template)
        _admit(batcher)
        choices = chat_flow.submit(batcher, [(r, r.messages) for r in reqs])
        cid = f"cmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model_id = reqs[0].model
        if stream:
            events = chat_flow.completion_sse(choices, cid, created, model_id, include_usage, len(reqs), metrics)
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        results = await chat_flow.collect(choices, lambda h: _wait(h, request, settings.request_timeout_s))
        metrics.tokens(sum(r.completion_tokens for r in results))
        return JSONResponse(chat_flow.completion_json(cid, created, model_id, choices, results, len(reqs)))

    # --- embeddings ----------------------------------------------------------------------------
    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        body = await read_json(request, settings.max_body_bytes, settings.body_timeout_s)
        model_id, parts, encoding = parse_embedding_inputs(body, settings, served)
        _admit(batcher)
        async with decode_slots:
            parts = await run_in_threadpool(decode_media, parts, settings.limits)
        try:
            vectors = await asyncio.wait_for(batcher.embed(parts), settings.request_timeout_s + 5)
        except Exception as e:
            raise to_api_error(e) from None
        return embeddings_body(vectors, model_id, encoding)

    # --- media out by retrieval ----------------------------------------------------------------
    @app.post("/v1/search")
    async def search(request: Request) -> dict[str, Any]:
        body = await read_json(request, settings.max_body_bytes, settings.body_timeout_s)
        part, spec = media_search.parse_search_request(body, settings, index)
        _admit(batcher)
        async with decode_slots:
            part = (await run_in_threadpool(decode_media, [part], settings.limits))[0]
        hits = await media_search.run_search(batcher, index, part, spec, settings.request_timeout_s + 5)
        return media_search.hits_body(hits, served[0])

    @app.get("/v1/search/media/{item}")
    async def search_media(item: str) -> Response:
        return FileResponse(media_search.media_file(index, item), headers={"X-Content-Type-Options": "nosniff"})

    return app


# --- helpers --------------------------------------------------------------------------------------
def _admit(batcher: QueueWorker) -> None:
    """Refuse early (before decoding media) when the queue is already full."""
    if batcher.depth >= batcher.max_queue:
        raise to_api_error(QueueFullError(batcher.depth, batcher.retry_after()))


async def read_json(request: Any, limit: int, timeout_s: float = 30.0) -> Any:
    """The request body as JSON, bounded in size and in time, with 400s for anything that is not JSON.

    The time bound is for the whole body, not per chunk: a client that trickles a byte at a time
    (slowloris) would pass any per-read timeout while holding its connection and its buffer."""
    size = 0
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise APIError(413, f"request body exceeds the limit of {limit} bytes", code="payload_too_large")
                chunks.append(chunk)
    except TimeoutError:
        raise APIError(
            408, f"the request body did not arrive within {timeout_s:g} s ({size} bytes so far)", code="body_timeout"
        ) from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise APIError(400, "empty request body; expected a JSON object", code="invalid_json")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise APIError(400, f"malformed JSON in the request body: {e}", code="invalid_json") from None


async def _wait(handle: Any, request: Any, timeout: float) -> Any:
    """Wait for a non-streamed answer; cancel the work if the client disconnects meanwhile."""
    task = asyncio.ensure_future(handle.result())
    deadline = time.perf_counter() + timeout + 5
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if done:
                try:
                    return task.result()
                except Exception as e:
                    raise to_api_error(e) from None
            if await request.is_disconnected():
                handle.cancel()
                raise APIError(499, "client disconnected", type="cancelled", code="cancelled")
            if time.perf_counter() > deadline:
                handle.cancel()
                raise APIError(504, "request timed out", type="timeout_error", code="timeout")
    finally:
        if not task.done():
            task.cancel()
        handle.cancel()  # a no-op once finished; stops decoding if we leave early


def public_info(model: Any, settings: ServeSettings) -> dict[str, Any]:
    """What the demo page shows: encoders, projectors, LLM, limits (no file-system paths)."""
    full = model.info()
    encoders = {
        m: {k: e[k] for k in ("name", "class", "output_dim", "parameters", "trainable") if k in e}
        for m, e in full.get("encoders", {}).items()
    }
    llm = {k: v for k, v in full.get("llm", {}).items() if k != "source"}
    llm["source"] = Path(str(full.get("llm", {}).get("source", ""))).name
    return {
        "name": full.get("name"),
        "trained": full.get("trained"),
        "llm": llm,
        "injection": full.get("injection"),
        "bind_dim": full.get("bind_dim"),
        "encoders": encoders,
        "projectors": full.get("projectors", {}),
        "trainable_parameters": full.get("trainable_parameters"),
        "server": {
            "max_tokens": settings.max_tokens_limit,
            "default_max_tokens": settings.default_max_tokens,
            "max_batch_size": settings.max_batch_size,
            "scheduler": settings.scheduler,
            "max_body_bytes": settings.max_body_bytes,
            "max_parts": settings.max_parts,
            "limits": dict(settings.limits.__dict__),
        },
    }


class GuardMiddleware:
    """Pure ASGI (streaming-safe): API key, Content-Length limit, and request metrics."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: Metrics):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.key = settings.api_key.encode() if settings.api_key else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else ("/v1/models" if path.startswith("/v1/models/") else "other")
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.in_flight += 1
        try:
            denial = self._check(scope, path)
            if denial is not None:
                await _send_json(send_wrapped, denial)
                return
            await self.app(scope, receive, send_wrapped)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe(endpoint, status["code"], time.perf_counter() - start)

    def _check(self, scope: dict[str, Any], path: str) -> APIError | None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.key is not None and path.startswith("/v1/"):
            auth = headers.get("authorization", b"")
            token = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.key):
                return APIError(
                    401,
                    "missing or wrong API key: send 'Authorization: Bearer <key>'",
                    type="authentication_error",
                    code="invalid_api_key",
                )
        length = headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return APIError(400, "invalid Content-Length header")
            if n > self.settings.max_body_bytes:
                return APIError(
                    413,
                    f"request body of {n} bytes exceeds the limit of {self.settings.max_body_bytes} bytes",
                    code="payload_too_large",
                )
        return None


async def _send_json(send: Any, err: APIError) -> None:
    body = json.dumps(err.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if err.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    # the request body is not read; tell the client this connection will not be reused for it
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BackgroundServer:
    """uvicorn running ``app`` in a daemon thread on 127.0.0.1 (tests, benches, the web command)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import threading

        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="omnibind-http", daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
            time.sleep(0.02)
        self.host = host
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
