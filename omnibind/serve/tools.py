"""Function calling (OpenAI ``tools`` / ``tool_choice``) over a chat template's ``ToolFormat``.

In: the tools are validated here and described to the model in the system turn; ``tool`` role
messages and assistant messages with ``tool_calls`` are rendered as text in the template's
format (``openai_wire.parse_messages`` calls ``render_*``). Out: the calls are parsed from the
answer's text (``extract_tool_calls``, or ``ToolStreamParser`` while streaming). A forced call
(``tool_choice`` ``"required"`` or a named function) decodes under ``forced_grammar``: the
output can only be a call of an allowed tool whose arguments match that tool's JSON schema.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from omnibind.llm.chat_templates import ToolFormat
from omnibind.llm.constrained import Grammar, SchemaError
from omnibind.serve.errors import bad, json_type

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Tool:
    """One function a client offers: its name, description and JSON-schema ``parameters``."""

    name: str
    description: str
    parameters: dict[str, Any]

    def signature(self) -> dict[str, Any]:
        """The tool as the model sees it (OpenAI's own shape)."""
        fn: dict[str, Any] = {"name": self.name}
        if self.description:
            fn["description"] = self.description
        fn["parameters"] = self.parameters
        return {"type": "function", "function": fn}


def parse_tools(raw: Any) -> list[Tool]:
    """The ``tools`` field → tools; each ``parameters`` schema must be one constrained decoding can enforce."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad(f"'tools' must be an array of tools, got {json_type(raw)}", "tools")
    out: list[Tool] = []
    for i, t in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(t.get("function"), dict):
            raise bad(f"{where}: expected {{'type': 'function', 'function': {{'name': ...}}}}", where)
        fn = t["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise bad(f"{where}.function.name: expected 1-64 letters, digits, '_' or '-', got {name!r}", where)
        if any(x.name == name for x in out):
            raise bad(f"{where}.function.name: {name!r} is defined twice", where)
        desc = fn.get("description") or ""
        if not isinstance(desc, str):
            raise bad(f"{where}.function.description: expected a string", where)
        params = fn.get("parameters")
        params = {"type": "object", "properties": {}} if params is None else params
        if not isinstance(params, dict):
            raise bad(f"{where}.function.parameters: expected a JSON schema object", where)
        try:
            Grammar.from_schema(params, f"{where}.function.parameters")
        except SchemaError as e:
            raise bad(str(e), f"{where}.function.parameters") from None
        out.append(Tool(name, desc, params))
    return out


def parse_tool_choice(raw: Any, tools: list[Tool]) -> str:
    """``tool_choice`` → ``"none"`` / ``"auto"`` / ``"required"`` / a tool's name (default: auto with tools)."""
    if raw is None:
        return "auto" if tools else "none"
    if raw in ("none", "auto", "required"):
        if raw != "none" and not tools:
            raise bad(f"'tool_choice' is {raw!r} but no 'tools' were given", "tool_choice")
        return str(raw)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if not any(t.name == name for t in tools):
            raise bad(f"'tool_choice' names {name!r}, which is not in 'tools'", "tool_choice")
        return str(name)
    raise bad(
        "'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}",
        "tool_choice",
    )


def system_text(fmt: ToolFormat, tools: list[Tool]) -> str:
    """The tool preamble for the system turn."""
    sigs = "\n".join(json.dumps(t.signature(), ensure_ascii=False) for t in tools)
    return fmt.preamble.format(tools=sigs)


def forced_grammar(fmt: ToolFormat, tools: list[Tool], choice: str) -> Grammar:
    """The grammar of one call of an allowed tool (all of them for ``"required"``), arguments per schema.

    Each tool's local ``$defs`` are hoisted to the combined schema; two tools defining the same
    name differently are refused."""
    allowed = [t for t in tools if choice in ("required", t.name)]
    defs: dict[str, Any] = {}
    options = []
    for t in allowed:
        params = dict(t.parameters)
        for key in ("$defs", "definitions"):
            for name, sub in (params.pop(key, None) or {}).items():
                if defs.setdefault(key, {}).setdefault(name, sub) != sub:
                    raise bad(f"tools: two tools define {key}/{name} differently", "tools")
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": params},
                "required": ["name", "arguments"],
            }
        )
    schema: dict[str, Any] = {"anyOf": options, **defs}
    return Grammar.from_schema(schema, "tools").wrapped(fmt.call_start, fmt.call_end)


def render_call(fmt: ToolFormat, name: str, arguments: str) -> str:
    """An assistant's earlier call, as the template writes it."""
    try:
        args: Any = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        args = arguments  # kept as the client sent it
    return fmt.call_start + json.dumps({"name": name, "arguments": args}, ensure_ascii=False) + fmt.call_end


def render_response(fmt: ToolFormat, content: str) -> str:
    """One tool result, as the template writes it."""
    return fmt.response_start + content + fmt.response_end


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def extract_tool_calls(fmt: ToolFormat, text: str, tools: list[Tool]) -> tuple[str, list[dict[str, Any]]]:
    """Split an answer into its text and its tool calls (OpenAI's ``tool_calls`` entries).

    A block that is not valid JSON or names an unknown tool stays in the text, so nothing the
    model wrote is lost."""
    start, end = fmt.call_start.strip(), fmt.call_end.strip()
    names = {t.name for t in tools}
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    pos = 0
    while True:
        a = text.find(start, pos)
        if a == -1:
            break
        b = text.find(end, a + len(start))
        if b == -1:
            break
        call = _parse_call(text[a + len(start) : b], names)
        if call is None:
            kept.append(text[pos : b + len(end)])
        else:
            kept.append(text[pos:a])
            calls.append(call)
        pos = b + len(end)
    kept.append(text[pos:])
    return "".join(kept).strip() if calls else text, calls


def _parse_call(body: str, names: set[str]) -> dict[str, Any] | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("name") not in names:
        return None
    args = obj.get("arguments", {})
    if isinstance(args, str):  # some models write the arguments as a JSON string already
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return {
        "id": new_call_id(),
        "type": "function",
        "function": {"name": obj["name"], "arguments": json.dumps(args, ensure_ascii=False)},
    }


class ToolStreamParser:
    """Streams an answer's text while holding back what may be a tool call.

    ``push(delta)`` returns the text that is safe to send now; once a call tag starts, the rest is
    held, and ``finish()`` returns (text still to send, tool calls)."""

    def __init__(self, fmt: ToolFormat, tools: list[Tool]):
        self.fmt = fmt
        self.tools = tools
        self.tag = fmt.call_start.strip()
        self.buf = ""
        self.sent = 0
        self.held = False

    def push(self, delta: str) -> str:
        self.buf += delta
        if self.held:
            return ""
        at = self.buf.find(self.tag, self.sent)
        if at != -1:
            self.held = True
            return self._send(at)
        safe = len(self.buf)
        for k in range(min(len(self.tag) - 1, safe - self.sent), 0, -1):  # a tail that may grow into the tag
            if self.buf.endswith(self.tag[:k]):
                safe -= k
                break
        return self._send(safe)

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        if not self.held:
            return self._send(len(self.buf)), []
        text, calls = extract_tool_calls(self.fmt, self.buf[self.sent :], self.tools)
        self.sent = len(self.buf)
        return text, calls

    def _send(self, upto: int) -> str:
        out = self.buf[self.sent : upto]
        self.sent = max(self.sent, upto)
        return out
