"""The function-calling and JSON-mode examples of docs/SERVING.md, run as written with the
official ``openai`` client against a real server over the embedded default (integration: real
weights), on transformers and on llama.cpp."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import omnibind
from omnibind.serve.http import BackgroundServer, create_app
from omnibind.serve.settings import ServeSettings

pytest.importorskip("openai")
pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "SERVING.md"


def doc_example(name: str, url: str) -> str:
    """The Python block after ``<!-- example: name -->`` in docs/SERVING.md, pointed at ``url``."""
    m = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/SERVING.md has no example {name!r}"
    return m.group(1).replace("http://127.0.0.1:8000/v1", url + "/v1")


@pytest.fixture(scope="module", params=["transformers", "llamacpp"])
def server(request):
    if request.param == "llamacpp":
        pytest.importorskip("llama_cpp")
        from omnibind.api import load_llamacpp

        model = load_llamacpp()
    else:
        model = omnibind.load()
    with BackgroundServer(create_app(model, ServeSettings())) as srv:
        yield srv


def test_tool_calling_example(server):
    ns: dict = {}
    exec(doc_example("tools", server.url), ns)
    assert ns["call"].function.name == "get_weather"
    args = ns["args"]
    assert set(args) == {"city", "unit"} and args["unit"] in ("celsius", "fahrenheit")
    assert "paris" in args["city"].lower(), args  # the embedded model copies the city from the question
    answer = ns["second"].choices[0].message.content
    assert isinstance(answer, str) and answer.strip(), answer


def test_json_mode_example(server):
    ns: dict = {}
    exec(doc_example("json", server.url), ns)
    record = ns["record"]
    assert set(record) == {"animal", "legs", "can_fly"}
    assert isinstance(record["animal"], str) and isinstance(record["legs"], int) and isinstance(record["can_fly"], bool)
    many = ns["many"]
    assert [c.index for c in many.choices] == [0, 1, 2]
    for c in many.choices:
        if c.finish_reason == "stop":
            assert isinstance(json.loads(c.message.content), dict)
        assert c.logprobs.content and len(c.logprobs.content[0].top_logprobs) == 2
