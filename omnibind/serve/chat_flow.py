"""One chat or text-completion request as its choices: submit them, collect them, answer.

The ``n`` choices of a request (and, for ``/v1/completions``, every prompt of a list) go to the
batcher as rows that decode together; each row carries its own controls (``RowOptions``:
constraint, seed, penalties, logprobs), whose logprob records the answer reads back. Answers are
JSON or Server-Sent Events; tool calls are parsed from the text (``serve/tools.py``) and sent as
``tool_calls``, streamed or not.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from omnibind.serve.errors import bad, is_int, json_type, to_api_error
from omnibind.serve.openai_responses import (
    choice_body,
    chunk_body,
    completion_body,
    legacy_logprobs_body,
    text_choice,
    text_completion_body,
)
from omnibind.serve.openai_wire import MAX_CHOICES, OpenAIFields
from omnibind.serve.requests import ChatRequest, parse_chat_request
from omnibind.serve.tools import ToolStreamParser, extract_tool_calls

_groups = itertools.count(1)
COMPLETION_FIELDS = (
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "n",
    "stop",
    "seed",
    "stream",
    "stream_options",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "user",
    "omnibind_experts",
)
"""The ``/v1/completions`` fields that mean the same as in a chat body."""
MAX_LEGACY_LOGPROBS = 5


@dataclass
class Choice:
    """One submitted row: its index in the answer, its batcher handle, its controls."""

    index: int
    handle: Any
    row: Any
    fields: OpenAIFields
    sent_logprobs: int = 0

    def new_logprobs(self) -> list[Any]:
        """The logprob records decoded since the last call (the worker appends as it goes)."""
        records = self.row.logprobs[self.sent_logprobs :]
        self.sent_logprobs += len(records)
        return records

    def answer(self, result: Any) -> tuple[str | None, list[dict[str, Any]], str]:
        """(content, tool calls, finish reason) of a finished row."""
        f = self.fields
        text, calls = result.text, []
        if f.tools and f.tool_choice != "none":
            text, calls = extract_tool_calls(f.tool_format, text, f.tools)
        return (text if text or not calls else None), calls, ("tool_calls" if calls else result.finish_reason)


def submit(batcher: Any, requests: list[tuple[ChatRequest, Any]]) -> list[Choice]:
    """Queue every choice of every (request, decoded messages); all or none (a full queue cancels the rest)."""
    choices: list[Choice] = []
    try:
        for req, messages in requests:
            group = next(_groups)
            for i in range(req.openai.n):
                row = req.openai.row(i, req.options.get("seed"))
                handle = batcher.submit_chat(messages, {**req.options, "row": row, "group": group})
                choices.append(Choice(len(choices), handle, row, req.openai))
    except Exception as e:
        for c in choices:
            c.handle.cancel()
        raise to_api_error(e) from None
    return choices


def usage(results: list[Any], prompts: int) -> dict[str, int]:
    """OpenAI's usage: each prompt counted once, every choice's completion tokens."""
    n = max(1, len(results) // max(1, prompts))
    prompt = sum(r.prompt_tokens for r in results[::n])
    completion = sum(r.completion_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def collect(choices: list[Choice], wait: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """Every choice's finished result (cancels the others when one fails)."""
    try:
        return list(await asyncio.gather(*(wait(c.handle) for c in choices)))
    finally:
        for c in choices:
            c.handle.cancel()


def chat_json(cid: str, created: int, model: str, choices: list[Choice], results: list[Any]) -> dict[str, Any]:
    """The ``chat.completion`` object of finished choices."""
    bodies = []
    for c, r in zip(choices, results):
        content, calls, finish = c.answer(r)
        lp = c.row.logprobs if c.fields.logprobs else None
        bodies.append(choice_body(c.index, content, finish, calls, lp))
    return completion_body(cid, created, model, results[0], bodies, usage(results, 1))


async def _events(choices: list[Choice]) -> AsyncIterator[tuple[Choice, str, Any]]:
    """The events of every choice as they come, interleaved: (choice, "delta" | "done", value)."""
    queue: asyncio.Queue[tuple[Choice, str, Any]] = asyncio.Queue()

    async def pump(c: Choice) -> None:
        try:
            async for kind, value in c.handle.events():
                await queue.put((c, kind, value))
        except Exception as e:
            await queue.put((c, "error", e))

    tasks = [asyncio.ensure_future(pump(c)) for c in choices]
    try:
        for _ in range(len(choices)):
            while True:
                c, kind, value = await queue.get()
                if kind == "error":
                    raise value
                yield c, kind, value
                if kind == "done":
                    break
    finally:
        for t in tasks:
            t.cancel()


async def chat_sse(
    choices: list[Choice], cid: str, created: int, model: str, include_usage: bool, metrics: Any
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` events for every choice; the work is cancelled when the client goes away."""

    def event(delta: dict[str, Any], c: Choice | None, finish: str | None = None, **kw: Any) -> str:
        body = chunk_body(cid, created, model, delta, finish, index=c.index if c else 0, **kw)
        return f"data: {json.dumps(body)}\n\n"

    parsers = {
        c.index: ToolStreamParser(c.fields.tool_format, c.fields.tools)
        for c in choices
        if c.fields.tools and c.fields.tool_choice != "none"
    }
    results: list[Any] = [None] * len(choices)
    try:
        for c in choices:
            yield event({"role": "assistant", "content": ""}, c)
        async for c, kind, value in _events(choices):
            parser = parsers.get(c.index)
            lp = c.new_logprobs() if c.fields.logprobs else None
            if kind == "delta":
                text = parser.push(value) if parser else value
                if text or lp:
                    yield event({"content": text}, c, logprobs=lp)
                continue
            results[c.index] = value
            tail, calls = parser.finish() if parser else ("", [])
            if tail or lp:
                yield event({"content": tail}, c, logprobs=lp)
            if calls:
                yield event({"tool_calls": [{"index": k, **call} for k, call in enumerate(calls)]}, c)
            yield event({}, c, "tool_calls" if calls else value.finish_reason)
        metrics.tokens(sum(r.completion_tokens for r in results))
        if include_usage:
            yield event({}, None, usage=usage(results, 1))
    except Exception as e:  # report in-band: the 200 status line has already gone out
        yield f"data: {json.dumps(to_api_error(e).body())}\n\n"
    finally:
        for c in choices:
            c.handle.cancel()
    yield "data: [DONE]\n\n"


# --- /v1/completions ------------------------------------------------------------------------------
def parse_completion_request(
    body: Any, settings: Any, served: list[str], template: Any = None
) -> tuple[list[ChatRequest], bool, bool]:
    """A ``/v1/completions`` body → one chat request per prompt (each prompt is a user turn of
    the model's chat template), whether to stream, and whether to send usage last."""
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {json_type(body)}")
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise bad("'prompt' must be a string or a non-empty array of strings (token ids are not supported)", "prompt")
    if len(prompts) > MAX_CHOICES:
        raise bad(f"'prompt' has {len(prompts)} prompts; at most {MAX_CHOICES} per request", "prompt")
    if body.get("echo"):
        raise bad("'echo' is not supported by this server", "echo", "unsupported_parameter")
    if body.get("suffix"):
        raise bad("'suffix' (insertion) is not supported by this server", "suffix", "unsupported_parameter")
    best = body.get("best_of")
    if best is not None and best not in (1, body.get("n", 1)):
        raise bad("'best_of' is not supported (only best_of = n)", "best_of", "unsupported_parameter")
    unknown = sorted(
        set(body) - set(COMPLETION_FIELDS) - {"prompt", "echo", "suffix", "best_of", "logprobs", "logit_bias"}
    )
    if unknown:
        raise bad(f"unsupported fields for /v1/completions: {unknown}", unknown[0], "unsupported_parameter")
    chat = {k: body[k] for k in COMPLETION_FIELDS if k in body}
    if body.get("logit_bias"):
        chat["logit_bias"] = body["logit_bias"]  # refused by the chat parser, naming the field
    lp = body.get("logprobs")
    if lp is not None:
        if not is_int(lp) or not 0 <= lp <= MAX_LEGACY_LOGPROBS:
            raise bad(f"'logprobs' must be an integer in [0, {MAX_LEGACY_LOGPROBS}], got {lp!r}", "logprobs")
        chat["logprobs"], chat["top_logprobs"] = True, int(lp)
    reqs = [
        parse_chat_request({**chat, "messages": [{"role": "user", "content": p}]}, settings, served, template)
        for p in prompts
    ]
    return reqs, reqs[0].stream, reqs[0].include_usage


def completion_json(
    cid: str, created: int, model: str, choices: list[Choice], results: list[Any], prompts: int
) -> dict[str, Any]:
    """The ``text_completion`` object of finished choices."""
    bodies = [
        text_choice(
            c.index, r.text, r.finish_reason, legacy_logprobs_body(c.row.logprobs) if c.fields.logprobs else None
        )
        for c, r in zip(choices, results)
    ]
    return text_completion_body(cid, created, model, bodies, usage(results, prompts))


async def completion_sse(
    choices: list[Choice], cid: str, created: int, model: str, include_usage: bool, prompts: int, metrics: Any
) -> AsyncIterator[str]:
    """``text_completion`` events (OpenAI's streamed completions), then the usage event if asked."""

    def event(choice: dict[str, Any] | None, use: dict[str, int] | None = None) -> str:
        return f"data: {json.dumps(text_completion_body(cid, created, model, [choice] if choice else [], use))}\n\n"

    results: list[Any] = [None] * len(choices)
    offsets = [0] * len(choices)
    try:
        async for c, kind, value in _events(choices):
            records = c.new_logprobs() if c.fields.logprobs else []
            lp = legacy_logprobs_body(records, offsets[c.index]) if c.fields.logprobs else None
            offsets[c.index] += sum(len(r.text) for r in records)
            if kind == "delta":
                yield event(text_choice(c.index, value, None, lp))
                continue
            results[c.index] = value
            yield event(text_choice(c.index, "", value.finish_reason, lp if records else None))
        metrics.tokens(sum(r.completion_tokens for r in results))
        if include_usage:
            yield event(None, usage(results, prompts))
    except Exception as e:
        yield f"data: {json.dumps(to_api_error(e).body())}\n\n"
    finally:
        for c in choices:
            c.handle.cancel()
    yield "data: [DONE]\n\n"
