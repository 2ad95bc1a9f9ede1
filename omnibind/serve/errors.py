"""Errors the server reports, always in OpenAI's shape ``{"error": {message, type, param, code}}``.

``APIError`` is what every handler raises; ``to_api_error`` maps the batcher's and the model's
exceptions to the status a client sees (429 queue full, 503 closing, 504 timeout, 4xx bad media).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from omnibind.errors import InputError, InputTooLargeError, OmnibindError, PromptTooLongError
from omnibind.serve.batching import QueueFullError, RequestCancelledError, RequestTimeoutError, ServerClosingError


class APIError(Exception):
    """An error reported to the client in OpenAI's shape ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    """A 400 for a request field that is malformed or out of range."""
    return APIError(400, message, param=param, code=code)


def json_type(x: Any) -> str:
    """How a JSON value's type reads in an error message ("an object", "a number"...)."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(x), "a number" if is_number(x) else type(x).__name__
    )


def is_number(x: Any) -> bool:
    """A finite JSON number (booleans are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x: Any) -> bool:
    """A JSON integer (booleans are not integers here)."""
    return isinstance(x, int) and not isinstance(x, bool)


def media_error(e: Exception) -> APIError:
    """An error raised while the model decoded or encoded a request → a 4xx."""
    if isinstance(e, PromptTooLongError):  # OpenAI's code for the same refusal
        return APIError(400, str(e), param="messages", code="context_length_exceeded")
    if isinstance(e, InputTooLargeError):
        return APIError(413, str(e), code="media_too_large")
    if isinstance(e, (InputError, OmnibindError)):
        return APIError(400, str(e), code="invalid_input")
    return APIError(400, str(e))


def to_api_error(e: BaseException) -> APIError:
    """Batcher and model exceptions → the HTTP error a client sees."""
    if isinstance(e, APIError):
        return e
    if isinstance(e, QueueFullError):
        return APIError(
            429, str(e), type="rate_limit_error", code="queue_full", headers={"Retry-After": str(e.retry_after)}
        )
    if isinstance(e, ServerClosingError):
        return APIError(503, str(e), type="server_error", code="shutting_down", headers={"Retry-After": "5"})
    if isinstance(e, (RequestTimeoutError, asyncio.TimeoutError)):
        return APIError(504, f"request timed out: {e}", type="timeout_error", code="timeout")
    if isinstance(e, RequestCancelledError):
        return APIError(499, "request cancelled", type="cancelled", code="cancelled")
    if isinstance(e, (OmnibindError, ValueError, TypeError)):
        return media_error(e)
    return APIError(500, f"internal error: {type(e).__name__}: {e}", type="server_error")
