"""The character-level automaton behind constrained decoding (``omnibind.llm.constrained``).

A compiled grammar is a tree of hashable nodes (tuples); the decoder's state is a *set* of
parser stacks, innermost frame last, so ``anyOf``, optional properties and a number that ends
on the next character need no look-ahead: every way the text can still go stays alive. One
step (state set, character) → state set is memoised on the grammar, shared by every row that
decodes with it.
"""

from __future__ import annotations

from typing import Any

MAX_DIGITS = 16
"""Digits per number part (integer, fraction, exponent): bounds a number so a small model ends it."""
_ESCAPES = set('"\\/bfnrt')
_HEX = set("0123456789abcdefABCDEF")
_DIGITS = set("0123456789")
_WS = " "  # the one whitespace allowed (after ':' and ','): enough for readable JSON, no runaway padding

Node = tuple  # compiled grammar node (hashable, so parser stacks can be deduplicated)
Stack = tuple  # frames, innermost last


def lit(text: str) -> Node:
    return ("lit", text)


def seq(*parts: Node) -> Node:
    return ("seq", tuple(parts))


ANY: Node = ("any",)
ANY_OBJECT: Node = ("anyobj", ANY)


# --- the automaton ------------------------------------------------------------------
class Matcher:
    """The parser state of one sequence: the set of stacks still alive after the text so far.

    ``grammar``: an ``omnibind.llm.constrained.Grammar`` (``root``, ``defs``, ``memo``)."""

    def __init__(self, grammar: Any, states: frozenset[Stack] | None = None):
        self.grammar = grammar
        self.states: frozenset[Stack] = states if states is not None else frozenset({(grammar.root,)})

    def feed_text(self, text: str, states: frozenset[Stack] | None = None) -> frozenset[Stack]:
        """The states after ``text`` (empty: the text is not allowed here)."""
        cur = self.states if states is None else states
        memo = self.grammar.memo
        for ch in text:
            if not ch.isascii():
                ch = NON_ASCII
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
NON_ASCII = "\u00e9"  # stands for every non-ASCII character: outside strings none fits, inside all fit alike
