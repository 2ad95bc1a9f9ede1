"""Function calling's pieces: tools validated, calls parsed from text (whole and streamed), tool
messages and earlier calls rendered through the template's tool format, the forced-call grammar."""

from __future__ import annotations

import json

import pytest

from omnibind.llm.chat_templates import HERMES_TOOLS, TEMPLATES
from omnibind.llm.constrained import Matcher
from omnibind.serve.errors import APIError
from omnibind.serve.openai_wire import parse_messages, parse_openai_fields, with_tool_preamble
from omnibind.serve.settings import ServeSettings
from omnibind.serve.tools import (
    ToolStreamParser,
    extract_tool_calls,
    forced_grammar,
    parse_tool_choice,
    parse_tools,
)

TOOLS = parse_tools(
    [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                },
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
)


def test_every_template_has_a_tool_format():
    for name in TEMPLATES.names():
        fmt = TEMPLATES.get(name).tools
        assert "{tools}" in fmt.preamble and fmt.call_start.strip() and fmt.call_end.strip()


def test_extract_calls_keeps_text_and_bad_blocks():
    text = (
        'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
        '<tool_call>\n{"name": "nope", "arguments": {}}\n</tool_call>'
    )
    content, calls = extract_tool_calls(HERMES_TOOLS, text, TOOLS)
    assert [c["function"]["name"] for c in calls] == ["add"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"a": 1, "b": 2}
    assert content.startswith("Let me add.") and '"nope"' in content  # an unknown tool stays text
    assert extract_tool_calls(HERMES_TOOLS, "no calls here", TOOLS) == ("no calls here", [])
    _, calls = extract_tool_calls(HERMES_TOOLS, '<tool_call>{"name": "now", "arguments": "{}"}</tool_call>', TOOLS)
    assert calls[0]["function"]["arguments"] == "{}"  # arguments written as a JSON string are accepted


def test_stream_parser_holds_back_only_the_call():
    text = 'Sure. <tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
    for cut in range(1, len(text)):  # any split of the stream, including inside the tag
        p = ToolStreamParser(HERMES_TOOLS, TOOLS)
        sent = p.push(text[:cut]) + p.push(text[cut:])
        tail, calls = p.finish()
        assert (sent + tail).strip() == "Sure." and [c["function"]["name"] for c in calls] == ["now"]
    p = ToolStreamParser(HERMES_TOOLS, TOOLS)
    assert p.push("a < b") == "a < b"  # a '<' that is not a tag goes out
    assert p.push(" <tool") == " " and p.finish() == ("<tool", [])


def test_tool_messages_render_in_the_format():
    raw = [
        {"role": "user", "content": "1+2 and the time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
                {"id": "c2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "noon"}]},
    ]
    msgs = parse_messages(raw, ServeSettings(), HERMES_TOOLS)
    assert [m.role for m in msgs] == ["user", "assistant", "user"]  # two results, one turn
    assert msgs[1].text.count("<tool_call>") == 2 and '"arguments": {"a": 1, "b": 2}' in msgs[1].text
    assert msgs[2].text == "<tool_response>\n3\n</tool_response>\n<tool_response>\nnoon\n</tool_response>"


def test_tool_preamble_joins_the_system_turn():
    fields = parse_openai_fields({"tools": [t.signature() for t in TOOLS]})
    msgs = with_tool_preamble(parse_messages([{"role": "user", "content": "hi"}], ServeSettings()), fields, "Be nice.")
    assert msgs[0].role == "system" and msgs[0].text.startswith("Be nice.") and '"name": "add"' in msgs[0].text
    none = parse_openai_fields({"tools": [t.signature() for t in TOOLS], "tool_choice": "none"})
    assert len(with_tool_preamble(msgs[1:], none, None)) == 1


def test_forced_grammar_only_allows_valid_calls():
    g = forced_grammar(HERMES_TOOLS, TOOLS, "add")
    m = Matcher(g)
    ok = '<tool_call>\n{"name":"add","arguments":{"a":1,"b":-2}}\n</tool_call>'
    assert m.can_end(m.feed_text(ok))
    assert not m.feed_text('<tool_call>\n{"name":"now"')
    assert not m.feed_text('<tool_call>\n{"name":"add","arguments":{"a":"1"')
    anyone = Matcher(forced_grammar(HERMES_TOOLS, TOOLS, "required"))
    assert anyone.can_end(anyone.feed_text('<tool_call>\n{"name":"now","arguments":{}}\n</tool_call>'))


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ([{"type": "function", "function": {"name": "x y"}}], "name"),
        ([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}], "twice"),
        ([{"type": "retrieval"}], "tools[0]"),
        (
            [{"type": "function", "function": {"name": "f", "parameters": {"type": "string", "pattern": "x"}}}],
            "pattern",
        ),
    ],
)
def test_bad_tools_are_400s(raw, word):
    with pytest.raises(APIError) as e:
        parse_tools(raw)
    assert e.value.status == 400 and word in str(e.value)


def test_tool_choice_values():
    assert parse_tool_choice(None, TOOLS) == "auto" and parse_tool_choice(None, []) == "none"
    assert parse_tool_choice({"type": "function", "function": {"name": "now"}}, TOOLS) == "now"
    for bad in ("sometimes", {"type": "function", "function": {"name": "missing"}}):
        with pytest.raises(APIError):
            parse_tool_choice(bad, TOOLS)
    with pytest.raises(APIError, match="cannot both"):
        parse_openai_fields(
            {
                "tools": [t.signature() for t in TOOLS],
                "tool_choice": "required",
                "response_format": {"type": "json_object"},
            }
        )
