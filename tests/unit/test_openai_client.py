"""The OpenAI API as clients use it, through the official ``openai`` client against a real
``omnibind serve`` app (uvicorn on 127.0.0.1) over the tiny random-weight model: function calling
in a two-step loop (streamed and not), JSON mode and JSON schema, logprobs, n > 1, seed,
penalties, include_usage, /v1/completions, and the 400s for what is still unsupported.

The model's weights are random, so what it *says* is noise; what these tests check is what the
server guarantees regardless: a forced call is a valid call of an offered tool with arguments
that match its schema, constrained output parses and validates, and the wire shapes are OpenAI's.
"""

from __future__ import annotations

import json

import httpx
import pytest

from omnibind.serve.http import BackgroundServer, create_app
from omnibind.serve.settings import ServeSettings

openai = pytest.importorskip("openai")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather now in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"utc": {"type": "boolean"}}}},
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 12},
        "confident": {"type": "boolean"},
        "score": {"type": "integer"},
        "tags": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 3},
    },
    "required": ["answer", "confident", "score"],
}


def check_weather_args(arguments: str) -> dict:
    args = json.loads(arguments)
    assert args["city"] in ("Paris", "Oslo", "Lima") and args["unit"] in ("celsius", "fahrenheit")
    assert set(args) <= {"city", "unit", "days"}
    assert isinstance(args.get("days", 0), int)
    return args


def check_answer(obj: dict) -> None:
    assert set(obj) <= set(ANSWER_SCHEMA["properties"]) and {"answer", "confident", "score"} <= set(obj)
    assert isinstance(obj["answer"], str) and len(obj["answer"]) <= 12
    assert isinstance(obj["confident"], bool) and isinstance(obj["score"], int)
    assert all(t in ("cat", "dog") for t in obj.get("tags", [])) and len(obj.get("tags", [])) <= 3


@pytest.fixture(scope="module")
def server(tiny_model):
    settings = ServeSettings(max_tokens_limit=128, default_max_tokens=8, max_batch_size=8, batch_wait_ms=20)
    with BackgroundServer(create_app(tiny_model, settings)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


# --- function calling -----------------------------------------------------------------------------------
def test_tool_loop_two_steps(client):
    """Step 1: a forced call comes back as message.tool_calls with schema-valid arguments.
    Step 2: the call and its result go back in (assistant tool_calls + a tool message)."""
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(
        model="omnibind",
        messages=messages,
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    check_weather_args(call.function.arguments)

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "sky": "clear"})},
    ]
    second = client.chat.completions.create(
        model="omnibind", messages=messages, tools=[WEATHER, CLOCK], tool_choice="none", max_tokens=8
    )
    assert second.choices[0].message.tool_calls is None
    assert isinstance(second.choices[0].message.content, str)
    # the call and the tool's answer are in the second prompt: longer than the question alone by their text
    alone = client.chat.completions.create(
        model="omnibind", messages=messages[:1], tools=[WEATHER, CLOCK], tool_choice="none", max_tokens=1
    )
    assert second.usage.prompt_tokens > alone.usage.prompt_tokens + 20


def test_tool_call_required_streamed(client):
    """tool_choice=required, streamed: the call arrives as delta.tool_calls, finish_reason tool_calls."""
    stream = client.chat.completions.create(
        model="omnibind",
        messages=[{"role": "user", "content": "Weather or time?"}],
        tools=[WEATHER, CLOCK],
        tool_choice="required",
        max_tokens=60,
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                slot["name"] += tc.function.name or ""
                slot["arguments"] += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    assert len(calls) == 1
    call = calls[0]
    assert call["name"] in ("get_weather", "get_time")
    if call["name"] == "get_weather":
        check_weather_args(call["arguments"])
    else:
        assert set(json.loads(call["arguments"])) <= {"utc"}


# --- JSON mode --------------------------------------------------------------------------------------------
def test_json_schema_output_validates(client):
    for stream in (False, True):
        kw = dict(
            model="omnibind",
            messages=[{"role": "user", "content": "Is it a cat?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}},
            max_tokens=100,
            temperature=0.8,
            seed=3,
        )
        if stream:
            text = "".join(
                c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw) if c.choices
            )
        else:
            r = client.chat.completions.create(**kw)
            assert r.choices[0].finish_reason == "stop"
            text = r.choices[0].message.content
        check_answer(json.loads(text))


def test_json_object_mode_is_json_so_far(client):
    """json_object: the text is always a prefix of a JSON object, and a whole one when it stopped."""
    from omnibind.llm.constrained import Grammar, Matcher

    for seed in range(3):
        r = client.chat.completions.create(
            model="omnibind",
            messages=[{"role": "user", "content": "Reply in JSON."}],
            response_format={"type": "json_object"},
            max_tokens=40,
            temperature=1.0,
            seed=seed,
        )
        text = r.choices[0].message.content
        assert text.startswith("{") and Matcher(Grammar.json_object()).feed_text(text)
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(text), dict)


# --- logprobs, n, seed, penalties, usage -----------------------------------------------------------------
def test_logprobs_and_top_logprobs(client):
    r = client.chat.completions.create(
        model="omnibind", messages=[{"role": "user", "content": "hi"}], max_tokens=6, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for tok in content:
        tops = [t.logprob for t in tok.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True) and all(lp <= 0 for lp in tops)
        assert tok.logprob == pytest.approx(tops[0], abs=1e-5)  # greedy picks the most likely token
        assert bytes(tok.bytes).decode("utf-8", "replace") == tok.token
    assert "".join(t.token for t in content) == r.choices[0].message.content


def test_n_choices_seeded(client):
    kw = dict(model="omnibind", messages=[{"role": "user", "content": "hello"}], max_tokens=6, temperature=1.0)
    a = client.chat.completions.create(n=3, seed=11, **kw)
    b = client.chat.completions.create(n=3, seed=11, **kw)
    assert [c.index for c in a.choices] == [0, 1, 2]
    texts = [c.message.content for c in a.choices]
    assert texts == [c.message.content for c in b.choices]  # a seed makes every choice reproducible
    assert len(set(texts)) > 1  # each choice has its own random stream
    assert a.usage.prompt_tokens == client.chat.completions.create(n=1, **kw).usage.prompt_tokens  # counted once
    one = client.chat.completions.create(n=1, seed=11, **kw)
    assert one.choices[0].message.content == texts[0]  # choice 0 uses the seed itself


def test_penalties_change_a_repeating_answer(client):
    """Greedy on random weights repeats tokens; OpenAI's penalties must then change the answer."""
    kw = dict(model="omnibind", messages=[{"role": "user", "content": "hello"}], max_tokens=16, logprobs=True)
    plain = [t.token for t in client.chat.completions.create(**kw).choices[0].logprobs.content]
    assert len(set(plain)) < len(plain), "the premise: the tiny random model repeats itself"
    for pen in ({"presence_penalty": 2.0}, {"frequency_penalty": 2.0}):
        tokens = [t.token for t in client.chat.completions.create(**kw, **pen).choices[0].logprobs.content]
        assert tokens != plain and len(set(tokens)) > len(set(plain))


def test_stream_include_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="omnibind",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=5,
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    assert {c.choices[0].index for c in chunks[:-1] if c.choices} == {0, 1}


# --- /v1/completions --------------------------------------------------------------------------------------
def test_completions_endpoint(client):
    r = client.completions.create(model="omnibind", prompt="Once upon a time", max_tokens=5)
    assert r.object == "text_completion" and isinstance(r.choices[0].text, str)
    assert r.usage.completion_tokens >= 1
    many = client.completions.create(model="omnibind", prompt=["a", "b"], n=2, max_tokens=4, logprobs=2)
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    for c in many.choices:
        lp = c.logprobs
        assert "".join(lp.tokens) == c.text and len(lp.token_logprobs) == len(lp.tokens)
        assert all(len(t) == 2 for t in lp.top_logprobs)
    text = "".join(
        c.choices[0].text
        for c in client.completions.create(model="omnibind", prompt="Once upon a time", max_tokens=5, stream=True)
        if c.choices
    )
    assert text == r.choices[0].text  # greedy: streamed and not agree


# --- still unsupported: a 400 naming the field ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        ("/v1/chat/completions", {"functions": [{"name": "f"}]}, "functions"),
        ("/v1/chat/completions", {"logit_bias": {"5": 10}}, "logit_bias"),
        ("/v1/chat/completions", {"audio": {"voice": "alloy"}}, "audio"),
        ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
        ("/v1/chat/completions", {"n": 99}, "n"),
        ("/v1/chat/completions", {"presence_penalty": 5}, "presence_penalty"),
        ("/v1/chat/completions", {"tool_choice": "required"}, "tool_choice"),
        ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0]"),
        (
            "/v1/chat/completions",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "string", "pattern": "a+"}},
                }
            },
            "response_format",
        ),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo"),
        ("/v1/completions", {"prompt": "x", "suffix": "y"}, "suffix"),
        ("/v1/completions", {"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_unsupported_fields_are_400s(server, path, extra, param):
    body = {"model": "omnibind", "max_tokens": 2, **extra}
    if path.endswith("chat/completions"):
        body["messages"] = [{"role": "user", "content": "hi"}]
    r = httpx.post(server.url + path, json=body, timeout=30)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and param.split("[")[0] in err["message"]
    valid = {k: v for k, v in body.items() if k not in extra}
    if path.endswith("/v1/completions"):
        valid["prompt"] = "ok"
    assert httpx.post(server.url + path, json=valid, timeout=30).status_code == 200  # and it keeps serving
