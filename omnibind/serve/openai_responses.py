"""The OpenAI wire format's responses, both ways: the server builds them, clients read them.

Split from ``openai_wire`` (which holds the requests) so each file stays one screenful of
concern; the two are still the only place the wire format is written, so server and clients
(eval endpoint model, ``omnibind bench serve``) cannot drift apart. Built here: ``completion_body``
/ ``choice_body`` / ``chunk_body`` (chat), ``text_completion_body`` / ``text_choice``
(``/v1/completions``), ``logprobs_body`` / ``legacy_logprobs_body``, ``embeddings_body``,
``model_card`` and the retrieval extension; read here: ``reply_text``, ``parse_completion``,
``parse_chunks``, ``parse_embeddings``, ``reply_parts``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Completion:
    """What one chat answer says: its text, why it stopped, and the token counts."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def usage_body(result: Any) -> dict[str, int]:
    """OpenAI's ``usage`` object from anything with ``prompt_tokens`` and ``completion_tokens``."""
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def completion_body(
    cid: str,
    created: int,
    model: str,
    result: Any,
    choices: list[dict[str, Any]] | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object: one answer (``text``, ``finish_reason``, token counts), or the
    given ``choices`` (``choice_body``) and ``usage``."""
    if choices is None:
        choices = [choice_body(0, result.text, result.finish_reason)]
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage if usage is not None else usage_body(result),
        "system_fingerprint": None,
    }


def choice_body(
    index: int,
    content: str | None,
    finish_reason: str | None,
    tool_calls: list[dict[str, Any]] | None = None,
    logprobs: list[Any] | None = None,
) -> dict[str, Any]:
    """One entry of a ``chat.completion``'s ``choices``."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "index": index,
        "message": message,
        "finish_reason": finish_reason,
        "logprobs": None if logprobs is None else logprobs_body(logprobs),
    }


def token_logprob(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def logprobs_body(records: list[Any]) -> dict[str, Any]:
    """Chat ``logprobs`` from the decode loop's ``TokenLogprob`` records."""
    content = []
    for r in records:
        entry = token_logprob(r.text, r.logprob)
        entry["top_logprobs"] = [token_logprob(t, lp) for _, t, lp in r.top]
        content.append(entry)
    return {"content": content, "refusal": None}


def legacy_logprobs_body(records: list[Any], offset: int = 0) -> dict[str, Any]:
    """``/v1/completions`` ``logprobs``: tokens, their logprobs, top alternatives and text offsets."""
    offsets, pos = [], offset
    for r in records:
        offsets.append(pos)
        pos += len(r.text)
    return {
        "tokens": [r.text for r in records],
        "token_logprobs": [r.logprob for r in records],
        "top_logprobs": [{t: lp for _, t, lp in r.top} for r in records],
        "text_offset": offsets,
    }


def chunk_body(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    *,
    index: int = 0,
    logprobs: list[Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event; with ``usage`` it is the final usage-only chunk (no choices)."""
    choice = {
        "index": index,
        "delta": delta,
        "finish_reason": finish,
        "logprobs": None if logprobs is None else logprobs_body(logprobs),
    }
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    if usage is not None:
        body["choices"] = []
        body["usage"] = usage
    return body


def text_completion_body(
    cid: str, created: int, model: str, choices: list[dict[str, Any]], usage: dict[str, int] | None
) -> dict[str, Any]:
    """A ``text_completion`` object (``/v1/completions``; also each streamed event, with ``usage`` None)."""
    body: dict[str, Any] = {
        "id": cid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "system_fingerprint": None,
    }
    if usage is not None:
        body["usage"] = usage
    return body


def text_choice(
    index: int, text: str, finish_reason: str | None, logprobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One entry of a ``text_completion``'s ``choices``."""
    return {"index": index, "text": text, "finish_reason": finish_reason, "logprobs": logprobs}


def reply_text(response_json: dict[str, Any]) -> str:
    """The assistant's text in a ``chat.completion`` object ("" when it has none)."""
    return parse_completion(response_json).text


def parse_completion(response_json: dict[str, Any]) -> Completion:
    """A ``chat.completion`` object → ``Completion``."""
    choices = response_json.get("choices") or [{}]
    choice = choices[0]
    usage = response_json.get("usage") or {}
    return Completion(
        text=(choice.get("message") or {}).get("content") or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )


def parse_chunks(chunks: Sequence[dict[str, Any]]) -> Completion:
    """The ``chat.completion.chunk`` objects of one stream → ``Completion`` (text joined from the deltas)."""
    text: list[str] = []
    finish: str | None = None
    usage: dict[str, Any] = {}
    for c in chunks:
        for choice in c.get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
            finish = choice.get("finish_reason") or finish
        usage = c.get("usage") or usage
    return Completion("".join(text), finish, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def embeddings_body(vectors: Any, model: str, encoding: str = "float") -> dict[str, Any]:
    """The ``/v1/embeddings`` response: one float32 vector per input, as numbers or base64 (little-endian)."""
    import numpy as np

    data = []
    for i, v in enumerate(np.asarray(vectors, dtype=np.float32)):
        emb: Any = base64.b64encode(v.astype("<f4").tobytes()).decode() if encoding == "base64" else v.tolist()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    n = len(data)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": n, "total_tokens": n}}


def parse_embeddings(response_json: dict[str, Any]) -> Any:
    """A ``/v1/embeddings`` response → (N, D) float32 array in input order (either encoding)."""
    import numpy as np

    rows = sorted(response_json.get("data") or [], key=lambda d: d["index"])
    return np.asarray(
        [
            np.frombuffer(base64.b64decode(d["embedding"]), "<f4")
            if isinstance(d["embedding"], str)
            else d["embedding"]
            for d in rows
        ],
        dtype=np.float32,
    )


def model_card(model_id: str) -> dict[str, Any]:
    """One entry of ``/v1/models``."""
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "omnibind"}


# --- media out by retrieval (added for omnibind.index; an omnibind extension) ----------------------
RETRIEVE_FIELD = "omnibind_retrieve"
"""The chat-body field that asks for retrieved media in the reply: ``true`` or ``{"k": 1, "modality": "image"}``."""
SEARCH_MEDIA_PATH = "/v1/search/media/{id}"
"""Where the server serves an indexed item's bytes (by its position in the index)."""


def retrieved_part_body(part: Any) -> dict[str, Any]:
    """A ``RetrievedPart`` as a reply content part: ``{"type": "retrieved", "retrieved": {...}}``."""
    return {
        "type": "retrieved",
        "retrieved": {
            "id": part.id,
            "modality": part.modality,
            "path": part.path,
            "score": round(float(part.score), 6),
            "rank": part.rank,
            "url": SEARCH_MEDIA_PATH.format(id=part.id),
        },
    }


def with_retrieved(body: dict[str, Any], parts: Sequence[Any]) -> dict[str, Any]:
    """A ``chat.completion`` body whose message content becomes parts: the text, then the retrieved items."""
    message = body["choices"][0]["message"]
    message["content"] = [{"type": "text", "text": message["content"]}, *(retrieved_part_body(p) for p in parts)]
    return body


def reply_parts(response_json: dict[str, Any]) -> tuple[str, list[Any]]:
    """A ``chat.completion`` → (its text, its ``RetrievedPart``s); plain string content has none."""
    from omnibind.messages import RetrievedPart

    content = ((response_json.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    if isinstance(content, str):
        return content, []
    text, found = [], []
    for p in content:
        if p.get("type") == "text":
            text.append(p.get("text", ""))
        elif p.get("type") == "retrieved":
            r = p["retrieved"]
            found.append(RetrievedPart(r["modality"], r["path"], float(r["score"]), int(r["rank"]), int(r["id"])))
    return "".join(text), found
