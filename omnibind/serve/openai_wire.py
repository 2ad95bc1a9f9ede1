"""The OpenAI wire format's requests, both ways: typed messages ⇄ chat JSON (responses: ``openai_responses``).

The server parses requests with ``parse_messages`` / ``parse_part``; clients (the eval endpoint
model, ``omnibind bench serve``) build them with ``encode_messages`` / ``chat_request``. One module
for both sides of a request (and ``openai_responses`` for both sides of a response), so server
and clients cannot drift apart.

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
  The options a client may set are those each modality declares with ``client=True``
  (``omnibind/modalities/<kind>.py``, ``OPTIONS``).
- ``{"type": "mix", "mix": {"parts": [<parts above>], "weights": [0.7, 0.3]}}`` — one weighted
  bind-space vector (ImageBind-LLM's embedding arithmetic).

Beyond messages, a chat body's OpenAI fields are read here too (``parse_openai_fields``): ``n``,
``logprobs`` / ``top_logprobs``, ``presence_penalty`` / ``frequency_penalty``, ``response_format``
and ``tools`` / ``tool_choice``; ``tool`` messages and assistant ``tool_calls`` are rendered in
the template's ``ToolFormat``.

A chat body may also carry ``"omnibind_experts"`` (``EXPERTS_FIELD``): ``true`` / ``false`` to
switch the modality-expert notes on or off for that request, or ``{"image_labels": 3,
"transcript": true}``; omitted, the model config decides.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind import modalities
from omnibind.errors import ConfigError
from omnibind.llm.chat_templates import HERMES_TOOLS, ToolFormat
from omnibind.messages import MediaPart, Message, MixPart, Part, TextPart
from omnibind.modalities.options import client_options
from omnibind.serve import tools as tooling
from omnibind.serve.errors import APIError, bad, is_int, is_number, json_type
from omnibind.serve.media_sources import FORMAT_RE, MIME_FORMATS, decode_base64, source_from_url
from omnibind.serve.settings import ServeSettings

EXTENSION_TYPES = {f"input_{m}": m for m in ("video", "depth", "thermal", "imu", "points")}
"""omnibind's content-part types beyond OpenAI's ``image_url`` and ``input_audio``."""

EXPERTS_FIELD = "omnibind_experts"
"""The chat-body field that switches modality-expert notes per request (an omnibind extension)."""
MAX_EXPERT_LABELS = 20
"""The most image labels a request may ask for (each costs prompt tokens)."""
PART_TYPES = ("text", "image_url", "input_audio", *EXTENSION_TYPES, "mix")
ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_CHOICES = 8
"""The most choices (``n``) one request may ask for (they decode as rows of one batch)."""
MAX_TOP_LOGPROBS = 20
UNSUPPORTED = {
    "functions": "legacy function calling (use 'tools')",
    "function_call": "legacy function calling (use 'tool_choice')",
    "audio": "audio output",
    "prediction": "predicted outputs",
    "logit_bias": "logit bias",
    "web_search_options": "web search",
}
"""Chat fields this server refuses (rather than silently ignoring), with what they would ask for."""

# The MIME type a client writes into an image data URL for a format (the first spelling wins).
_FORMAT_MIMES: dict[str, str] = {}
for _mime, _fmt in MIME_FORMATS.items():
    _FORMAT_MIMES.setdefault(_fmt, _mime)


@dataclass
class PartBudget:
    """Counts media parts (``max_parts``) and text characters (``max_text_chars``) across a whole request."""

    limit: int
    used: int = 0
    text_limit: int | None = None
    """Characters of text in the whole request (``max_text_chars``); None = unbounded."""
    text_used: int = 0

    def take_text(self, chars: int, where: str) -> None:
        """Count a message's text; a 413 naming the numbers once the request has more than ``text_limit``.

        Text is bounded beside media because its cost (tokenising, then a prompt that holds the
        worker) grows with it; the token check against the context comes after assembly."""
        self.text_used += chars
        if self.text_limit is not None and self.text_used > self.text_limit:
            raise APIError(
                413,
                f"{where}: the request has more than {self.text_limit} characters of text ({self.text_used} so far)",
                param=where,
                code="text_too_long",
            )

    def take(self, where: str) -> None:
        """Count one more media part; a 413 once the request has more than ``limit``."""
        self.used += 1
        if self.used > self.limit:
            raise APIError(
                413, f"{where}: more than {self.limit} media parts in one request", param=where, code="too_many_parts"
            )


# --- requests: JSON → typed (server side) --------------------------------------------------------
def parse_part(raw: Any, where: str, settings: ServeSettings, budget: PartBudget, *, allow_mix: bool = True) -> Part:
    """One OpenAI content part (or omnibind extension part) → TextPart / MediaPart / MixPart."""
    if isinstance(raw, str):
        return TextPart(raw)
    if not isinstance(raw, dict):
        raise bad(f"{where}: a content part must be an object with a 'type', got {json_type(raw)}", where)
    kind = raw.get("type")
    if kind == "text":
        text = raw.get("text")
        if not isinstance(text, str):
            raise bad(f"{where}.text: expected a string, got {json_type(text)}", f"{where}.text")
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
        raise bad(f"{where}: expected an object with 'data' (base64) and 'format', got {json_type(spec)}", where)
    budget.take(where)
    fmt = spec.get("format")
    if fmt is not None and (not isinstance(fmt, str) or not FORMAT_RE.match(fmt.lower().lstrip("."))):
        raise bad(f"{where}.format: expected a short file-type name such as 'wav', got {fmt!r}", f"{where}.format")
    fmt = fmt.lower().lstrip(".") if isinstance(fmt, str) else None
    if "data" in spec:
        source: Any = decode_base64(spec["data"], f"{where}.data", settings.limits)
    elif "url" in spec:
        source, url_fmt = source_from_url(spec["url"], f"{where}.url", settings)
        fmt = fmt or url_fmt
    else:
        raise bad(f"{where}: needs 'data' (base64) or 'url'", where)
    options = parse_options(spec.get("options"), modality, f"{where}.options")
    return MediaPart(modality, source, format=fmt, options=options, name=where.rsplit(".", 1)[0])


def parse_options(raw: Any, modality: str, where: str) -> dict[str, Any]:
    """A client's loader options, checked against what the modality declares clients may set."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad(f"{where}: expected an object, got {json_type(raw)}", where)
    specs = client_options(modalities.get(modality).options)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in specs:
            raise bad(f"{where}: unknown {modality} option {key!r}; allowed: {sorted(specs)}", f"{where}.{key}")
        opt = specs[key]
        if opt.type is bool:
            if not isinstance(value, bool):
                raise bad(f"{where}.{key}: expected true/false, got {json_type(value)}", f"{where}.{key}")
        elif opt.type in (int, float):
            typ = opt.type
            lo, hi = opt.bounds or (-math.inf, math.inf)
            ok = is_number(value)
            if typ is int and ok and float(value) != int(value):
                ok = False
            if not ok or not lo <= value <= hi:
                raise bad(f"{where}.{key}: expected a {typ.__name__} in [{lo}, {hi}], got {value!r}", f"{where}.{key}")
            value = typ(value)
        elif value not in opt.choices:
            raise bad(f"{where}.{key}: expected one of {list(opt.choices)}, got {value!r}", f"{where}.{key}")
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
        if not isinstance(weights, list) or not all(is_number(w) for w in weights):
            raise bad(f"{where}.weights: expected a list of numbers", f"{where}.weights")
        if len(weights) != len(parts):
            raise bad(f"{where}.weights: {len(parts)} parts but {len(weights)} weights", f"{where}.weights")
        if not any(abs(w) > 0 for w in weights):
            raise bad(f"{where}.weights: all weights are zero", f"{where}.weights")
    return MixPart(parts, weights)  # type: ignore[arg-type]


def parse_messages(raw: Any, settings: ServeSettings, tool_format: ToolFormat = HERMES_TOOLS) -> list[Message]:
    """``messages`` of a chat request → omnibind messages.

    ``tool`` messages (results of function calls) and the ``tool_calls`` of assistant messages
    are rendered as text in ``tool_format`` (the chat template's); consecutive tool results
    share one turn."""
    if not isinstance(raw, list) or not raw:
        raise bad("'messages' must be a non-empty array of message objects", "messages")
    if len(raw) > settings.max_messages:
        raise APIError(
            413, f"'messages' has {len(raw)} entries; the limit is {settings.max_messages}", param="messages"
        )
    budget = PartBudget(settings.max_parts, text_limit=settings.max_text_chars)
    out: list[Message] = []
    last_tool = False
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad(f"{where}: expected an object with 'role' and 'content', got {json_type(m)}", where)
        role = m.get("role")
        if role == "tool":
            text = tooling.render_response(tool_format, _plain_text(m.get("content"), where))
            if last_tool:  # one turn for all the results of one round of calls
                prev = out.pop()
                text = prev.text + "\n" + text
            out.append(Message(tool_format.response_role, [TextPart(text)]))  # type: ignore[arg-type]
            last_tool = True
            continue
        last_tool = False
        if role not in ROLE_ALIASES:
            raise bad(
                f"{where}.role: unsupported role {role!r}; expected system, developer, user, assistant or tool",
                f"{where}.role",
            )
        content = m.get("content")
        if content is None and role == "assistant":
            content = ""
        if isinstance(content, list) and len(content) > settings.max_parts_per_message:
            raise APIError(
                413,
                f"{where}.content has {len(content)} parts; the limit is {settings.max_parts_per_message}",
                param=f"{where}.content",
                code="too_many_parts",
            )
        if isinstance(content, str):
            parts: list[Part] = [TextPart(content)]
        elif isinstance(content, list):
            parts = [parse_part(p, f"{where}.content[{j}]", settings, budget) for j, p in enumerate(content)]
        else:
            raise bad(
                f"{where}.content: expected a string or an array of content parts, got {json_type(content)}", where
            )
        if ROLE_ALIASES[role] != "user" and any(not isinstance(p, TextPart) for p in parts):
            raise bad(f"{where}: only user messages may carry media ({role} message has some)", f"{where}.content")
        calls = m.get("tool_calls")
        if calls not in (None, []):
            if role != "assistant":
                raise bad(f"{where}.tool_calls: only assistant messages carry tool calls", f"{where}.tool_calls")
            parts.append(TextPart(_render_calls(calls, f"{where}.tool_calls", tool_format)))
        out.append(Message(ROLE_ALIASES[role], parts))  # type: ignore[arg-type]
        budget.take_text(sum(len(p.text) for p in parts if isinstance(p, TextPart)), where)
    return out


def _plain_text(content: Any, where: str) -> str:
    """A text-only message's content (a string or text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise bad(f"{where}.content: a tool message's content must be a string or text parts", f"{where}.content")


def _render_calls(calls: Any, where: str, fmt: ToolFormat) -> str:
    if not isinstance(calls, list):
        raise bad(f"{where}: expected an array of tool calls", where)
    texts = []
    for j, c in enumerate(calls):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad(f"{where}[{j}]: expected {{'type': 'function', 'function': {{'name', 'arguments'}}}}", where)
        args = fn.get("arguments", "")
        if not isinstance(args, str):
            raise bad(f"{where}[{j}].function.arguments: expected a JSON string", where)
        texts.append(tooling.render_call(fmt, fn["name"], args))
    return "\n".join(texts)


@dataclass
class OpenAIFields:
    """The OpenAI sampling and output fields of a chat body beyond the basic ones (validated)."""

    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    response_format: str = "text"
    """"text", "json_object" or "json_schema"."""
    grammar: Any = None
    """Constrained output (``omnibind.llm.constrained.Grammar``): the response format's or a forced call's."""
    tools: list[tooling.Tool] = field(default_factory=list)
    tool_choice: str = "none"
    """"none", "auto", "required" or the name of the one tool to call."""
    tool_format: ToolFormat = HERMES_TOOLS

    @property
    def forced_call(self) -> bool:
        return self.tool_choice not in ("none", "auto")

    def row(self, index: int, seed: int | None) -> Any:
        """The decode loop's controls for choice ``index`` (a seed gives choice i the seed + i)."""
        from omnibind.llm.backends.base import RowOptions

        return RowOptions(
            grammar=self.grammar,
            seed=None if seed is None else seed + index,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            top_logprobs=self.top_logprobs if self.logprobs else None,
        )


def parse_openai_fields(body: dict[str, Any], tool_format: ToolFormat = HERMES_TOOLS) -> OpenAIFields:
    """``n``, ``logprobs``/``top_logprobs``, penalties, ``response_format``, ``tools``/``tool_choice``;
    fields the server cannot honour get a 400 naming them."""
    from omnibind.llm.constrained import SchemaError, grammar_for_response_format

    for key, what in UNSUPPORTED.items():
        if body.get(key) not in (None, [], {}):
            raise bad(f"'{key}': {what} is not supported by this server", key, "unsupported_parameter")
    f = OpenAIFields(tool_format=tool_format)
    n = body.get("n")
    if n is not None:
        if not is_int(n) or not 1 <= n <= MAX_CHOICES:
            raise bad(f"'n' must be an integer in [1, {MAX_CHOICES}], got {n!r}", "n")
        f.n = int(n)
    lp = body.get("logprobs")
    if lp is not None and not isinstance(lp, bool):
        raise bad(f"'logprobs' must be true or false, got {json_type(lp)}", "logprobs")
    f.logprobs = bool(lp)
    top = body.get("top_logprobs")
    if top is not None:
        if not is_int(top) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise bad(f"'top_logprobs' must be an integer in [0, {MAX_TOP_LOGPROBS}], got {top!r}", "top_logprobs")
        if not f.logprobs:
            raise bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        f.top_logprobs = int(top)
    for pen in ("presence_penalty", "frequency_penalty"):
        v = body.get(pen)
        if v is not None:
            if not is_number(v) or not -2.0 <= v <= 2.0:
                raise bad(f"'{pen}' must be a number in [-2, 2], got {v!r}", pen)
            setattr(f, pen, float(v))
    fmt = body.get("response_format")
    try:
        f.grammar = grammar_for_response_format(fmt)
    except SchemaError as e:
        raise bad(f"'response_format': {e}", "response_format") from None
    if f.grammar is not None:
        f.response_format = fmt["type"]
    par = body.get("parallel_tool_calls")
    if par is not None and not isinstance(par, bool):
        raise bad("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    f.tools = tooling.parse_tools(body.get("tools"))
    f.tool_choice = tooling.parse_tool_choice(body.get("tool_choice"), f.tools)
    if f.forced_call:
        if f.grammar is not None:
            raise bad("a forced tool call and a JSON 'response_format' cannot both constrain one answer", "tool_choice")
        f.grammar = tooling.forced_grammar(tool_format, f.tools, f.tool_choice)
    return f


def with_tool_preamble(messages: list[Message], fields: OpenAIFields, default_system: str | None) -> list[Message]:
    """The conversation with the tools described in its system turn (the template's format)."""
    if not fields.tools or fields.tool_choice == "none":
        return messages
    preamble = tooling.system_text(fields.tool_format, fields.tools)
    if messages and messages[0].role == "system":
        first = Message("system", [*messages[0].content, TextPart("\n\n" + preamble)])
        return [first, *messages[1:]]
    system = f"{default_system}\n\n{preamble}" if default_system else preamble
    return [Message("system", [TextPart(system)]), *messages]


# --- requests: typed → JSON (client side) ---------------------------------------------------------
def encode_part(part: Part) -> dict[str, Any]:
    """One part as an OpenAI content part: media as base64 (images as ``data:`` URLs)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, MixPart):
        return {"type": "mix", "mix": {"parts": [encode_part(p) for p in part.parts], "weights": list(part.weights)}}
    data, fmt, options = media_bytes(part)
    b64 = base64.b64encode(data).decode()
    if part.modality == "image":
        mime = _FORMAT_MIMES.get(fmt, f"image/{fmt}") if fmt else "application/octet-stream"
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}}
    body: dict[str, Any] = {"data": b64}
    if fmt:
        body["format"] = fmt
    if options:
        body["options"] = options
    kind = f"input_{part.modality}"
    return {"type": kind, kind: body}


def encode_message(message: Message) -> dict[str, Any]:
    """An omnibind message as OpenAI chat JSON: text-only content as one string, else content parts."""
    if all(isinstance(p, TextPart) for p in message.content):
        return {"role": message.role, "content": message.text}
    return {"role": message.role, "content": [encode_part(p) for p in message.content]}


def encode_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """A conversation as the ``messages`` array of a chat request."""
    return [encode_message(m) for m in messages]


def chat_request(
    messages: Iterable[Message],
    *,
    model: str,
    max_tokens: int,
    stream: bool = False,
    experts: bool | dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``/v1/chat/completions`` body; ``fields`` adds others (``temperature``, ``seed``, ``stop``...).

    ``experts``: the per-request modality-expert switch (``EXPERTS_FIELD``); None leaves it out.
    """
    body: dict[str, Any] = {"model": model, "messages": encode_messages(messages), "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    if experts is not None:
        body[EXPERTS_FIELD] = experts
    body.update(fields)
    return body


def media_bytes(part: MediaPart) -> tuple[bytes, str | None, dict[str, Any]]:
    """A media part's file bytes, their format (None: let the server sniff) and the options to send.

    Paths and bytes travel as they are; decoded arrays are written as a file (image → PNG,
    audio → WAV, others → .npy). A WAV carries its own rate, so ``sample_rate`` is not sent for it.
    """
    import io

    import numpy as np

    src, options = part.source, dict(part.options)
    if isinstance(src, (str, Path)):
        p = Path(src)
        return p.read_bytes(), p.suffix.lower().lstrip(".") or part.format, options
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), part.format, options
    if isinstance(src, np.ndarray):
        buf = io.BytesIO()
        if part.modality == "image":
            from PIL import Image as PILImage

            PILImage.fromarray(src).save(buf, format="PNG")
            return buf.getvalue(), "png", options
        if part.modality == "audio":
            import soundfile as sf

            sf.write(buf, src, int(options.pop("sample_rate", 16000)), format="WAV")
            return buf.getvalue(), "wav", options
        np.save(buf, src)
        return buf.getvalue(), "npy", options
    raise ConfigError(f"cannot send a {type(src).__name__} {part.modality} input to an endpoint")
