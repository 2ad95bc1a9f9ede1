"""Server settings: every limit and security default of ``omnibind serve`` in one place.

The defaults are the safe ones: loopback only, no API key needed on loopback, CORS closed, no
server-side fetching of remote URLs, no local file access, and media limits far below the
library's own (a server takes input from strangers; a script takes it from its author).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from omnibind.modalities.base import Limits


def serve_limits() -> Limits:
    """Media limits for untrusted HTTP input (tighter than the library defaults)."""
    return Limits(
        max_file_bytes=25 * 1024 * 1024,
        max_image_pixels=16_000_000,
        max_audio_seconds=120.0,
        max_video_seconds=60.0,
        max_depth_pixels=16_000_000,
        max_points=1_000_000,
        max_imu_samples=200_000,
    )


@dataclass
class ServeSettings:
    """Configuration of the HTTP server (see docs/SERVING.md for each field's meaning)."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "omnibind"
    """The id clients pass as ``model`` (also served: the model config's own name)."""
    api_key: str | None = None
    """When set, every /v1 request needs ``Authorization: Bearer <api_key>``."""
    cors_origins: list[str] = field(default_factory=list)
    """Browser origins allowed to call the API; empty = CORS closed (same-origin only)."""
    max_body_bytes: int = 40 * 1024 * 1024
    max_tokens_limit: int = 512
    default_max_tokens: int = 128
    max_messages: int = 64
    max_parts: int = 16
    """Media parts per request (over all messages)."""
    max_parts_per_message: int = 64
    """Content parts (text and media) in one message."""
    max_text_chars: int = 100_000
    """Characters of text per request, over all messages (≈ 25k tokens: beyond any context here)."""
    max_prompt_tokens: int | None = None
    """A cap on the assembled prompt (text, cues, soft tokens); None = the model's context. Either way
    prompt + ``max_tokens`` must fit the context, or the request gets a 400 naming the numbers."""
    max_embedding_inputs: int = 64
    max_stop_sequences: int = 4
    max_batch_size: int = 8
    batch_wait_ms: float = 15.0
    """How long the batcher waits for more requests before it starts a batch."""
    scheduler: str = "auto"
    """``continuous`` (llama.cpp only), ``micro``, or ``auto``: continuous on llama.cpp, micro elsewhere."""
    prefill_chunk_tokens: int = 64
    """Continuous batching: prompt rows a newcomer evaluates per decode step (bounds the others' stall)."""
    max_queue: int = 64
    """Requests waiting for a batch; the next one gets 429 with Retry-After."""
    request_timeout_s: float = 120.0
    body_timeout_s: float = 30.0
    """The whole request body must arrive within this (slow clients get 408; the worker never waits on one)."""
    media_root: Path | None = None
    """Local paths in ``image_url``/``url`` fields are read only under this folder; None = refused."""
    url_allowlist: list[str] = field(default_factory=list)
    """URL prefixes the server may fetch (``https://example.org/media/``); empty = never fetch."""
    fetch_timeout_s: float = 10.0
    limits: Limits = field(default_factory=serve_limits)
    web: bool = False
    """Serve the demo page at ``/``."""
    index: Path | None = None
    """A media index (``omnibind index build``) for ``/v1/search`` and chat's retrieved items; None = none."""

    def __post_init__(self) -> None:
        if self.media_root is not None:
            self.media_root = Path(self.media_root).expanduser().resolve()
        if self.index is not None:
            self.index = Path(self.index).expanduser().resolve()
        if isinstance(self.limits, dict):
            self.limits = Limits.from_dict({**serve_limits().__dict__, **self.limits})
        for name in (
            "max_body_bytes",
            "max_tokens_limit",
            "max_batch_size",
            "max_messages",
            "max_parts",
            "max_parts_per_message",
            "max_text_chars",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_prompt_tokens is not None and int(self.max_prompt_tokens) < 1:
            raise ValueError("max_prompt_tokens must be >= 1 (or None: the model's context)")
        if self.scheduler not in ("auto", "continuous", "micro"):
            raise ValueError(f"scheduler must be auto, continuous or micro, not {self.scheduler!r}")
        if self.prefill_chunk_tokens < 1:
            raise ValueError("prefill_chunk_tokens must be >= 1")
        if self.max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        if self.body_timeout_s <= 0:
            raise ValueError("body_timeout_s must be > 0")
        if self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be > 0")
        if self.default_max_tokens < 1:
            raise ValueError("default_max_tokens must be >= 1")
        self.default_max_tokens = min(self.default_max_tokens, self.max_tokens_limit)
        for prefix in self.url_allowlist:
            if not prefix.startswith(("http://", "https://")) or prefix.count("/") < 3:
                raise ValueError(
                    f"url allowlist entry {prefix!r} must be an http(s) prefix with a path, e.g. https://host/"
                )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServeSettings:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown serve settings: {sorted(unknown)}")
        return cls(**d)
