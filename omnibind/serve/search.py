"""``POST /v1/search``, ``GET /v1/search/media/{id}`` and chat's opt-in retrieved items.

The server searches the one media index it was started with (``omnibind serve --index DIR``,
built by ``omnibind index build``). A search body::

    {"query": "a dog barking" | <content part>, "k": 5, "modality": "audio" | ["image", "audio"]}

answers ``{"object": "list", "data": [{"rank", "score", "id", "modality", "path", "url"}, …]}``;
``url`` serves the item's bytes (only items of the index, never an arbitrary path). A chat body
with ``"omnibind_retrieve": true`` (or ``{"k": 2, "modality": "image"}``) gets its reply's content
as parts: the text, then ``retrieved`` parts, the items nearest to the last user turn (its text
and media mixed in the bind space). Bad input is a JSON 4xx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from omnibind.hashing import file_hash
from omnibind.messages import MEDIA_MODALITIES, Message, MixPart, Part, RetrievedPart, TextPart
from omnibind.serve.errors import APIError, bad, is_int, json_type
from omnibind.serve.openai_responses import RETRIEVE_FIELD, SEARCH_MEDIA_PATH
from omnibind.serve.openai_wire import PartBudget, parse_part
from omnibind.serve.settings import ServeSettings

MAX_K = 50


@dataclass
class SearchSpec:
    """How many items, of which modalities (None: all)."""

    k: int = 5
    modality: list[str] | None = None


def open_server_index(model: Any, settings: ServeSettings) -> Any | None:
    """The index named by ``settings.index`` (checked against the model's bind space), or None."""
    if settings.index is None:
        return None
    from omnibind.index.build import DEFAULT_DIRNAME
    from omnibind.index.store import MediaIndex, check_compatible

    folder = settings.index / DEFAULT_DIRNAME if (settings.index / DEFAULT_DIRNAME).is_dir() else settings.index
    index = MediaIndex.load(folder)
    check_compatible(index, model)
    return index


def _require(index: Any) -> Any:
    if index is None:
        raise APIError(
            404, "this server has no media index (start it with --index DIR)", type="not_found_error", code="no_index"
        )
    return index


def parse_spec(raw: dict[str, Any], where: str, index: Any) -> SearchSpec:
    """``k`` and ``modality`` of a search or a chat's retrieve field."""
    k = raw.get("k", 5 if where == "" else 1)
    if not is_int(k) or not 1 <= k <= MAX_K:
        raise bad(f"'{where}k' must be an integer in [1, {MAX_K}], got {k!r}", f"{where}k")
    mod = raw.get("modality")
    mods = [mod] if isinstance(mod, str) else mod
    if mods is not None:
        if not isinstance(mods, list) or not mods or not all(isinstance(m, str) for m in mods):
            raise bad(f"'{where}modality' must be a modality name or a list of them, got {json_type(mod)}")
        held = index.modalities()
        for m in mods:
            if m not in MEDIA_MODALITIES:
                raise bad(f"'{where}modality': unknown modality {m!r}; expected one of {list(MEDIA_MODALITIES)}")
            if m not in held:
                raise bad(f"'{where}modality': the index holds no {m} items; it holds {sorted(held)}")
    return SearchSpec(int(k), mods)


def parse_search_request(body: Any, settings: ServeSettings, index: Any) -> tuple[Part, SearchSpec]:
    """A ``/v1/search`` body → the query part and the spec."""
    _require(index)
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {json_type(body)}")
    unknown = sorted(set(body) - {"query", "k", "modality", "model"})
    if unknown:
        raise bad(f"unknown fields {unknown}; a search takes query, k, modality", unknown[0])
    if "query" not in body:
        raise bad("'query' is required: text or a content part (image_url, input_audio, …)", "query")
    part = parse_part(body["query"], "query", settings, PartBudget(settings.max_parts))
    if isinstance(part, TextPart) and not part.text.strip():
        raise bad("'query': empty text", "query")
    return part, parse_spec(body, "", index)


def parse_retrieve(body: Any, index: Any) -> SearchSpec | None:
    """The chat body's ``omnibind_retrieve`` field: absent/false → None; true or an object → a spec."""
    raw = body.get(RETRIEVE_FIELD) if isinstance(body, dict) else None
    if raw is None or raw is False:
        return None
    _require(index)
    if raw is True:
        return SearchSpec(1, None)
    if not isinstance(raw, dict):
        raise bad(f"'{RETRIEVE_FIELD}' must be true, false or {{'k': n, 'modality': m}}", RETRIEVE_FIELD)
    unknown = sorted(set(raw) - {"k", "modality"})
    if unknown:
        raise bad(f"'{RETRIEVE_FIELD}': unknown keys {unknown}; allowed: k, modality", RETRIEVE_FIELD)
    return parse_spec(raw, f"{RETRIEVE_FIELD}.", index)


def turn_query(messages: list[Message]) -> Part:
    """The last user turn as one query: its text and media mixed with equal weights in the bind space."""
    user = next(m for m in reversed(messages) if m.role == "user")
    parts = [p for p in user.content if not (isinstance(p, TextPart) and not p.text.strip())]
    if not parts:
        raise bad("omnibind_retrieve: the last user message is empty", RETRIEVE_FIELD)
    if len(parts) == 1:
        return parts[0]
    flat = [q for p in parts for q in (p.parts if isinstance(p, MixPart) else [p])]
    return MixPart(flat)


async def run_search(batcher: Any, index: Any, part: Part, spec: SearchSpec, timeout: float) -> list[Any]:
    """Embed the query (batched with other embedding requests) and search the index."""
    from omnibind.serve.errors import to_api_error

    try:
        vec = await asyncio.wait_for(batcher.embed([part]), timeout)
    except Exception as e:
        raise to_api_error(e) from None
    return index.search(vec, spec.k, modality=spec.modality)[0]


def hits_body(hits: list[Any], model_id: str) -> dict[str, Any]:
    """The ``/v1/search`` response."""
    data = [{**h.to_dict(), "url": SEARCH_MEDIA_PATH.format(id=h.id)} for h in hits]
    return {"object": "list", "data": data, "model": model_id}


def retrieved_parts(hits: list[Any]) -> list[RetrievedPart]:
    return [RetrievedPart(h.entry.modality, h.entry.path, h.score, h.rank, h.id) for h in hits]


def media_file(index: Any, item: str) -> Any:
    """The file of index item ``item``, if it is still the file that was indexed (same content hash)."""
    _require(index)
    if not item.isdigit() or int(item) >= len(index):
        raise APIError(404, f"no indexed item {item!r}", type="not_found_error", code="no_such_item")
    i = int(item)
    path = index.file_of(i).resolve()
    root = index.root.resolve() if index.root is not None else None
    if root is not None and not path.is_relative_to(root):
        raise APIError(404, f"indexed item {i} lies outside the index root", type="not_found_error")
    try:
        same = file_hash(path) == index.entries[i].sha256
    except OSError:
        same = False
    if not same:
        raise APIError(410, f"indexed item {i} ({index.entries[i].path}) changed or is gone; rebuild the index",
                       type="not_found_error", code="stale_item")  # fmt: skip
    return path
