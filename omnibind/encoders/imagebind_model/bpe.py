"""CLIP's byte-level BPE tokenizer (Radford et al. 2021), as ImageBind's text tower uses it.

Reads a merges file such as ``bpe_simple_vocab_16e6.txt.gz`` (gzip or plain text; first line is a
header, then one ``left right`` merge per line). The vocabulary is laid out the way CLIP builds it:
256 byte symbols, the same 256 with the end-of-word mark ``</w>``, one entry per merge, then
``<|startoftext|>`` and ``<|endoftext|>`` — so the official file gives 49408 ids and a small merges
file gives a small vocabulary (tests build one).

Text is cleaned as upstream cleans it (``textclean.fix_text`` stands in for ``ftfy.fix_text``, then HTML
is unescaped twice, whitespace collapsed and the text lower-cased); the one repair left out is ftfy's
mojibake re-decoding, so already-broken text (``cafÃ©``) is tokenized as is. As upstream, the literal
strings ``<|startoftext|>`` and ``<|endoftext|>`` in a text are the special tokens, and the text tower
reads the first end token (upstream pools at ``argmax`` of the ids, the end token having the highest id).
"""

from __future__ import annotations

import gzip
import html
import itertools
from functools import lru_cache
from pathlib import Path

import regex

from omnibind.encoders.imagebind_model.textclean import fix_text
from omnibind.errors import CheckpointError

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
# Upstream keeps at most this many merges (49152 ids minus bytes and specials).
MAX_MERGES = 49152 - 256 - 2
_SPLIT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_SPACES = regex.compile(r"\s+")  # the ``regex`` module's \s (Unicode White_Space), as upstream


@lru_cache(maxsize=1)
def byte_symbols() -> dict[int, str]:
    """Each byte → a printable unicode character (printable bytes map to themselves), so BPE never
    sees whitespace or control characters. Insertion order (printable bytes first) is the id order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def read_merges(path: str | Path) -> list[tuple[str, str]]:
    """Merges from a CLIP-style file; a missing or malformed file raises ``CheckpointError``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"BPE vocabulary {p}: file not found (ImageBind's is bpe_simple_vocab_16e6.txt.gz)")
    raw = p.read_bytes()
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"BPE vocabulary {p}: unreadable ({e})") from None
    merges = []
    for n, line in enumerate(text.split("\n")[1 : MAX_MERGES + 1], start=2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CheckpointError(f"BPE vocabulary {p}: line {n} is not a 'left right' merge: {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


class BPETokenizer:
    """Text → ids with start/end tokens, truncated so the end token always fits (upstream's fix)."""

    def __init__(self, merges: list[tuple[str, str]], context_length: int = 77):
        symbols = list(byte_symbols().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
        self.ids = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.context_length = context_length
        self.sot, self.eot = self.ids[SOT], self.ids[EOT]
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_file(cls, path: str | Path, context_length: int = 77) -> BPETokenizer:
        return cls(read_merges(path), context_length)

    @property
    def vocab_size(self) -> int:
        return len(self.ids)

    def _bpe(self, word: str) -> list[str]:
        """Greedy lowest-rank merging of one pre-token (its last symbol carries ``</w>``)."""
        if word in self._cache:
            return self._cache[word]
        if word in (SOT, EOT):  # a special token written in the text is that token, as upstream
            return [word]
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = set(itertools.pairwise(parts))
            best = min(pairs, key=lambda p: self.ranks.get(p, len(self.ranks)))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without start/end tokens (cleaned as the module docstring says)."""
        text = html.unescape(html.unescape(fix_text(text))).strip()
        text = _SPACES.sub(" ", text).strip().lower()
        table = byte_symbols()
        out: list[int] = []
        for piece in _SPLIT.findall(text):
            word = "".join(table[b] for b in piece.encode("utf-8"))
            out.extend(self.ids[t] for t in self._bpe(word))
        return out

    def __call__(self, texts: list[str]) -> tuple[list[list[int]], list[int]]:
        """Per text: ``[SOT] + ids + [EOT]`` cut to ``context_length``, and the position the text tower
        pools at: the first end token (earlier than the last one only when the text spells it out)."""
        rows = []
        for t in texts:
            ids = [*[self.sot, *self.encode(t)][: self.context_length - 1], self.eot]
            rows.append(ids)
        return rows, [r.index(self.eot) for r in rows]
