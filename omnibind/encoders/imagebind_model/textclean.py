"""The text repairs CLIP's tokenizer applies before BPE (upstream calls ``ftfy.fix_text``), without ftfy.

ImageBind's tokenizer cleans every text with ``ftfy.fix_text`` with its default settings, then unescapes
HTML twice and collapses whitespace. Those repairs change the token ids of ordinary input: a curly
apostrophe (``it’s``) becomes ``'`` and splits into ``it`` + ``'s``; a ligature ``ﬁ`` becomes ``fi``; fullwidth
``Ａ`` becomes ``A``. omnibind does not depend on ftfy, so the deterministic part of those repairs is
written here, following ftfy's documented behaviour and checked against it code point by code point
(tests/unit/test_imagebind_equivalence.py, on the map recorded by scripts/make_imagebind_fixture.py):

- HTML entities with a ``;`` are unescaped, unless the text contains ``<`` (it may be real HTML);
- ANSI terminal escapes (colour codes) are removed;
- C1 control characters (U+0080–U+009F) are read as the Windows-1252 characters they usually stand for;
- Latin ligatures (ﬁ, ĳ, ǆ …) are split into their letters;
- fullwidth and halfwidth forms and the ideographic space become their ordinary-width characters;
- curly single and double quotes become ``'`` and ``"``;
- CR, LINE SEPARATOR and PARAGRAPH SEPARATOR become newlines;
- other control characters, the byte-order mark and Unicode's deprecated format controls are dropped;
- the result is NFC-normalised;

all repeated until nothing changes, as ftfy does. Not done: ftfy's mojibake repair (re-decoding text that
was decoded with the wrong codec, e.g. ``cafÃ©`` → ``café``), a heuristic that needs ftfy's tables.
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata
from functools import lru_cache

_ENTITY = re.compile(r"&#?[0-9A-Za-z]{1,32};")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029]")
# Latin ligatures that are split into their letters (one level of their compatibility decomposition).
_LIGATURES = "\u0132\u0133\u0149\u01c4\u01c5\u01c6\u01c7\u01c8\u01c9\u01ca\u01cb\u01cc\u01f1\u01f2\u01f3" + "".join(
    chr(c) for c in range(0xFB00, 0xFB07)
)


def _compat_letters(ch: str) -> str:
    """``ﬅ`` → ``ſt``: the code points of the character's compatibility decomposition, not recursed."""
    fields = unicodedata.decomposition(ch).split()
    return "".join(chr(int(f, 16)) for f in fields if not f.startswith("<"))


@lru_cache(maxsize=1)
def _table() -> dict[int, str | None]:
    """One ``str.translate`` table for every single-character repair."""
    table: dict[int, str | None] = {}
    # Controls (keeping tab, newline, form feed and carriage return), DEL, deprecated format controls,
    # the byte-order mark / zero-width no-break space and the interlinear annotation characters.
    for cp in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, *range(0x206A, 0x2070), 0xFEFF]:
        table[cp] = None
    for cp in range(0xFFF9, 0xFFFD):
        table[cp] = None
    for cp in range(0x80, 0xA0):  # C1 controls in text are almost always Windows-1252 bytes
        try:
            table[cp] = bytes([cp]).decode("cp1252")
        except UnicodeDecodeError:
            pass  # the five bytes cp1252 leaves undefined stay as they are
    for ch in _LIGATURES:
        table[ord(ch)] = _compat_letters(ch)
    table[0x3000] = " "
    for cp in range(0xFF01, 0xFFEF):
        wide = unicodedata.normalize("NFKC", chr(cp))
        if wide != chr(cp):
            table[cp] = wide
    for cp in [0x02BC, *range(0x2018, 0x201C)]:
        table[cp] = "'"
    for cp in range(0x201C, 0x2020):
        table[cp] = '"'
    # Several entries produce characters another entry maps (C1 0x91 → ‘ → '; ŉ → ʼn → 'n): resolve them.
    for cp, out in table.items():
        if out:
            table[cp] = "".join(table.get(ord(c), c) or "" for c in out)
    return table


def _unescape_entity(match: re.Match[str]) -> str:
    """A named entity HTML5 defines (with its ``;``) or a numeric one; anything else is left alone
    (``html.unescape`` alone would also expand the ``&amp`` prefix of ``&ampx;``)."""
    entity = match.group(0)
    if entity[1] == "#":
        return html.unescape(entity)
    name = entity[1:]
    if name not in html.entities.html5 and name[:-1].isupper():  # ``&EACUTE;``: a shouted ``&Eacute;``
        name = name[0] + name[1:].lower()
    return html.entities.html5.get(name, entity)


def fix_text(text: str) -> str:
    """``text`` with the repairs listed in the module docstring applied until it stops changing."""
    for _ in range(10):  # each pass can expose one more layer (``&amp;amp;`` → ``&amp;`` → ``&``)
        fixed = text
        if "<" not in fixed:
            fixed = _ENTITY.sub(_unescape_entity, fixed)
        fixed = _ANSI.sub("", fixed)
        fixed = fixed.translate(_table())
        fixed = _LINE_BREAKS.sub("\n", fixed)
        fixed = unicodedata.normalize("NFC", fixed)
        if fixed == text:
            break
        text = fixed
    return text
