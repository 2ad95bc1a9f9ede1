"""Constrained decoding: a JSON schema (or "any JSON object") → a token mask at every step.

Backend-neutral: both backends sample in Python from logits (``llm/sampling.py``), so one
mechanism serves transformers and llama.cpp alike. The schema compiles to a small grammar of
nodes; the decoder's state is a *set* of parser stacks (a nondeterministic push-down automaton
over characters, so ``anyOf``, optional properties and numbers that end on the next character
need no look-ahead). A token is allowed when feeding its text to the state leaves some stack
alive; the end-of-sequence token is allowed once a stack has accepted a whole value.

Token texts come from the backend's own ``detokenize`` (computed once per vocabulary, cached).
Checking a step is cheap where it matters: tokens are pre-filtered by their first character, and
inside free string content every token made only of plain characters is allowed in one vector
operation, so only tokens with a quote or a backslash are simulated.

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

MAX_DIGITS = 16
"""Digits per number part (integer, fraction, exponent): bounds a number so a small model ends it."""
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
_ESCAPES = set('"\\/bfnrt')
_HEX = set("0123456789abcdefABCDEF")
_DIGITS = set("0123456789")
_WS = " "  # the one whitespace allowed (after ':' and ','): enough for readable JSON, no runaway padding

Node = tuple  # compiled grammar node (hashable, so parser stacks can be deduplicated)
Stack = tuple  # frames, innermost last


class SchemaError(ConfigError):
    """A JSON schema this decoder cannot enforce; ``where`` names the place in the schema."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where


# --- schema → nodes ---------------------------------------------------------------------------
def lit(text: str) -> Node:
    return ("lit", text)


def seq(*parts: Node) -> Node:
    return ("seq", tuple(parts))


ANY: Node = ("any",)
ANY_OBJECT: Node = ("anyobj", ANY)


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
    # string content, where all behave alike, so one stands for all (``_NON_ASCII``)
    return json.dumps(v, ensure_ascii=True, separators=(",", ":"))


# --- the character-level automaton ------------------------------------------------------------------
class Matcher:
    """The parser state of one sequence: the set of stacks still alive after the text so far."""

    def __init__(self, grammar: Grammar, states: frozenset[Stack] | None = None):
        self.grammar = grammar
        self.states: frozenset[Stack] = states if states is not None else frozenset({(grammar.root,)})

    def feed_text(self, text: str, states: frozenset[Stack] | None = None) -> frozenset[Stack]:
        """The states after ``text`` (empty: the text is not allowed here)."""
        cur = self.states if states is None else states
        memo = self.grammar.memo
        for ch in text:
            if not ch.isascii():
                ch = _NON_ASCII
            key = (cur, ch)
            nxt = memo.get(key)
            if nxt is None:
                if len(memo) > _MEMO_LIMIT:
                    memo.clear()
                nxt = frozenset(s for st in cur for s in self._feed(st, ch))
                memo[key] = nxt
            if not nxt:
                return nxt
            cur = nxt
        return cur

    def advance(self, text: str) -> None:
        """Move past an accepted token's text."""
        self.states = self.feed_text(text)

    def can_end(self, states: frozenset[Stack] | None = None) -> bool:
        """Whether a whole value has been written (end of sequence allowed now)."""
        return any(self._can_end(st) for st in (self.states if states is None else states))

    @property
    def finished(self) -> bool:
        """Nothing but the end may follow (every live stack is empty)."""
        return bool(self.states) and all(not st for st in self.states)

    # a stack may end if every frame left can end without more input
    def _can_end(self, st: Stack) -> bool:
        for frame in st:
            if frame[0] == "numf" and frame[1] in _NUM_END:
                continue
            if frame[0] == "ws":
                continue
            return False
        return True

    def _expand(self, st: Stack) -> list[Stack]:
        """Replace an unstarted node on top with its concrete first frames (alternatives → several)."""
        if not st:
            return [st]
        top, rest = st[-1], st[:-1]
        kind = top[0]
        if kind == "alt":
            return [s for opt in top[1] for s in self._expand((*rest, opt))]
        if kind == "seq":
            return self._expand((*rest, *reversed(top[1])))
        if kind == "ref":
            return self._expand((*rest, self.grammar.defs[top[1]]))
        if kind == "any":
            opts = (
                ("str", 0, None),
                ("num", False),
                lit("true"),
                lit("false"),
                lit("null"),
                ANY_OBJECT,
                ("arr", ANY, 0, None),
            )
            return [s for opt in opts for s in self._expand((*rest, opt))]
        if kind == "lit":
            return [(*rest, ("litf", top[1], 0))]
        if kind == "str":
            return [(*rest, ("strf", 0, 0, top[1], top[2]))]
        if kind == "num":
            return [(*rest, ("numf", "start", 0, top[1]))]
        if kind == "arr":
            return [(*rest, ("arrf", top[1], 0, top[2], top[3], "open"))]
        if kind == "anyobj":
            return [(*rest, ("anyobjf", top[1], False, "open"))]
        if kind == "obj":
            return [(*rest, ("objf", top[1], 0, False, "open"))]
        return [st]

    def _feed(self, st: Stack, ch: str) -> list[Stack]:
        out: list[Stack] = []
        for s in self._expand(st):
            if s:
                out.extend(self._step(s, ch))
        return out

    def _step(self, st: Stack, ch: str) -> list[Stack]:
        top, rest = st[-1], st[:-1]
        kind = top[0]
        if kind == "litf":
            text, i = top[1], top[2]
            if ch != text[i]:
                return []
            return [rest] if i + 1 == len(text) else [(*rest, ("litf", text, i + 1))]
        if kind == "ws":  # optional whitespace: take one, or end and let the parent read ch
            out = self._feed(rest, ch)
            if ch == _WS and top[1] > 0:
                out.append((*rest, ("ws", top[1] - 1)))
            return out
        if kind == "strf":
            return self._string(top, rest, ch)
        if kind == "numf":
            return self._number(top, rest, ch)
        if kind == "arrf":
            return self._array(top, rest, ch)
        if kind == "anyobjf":
            return self._anyobj(top, rest, ch)
        if kind == "objf":
            return self._object(top, rest, ch)
        raise AssertionError(f"unknown frame {kind}")

    @staticmethod
    def _string(top: tuple, rest: Stack, ch: str) -> list[Stack]:
        _, phase, count, lo, hi = top
        if phase == 0:
            return [(*rest, ("strf", 1, 0, lo, hi))] if ch == '"' else []
        if phase == 1:
            if ch == '"':
                return [rest] if count >= lo else []
            if hi is not None and count >= hi:
                return []
            if ch == "\\":
                return [(*rest, ("strf", 2, count, lo, hi))]
            if ord(ch) < 0x20:
                return []
            return [(*rest, ("strf", 1, count + 1, lo, hi))]
        if phase == 2:  # after a backslash
            if ch == "u":
                return [(*rest, ("strf", 3, count, lo, hi))]
            return [(*rest, ("strf", 1, count + 1, lo, hi))] if ch in _ESCAPES else []
        # phases 3..6: the four hex digits of \uXXXX
        if ch not in _HEX:
            return []
        return [(*rest, ("strf", 1, count + 1, lo, hi) if phase == 6 else ("strf", phase + 1, count, lo, hi))]

    def _number(self, top: tuple, rest: Stack, ch: str) -> list[Stack]:
        _, phase, n, integer = top
        out: list[Stack] = []

        def go(p: str, k: int) -> None:
            if k <= MAX_DIGITS:
                out.append((*rest, ("numf", p, k, integer)))

        digit = ch in _DIGITS
        if phase == "start":
            if ch == "-":
                go("sign", 0)
            elif ch == "0":
                go("zero", 1)
            elif digit:
                go("int", 1)
        elif phase == "sign":
            if ch == "0":
                go("zero", 1)
            elif digit:
                go("int", 1)
        elif phase in ("int", "zero"):
            if digit and phase == "int":
                go("int", n + 1)
            elif ch == "." and not integer:
                go("dot", 0)
            elif ch in "eE" and not integer:
                go("e", 0)
        elif phase == "dot":
            if digit:
                go("frac", 1)
        elif phase == "frac":
            if digit:
                go("frac", n + 1)
            elif ch in "eE":
                go("e", 0)
        elif phase == "e":
            if ch in "+-":
                go("esign", 0)
            elif digit:
                go("exp", 1)
        elif phase == "esign":
            if digit:
                go("exp", 1)
        elif phase == "exp" and digit:
            go("exp", n + 1)
        if phase in _NUM_END:  # the number may end here: the parent reads ch
            out.extend(self._feed(rest, ch))
        return out

    def _array(self, top: tuple, rest: Stack, ch: str) -> list[Stack]:
        _, item, count, lo, hi, phase = top
        if phase == "open":
            return [(*rest, ("arrf", item, 0, lo, hi, "next"))] if ch == "[" else []
        out: list[Stack] = []
        if ch == "]" and count >= lo:
            out.append(rest)
        if hi is None or count < hi:
            after = (*rest, ("arrf", item, count + 1, lo, hi, "next"))
            if count == 0:
                out.extend(self._feed((*after, item), ch))
            elif ch == ",":
                out.append((*after, item, ("ws", 1)))
        return out

    def _anyobj(self, top: tuple, rest: Stack, ch: str) -> list[Stack]:
        _, value, emitted, phase = top
        if phase == "open":
            return [(*rest, ("anyobjf", value, False, "next"))] if ch == "{" else []
        out: list[Stack] = []
        if ch == "}":
            out.append(rest)
        after = (*rest, ("anyobjf", value, True, "next"), value, ("ws", 1), ("litf", ":", 0))
        if emitted and ch == ",":
            out.append((*after, ("strf", 0, 0, 0, None), ("ws", 1)))
        elif not emitted and ch == '"':
            out.append((*after, ("strf", 1, 0, 0, None)))
        return out

    def _object(self, top: tuple, rest: Stack, ch: str) -> list[Stack]:
        _, fields, idx, emitted, phase = top
        if phase == "open":
            return [(*rest, ("objf", fields, 0, False, "next"))] if ch == "{" else []
        out: list[Stack] = []
        if ch == "}" and not any(req for _, _, req in fields[idx:]):
            out.append(rest)
        for j in range(idx, len(fields)):
            key, value, _ = fields[j]
            after = (*rest, ("objf", fields, j + 1, True, "next"), value, ("ws", 1))
            if emitted:
                if ch == ",":
                    out.append((*after, ("litf", key[1], 0), ("ws", 1)))
            else:
                out.extend(self._feed((*after, key), ch))
            if fields[j][2]:  # a required property cannot be skipped
                break
        return out


_NUM_END = ("int", "zero", "frac", "exp")
_MEMO_LIMIT = 400_000
_NON_ASCII = "\u00e9"  # stands for every non-ASCII character: outside strings none fits, inside all fit alike


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
                ch = ch if ch.isascii() else _NON_ASCII
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
