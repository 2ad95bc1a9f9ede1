"""A small reader of the WordNet 3.0 noun database (Debian ``wordnet-base``) and everyday names.

WordNet ships plain-text files under ``/usr/share/wordnet/``:

* ``data.noun``: one synset per line, found by its byte offset (the offset *is* the synset id, so
  ImageNet's ``n02123045`` is the line at byte 2123045)::

      02123045 05 n 02 tabby 1 tabby_cat 0 001 @ 02121808 n 0000 | a cat with a grey ...
      offset   lex ss w_cnt(hex) word lex_id ... p_cnt(dec) [symbol offset pos src/tgt]... | gloss

* ``index.noun``: one lemma per line with its synset offsets, most frequent sense first::

      cat n 8 5 @ ~ #m + ; 8 1 02121620 10153414 ...
      lemma pos synset_cnt p_cnt [symbols...] sense_cnt tagsense_cnt offsets...

* ``noun.exc``: irregular plurals (``mice mouse``).

Lines that start with two spaces are the licence header. Only nouns are read: the hypernym
pointers ``@`` (is-a) and ``@i`` (instance of) are all that ``common_name`` needs.

``common_name(wnid)`` maps a fine-grained class (an ImageNet-1k synset) to the word people use for
it by walking hypernyms, nearest first, to the first synset in ``basic_level.txt`` (a curated list
of everyday basic-level categories: cat, dog, apple, car, chair...). With WordNet 3.0, 633 of the
1000 ImageNet-1k classes reach one of those categories (``imagenet_coverage()``), e.g.
tabby / tiger cat / Egyptian cat -> cat, golden retriever -> dog, Granny Smith -> apple,
fox squirrel -> squirrel, espresso -> coffee.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
HERE = Path(__file__).resolve().parent
BASIC_LEVEL_FILE = HERE / "basic_level.txt"
IMAGENET_WNIDS_FILE = HERE / "imagenet_wnids.txt"

_HYPERNYM_SYMBOLS = ("@", "@i")
# Lexicographer files of things one can see or hear (noun.animal, .artifact, .food, .object, .plant):
# a basic-level name given without an id means its most frequent sense among these, so "tiger" is
# the cat, not the fierce person, and "turtle" the reptile, not the sweater.
CONCRETE_LEXFILES = (5, 6, 13, 17, 20)
_PARTNER_KINDS = {5: (13,), 13: (20, 5), 20: (13,)}  # animal -> its meat; fruit <-> plant; meat -> animal
# Regular noun plural endings (suffix, replacement), tried in order, as WordNet's own morphy does.
_PLURAL_RULES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
                 ("ies", "y"), ("s", ""))  # fmt: skip


@dataclass(frozen=True)
class Synset:
    """One noun synset: its offset, lemmas (spaces, not underscores), hypernym offsets and gloss."""

    offset: int
    lex_filenum: int
    lemmas: tuple[str, ...]
    hypernyms: tuple[int, ...]
    gloss: str

    @property
    def wnid(self) -> str:
        """The ImageNet-style id, ``"n"`` + 8-digit offset."""
        return f"n{self.offset:08d}"

    @property
    def name(self) -> str:
        """The first lemma (the synset's usual name)."""
        return self.lemmas[0]


def parse_offset(key: str | int) -> int:
    """``"n02123045"``, ``"02123045"`` or ``2123045`` -> ``2123045``."""
    if isinstance(key, int):
        return key
    text = key.strip()
    if text[:1] == "n":
        text = text[1:]
    if not text.isdigit():
        raise ValueError(f"not a WordNet noun offset: {key!r}")
    return int(text)


def parse_data_line(line: str) -> Synset:
    """Parse one ``data.noun`` line (see the module docstring for the layout)."""
    body, _, gloss = line.partition(" | ")
    fields = body.split()
    offset, lex_filenum, w_cnt = int(fields[0]), int(fields[1]), int(fields[3], 16)
    words = fields[4 : 4 + 2 * w_cnt : 2]
    # Adjective synsets mark syntax as "word(a)"; nouns never do, but strip it so any line parses.
    lemmas = tuple(re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in words)
    i = 4 + 2 * w_cnt
    p_cnt = int(fields[i])
    hypernyms = []
    for k in range(p_cnt):
        symbol, target, pos = fields[i + 1 + 4 * k : i + 4 + 4 * k]
        if symbol in _HYPERNYM_SYMBOLS and pos == "n":
            hypernyms.append(int(target))
    return Synset(offset, lex_filenum, lemmas, tuple(hypernyms), gloss.strip())


def _norm(word: str) -> str:
    """Index form of a lemma: lower case, underscores for spaces and hyphen-free runs kept."""
    return re.sub(r"[\s]+", "_", word.strip().lower())


class WordNet:
    """Noun synsets from one WordNet 3.0 folder; files are read once, lines parsed on demand."""

    def __init__(self, root: str | Path = WORDNET_DIR) -> None:
        self.root = Path(root)
        data = self.root / "data.noun"
        if not data.is_file():
            raise FileNotFoundError(f"{data} not found (apt-get install wordnet-base)")
        self._data = data.read_bytes()
        self._index = self._read_index(self.root / "index.noun")
        self._exc = self._read_exceptions(self.root / "noun.exc")
        self._cache: dict[int, Synset] = {}
        self.category_cache: dict[str, dict[int, str]] = {}  # basic-level list file -> categories

    @staticmethod
    def _read_index(path: Path) -> dict[str, tuple[int, ...]]:
        index: dict[str, tuple[int, ...]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line or line.startswith("  "):
                continue
            fields = line.split()
            n_synsets, n_pointers = int(fields[2]), int(fields[3])
            start = 4 + n_pointers + 2  # skip pointer symbols, sense_cnt and tagsense_cnt
            index[fields[0]] = tuple(int(x) for x in fields[start : start + n_synsets])
        return index

    @staticmethod
    def _read_exceptions(path: Path) -> dict[str, str]:
        if not path.is_file():
            return {}
        pairs = (line.split() for line in path.read_text(encoding="utf-8").splitlines())
        return {p[0]: p[1] for p in pairs if len(p) >= 2}

    def synset(self, key: str | int) -> Synset:
        """The synset at an offset (``"n02123045"`` or ``2123045``); KeyError if there is none."""
        offset = parse_offset(key)
        hit = self._cache.get(offset)
        if hit is not None:
            return hit
        end = self._data.find(b"\n", offset)
        line = self._data[offset : end if end >= 0 else None].decode("utf-8")
        if not line[:8].isdigit() or int(line[:8]) != offset or (offset and self._data[offset - 1] != 10):
            raise KeyError(f"no noun synset at offset {offset:08d}")
        syn = self._cache[offset] = parse_data_line(line)
        return syn

    def lemmas(self, key: str | int) -> tuple[str, ...]:
        """The lemmas of a synset, first (usual) name first."""
        return self.synset(key).lemmas

    def base_forms(self, word: str) -> list[str]:
        """Index forms of a noun: itself, its irregular singular, regular singulars (morphy-like)."""
        w = _norm(word)
        forms = [w]
        if w in self._exc:
            forms.append(self._exc[w])
        for suffix, repl in _PLURAL_RULES:
            if w.endswith(suffix) and len(w) > len(suffix) + 1:
                forms.append(w[: -len(suffix)] + repl)
        return [f for f in dict.fromkeys(forms) if f in self._index]

    def is_common_noun(self, word: str) -> bool:
        """True when some sense spells the word in lower case: "apple", "stripper", not "Daniel"."""
        forms = [f.replace("_", " ") for f in self.base_forms(word)]
        return any(f in syn.lemmas for f in forms for syn in self.synsets(word))

    def synsets(self, word: str) -> list[Synset]:
        """Noun synsets of a word (its base forms tried in order), most frequent sense first."""
        out: dict[int, Synset] = {}
        for form in self.base_forms(word):
            for off in self._index[form]:
                out.setdefault(off, self.synset(off))
        return list(out.values())

    def hypernym_chain(self, key: str | int) -> list[Synset]:
        """The synset and its first-hypernym chain up to the root (``entity``)."""
        chain = [self.synset(key)]
        seen = {chain[0].offset}
        while chain[-1].hypernyms and chain[-1].hypernyms[0] not in seen:
            chain.append(self.synset(chain[-1].hypernyms[0]))
            seen.add(chain[-1].offset)
        return chain

    def ancestors(self, key: str | int) -> list[Synset]:
        """The synset and all its hypernyms (every path), nearest first (breadth-first)."""
        start = self.synset(key)
        order, seen, frontier = [start], {start.offset}, [start]
        while frontier:
            nxt = []
            for syn in frontier:
                for off in syn.hypernyms:
                    if off not in seen:
                        seen.add(off)
                        nxt.append(self.synset(off))
            order.extend(nxt)
            frontier = nxt
        return order


@functools.lru_cache(maxsize=4)
def load(root: str | Path = WORDNET_DIR) -> WordNet:
    """The WordNet at ``root``, read once per process."""
    return WordNet(root)


def available(root: str | Path = WORDNET_DIR) -> bool:
    """True when the WordNet noun database is installed at ``root``."""
    return (Path(root) / "data.noun").is_file() and (Path(root) / "index.noun").is_file()


def read_basic_level(path: str | Path = BASIC_LEVEL_FILE) -> list[tuple[str, str | None]]:
    """The curated basic-level categories: ``(name, wnid or None)`` per line of ``basic_level.txt``.

    A line is ``name`` (the word's most frequent concrete sense, see ``CONCRETE_LEXFILES``, with
    its fruit/plant or animal/meat partner) or ``name nXXXXXXXX`` (that sense only); a name may
    have several lines;
    ``#`` starts a comment.
    """
    out = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"(.+?)(?:\s+(n\d{8}))?", line)
        assert m is not None  # the pattern matches any non-empty line
        out.append((m.group(1).strip(), m.group(2)))
    return out


def basic_categories(wn: WordNet, path: str | Path = BASIC_LEVEL_FILE) -> dict[int, str]:
    """Offset -> everyday name for every basic-level category in ``path``."""
    cats: dict[int, str] = {}
    for name, wnid in read_basic_level(path):
        if wnid is not None:
            cats.setdefault(parse_offset(wnid), name)
            continue
        found = [s for s in wn.synsets(name) if s.lex_filenum in CONCRETE_LEXFILES]
        if not found:
            raise ValueError(f"{path}: {name!r} is not a concrete WordNet noun")
        # The most frequent concrete sense, and for food, plants and animals the matching sense of
        # the partner kind: "banana" is the fruit and the plant, "lobster" the animal and its meat.
        first = found[0]
        cats.setdefault(first.offset, name)
        for partner in _PARTNER_KINDS.get(first.lex_filenum, ()):
            other = next((s for s in found if s.lex_filenum == partner), None)
            if other is not None:
                cats.setdefault(other.offset, name)
    return cats


def _categories(wn: WordNet, path: str | Path) -> dict[int, str]:
    """``basic_categories`` memoised on the WordNet instance (one resolution per list file)."""
    key = str(path)
    if key not in wn.category_cache:
        wn.category_cache[key] = basic_categories(wn, path)
    return wn.category_cache[key]


def basic_of_synset(key: str | int, wn: WordNet | None = None, path: str | Path = BASIC_LEVEL_FILE) -> str | None:
    """The nearest basic-level category at or above a synset, or None when it reaches none."""
    wn = wn or load()
    cats = _categories(wn, path)
    for syn in wn.ancestors(key):
        if syn.offset in cats:
            return cats[syn.offset]
    return None


# Which sense of a plain word to trust, by lexicographer file: animals, body parts, food, artifacts,
# natural objects, plants, people. "chameleon" is the lizard before the fickle person, "plum" the
# fruit (no category) before the tree, "brain" and "skin" body parts (no category), not meat or a bag.
_SENSE_RANK = (5, 8, 13, 6, 17, 20, 18)
# A phrase's head noun comes before these ("bird of peace", "apple with worm", "dog on leash").
_HEAD_BREAKS = ("of", "with", "on", "in", "and", "for", "from")


def basic_level(
    word_or_offset: str | int, wn: WordNet | None = None, path: str | Path = BASIC_LEVEL_FILE
) -> str | None:
    """The everyday basic-level noun for a word, phrase or synset offset, or None.

    An offset (``"n02123045"``) is looked up directly. A word or phrase ("European bear", "bears",
    "golden_retriever", "dog on leash") tries the phrase up to a preposition, then shorter tails
    ("bear"), since English puts the head noun last, and the first word last of all. A phrase
    that is itself a category name is returned as is ("dolphin", not "fish" by way of the
    dolphinfish); otherwise only the senses of its best-ranked kind (``_SENSE_RANK``) are
    walked, most frequent first, and a word whose usual sense is abstract gets None.
    """
    wn = wn or load()
    if isinstance(word_or_offset, int) or re.fullmatch(r"n?\d{8}", str(word_or_offset).strip()):
        return basic_of_synset(word_or_offset, wn, path)
    names = set(_categories(wn, path).values())
    words = re.split(r"[\s_]+", str(word_or_offset).strip().lower())
    cut = next((i for i, w in enumerate(words) if w in _HEAD_BREAKS and i > 0), len(words))
    words = words[:cut]
    for phrase in [" ".join(words[start:]) for start in range(len(words))]:
        name = _phrase_basic(phrase, wn, names, path)
        if name is not None:
            return name
    # File names may put the head first ("sailboat illustration"): try the first word, but only
    # when the last one is no concrete thing ("tenor trombone" is a trombone, not a singer).
    if len(words) > 1 and not any(s.lex_filenum in CONCRETE_LEXFILES for s in wn.synsets(words[-1])):
        return _phrase_basic(words[0], wn, names, path)
    return None


def _phrase_basic(phrase: str, wn: WordNet, names: set[str], path: str | Path) -> str | None:
    forms = [phrase] + [f.replace("_", " ") for f in wn.base_forms(phrase)]
    hit = next((f for f in forms if f in names), None)
    if hit is not None:
        return hit
    senses = wn.synsets(phrase)
    if not senses or senses[0].lex_filenum not in _SENSE_RANK:
        return None  # unknown, or mostly an abstract word ("page" of a book before the page boy)
    kinds = [k for k in _SENSE_RANK if any(s.lex_filenum == k for s in senses)]
    best = kinds[0] if kinds else senses[0].lex_filenum
    for syn in senses:
        if syn.lex_filenum == best:
            name = basic_of_synset(syn.offset, wn, path)
            if name is not None:
                return name
    return None


def imagenet_wnids(path: str | Path = IMAGENET_WNIDS_FILE) -> list[str]:
    """The 1000 ImageNet-1k class ids in class-index order (``n01440764`` = tench first).

    The ids are stored beside this module; class index ``i`` is the ``i``-th id in sorted order,
    which is how ILSVRC-2012 numbers its classes.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if line.strip() and not line.startswith("#")]


def common_name(imagenet_wnid: str | int, wn: WordNet | None = None, path: str | Path = BASIC_LEVEL_FILE) -> str:
    """The word people use for an ImageNet-1k class (``"n02123045"`` tabby -> ``"cat"``).

    Falls back to the class's own first lemma when no basic-level category lies above it
    ("abacus" stays "abacus").
    """
    wn = wn or load()
    return basic_of_synset(imagenet_wnid, wn, path) or wn.synset(imagenet_wnid).name


def imagenet_coverage(wn: WordNet | None = None) -> tuple[int, dict[str, str]]:
    """How many ImageNet-1k classes reach a basic-level category, and the class -> name mapping."""
    wn = wn or load()
    mapping = {}
    for wnid in imagenet_wnids():
        name = basic_of_synset(wnid, wn)
        if name is not None:
            mapping[wnid] = name
    return len(mapping), mapping
