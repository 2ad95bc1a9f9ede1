"""``omnibind serve`` and ``omnibind web``. Only typer and the stdlib at import time (fast ``--help``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

LOOPBACK = ("127.0.0.1", "localhost", "::1")


# Command parameters named differently from the ServeSettings field they set.
_SETTING_NAMES = {
    "allow_url": "url_allowlist",
    "cors_origin": "cors_origins",
    "timeout": "request_timeout_s",
    "body_timeout": "body_timeout_s",
    "max_tokens": "max_tokens_limit",
}
_LIMIT_FLAGS = ("max_audio_seconds", "max_video_seconds", "max_image_pixels", "max_points")
_NOT_SETTINGS = ("model", "backend", "open_browser")


def _settings(flags: dict[str, Any]) -> Any:
    """``ServeSettings`` from a command's parameters (by name); media limits left at None keep the defaults."""
    from omnibind.serve.settings import ServeSettings, serve_limits

    kw = {_SETTING_NAMES.get(k, k): v for k, v in flags.items() if k not in _NOT_SETTINGS}
    limits = serve_limits()
    for name in _LIMIT_FLAGS:
        value = kw.pop(name, None)
        if value is not None:
            setattr(limits, name, value)
    for name in ("url_allowlist", "cors_origins"):
        if name in kw:
            kw[name] = list(kw[name])
    mb = kw.pop("max_body_mb")
    return ServeSettings(limits=limits, max_body_bytes=int(float(mb) * 1024 * 1024), **kw)


def serve_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint folder, config file or preset."),
    backend: str | None = typer.Option(None, "--backend", help="LLM backend override: transformers | llamacpp."),
    host: str = typer.Option("127.0.0.1", help="Address to bind. Anything but loopback needs --api-key."),
    port: int = typer.Option(8000, help="Port."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="OMNIBIND_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1/*."
    ),
    model_name: str = typer.Option("omnibind", help="The model id clients send."),
    web: bool = typer.Option(False, "--web/--no-web", help="Also serve the demo page at /."),
    media_root: Path | None = typer.Option(None, help="Allow local file paths in requests, only under this folder."),
    index: Path | None = typer.Option(None, "--index", help="Media index for /v1/search (omnibind index build DIR)."),
    allow_url: list[str] = typer.Option([], "--allow-url", help="URL prefix the server may fetch (repeatable)."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Browser origin allowed by CORS (repeatable)."),
    max_batch_size: int = typer.Option(8, help="Requests decoded together."),
    batch_wait_ms: float = typer.Option(15.0, help="How long a batch waits for companions."),
    scheduler: str = typer.Option(
        "auto", help="continuous (llama.cpp: requests join the running batch) | micro | auto (continuous on llama.cpp)."
    ),
    prefill_chunk_tokens: int = typer.Option(64, help="Continuous batching: prompt rows evaluated per step."),
    max_queue: int = typer.Option(64, help="Queued requests before 429."),
    timeout: float = typer.Option(120.0, help="Per-request timeout in seconds."),
    body_timeout: float = typer.Option(30.0, help="Seconds the whole request body may take to arrive (else 408)."),
    max_tokens: int = typer.Option(512, help="Largest max_tokens a request may ask for."),
    max_body_mb: float = typer.Option(40.0, help="Largest request body in MiB."),
    max_prompt_tokens: int | None = typer.Option(
        None, help="Largest assembled prompt in tokens (default: the model's context, less max_tokens)."
    ),
    max_text_chars: int = typer.Option(100_000, help="Characters of text per request."),
    max_audio_seconds: float | None = typer.Option(None, help="Media limit (default 120)."),
    max_video_seconds: float | None = typer.Option(None, help="Media limit (default 60)."),
    max_image_pixels: int | None = typer.Option(None, help="Media limit (default 16M)."),
    max_points: int | None = typer.Option(None, help="Media limit (default 1M)."),
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (see docs/SERVING.md)."""
    flags = dict(locals())  # the command's parameters by name, before any other local exists
    if host not in LOOPBACK and not api_key:
        typer.secho(
            f"refusing to listen on {host} without --api-key (or OMNIBIND_API_KEY): the API would be open to "
            "anyone who can reach this machine",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    try:
        settings = _settings(flags)
    except ValueError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    _run(model, backend, settings)


def web_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint folder, config file or preset."),
    backend: str | None = typer.Option(None, "--backend", help="LLM backend override."),
    port: int = typer.Option(8000, help="Port on 127.0.0.1."),
    max_tokens: int = typer.Option(512, help="Largest max_tokens the page may ask for."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    index: Path | None = typer.Option(None, "--index", help="Media index to search from the page."),
) -> None:
    """The demo page (chat with any mix of uploaded or recorded inputs) on http://127.0.0.1:PORT/."""
    settings = _settings(
        {"host": "127.0.0.1", "port": port, "web": True, "max_tokens": max_tokens, "max_body_mb": 40.0, "index": index}
    )
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(3.0, webbrowser.open, args=(f"http://127.0.0.1:{port}/",)).start()
    _run(model, backend, settings)


def _run(model_name: str | None, backend: str | None, settings: Any) -> None:
    import uvicorn

    import omnibind
    from omnibind.errors import OmnibindError
    from omnibind.serve.http import create_app

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        model = omnibind.load(model_name, backend=backend)
        app = create_app(model, settings)  # a scheduler the backend cannot run is refused here
    except OmnibindError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    host, port = settings.host, settings.port
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"omnibind: serving {model.config.name} on http://{shown}:{port}/v1" + (" (page at /)" if settings.web else "")
    )
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
