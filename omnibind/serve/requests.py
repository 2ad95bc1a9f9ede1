"""Request bodies the server accepts: ``/v1/chat/completions`` and ``/v1/embeddings``, validated.

Every field is checked for type, range and the server's limits, with OpenAI-style 400s; the
messages and content parts themselves are read by ``openai_wire``. ``decode_media`` then decodes
each media part under the server's limits, so a bad file is its request's 4xx and never fails a
batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnibind import modalities
from omnibind.errors import InputTooLargeError, OmnibindError
from omnibind.messages import MediaPart, Message, MixPart, Part, TextPart
from omnibind.modalities.base import Limits
from omnibind.serve.errors import APIError, bad, is_int, is_number, json_type
from omnibind.serve.openai_wire import (
    EXPERTS_FIELD,
    MAX_EXPERT_LABELS,
    OpenAIFields,
    PartBudget,
    parse_messages,
    parse_openai_fields,
    parse_part,
    with_tool_preamble,
)
from omnibind.serve.settings import ServeSettings


@dataclass
class ChatRequest:
    """A validated ``/v1/chat/completions`` body."""

    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    """Generation options for omnibind: max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop, seed,
    and ``experts`` (the ``omnibind_experts`` switch; None = the model config's)."""
    openai: OpenAIFields = field(default_factory=OpenAIFields)
    """n, logprobs, penalties, response_format, tools (``openai_wire.parse_openai_fields``)."""


def parse_chat_request(body: Any, settings: ServeSettings, served: list[str], template: Any = None) -> ChatRequest:
    """Validate a chat-completions body: types, ranges and limits, with OpenAI-style 400s.

    ``template``: the model's ``ChatTemplate`` (its tool format and default system prompt)."""
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {json_type(body)}")
    model = check_model(body.get("model"), served)
    tool_format = template.tools if template is not None else OpenAIFields().tool_format
    extra = parse_openai_fields(body, tool_format)
    stream = _bool(body, "stream", False)
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    include_usage = bool(so and _bool(so, "include_usage", False))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = settings.default_max_tokens
    param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    if not is_int(max_tokens) or max_tokens < 1:
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
    if settings.max_prompt_tokens is not None:
        options["max_prompt_tokens"] = settings.max_prompt_tokens
    experts = parse_experts(body.get(EXPERTS_FIELD))
    if experts is not None:  # absent: the model config decides
        options["experts"] = experts
    messages = parse_messages(body.get("messages"), settings, tool_format)
    messages = with_tool_preamble(messages, extra, getattr(template, "default_system", None))
    return ChatRequest(model, messages, stream, include_usage, options, extra)


def parse_experts(v: Any) -> bool | dict[str, Any] | None:
    """The ``omnibind_experts`` field: true / false / ``{"image_labels": n, "transcript": bool}`` or absent."""
    if v is None or isinstance(v, bool):
        return v
    if not isinstance(v, dict):
        raise bad(f"'{EXPERTS_FIELD}' must be true, false or an object, got {json_type(v)}", EXPERTS_FIELD)
    unknown = sorted(set(v) - {"image_labels", "transcript"})
    if unknown:
        raise bad(f"'{EXPERTS_FIELD}': unknown keys {unknown}; allowed: image_labels, transcript", EXPERTS_FIELD)
    out: dict[str, Any] = {}
    if "transcript" in v:
        if not isinstance(v["transcript"], bool):
            raise bad(f"'{EXPERTS_FIELD}.transcript' must be true or false", EXPERTS_FIELD)
        out["transcript"] = v["transcript"]
    if "image_labels" in v:
        n = v["image_labels"]
        if not is_int(n) or not 0 <= n <= MAX_EXPERT_LABELS:
            raise bad(f"'{EXPERTS_FIELD}.image_labels' must be an integer in [0, {MAX_EXPERT_LABELS}]", EXPERTS_FIELD)
        out["image_labels"] = int(n)
    return out


def check_model(model: Any, served: list[str]) -> str:
    """The requested model id (default: the first served one), or a 404 naming the available ones."""
    if model is None:
        return served[0]
    if not isinstance(model, str):
        raise bad(f"'model' must be a string, got {json_type(model)}", "model")
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
        raise bad(f"the request body must be a JSON object, got {json_type(body)}")
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
    if all(is_int(x) for x in raw) or any(isinstance(x, list) for x in raw):
        raise bad("token-id inputs are not supported; send text or content parts", "input")
    budget = PartBudget(max(settings.max_parts, settings.max_embedding_inputs))
    parts: list[Part] = []
    for i, x in enumerate(raw):
        p = parse_part(x, f"input[{i}]", settings, budget)
        if isinstance(p, TextPart) and not p.text.strip():
            raise bad(f"input[{i}]: empty text", f"input[{i}]")
        parts.append(p)
    return model, parts, enc or "float"


def decode_media(messages_or_parts: list[Message] | list[Part], limits: Limits) -> list[Any]:
    """Decode every media part now (server limits), so a bad file is this request's 4xx and never
    fails a whole batch; returns the same structure with sources replaced by decoded data."""

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


# --- field validators -------------------------------------------------------------------------
def _bool(d: dict[str, Any], key: str, default: bool) -> bool:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise bad(f"'{key}' must be true or false, got {json_type(v)}", key)
    return v


def _float(d: dict[str, Any], key: str, default: float, lo: float, hi: float, *, low_open: bool = False) -> float:
    v = d.get(key)
    if v is None:
        return default
    if not is_number(v) or v > hi or v < lo or (low_open and v == lo):
        lo_b = "(" if low_open else "["
        raise bad(f"'{key}' must be a number in {lo_b}{lo}, {hi}], got {v!r}", key)
    return float(v)


def _int(d: dict[str, Any], key: str, default: int | None, lo: int, hi: int) -> int | None:
    v = d.get(key)
    if v is None:
        return default
    if not is_int(v) or not lo <= v <= hi:
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
