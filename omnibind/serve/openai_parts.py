"""OpenAI request JSON → omnibind messages, with every bad input turned into a clear 4xx.

Content parts understood in ``messages[].content`` and in ``/v1/embeddings`` inputs:

- ``{"type": "text", "text": "..."}``
- ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`` — also a local
  path (``file:///...`` or relative) under the server's media root, or an http(s) URL that
  matches the configured allowlist. Anything else is refused.
- ``{"type": "input_audio", "input_audio": {"data": "<base64>", "format": "wav"}}`` (OpenAI's shape;
  wav, mp3, flac, ogg, webm...)
- omnibind extensions, same shape as ``input_audio`` plus optional ``options`` and ``url``:
  ``input_video``, ``input_depth``, ``input_thermal``, ``input_imu``, ``input_points``, e.g.
  ``{"type": "input_imu", "input_imu": {"data": "<base64 csv>", "format": "csv", "options": {"sample_rate": 50}}}``
- ``{"type": "mix", "mix": {"parts": [<parts above>], "weights": [0.7, 0.3]}}`` — one weighted
  bind-space vector (ImageBind-LLM's embedding arithmetic).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.errors import InputError, InputTooLargeError, OmnibindError
from omnibind.messages import MediaPart, Message, MixPart, Part, TextPart
from omnibind.modalities.base import Limits
from omnibind.serve.settings import ServeSettings


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
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


# --- media part types ---------------------------------------------------------------------------
EXTENSION_TYPES = {f"input_{m}": m for m in ("video", "depth", "thermal", "imu", "points")}
PART_TYPES = ("text", "image_url", "input_audio", *EXTENSION_TYPES, "mix")

# Loader options a client may set, with their allowed values: anything else is refused, so a
# request cannot, say, ask for a billion resampled points.
OPTION_SPECS: dict[str, dict[str, Any]] = {
    "image": {},
    "audio": {},
    "video": {"num_frames": (int, 1, 32), "audio": (bool,)},
    "depth": {"kind": ("metric", "disparity"), "scale": (float, 1e-9, 1e3)},
    "thermal": {"unit": ("celsius", "relative"), "allow_rgb": (bool,)},
    "imu": {"sample_rate": (float, 0.1, 10_000.0)},
    "points": {"num_points": (int, 16, 16_384), "seed": (int, 0, 2**31 - 1)},
}

_MIME_FORMATS = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
    "text/csv": "csv",
    "application/x-npy": "npy",
}
_FORMAT_RE = re.compile(r"^[a-z0-9]{1,8}$")


@dataclass
class PartBudget:
    """Counts media parts across a whole request (``max_parts``)."""

    limit: int
    used: int = 0

    def take(self, where: str) -> None:
        self.used += 1
        if self.used > self.limit:
            raise APIError(
                413, f"{where}: more than {self.limit} media parts in one request", param=where, code="too_many_parts"
            )


# --- decoding sources ---------------------------------------------------------------------------
def decode_base64(data: Any, where: str, limits: Limits) -> bytes:
    """Strict base64 → bytes, refusing oversized payloads before decoding them."""
    if not isinstance(data, str):
        raise bad(f"{where}: expected a base64 string, got {_type(data)}", where)
    if len(data) * 3 // 4 > limits.max_file_bytes + 3:
        raise APIError(
            413,
            f"{where}: payload of ~{len(data) * 3 // 4} bytes exceeds the limit of {limits.max_file_bytes} bytes",
            param=where,
            code="payload_too_large",
        )
    compact = re.sub(r"\s+", "", data)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as e:
        raise bad(f"{where}: invalid base64 data ({e})", where, "invalid_base64") from None
    if not raw:
        raise bad(f"{where}: empty media payload", where)
    return raw


def parse_data_url(url: str, where: str, limits: Limits) -> tuple[bytes, str | None]:
    """``data:<mime>;base64,<payload>`` → (bytes, format from the mime type or None to sniff)."""
    head, sep, payload = url.partition(",")
    if not sep:
        raise bad(f"{where}: malformed data URL (no comma)", where, "invalid_url")
    meta = head[5:].split(";")
    if "base64" not in [m.strip().lower() for m in meta[1:]]:
        raise bad(f"{where}: only base64 data URLs are supported (data:<mime>;base64,...)", where, "invalid_url")
    mime = meta[0].strip().lower()
    fmt = _MIME_FORMATS.get(mime)
    if fmt is None and "/" in mime:
        sub = mime.split("/", 1)[1].removeprefix("x-")
        fmt = sub if _FORMAT_RE.match(sub) and sub != "octet-stream" else None
    return decode_base64(payload, where, limits), fmt


def resolve_local(path_text: str, where: str, settings: ServeSettings) -> Path:
    """A client-named local file, only inside ``settings.media_root`` (no traversal, no symlink escape)."""
    root = settings.media_root
    if root is None:
        raise APIError(
            403,
            f"{where}: local file paths are disabled on this server (start it with --media-root to allow a folder)",
            type="permission_error",
            param=where,
            code="local_paths_disabled",
        )
    if "\x00" in path_text:
        raise bad(f"{where}: path contains a NUL byte", where, "invalid_path")
    p = Path(path_text)
    full = (p if p.is_absolute() else root / p).resolve()
    if not full.is_relative_to(root):
        raise APIError(
            403,
            f"{where}: path {path_text!r} is outside the server's media root",
            type="permission_error",
            param=where,
            code="path_outside_root",
        )
    if not full.is_file():
        raise APIError(404, f"{where}: no such file {path_text!r} under the media root", param=where, code="not_found")
    return full


def url_allowed(url: str, allowlist: list[str]) -> bool:
    """True when ``url`` starts with an allowlisted prefix, compared on parsed parts (no userinfo tricks)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or "@" in u.netloc or not u.hostname:
        return False
    for prefix in allowlist:
        a = urllib.parse.urlsplit(prefix)
        if (u.scheme, u.netloc.lower()) == (a.scheme, a.netloc.lower()) and u.path.startswith(a.path or "/"):
            if ".." not in u.path.split("/"):
                return True
    return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the allowlist, so none is followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_remote(url: str, where: str, settings: ServeSettings) -> bytes:
    """Download an allowlisted URL, bounded in bytes and time."""
    limit = settings.limits.max_file_bytes
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(url, timeout=settings.fetch_timeout_s) as resp:  # allowlisted http(s) only
            if resp.status != 200:
                raise bad(f"{where}: fetching {url} gave HTTP {resp.status}", where, "fetch_failed")
            data = resp.read(limit + 1)
    except APIError:
        raise
    except Exception as e:  # urllib raises many types (HTTPError, URLError, timeouts)
        raise bad(f"{where}: could not fetch {url}: {e}", where, "fetch_failed") from None
    if len(data) > limit:
        raise APIError(413, f"{where}: {url} is larger than {limit} bytes", param=where, code="payload_too_large")
    if not data:
        raise bad(f"{where}: {url} returned no data", where, "fetch_failed")
    return data


def source_from_url(url: Any, where: str, settings: ServeSettings) -> tuple[Any, str | None]:
    """A url field → (path or bytes, format hint)."""
    if not isinstance(url, str) or not url:
        raise bad(f"{where}: expected a non-empty URL string, got {_type(url)}", where)
    low = url[:16].lower()
    if low.startswith("data:"):
        return parse_data_url(url, where, settings.limits)
    if low.startswith(("http://", "https://")):
        if not url_allowed(url, settings.url_allowlist):
            raise APIError(
                403,
                f"{where}: remote URLs are not fetched by this server; send the media inline as a base64 data URL"
                + (" (this URL is not on the allowlist)" if settings.url_allowlist else ""),
                type="permission_error",
                param=where,
                code="remote_url_refused",
            )
        return fetch_remote(url, where, settings), _ext(urllib.parse.urlsplit(url).path)
    if low.startswith("file://"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost"):
            raise bad(f"{where}: file URLs must name a local path", where, "invalid_url")
        return str(resolve_local(urllib.parse.unquote(parsed.path), where, settings)), None
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        raise bad(f"{where}: unsupported URL scheme in {url[:40]!r}", where, "invalid_url")
    return str(resolve_local(url, where, settings)), None


# --- parts ------------------------------------------------------------------------------------
def parse_part(raw: Any, where: str, settings: ServeSettings, budget: PartBudget, *, allow_mix: bool = True) -> Part:
    """One OpenAI content part (or omnibind extension part) → TextPart / MediaPart / MixPart."""
    if isinstance(raw, str):
        return TextPart(raw)
    if not isinstance(raw, dict):
        raise bad(f"{where}: a content part must be an object with a 'type', got {_type(raw)}", where)
    kind = raw.get("type")
    if kind == "text":
        text = raw.get("text")
        if not isinstance(text, str):
            raise bad(f"{where}.text: expected a string, got {_type(text)}", f"{where}.text")
        return TextPart(text)
    if kind == "image_url":
        spec = raw.get("image_url")
        url = spec.get("url") if isinstance(spec, dict) else spec
        budget.take(where)
        source, fmt = source_from_url(url, f"{where}.image_url.url", settings)
        return MediaPart("image", source, format=fmt, name=where)
    if kind == "input_audio" or kind in EXTENSION_TYPES:
        modality = "audio" if kind == "input_audio" else EXTENSION_TYPES[kind]
        return _media_part(raw.get(kind), modality, f"{where}.{kind}", settings, budget)
    if kind == "mix":
        if not allow_mix:
            raise bad(f"{where}: a mix cannot contain another mix", where)
        return _mix_part(raw.get("mix"), f"{where}.mix", settings, budget)
    raise bad(f"{where}: unknown content part type {kind!r}; expected one of {list(PART_TYPES)}", f"{where}.type")


def _media_part(spec: Any, modality: str, where: str, settings: ServeSettings, budget: PartBudget) -> MediaPart:
    if not isinstance(spec, dict):
        raise bad(f"{where}: expected an object with 'data' (base64) and 'format', got {_type(spec)}", where)
    budget.take(where)
    fmt = spec.get("format")
    if fmt is not None and (not isinstance(fmt, str) or not _FORMAT_RE.match(fmt.lower().lstrip("."))):
        raise bad(f"{where}.format: expected a short file-type name such as 'wav', got {fmt!r}", f"{where}.format")
    fmt = fmt.lower().lstrip(".") if isinstance(fmt, str) else None
    if "data" in spec:
        source: Any = decode_base64(spec["data"], f"{where}.data", settings.limits)
    elif "url" in spec:
        source, url_fmt = source_from_url(spec["url"], f"{where}.url", settings)
        fmt = fmt or url_fmt
    else:
        raise bad(f"{where}: needs 'data' (base64) or 'url'", where)
    options = _options(spec.get("options"), modality, f"{where}.options")
    return MediaPart(modality, source, format=fmt, options=options, name=where.rsplit(".", 1)[0])


def _options(raw: Any, modality: str, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad(f"{where}: expected an object, got {_type(raw)}", where)
    specs = OPTION_SPECS[modality]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in specs:
            raise bad(f"{where}: unknown {modality} option {key!r}; allowed: {sorted(specs)}", f"{where}.{key}")
        spec = specs[key]
        if spec[0] is bool:
            if not isinstance(value, bool):
                raise bad(f"{where}.{key}: expected true/false, got {_type(value)}", f"{where}.{key}")
        elif spec[0] in (int, float):
            typ, lo, hi = spec
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if typ is int and ok and float(value) != int(value):
                ok = False
            if not ok or not lo <= value <= hi:
                raise bad(f"{where}.{key}: expected a {typ.__name__} in [{lo}, {hi}], got {value!r}", f"{where}.{key}")
            value = typ(value)
        elif value not in spec:
            raise bad(f"{where}.{key}: expected one of {list(spec)}, got {value!r}", f"{where}.{key}")
        out[key] = value
    return out


def _mix_part(spec: Any, where: str, settings: ServeSettings, budget: PartBudget) -> MixPart:
    if not isinstance(spec, dict) or not isinstance(spec.get("parts"), list) or not spec["parts"]:
        raise bad(f"{where}: expected {{'parts': [content parts], 'weights': [numbers]}}", where)
    parts = [
        parse_part(p, f"{where}.parts[{i}]", settings, budget, allow_mix=False) for i, p in enumerate(spec["parts"])
    ]
    weights = spec.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or not all(_is_number(w) for w in weights):
            raise bad(f"{where}.weights: expected a list of numbers", f"{where}.weights")
        if len(weights) != len(parts):
            raise bad(f"{where}.weights: {len(parts)} parts but {len(weights)} weights", f"{where}.weights")
        if not any(abs(w) > 0 for w in weights):
            raise bad(f"{where}.weights: all weights are zero", f"{where}.weights")
    return MixPart(parts, weights)  # type: ignore[arg-type]


# --- messages ---------------------------------------------------------------------------------
ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def parse_messages(raw: Any, settings: ServeSettings) -> list[Message]:
    """``messages`` of a chat request → omnibind messages."""
    if not isinstance(raw, list) or not raw:
        raise bad("'messages' must be a non-empty array of message objects", "messages")
    if len(raw) > settings.max_messages:
        raise APIError(
            413, f"'messages' has {len(raw)} entries; the limit is {settings.max_messages}", param="messages"
        )
    budget = PartBudget(settings.max_parts)
    out: list[Message] = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad(f"{where}: expected an object with 'role' and 'content', got {_type(m)}", where)
        role = m.get("role")
        if role not in ROLE_ALIASES:
            raise bad(
                f"{where}.role: unsupported role {role!r}; expected system, developer, user or assistant",
                f"{where}.role",
            )
        content = m.get("content")
        if content is None and role == "assistant":
            content = ""
        if isinstance(content, str):
            parts: list[Part] = [TextPart(content)]
        elif isinstance(content, list):
            parts = [parse_part(p, f"{where}.content[{j}]", settings, budget) for j, p in enumerate(content)]
        else:
            raise bad(f"{where}.content: expected a string or an array of content parts, got {_type(content)}", where)
        if ROLE_ALIASES[role] != "user" and any(not isinstance(p, TextPart) for p in parts):
            raise bad(f"{where}: only user messages may carry media ({role} message has some)", f"{where}.content")
        out.append(Message(ROLE_ALIASES[role], parts))  # type: ignore[arg-type]
    return out


# --- the chat request -------------------------------------------------------------------------
@dataclass
class ChatRequest:
    """A validated ``/v1/chat/completions`` body."""

    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    """Generation options for omnibind: max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop, seed."""


UNSUPPORTED = {
    "tools": "tool calling",
    "functions": "function calling",
    "tool_choice": "tool calling",
    "function_call": "function calling",
    "audio": "audio output",
    "prediction": "predicted outputs",
}


def parse_chat_request(body: Any, settings: ServeSettings, served: list[str]) -> ChatRequest:
    """Validate a chat-completions body: types, ranges and limits, with OpenAI-style 400s."""
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {_type(body)}")
    model = check_model(body.get("model"), served)
    for key, what in UNSUPPORTED.items():
        if body.get(key) not in (None, [], {}):
            raise bad(f"'{key}': {what} is not supported by this server", key, "unsupported_parameter")
    if body.get("logprobs") not in (None, False) or body.get("top_logprobs") is not None:
        raise bad("'logprobs' is not supported by this server", "logprobs", "unsupported_parameter")
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise bad("'response_format': only {'type': 'text'} is supported", "response_format", "unsupported_parameter")
    n = body.get("n", 1)
    if n is not None and (not _is_int(n) or n != 1):
        raise bad(f"'n' must be 1 (this server returns one choice per request), got {n!r}", "n")
    for pen in ("frequency_penalty", "presence_penalty"):
        v = body.get(pen)
        if v is not None and (not _is_number(v) or v != 0):
            raise bad(f"'{pen}' is not supported (use 'repetition_penalty'); send 0 or omit it", pen)
    stream = _bool(body, "stream", False)
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    include_usage = bool(so and _bool(so, "include_usage", False))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = settings.default_max_tokens
    param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    if not _is_int(max_tokens) or max_tokens < 1:
        raise bad(f"'{param}' must be a positive integer, got {max_tokens!r}", param)
    if max_tokens > settings.max_tokens_limit:
        raise bad(f"'{param}' is {max_tokens}; this server allows at most {settings.max_tokens_limit}", param)
    options: dict[str, Any] = {
        "max_new_tokens": int(max_tokens),
        "temperature": _float(body, "temperature", 0.0, 0.0, 2.0),
        "top_p": _float(body, "top_p", 1.0, 0.0, 1.0, low_open=True),
        "top_k": _int(body, "top_k", 0, 0, 1000),
        "repetition_penalty": _float(body, "repetition_penalty", 1.0, 0.0, 10.0, low_open=True),
        "stop": _stop(body.get("stop"), settings.max_stop_sequences),
        "seed": _int(body, "seed", None, -(2**63), 2**63 - 1),
    }
    messages = parse_messages(body.get("messages"), settings)
    return ChatRequest(model, messages, stream, include_usage, options)


def check_model(model: Any, served: list[str]) -> str:
    if model is None:
        return served[0]
    if not isinstance(model, str):
        raise bad(f"'model' must be a string, got {_type(model)}", "model")
    if model not in served:
        raise APIError(
            404,
            f"The model {model!r} does not exist on this server; available: {served}",
            param="model",
            code="model_not_found",
        )
    return model


def parse_embedding_inputs(body: Any, settings: ServeSettings, served: list[str]) -> tuple[str, list[Part], str]:
    """``/v1/embeddings`` body → (model, parts, encoding_format)."""
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {_type(body)}")
    model = check_model(body.get("model"), served)
    enc = body.get("encoding_format", "float")
    if enc not in ("float", "base64", None):
        raise bad(f"'encoding_format' must be 'float' or 'base64', got {enc!r}", "encoding_format")
    dims = body.get("dimensions")
    if dims is not None:
        raise bad("'dimensions' is not supported: bind-space vectors have a fixed size", "dimensions")
    raw = body.get("input")
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise bad("'input' must be a string, a content part, or a non-empty array of them", "input")
    if len(raw) > settings.max_embedding_inputs:
        raise APIError(
            413, f"'input' has {len(raw)} items; the limit is {settings.max_embedding_inputs}", param="input"
        )
    if all(_is_int(x) for x in raw) or any(isinstance(x, list) for x in raw):
        raise bad("token-id inputs are not supported; send text or content parts", "input")
    budget = PartBudget(max(settings.max_parts, settings.max_embedding_inputs))
    parts: list[Part] = []
    for i, x in enumerate(raw):
        p = parse_part(x, f"input[{i}]", settings, budget)
        if isinstance(p, TextPart) and not p.text.strip():
            raise bad(f"input[{i}]: empty text", f"input[{i}]")
        parts.append(p)
    return model, parts, enc or "float"


# --- validation by decoding -------------------------------------------------------------------
def decode_media(messages_or_parts: list[Message] | list[Part], limits: Limits) -> list[Any]:
    """Decode every media part now (server limits), so a bad file is this request's 4xx and never
    fails a whole batch; returns the same structure with sources replaced by decoded data."""
    from omnibind import modalities

    def fix(p: Part) -> Part:
        if isinstance(p, MediaPart):
            try:
                data = modalities.load_part(p, limits)
            except InputTooLargeError as e:
                raise APIError(413, str(e), param=p.name, code="media_too_large") from None
            except OmnibindError as e:
                raise APIError(400, str(e), param=p.name, code="invalid_media") from None
            except (ValueError, TypeError, OSError, MemoryError) as e:  # a decoder's own complaint
                raise APIError(400, f"{p.modality} input {p.name}: cannot decode ({e})", param=p.name) from None
            return MediaPart(p.modality, data, options=p.options, name=p.name)
        if isinstance(p, MixPart):
            return MixPart([fix(q) for q in p.parts], list(p.weights))  # type: ignore[misc]
        return p

    out: list[Any] = []
    for item in messages_or_parts:
        if isinstance(item, Message):
            out.append(Message(item.role, [fix(p) for p in item.content]))
        else:
            out.append(fix(item))
    return out


def media_error(e: Exception) -> APIError:
    """An error raised while the model decoded or encoded a request → a 4xx."""
    if isinstance(e, InputTooLargeError):
        return APIError(413, str(e), code="media_too_large")
    if isinstance(e, (InputError, OmnibindError)):
        return APIError(400, str(e), code="invalid_input")
    return APIError(400, str(e))


# --- small helpers ----------------------------------------------------------------------------
def _type(x: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(x), "a number" if _is_number(x) else type(x).__name__
    )


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _bool(d: dict[str, Any], key: str, default: bool) -> bool:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise bad(f"'{key}' must be true or false, got {_type(v)}", key)
    return v


def _float(d: dict[str, Any], key: str, default: float, lo: float, hi: float, *, low_open: bool = False) -> float:
    v = d.get(key)
    if v is None:
        return default
    if not _is_number(v) or v > hi or v < lo or (low_open and v == lo):
        lo_b = "(" if low_open else "["
        raise bad(f"'{key}' must be a number in {lo_b}{lo}, {hi}], got {v!r}", key)
    return float(v)


def _int(d: dict[str, Any], key: str, default: int | None, lo: int, hi: int) -> int | None:
    v = d.get(key)
    if v is None:
        return default
    if not _is_int(v) or not lo <= v <= hi:
        raise bad(f"'{key}' must be an integer in [{lo}, {hi}], got {v!r}", key)
    return int(v)


def _stop(v: Any, limit: int) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise bad("'stop' must be a string or an array of strings", "stop")
    if len(v) > limit:
        raise bad(f"'stop' has {len(v)} sequences; at most {limit} are allowed", "stop")
    if any(len(s) > 256 for s in v):
        raise bad("'stop' sequences must be at most 256 characters", "stop")
    return [s for s in v if s]


def _ext(path: str) -> str | None:
    ext = Path(path).suffix.lower().lstrip(".")
    return ext if _FORMAT_RE.match(ext or "-") else None
