"""Labelled clip art from Openclipart (Debian ``openclipart-png``, public domain).

Files sit at ``/usr/share/openclipart/png/<category>/<subcategory...>/<name>_<author>_NN.png``,
with the name part often cut at 25 characters (``emperor_penguin_ralf_ste_01.png``), in several
languages (much of it Italian: ``lucertola_architetto_fra_01.png``) and beside many stars, flags,
patterns and icons. ``items()`` keeps the pictures of things with a clean English label:

1. drop whole categories that are not pictures of things (computer icons, shapes, signs and
   symbols, flags, patterns, maps, logos, playing cards, road signs, duplicates) and names with a
   junk word (star, icon, arrow, pattern, flag, text, symbol...);
2. clean the file name: drop the ``_NN``/``_r`` suffix, split on ``_``/``-``/camelCase, drop
   digits, translate a few frequent Italian nouns, drop colour/size words (``MODIFIERS``), and cut
   at the first token that is an author name (``AUTHOR_TOKENS``, the frequent ones), an Italian
   preposition, or not a common English noun (WordNet; proper names like "Daniel" stop it too):
   what is left is the label ("emperor penguin"); a name whose first word is not English is dropped;
3. ``basic`` is the WordNet basic-level noun of the label ("emperor penguin" -> penguin), or None.

Counts with the Debian package (8,121 PNGs) are in ``docs/SOURCES.md`` and ``scan()``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from omnibind.data.sources import wordnet

ROOT = Path("/usr/share/openclipart/png")

# Category folders (relative paths) that hold no pictures of things.
DROP_FOLDERS = (
    "computer", "shapes", "signs_and_symbols", "special", "logos", "buttons", "decorations", "geography",
    "recreation/games/cards", "recreation/games/chess", "transportation/roadsigns",
    "transportation/aiga-symbols", "unsorted/duplicates", "science/astronomy", "office/telephone",
)  # fmt: skip
# A name with one of these words is a symbol, a decoration or text, not a thing.
JUNK_WORDS = frozenset(
    "star stars flag flags pattern patterns icon icons gradient arrow arrows text symbol symbols sign signs "
    "logo button buttons map maps silhouette outline contour border frame background texture ornament "
    "banner label sticker emblem badge cursor callout template tile seamless wallpaper font letter "
    "alphabet number numbers clipart mime folder".split()
)
# Frequent author-name tokens (they follow the picture's name): cut the label there.
AUTHOR_TOKENS = frozenset(
    "architetto architett archite archit franc francesco frances francesc fra fr rollandin ganson benji park "
    "juliane krug nicu buculei buc jean victor vic balin jarno vasamaa gerald jon phillips linda kim yves "
    "guillo sergio luiz araujo dan gerhard gerh lumen design desig peterm matthew gates michael tunnicliffe "
    "moore leif lodahl lod mauro olivo ralf marcelo staudt kurt cagle cagl alex kuehne rory mccann charles "
    "mimooh jonathan dietrich dietri mateya martin nurbldoff yager aubanel tobias jakobs philippe colin romus "
    "costea bogdan saint fearzip jesper zedlitz carlos ryan anton frouke jaime sanchez md bw bwh sm fs ii "
    "simple stylized cartoon clip art mo".split()
)
# A few frequent Italian nouns in the file names, to English (the rest is dropped as non-English).
ITALIAN = {
    "acquila": "eagle", "aquila": "eagle", "cigno": "swan", "cigni": "swans", "gabbiano": "gull",
    "gallo": "rooster", "gallina": "hen", "gufo": "owl", "civetta": "owl", "pollo": "chicken",
    "lucertola": "lizard", "lucertolona": "lizard", "lucertolone": "lizard", "cane": "dog", "cani": "dogs",
    "gatto": "cat", "gatti": "cats", "anatra": "duck", "pinguino": "penguin", "elefante": "elephant",
    "elefantone": "elephant", "cammello": "camel", "candela": "candle", "mela": "apple", "prugna": "plum",
    "colombo": "pigeon", "tacchino": "turkey", "uovo": "egg", "ape": "bee", "cavallo": "horse",
    "mucca": "cow", "pecora": "sheep", "maiale": "pig", "topo": "mouse", "pesce": "fish", "farfalla": "butterfly",
    "ragno": "spider", "serpente": "snake", "tartaruga": "turtle", "rana": "frog", "lucchetto": "padlock",
    "bicicletta": "bicycle", "borsa": "bag", "borsetta": "handbag", "cesto": "basket", "valigie": "suitcases",
    "bussola": "compass", "calcolatrice": "calculator", "motosega": "chainsaw", "betoniera": "cement mixer",
    "ambulanza": "ambulance", "albero": "tree", "fiore": "flower", "fiori": "flowers", "sedia": "chair",
    "tavolo": "table", "lampada": "lamp", "chiave": "key", "martello": "hammer", "forbici": "scissors",
    "ombrello": "umbrella", "orologio": "clock", "telefono": "telephone", "bottiglia": "bottle",
    "binocolo": "binoculars", "microscopio": "microscope", "cinepresa": "film camera", "telecamera": "video camera",
    "televisore": "television", "ferro": "iron", "stiro": "iron",
}  # fmt: skip
_LEADING_ARTICLES = frozenset("a an the la il lo le gli un una".split())
_FUNCTION_WORDS = frozenset("and of with in on".split())
_ITALIAN_STOPS = frozenset("di da del della dei e con per".split())  # an Italian name goes on: cut
# Colour, size and style words are not part of what the picture shows: dropped from the label.
MODIFIERS = frozenset(
    "blue red green yellow black white orange purple pink brown grey gray golden silver dark light "
    "big small little tiny huge old new happy sad cute funny alt shaded glossy plain".split()
)


@dataclass(frozen=True)
class Item:
    """One kept picture: its file, cleaned label, folder (``animals/birds``) and basic-level noun."""

    path: Path
    label: str
    category: str
    basic: str | None


def tokens(stem: str) -> list[str]:
    """File stem to lower-case word tokens: suffix ``_NN``/``_r`` off, split, digits dropped."""
    s = re.sub(r"(_\d+[a-z]?|_[a-z])$", "", stem).strip("_")
    s = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", s)
    out = []
    for tok in re.split(r"[\s_\-.]+", s.lower()):
        tok = re.sub(r"\d+", "", tok)
        if tok:
            out.append(tok)
    return out


def clean_label(stem: str, wn: wordnet.WordNet | None) -> tuple[str | None, str]:
    """A file stem to ``(label, "")``, or ``(None, reason)`` when it has no usable English name."""
    toks = tokens(stem)
    while toks and toks[0] in _LEADING_ARTICLES:
        toks = toks[1:]
    if not toks:
        return None, "no name"
    if any(t in JUNK_WORDS for t in toks):
        return None, "symbol, icon or text"
    toks = [ITALIAN.get(t, t) for t in toks]
    kept: list[str] = []
    for tok in toks:
        if tok in AUTHOR_TOKENS or tok in _ITALIAN_STOPS or len(tok) < 2:
            break
        if tok in MODIFIERS:
            continue
        if tok in _FUNCTION_WORDS and kept:
            kept.append(tok)
            continue
        # Author names that are WordNet entries ("Daniel", "Steele") are proper nouns: stop there.
        if wn is not None and not (tok in ITALIAN.values() or wn.is_common_noun(tok)):
            break
        kept.append(tok)
    kept = list(dict.fromkeys(kept)) if len(set(kept)) < len(kept) else kept  # "gufo civetta" -> "owl owl" -> "owl"
    while kept and kept[-1] in _FUNCTION_WORDS:
        kept.pop()
    if not kept:
        return None, "non-English or junk name"
    return " ".join(kept), ""


def _dropped_folder(category: str) -> bool:
    return any(category == d or category.startswith(d + "/") for d in DROP_FOLDERS)


def scan(
    root: str | Path = ROOT, wn: wordnet.WordNet | None = None, basic_path: str | Path = wordnet.BASIC_LEVEL_FILE
) -> tuple[list[Item], Counter]:
    """Kept items (sorted by path) and a count of dropped files by reason."""
    root = Path(root)
    if wn is None and wordnet.available():
        wn = wordnet.load()
    kept: list[Item] = []
    dropped: Counter = Counter()
    for png in sorted(root.rglob("*.png")):
        category = png.parent.relative_to(root).as_posix()
        if _dropped_folder(category):
            dropped["category: " + category.split("/")[0]] += 1
            continue
        label, reason = clean_label(png.stem, wn)
        if label is None:
            dropped[reason] += 1
            continue
        basic = wordnet.basic_level(label, wn, basic_path) if wn is not None else None
        kept.append(Item(png, label, category, basic))
    return kept, dropped


def items(root: str | Path = ROOT) -> list[Item]:
    """The kept, labelled clip-art pictures (see the module docstring for the rules)."""
    return scan(root)[0]


def available(root: str | Path = ROOT) -> bool:
    """True when the Openclipart PNGs are installed."""
    return Path(root).is_dir()
