"""Constrained decoding (``omnibind.llm.constrained``) and the per-row controls of the shared decode
loop (penalties, seeds, logprobs), on synthetic logits and on both real backends (tiny models)."""

from __future__ import annotations

import json

import pytest
import torch

from omnibind.llm.backends.base import GenerationOptions, RowOptions
from omnibind.llm.constrained import Grammar, Matcher, SchemaError, grammar_for_response_format
from omnibind.llm.decoding import decode_steps
from omnibind.llm.sampling import apply_openai_penalties

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer"},
        "pet": {"enum": ["cat", "dog", None]},
        "ok": {"type": "boolean"},
        "scores": {"type": "array", "items": {"type": "number"}, "maxItems": 2},
    },
    "required": ["name", "age", "ok"],
}


def validates(obj: object) -> bool:
    if not isinstance(obj, dict) or not {"name", "age", "ok"} <= set(obj) or not set(obj) <= set(SCHEMA["properties"]):
        return False
    return (
        isinstance(obj["name"], str)
        and len(obj["name"]) <= 8
        and isinstance(obj["age"], int)
        and isinstance(obj["ok"], bool)
        and obj.get("pet", "cat") in ("cat", "dog", None)
        and len(obj.get("scores", [])) <= 2
        and all(isinstance(x, (int, float)) for x in obj.get("scores", []))
    )


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ('{"name":"Bo","age":3,"ok":true}', True),
        ('{"name": "Bo", "age": -12, "pet": null, "ok": false, "scores": [1.5e3, 0]}', True),
        ('{"name":"Bo","age":3', False),  # a prefix: alive, not yet whole
        ('{"name":"a\\"b\\u00e9","age":0,"ok":true}', True),
    ],
)
def test_matcher_accepts_schema_text(text, whole):
    m = Matcher(Grammar.from_schema(SCHEMA))
    states = m.feed_text(text)
    assert states and m.can_end(states) is whole


@pytest.mark.parametrize(
    "text",
    [
        '{"age":3,"name":"Bo","ok":true}',  # properties in the schema's order only
        '{"name":"Bo","ok":true}',  # a required property missing
        '{"name":"toolongname","age":3,"ok":true}',  # maxLength
        '{"name":"Bo","age":3.5,"ok":true}',  # integer
        '{"name":"Bo","age":3,"pet":"cow","ok":true}',  # enum
        '{"name":"Bo","age":3,"ok":true,"x":1}',  # no extra properties
        '{"name":"Bo","age":3,"ok":true,"scores":[1,2,3]}',  # maxItems
        '{"name":"Bo","age":01,"ok":true}',  # JSON has no leading zeros
        '{"name":"Bo",  "age":3,"ok":true}',  # at most one space
    ],
)
def test_matcher_rejects(text):
    assert not Matcher(Grammar.from_schema(SCHEMA)).feed_text(text)


def test_json_object_mode_and_refs():
    m = Matcher(Grammar.json_object())
    for ok in ('{"a": [1, {"b": null}], "c": "x"}', "{}"):
        assert m.can_end(m.feed_text(ok))
    assert not m.feed_text("[1]") and not m.feed_text('"a"')
    schema = {
        "$defs": {"P": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
        "type": "array",
        "items": {"$ref": "#/$defs/P"},
    }
    m = Matcher(Grammar.from_schema(schema))
    assert m.can_end(m.feed_text('[{"x":1}, {"x":2}]')) and not m.feed_text('[{"y":1}]')


@pytest.mark.parametrize(
    ("schema", "word"),
    [
        ({"type": "string", "pattern": "a"}, "pattern"),
        ({"type": "integer", "minimum": 0}, "minimum"),
        ({"$ref": "http://x/y"}, "$ref"),
        ({"type": "date"}, "type"),
    ],
)
def test_unenforceable_schemas_are_refused(schema, word):
    with pytest.raises(SchemaError, match=word.replace("$", r"\$")):
        Grammar.from_schema(schema)
    with pytest.raises(SchemaError, match="response_format"):
        grammar_for_response_format({"type": "json_schema", "json_schema": {"schema": schema}})


# --- the decode loop's per-row controls on synthetic logits -----------------------------------------------
def _fixed(logits: torch.Tensor):
    return lambda history, live: logits.clone()


def test_openai_penalty_formula():
    row = torch.zeros(6)
    apply_openai_penalties(row, [1, 1, 3], presence=0.5, frequency=0.25)
    assert row.tolist() == [0, -(0.5 + 0.5), 0, -(0.5 + 0.25), 0, 0]


def test_presence_penalty_changes_greedy_choice():
    logits = torch.tensor([[0.0, 5.0, 4.5, 0.0]])
    opts = GenerationOptions(max_new_tokens=4)
    plain = [s[0] for s in decode_steps(logits, opts, {0}, _fixed(logits))]
    assert plain == [1, 1, 1, 1]
    presence = GenerationOptions(max_new_tokens=4, presence_penalty=1.0)
    # 5 - 1 < 4.5: step 2 moves on; then 4 > 4.5 - 1, and presence counts a token once
    assert [s[0] for s in decode_steps(logits, presence, {0}, _fixed(logits))] == [1, 2, 1, 1]
    frequency = GenerationOptions(max_new_tokens=4, frequency_penalty=1.0)
    # frequency grows with each use: 5, 4.5 | 4, 4.5 | 4, 3.5 | 3, 3.5
    assert [s[0] for s in decode_steps(logits, frequency, {0}, _fixed(logits))] == [1, 2, 1, 2]


def test_row_seeds_are_independent_of_batch_mates():
    logits = torch.randn(1, 50)
    opts = GenerationOptions(max_new_tokens=8, temperature=1.0)

    def run(batch: int, seed_row: int) -> list[int]:
        rows = [RowOptions(seed=123) if b == seed_row else None for b in range(batch)]
        lg = logits.repeat(batch, 1)
        o = GenerationOptions(**{**opts.__dict__, "rows": rows})
        return [s[seed_row] for s in decode_steps(lg, o, set(), _fixed(lg))]

    assert run(1, 0) == run(3, 2)


def test_logprobs_recorded_per_row():
    logits = torch.tensor([[0.0, 2.0, 1.0, 0.5]])
    row = RowOptions(top_logprobs=2)
    opts = GenerationOptions(max_new_tokens=2, rows=[row])
    list(decode_steps(logits, opts, {0}, _fixed(logits), detokenize=lambda ids: f"<{ids[0]}>"))
    lp = torch.log_softmax(logits[0], -1)
    assert [r.token for r in row.logprobs] == [1, 1]
    assert row.logprobs[0].text == "<1>" and row.logprobs[0].logprob == pytest.approx(float(lp[1]))
    assert [t[0] for t in row.logprobs[0].top] == [1, 2]


# --- both backends, tiny models -------------------------------------------------------------------------
def _constrained_answers(llm, n: int = 3) -> list[str]:
    prompt = "<|im_start|>user\nGive me a record.<|im_end|>\n<|im_start|>assistant\n"
    emb = llm.embed_tokens(llm.tokenize(prompt))
    grammar = Grammar.from_schema(SCHEMA)
    rows = [RowOptions(grammar=grammar, seed=s) for s in range(n)]
    opts = GenerationOptions(max_new_tokens=80, temperature=1.0, rows=rows)
    ids: list[list[int]] = [[] for _ in range(n)]
    for step in llm.generate([emb] * n, opts):
        for b, tok in enumerate(step):
            if tok is not None:
                ids[b].append(tok)
    return [llm.detokenize(x) for x in ids]


def test_constrained_output_on_transformers(tiny_model):
    for text in _constrained_answers(tiny_model.core.llm):
        assert validates(json.loads(text)), text


def test_constrained_output_on_llamacpp(tiny_gguf):
    pytest.importorskip("llama_cpp")
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

    llm = LlamaCppBackend(str(tiny_gguf), n_ctx=512, n_seq_max=4)
    try:
        for text in _constrained_answers(llm):
            assert validates(json.loads(text)), text
    finally:
        llm.close()


def test_python_api_response_format(tiny_model):
    fmt = {"type": "json_schema", "json_schema": {"name": "rec", "schema": SCHEMA}}
    reply = tiny_model.chat("A record, please.", response_format=fmt, max_new_tokens=80, temperature=0.7, seed=1)
    assert reply.finish_reason == "stop" and validates(json.loads(reply.text))
