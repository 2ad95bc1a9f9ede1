"""Answer extraction: free-form model text → the closed answer a metric compares.

Extraction is deliberately lenient about wording but never guesses: text that names no answer
(or names two answers at the same place) gives ``None``, which every metric counts as wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_WORD = r"(?<![a-z0-9]){}(?![a-z0-9])"

POSITION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "first": ("first", "1st", "1", "left", "former", "input 1", "option 1"),
    "second": ("second", "2nd", "2", "right", "latter", "input 2", "option 2"),
}
"""Words that name an answer position (DisCRn answers by position: first/left/1/…)."""


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()


def find_first(text: str, synonyms: Mapping[str, Sequence[str]]) -> str | None:
    """The answer whose synonym occurs earliest in ``text`` (whole words; longest wins at a tie).

    Returns ``None`` when no synonym occurs, or when two different answers start at the same place.
    """
    t = _norm(text)
    best: tuple[int, int, str] | None = None  # (position, -length, answer)
    ambiguous = False
    for answer, words in synonyms.items():
        for w in words:
            m = re.search(_WORD.format(re.escape(_norm(w))), t)
            if m is None:
                continue
            key = (m.start(), -len(w), answer)
            if best is None or key[:2] < best[:2]:
                best, ambiguous = key, False
            elif key[:2] == best[:2] and answer != best[2]:
                ambiguous = True
    if best is None or ambiguous:
        return None
    return best[2]


def yes_no(text: str) -> str | None:
    """ "yes"/"no" from an answer ("Yes, there is…" → yes; "There is no cat" → no); else ``None``."""
    return find_first(text, {"yes": ("yes", "yeah", "correct", "true"), "no": ("no", "not", "false", "none")})


def class_name(text: str, classes: Sequence[str], synonyms: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """The class named first in the answer (class names plus optional synonyms; plural -s tolerated)."""
    table: dict[str, list[str]] = {}
    for c in classes:
        words = [c, *(synonyms or {}).get(c, ())]
        table[c] = [*words, *(w + "s" for w in words if not w.endswith("s"))]
    return find_first(text, table)


def position(text: str, modalities: Sequence[str] | None = None) -> str | None:
    """ "first"/"second" from a DisCRn answer; naming an input's modality ("the image") also counts
    when the two inputs have different modalities."""
    table = {k: list(v) for k, v in POSITION_SYNONYMS.items()}
    if modalities and len(modalities) == 2 and modalities[0] != modalities[1]:
        for pos, mod in zip(("first", "second"), modalities):
            table[pos].extend(MODALITY_WORDS.get(mod, (mod,)))
    return find_first(text, table)


MODALITY_WORDS: dict[str, tuple[str, ...]] = {
    "image": ("image", "picture", "photo"),
    "audio": ("audio", "sound", "recording"),
    "points": ("point cloud", "3d shape", "shape"),
    "imu": ("motion recording", "imu", "sensor"),
    "depth": ("depth map",),
    "video": ("video",),
    "thermal": ("thermal image",),
}


def head_word(label: str) -> str:
    """'US 1 cent piece called a penny' → 'penny'; 'red apple' → 'apple'; 'teddy bear' → 'bear'."""
    text = label.lower()
    if " called " in text:
        text = text.split(" called ")[-1]
    text = re.split(r"[,(]| with | of | on | in | for ", text)[0]
    words = re.findall(r"[a-z0-9]+", text)
    return words[-1] if words else text.strip()


def names_object(answer: str, label: str) -> bool:
    """True when the answer names the object: its full label or its head word (± plural 's')."""
    a = " " + re.sub(r"[^a-z0-9]+", " ", answer.lower()) + " "
    full = " " + re.sub(r"[^a-z0-9]+", " ", label.lower()).strip() + " "
    if full in a:
        return True
    h = head_word(label)
    forms = {h, h + "s", h + "es", h[:-1] if h.endswith("s") else h}
    return any(f" {f} " in a for f in forms if f)
