"""Constrained decoding: a JSON schema (or "any JSON object") → a token mask at every step.

Backend-neutral: both backends sample in Python from logits (``llm/sampling.py``), so one
mechanism serves transformers and llama.cpp alike. The schema compiles to a small grammar of
nodes, run by the character automaton of ``llm/json_automaton.py`` (a set of parser stacks). A
token is allowed when feeding its text to the state leaves some stack alive; the
end-of-sequence token is allowed once a stack has accepted a whole value.

Token texts come from the backend's own ``detokenize`` (computed once per vocabulary, cached).
A mask is one walk of the vocabulary as a character trie (a dead prefix prunes every token
under it, and the automaton's steps are memoised); inside free string content every token made
only of plain characters is allowed in one vector operation, so only tokens with a quote or a
backslash are simulated. Masks are cached per state set.

Supported schema keywords: ``type`` (one or a list), ``enum``, ``const``, ``properties``,
``required``, ``additionalProperties`` (objects without ``properties``), ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``anyOf``/``oneOf``, local ``$ref``
(``#/$defs/...``, ``#/definitions/...``); annotations (``title``, ``description``, ``default``,
``examples``, ``format``, ``strict``) are ignored. Anything else (``pattern``, ``minimum``...)
is refused with ``SchemaError`` naming the keyword, rather than promising output it cannot
enforce. Properties are emitted in the schema's order (optional ones may be skipped); numbers
are capped at 16 digits per part so every value can end.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from omnibind.errors import ConfigError
from omnibind.llm.json_automaton import ANY, ANY_OBJECT, NON_ASCII, Matcher, Node, Stack, lit, seq

_IGNORED = {"title", "description", "default", "examples", "format", "strict", "$schema", "$id", "$comment"}
_KNOWN = {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "definitions",
}


class SchemaError(ConfigError):
    """A JSON schema this decoder cannot enforce; ``where`` names the place in the schema."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where


# --- schema → grammar ---------------------------------------------------------------------------
class Grammar:
    """A compiled grammar: the root node and the named definitions ``$ref`` points at."""

    def __init__(self, root: Node, defs: dict[str, Node] | None = None):
        self.root = root
        self.defs = defs or {}
        # (state set, character) → next state set, shared by every row decoding this grammar: tokens
        # that share a prefix share its work, and so do the steps of n choices
        self.memo: dict[tuple[frozenset[Stack], str], frozenset[Stack]] = {}
        self.masks: dict[int, OrderedDict[frozenset[Stack], np.ndarray]] = {}
        """Token masks by vocabulary (``id``) and state set, shared by the rows decoding this grammar."""

    @classmethod
    def json_object(cls) -> Grammar:
        """Any JSON object (OpenAI's ``{"type": "json_object"}``)."""
        return cls(ANY_OBJECT)

    @classmethod
    def from_schema(cls, schema: Any, where: str = "schema") -> Grammar:
        """Compile a JSON schema; raises ``SchemaError`` for what it cannot enforce."""
        defs: dict[str, Node] = {}
        raw_defs: dict[str, Any] = {}
        if isinstance(schema, dict):
            for key in ("$defs", "definitions"):
                for name, sub in (schema.get(key) or {}).items():
                    raw_defs[f"#/{key}/{name}"] = sub
        for ref, sub in raw_defs.items():
            defs[ref] = compile_schema(sub, f"{where}.{ref[2:].replace('/', '.')}", raw_defs)
        return cls(compile_schema(schema, where, raw_defs), defs)

    def wrapped(self, before: str, after: str) -> Grammar:
        """The same value between fixed texts (a tool call's ``<tool_call>`` tags)."""
        return Grammar(seq(lit(before), self.root, lit(after)), self.defs)


def compile_schema(s: Any, where: str, defs: dict[str, Any]) -> Node:
    """One (sub)schema → a node. ``True`` / ``{}`` mean any value."""
    if s is True or s == {}:
        return ANY
    if not isinstance(s, dict):
        raise SchemaError(where, f"expected a schema object, got {type(s).__name__}")
    unknown = sorted(set(s) - _KNOWN - _IGNORED)
    if unknown:
        raise SchemaError(where, f"unsupported schema keywords {unknown} (constrained decoding cannot enforce them)")
    if "$ref" in s:
        ref = s["$ref"]
        if ref not in defs:
            raise SchemaError(where, f"$ref {ref!r} is not a local definition (#/$defs/... or #/definitions/...)")
        return ("ref", ref)
    if "const" in s:
        return lit(_dumps(s["const"]))
    if "enum" in s:
        if not isinstance(s["enum"], list) or not s["enum"]:
            raise SchemaError(f"{where}.enum", "expected a non-empty array")
        return _alt([lit(_dumps(v)) for v in s["enum"]])
    for key in ("anyOf", "oneOf"):
        if key in s:
            if not isinstance(s[key], list) or not s[key]:
                raise SchemaError(f"{where}.{key}", "expected a non-empty array of schemas")
            return _alt([compile_schema(x, f"{where}.{key}[{i}]", defs) for i, x in enumerate(s[key])])
    kind = s.get("type")
    if isinstance(kind, list):
        return _alt([compile_schema({**s, "type": k}, where, defs) for k in kind])
    if kind is None:
        if "properties" in s:
            kind = "object"
        elif "items" in s:
            kind = "array"
        else:
            return ANY
    if kind == "string":
        lo, hi = _bound(s, "minLength", where), _bound(s, "maxLength", where)
        return ("str", lo or 0, hi)
    if kind in ("integer", "number"):
        return ("num", kind == "integer")
    if kind == "boolean":
        return _alt([lit("true"), lit("false")])
    if kind == "null":
        return lit("null")
    if kind == "array":
        item = compile_schema(s.get("items", True), f"{where}.items", defs)
        lo, hi = _bound(s, "minItems", where), _bound(s, "maxItems", where)
        return ("arr", item, lo or 0, hi)
    if kind == "object":
        props = s.get("properties")
        if props is None:
            extra = s.get("additionalProperties", True)
            return (
                "anyobj",
                compile_schema(extra if extra is not False else True, f"{where}.additionalProperties", defs),
            )
        if not isinstance(props, dict):
            raise SchemaError(f"{where}.properties", "expected an object")
        required = set(s.get("required") or [])
        missing = sorted(required - set(props))
        if missing:
            raise SchemaError(f"{where}.required", f"names properties that are not defined: {missing}")
        fields = tuple(
            (lit(_dumps(name) + ":"), compile_schema(sub, f"{where}.properties.{name}", defs), name in required)
            for name, sub in props.items()
        )
        return ("obj", fields)
    raise SchemaError(f"{where}.type", f"unknown type {kind!r}")


def _bound(s: dict[str, Any], key: str, where: str) -> int | None:
    v = s.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise SchemaError(f"{where}.{key}", f"expected a non-negative integer, got {v!r}")
    return v


def _alt(options: list[Node]) -> Node:
    return options[0] if len(options) == 1 else ("alt", tuple(options))


def _dumps(v: Any) -> str:
    # ASCII only (non-ASCII as \u escapes): then every non-ASCII character the automaton sees is
    # string content, where all behave alike, so one stands for all (``NON_ASCII``)
    return json.dumps(v, ensure_ascii=True, separators=(",", ":"))


# --- the vocabulary side: token texts and masks --------------------------------------------------------
class Vocabulary:
    """The text each token id adds, with indexes for fast masking (one per backend vocabulary)."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.size = len(texts)
        # tokens that add no text (control tokens) or half a character can never be part of JSON output
        usable = np.array([bool(t) and "\ufffd" not in t for t in texts])
        self.lengths = np.array([len(t) for t in texts])
        self.plain = usable & np.array([not any(c in '"\\' or ord(c) < 0x20 for c in t) for t in texts])
        # a character trie of the usable tokens (non-ASCII characters folded into one, as the automaton
        # treats them alike): masking walks it once, so a prefix that dies prunes every token under it
        self.children: list[dict[str, int]] = [{}]
        self.ends: list[list[int]] = [[]]
        for i, t in enumerate(texts):
            if not usable[i]:
                continue
            node = 0
            for ch in t:
                ch = ch if ch.isascii() else NON_ASCII
                nxt = self.children[node].get(ch)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][ch] = nxt
                    self.children.append({})
                    self.ends.append([])
                node = nxt
            self.ends[node].append(i)
        self.special = np.flatnonzero(~self.plain & usable)  # usable tokens with a quote/backslash/control char

    @classmethod
    def from_detokenize(cls, detokenize: Callable[[list[int]], str], size: int) -> Vocabulary:
        """Token texts as ``detokenize`` renders them after an anchor token (keeps SentencePiece's
        leading spaces, which a lone-token decode drops)."""

        def text(ids: list[int]) -> str:
            try:
                return detokenize(ids)
            except (ValueError, IndexError, KeyError, TypeError, OverflowError):  # ids past the tokenizer's table
                return ""

        anchor = next((i for i in range(min(size, 4096)) if text([i]).strip().isalnum()), None)
        if anchor is None:
            return cls([text([i]) for i in range(size)])
        anchor_text = text([anchor])
        texts = []
        for i in range(size):
            full = text([anchor, i])
            texts.append(full[len(anchor_text) :] if full.startswith(anchor_text) else text([i]))
        return cls(texts)


_VOCABS: OrderedDict[tuple[int, int], Vocabulary] = OrderedDict()


def vocabulary_for(detokenize: Callable[[list[int]], str], size: int) -> Vocabulary:
    """The cached ``Vocabulary`` of a backend (keyed by its detokenize's owner and the vocabulary size)."""
    key = (id(getattr(detokenize, "__self__", detokenize)), size)
    vocab = _VOCABS.get(key)
    if vocab is None:
        vocab = Vocabulary.from_detokenize(detokenize, size)
        _VOCABS[key] = vocab
        while len(_VOCABS) > 4:
            _VOCABS.popitem(last=False)
    return vocab


class TokenConstraint:
    """Per-sequence constrained decoding: ``mask()`` before sampling, ``accept(token)`` after."""

    def __init__(self, grammar: Grammar, vocab: Vocabulary, eos_ids: Iterable[int]):
        self.matcher = Matcher(grammar)
        self.vocab = vocab
        self.eos_ids = sorted(eos_ids)
        self._cache = grammar.masks.setdefault(id(vocab), OrderedDict())

    @property
    def finished(self) -> bool:
        """The value is complete and nothing can extend it: the sequence should end now."""
        return self.matcher.finished

    def mask(self) -> np.ndarray:
        """(V,) bool: the tokens allowed next (end-of-sequence only once the value is complete)."""
        states = self.matcher.states
        hit = self._cache.get(states)
        if hit is not None:
            self._cache.move_to_end(states)
            return hit
        allowed = np.zeros(self.vocab.size, dtype=bool)
        free = self._free_string(states)
        if free is not None:  # inside a plain string: every plain token fits, up to maxLength
            count, hi = free
            ok = self.vocab.plain if hi is None else self.vocab.plain & (self.vocab.lengths <= hi - count)
            allowed |= ok
            for i in self.vocab.special:
                if self.matcher.feed_text(self.vocab.texts[int(i)], states):
                    allowed[int(i)] = True
        else:
            self._walk(states, allowed)
        if self.matcher.can_end(states) or not allowed.any():  # stuck (should not happen): let it end
            allowed[self.eos_ids] = True
        self._cache[states] = allowed
        if len(self._cache) > 512:
            self._cache.popitem(last=False)
        return allowed

    def _walk(self, states: frozenset[Stack], allowed: np.ndarray) -> None:
        """Mark every token whose text keeps some stack alive (depth-first over the trie)."""
        children, ends, feed = self.vocab.children, self.vocab.ends, self.matcher.feed_text
        todo = [(0, states)]
        while todo:
            node, st = todo.pop()
            for ch, child in children[node].items():
                nxt = feed(ch, st)
                if nxt:
                    if ends[child]:
                        allowed[ends[child]] = True
                    if children[child]:
                        todo.append((child, nxt))

    def accept(self, token: int) -> None:
        """Advance past a sampled token (end-of-sequence tokens add nothing)."""
        if token in self.eos_ids:
            return
        self.matcher.advance(self.vocab.texts[token])

    @staticmethod
    def _free_string(states: frozenset[Stack]) -> tuple[int, int | None] | None:
        """(count, maxLength) when the only state is inside a string's content (else None)."""
        if len(states) != 1:
            return None
        (st,) = states
        if not st or st[-1][0] != "strf" or st[-1][1] != 1:
            return None
        return st[-1][2], st[-1][4]


def grammar_for_response_format(fmt: Any, where: str = "response_format") -> Grammar | None:
    """OpenAI's ``response_format`` → a grammar (None for ``{"type": "text"}`` or no format)."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise SchemaError(where, "expected an object with a 'type'")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return Grammar.json_object()
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or "schema" not in spec:
            raise SchemaError(f"{where}.json_schema", "expected {'name': ..., 'schema': {...}}")
        return Grammar.from_schema(spec["schema"], f"{where}.json_schema.schema")
    raise SchemaError(f"{where}.type", f"expected 'text', 'json_object' or 'json_schema', got {kind!r}")
