"""Labelled photos and sounds from GCompris (Debian ``gcompris-qt-data``), read from its Qt resource bundles.

GCompris packs each activity into ``/usr/share/gcompris-qt/rcc/<activity>.rcc``. The format (Qt's
``rcc``, versions 1-3) is read here without Qt:

* header: magic ``qres``, then big-endian u32 ``version``, ``tree``, ``data`` and ``names`` offsets
  (version 3 adds a u32 of global flags);
* tree: fixed-size nodes (14 bytes, 22 from version 2 with a u64 modification time), node 0 the
  root: u32 name offset, u16 flags (1 zlib, 2 directory, 4 zstd), then for a directory u32 child
  count + u32 index of the first child, for a file u16 territory + u16 language + u32 data offset;
* names: u16 length, u32 hash, then the name in UTF-16-BE;
* data: u32 size, then the bytes; a zlib entry starts with a u32 uncompressed length (qCompress).

Labels come from the activities' own QML/JS data (``"title": qsTr("Cow")``, ``"text":
qsTr("Find the clarinet")``) or, for folders of photos (categorization), from the file names.
Each item records its licence: from the README beside it in the bundle when it names the file,
else from the Debian copyright file (last matching ``Files:`` stanza, as Debian's format says).
Extracted files are cached under ``$OMNIBIND_CACHE/sources/gcompris`` (default
``~/.cache/omnibind``), written atomically.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from omnibind.atomic import atomic_write_bytes
from omnibind.data.sources import wordnet

RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
COPYRIGHT = Path("/usr/share/doc/gcompris-qt-data/copyright")

_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4
_PREFIX = "gcompris/"  # every bundle path starts with it; the Debian copyright file omits it

# Photo folders of the categorization activity worth labelling (the others hold letters and digits).
CATEGORIZATION_FOLDERS = ("fishes", "tools", "others", "renewable", "monuments")
# File stems whose cleaned name is not the everyday word for the picture.
_NAME_FIXES = {
    "fish": "fish", "plier": "pliers", "screw driver": "screwdriver", "tweezer": "tweezers",
    "cutting tool": "cutting pliers", "side cutter": "side cutters", "spray": "spray bottle",
    "blackslate": "blackboard", "buffetset": "buffet set", "bulb": "light bulb",
    "weighing machine": "weighing scale", "solar": "solar panel", "windmill": "wind turbine",
    "dam": "dam", "geothermal": "geothermal power station", "flute traversiere": "flute",
    "transverse flute": "flute", "horn": "french horn", "orange-color": "orange (colour)", "flies": "fly",
    "monument": "monument",
}  # fmt: skip
# memory-sound files are named after what they record ("LRBark_1_LA_cut"): the label people would give.
MEMORY_SOUND_LABELS = {
    "guitar melody": "guitar", "guitar son": "guitar", "applauses": "applause", "bark": "dog barking",
    "buddhist gong": "gong", "door open": "door opening", "factory noise": "factory noise",
    "fireballs": "fireworks", "frogs in pond during storm": "frogs croaking", "heart beat": "heartbeat",
    "hits": "knocking", "object falling": "object falling", "rain in garden": "rain", "ring": "bell ringing",
    "start and stop car engine": "car engine", "train slowing down": "train",
}  # fmt: skip
# Not object or sound-event labels: spoken numbers, colours, people words and abstract words.
_LANG_SKIP = re.compile(
    r"^(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|sixteen|black|blue|brown|gray|"
    r"green|mauve|orange-color|pink|red|white|yellow|color|animal|fruit|reptile|bug|family|friend)$"
)


@dataclass(frozen=True)
class Item:
    """One labelled file: ``name`` (stable id ``<activity>/<path in its resource folder>``), the
    extracted file, its label, activity, licence, kind (``photo``/``drawing``/``sound``) and the
    WordNet basic-level noun of the label (None when unknown or WordNet is absent)."""

    name: str
    path: Path
    label: str
    activity: str
    licence: str
    kind: str
    basic: str | None = None


def _u32(b: bytes, at: int) -> int:
    return struct.unpack_from(">I", b, at)[0]


def parse_rcc(blob: bytes) -> dict[str, bytes]:
    """Every file in a Qt resource bundle, path (``/``-joined, no leading slash) -> contents."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource bundle (magic 'qres' missing)")
    version, tree, data, names = (_u32(blob, 4 + 4 * i) for i in range(4))
    if version not in (1, 2, 3):
        raise ValueError(f"unsupported rcc version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        length = struct.unpack_from(">H", blob, names + offset)[0]
        start = names + offset + 6  # skip the u16 length and the u32 hash
        return blob[start : start + 2 * length].decode("utf-16-be")

    out: dict[str, bytes] = {}
    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        at = tree + index * node_size
        name_off, flags = struct.unpack_from(">IH", blob, at)
        path = f"{prefix}{name_at(name_off)}" if index else ""
        if flags & _DIRECTORY:
            count, first = _u32(blob, at + 6), _u32(blob, at + 10)
            stack.extend((first + k, f"{path}/" if index else "") for k in range(count))
            continue
        start = data + _u32(blob, at + 10)
        raw = blob[start + 4 : start + 4 + _u32(blob, start)]
        if flags & _ZSTD:
            raise ValueError(f"{path}: zstd-compressed entries are not supported")
        out[path] = zlib.decompress(raw[4:]) if flags & _COMPRESSED else raw
    return out


@functools.lru_cache(maxsize=64)
def _bundle(path: str, mtime_ns: int) -> dict[str, bytes]:
    return parse_rcc(Path(path).read_bytes())


def bundle_files(rcc: str | Path) -> dict[str, bytes]:
    """The files of one ``.rcc`` bundle (memoised per file version)."""
    rcc = Path(rcc)
    return _bundle(str(rcc), rcc.stat().st_mtime_ns)


def cache_dir() -> Path:
    """Where extracted files go: ``$OMNIBIND_CACHE/sources/gcompris`` (default ``~/.cache/omnibind``)."""
    root = os.environ.get("OMNIBIND_CACHE") or Path.home() / ".cache" / "omnibind"
    return Path(root) / "sources" / "gcompris"


def extract(path: str, blob: bytes, cache: Path | None = None) -> Path:
    """Write one bundle file into the cache (once: same size means already there) and return its path."""
    dest = (cache or cache_dir()) / path.removeprefix(_PREFIX)
    if not (dest.is_file() and dest.stat().st_size == len(blob)):
        atomic_write_bytes(dest, blob)
    return dest


# ---- licences ----------------------------------------------------------------------------------


def parse_copyright(text: str) -> list[tuple[list[str], str]]:
    """Debian machine-readable copyright -> ``[(file patterns, licence)]`` in file order."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files: list[str] = []
        licence = None
        field = None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                field, value = m.group(1).lower(), m.group(2).strip()
                if field == "files":
                    files.extend(value.split())
                elif field == "license" and licence is None:
                    licence = value
            elif field == "files" and line.startswith((" ", "\t")):
                files.extend(line.split())
        if files and licence:
            stanzas.append((files, licence))
    return stanzas


def parse_readme(text: str) -> dict[str, str]:
    """A GCompris resource README (blocks of ``Copyright:``/``License:``/``Files:`` lines) -> file -> licence."""
    out: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", text):
        lic = re.search(r"^License:\s*(.+)$", block, flags=re.MULTILINE)
        files = re.search(r"^Files:\s*\n?((?:.+\n?)*)", block, flags=re.MULTILINE)
        if lic and files:
            for name in files.group(1).split():
                out[name] = normalise_licence(lic.group(1))
    return out


def normalise_licence(text: str) -> str:
    """Debian short licence names: 'CC-BY-SA 4.0' -> 'CC-BY-SA-4.0', 'Public Domain' -> 'public-domain'."""
    t = text.strip().rstrip(".")
    low = t.lower()
    if low in ("public domain", "pd"):
        return "public-domain"
    if low.startswith("gplv"):
        return "GPL-" + t[4:]
    return re.sub(r"\s+", "-", t)


@functools.lru_cache(maxsize=4)
def _copyright(path: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    p = Path(path)
    if not p.is_file():
        return ()
    return tuple((tuple(f), lic) for f, lic in parse_copyright(p.read_text(encoding="utf-8", errors="replace")))


def licence_of(path: str, files: dict[str, bytes], copyright_file: Path = COPYRIGHT) -> str:
    """The licence of one bundle file: its folder's README first, else the Debian copyright file.

    Photos are stored as ``.webp`` in the bundles but listed under their source names (``.jpg``,
    ``.png``) in the copyright file, so those endings are tried too.
    """
    folder, _, fname = path.rpartition("/")
    readme = files.get(f"{folder}/README")
    if readme is not None:
        by_file = parse_readme(readme.decode("utf-8", errors="replace"))
        if fname in by_file:
            return by_file[fname]
    rel = path.removeprefix(_PREFIX)
    stem, dot, ext = rel.rpartition(".")
    names = [rel] + ([f"{stem}.{e}" for e in ("jpg", "jpeg", "png", "JPG")] if dot and ext == "webp" else [])
    found = "unknown"
    for patterns, lic in _copyright(str(copyright_file)):  # last match wins (Debian copyright format)
        if any(fnmatch.fnmatchcase(n, pat) for n in names for pat in patterns):
            found = lic
    return found


# ---- labels --------------------------------------------------------------------------------------


def clean_name(stem: str) -> str:
    """A file stem to words: 'screwDriver2' -> 'screw driver', 'polar_bear' -> 'polar bear'."""
    s = re.sub(r"\d+$", "", stem)
    s = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", s).replace("_", " ")
    return re.sub(r"\s+", " ", s).strip().lower()


def fixed_label(stem: str) -> str:
    """``clean_name`` then the everyday word where the file name is not one (``_NAME_FIXES``)."""
    words = clean_name(stem)
    return _NAME_FIXES.get(words, words)


def _qrc(value: str) -> str:
    return value.removeprefix("qrc:/").replace(".$CA", ".ogg")


def board_entries(qml: str) -> list[dict[str, str]]:
    """The ``{...}`` entries of a GCompris board/dataset file with a ``title`` or ``text`` label.

    Returns dicts with ``label`` and whichever of ``image``, ``image2`` and ``audio`` are given
    (bundle paths, ``$CA`` resolved to ``ogg``). ``text: qsTr("Find the X")`` gives label X.
    """
    out = []
    for block in re.findall(r"\{[^{}]*\}", qml):
        title = re.search(r'"title"\s*:\s*qsTr\("([^"]+)"\)', block)
        find = re.search(r'"text"\s*:\s*qsTr\("Find the ([^"]+)"\)', block)
        if not (title or find):
            continue
        label = title.group(1) if title else find.group(1) if find else ""
        entry = {"label": label.strip().lower()}
        for key in ("image", "image2"):
            m = re.search(rf'"{key}"\s*:\s*"(qrc:/[^"]+)"', block)
            if m:
                entry[key] = _qrc(m.group(1))
        m = re.search(r'"audio"\s*:[^"\n]*"(qrc:/[^"]+)"', block)
        if m:
            entry["audio"] = _qrc(m.group(1))
        out.append(entry)
    return out


def _basic(label: str) -> str | None:
    if not wordnet.available():
        return None
    return wordnet.basic_level(label.split(" (")[0])


# ---- items ---------------------------------------------------------------------------------------


Labelled = list[tuple[str, str, str]]  # (bundle path, label, kind)


def _explore_labels(files: dict[str, bytes], base: str) -> Labelled:
    """explore_* boards: each entry's photo (``image2``), drawing (``image``) and ``audio``."""
    out: Labelled = []
    for path, blob in sorted(files.items()):
        if not (path.startswith(f"{base}resource/board/") and path.endswith(".qml")):
            continue
        for e in board_entries(blob.decode("utf-8", errors="replace")):
            if "image2" in e:
                out.append((e["image2"], e["label"], "photo"))
            if e.get("image", "").endswith(".svg") and not e["image"].endswith("question.svg"):
                out.append((e["image"], e["label"], "drawing"))
            if "audio" in e:
                out.append((e["audio"], e["label"], "sound"))
    return out


def _instrument_labels(files: dict[str, bytes], base: str) -> Labelled:
    """instruments.js: ``qsTr("Find the clarinet")`` with the instrument's recording."""
    js = files.get(f"{base}instruments.js", b"").decode("utf-8", errors="replace")
    return [(e["audio"], _NAME_FIXES.get(e["label"], e["label"]), "sound") for e in board_entries(js) if "audio" in e]


def _memory_sound_labels(files: dict[str, bytes], base: str) -> Labelled:
    """memory-sound recordings, labelled through ``MEMORY_SOUND_LABELS`` by their file stems."""
    out: Labelled = []
    for path in sorted(files):
        if path.startswith(base) and path.endswith(".ogg"):
            stem = re.sub(r"^LR|(_\d+)?(_LA)?(_cut)?$|LACut$|_short$", "", Path(path).stem)
            key = clean_name(re.sub(r"(?<=[a-z])(\d+)$", "", stem))
            if key in MEMORY_SOUND_LABELS:
                out.append((path, MEMORY_SOUND_LABELS[key], "sound"))
    return out


def _categorization_labels(files: dict[str, bytes], base: str) -> Labelled:
    """categorization photo folders, labelled from file names (every fish is "fish")."""
    out: Labelled = []
    for path in sorted(files):
        m = re.match(rf"{re.escape(base)}resource/images/([^/]+)/([^/]+)\.webp$", path)
        if m and m.group(1) in CATEGORIZATION_FOLDERS:
            label = "fish" if m.group(1) == "fishes" else fixed_label(m.group(2))
            if label != "monument":  # monument1..3 are unnamed
                out.append((path, label, "photo"))
    return out


def _lang_labels(files: dict[str, bytes], base: str) -> Labelled:
    """lang/words_sample photos named by their word (numbers, colours and abstract words skipped)."""
    out: Labelled = []
    for path in sorted(files):
        if path.startswith(f"{base}resource/words_sample/") and path.endswith(".webp"):
            stem = Path(path).stem
            if not _LANG_SKIP.match(stem):
                out.append((path, fixed_label(stem), "photo"))
    return out


_LABELLERS = {
    "explore_farm_animals": _explore_labels,
    "explore_world_animals": _explore_labels,
    "instruments": _instrument_labels,
    "memory-sound": _memory_sound_labels,
    "categorization": _categorization_labels,
    "lang": _lang_labels,
}


def _activity_items(activity: str, rcc_dir: Path, cache: Path | None, copyright_file: Path = COPYRIGHT) -> list[Item]:
    """The labelled files of one activity, extracted into the cache."""
    rcc = rcc_dir / f"{activity}.rcc"
    if not rcc.is_file():
        return []
    files = bundle_files(rcc)
    base = f"{_PREFIX}src/activities/{activity}/"
    raw = _LABELLERS[activity](files, base)
    items, seen = [], set()
    for path, label, kind in raw:
        if path not in files or (path, kind) in seen:
            continue  # a board may name a file twice, or a file the bundle lacks
        seen.add((path, kind))
        name = f"{activity}/{path.removeprefix(base).removeprefix('resource/')}"
        items.append(
            Item(
                name,
                extract(path, files[path], cache),
                label,
                activity,
                licence_of(path, files, copyright_file),
                kind,
                _basic(label),
            )
        )
    return items


PHOTO_ACTIVITIES = ("explore_farm_animals", "explore_world_animals", "categorization", "lang")
SOUND_ACTIVITIES = ("explore_farm_animals", "instruments", "memory-sound")


def photos(rcc_dir: str | Path = RCC_DIR, cache: Path | None = None, copyright_file: Path = COPYRIGHT) -> list[Item]:
    """Labelled real photos (webp): farm and world animals, categorization folders, lang words."""
    found = (_activity_items(a, Path(rcc_dir), cache, copyright_file) for a in PHOTO_ACTIVITIES)
    return [i for items in found for i in items if i.kind == "photo"]


def drawings(rcc_dir: str | Path = RCC_DIR, cache: Path | None = None, copyright_file: Path = COPYRIGHT) -> list[Item]:
    """Labelled SVG drawings of the farm animals (the same animals as their photos and sounds)."""
    found = _activity_items("explore_farm_animals", Path(rcc_dir), cache, copyright_file)
    return [i for i in found if i.kind == "drawing"]


def sounds(rcc_dir: str | Path = RCC_DIR, cache: Path | None = None, copyright_file: Path = COPYRIGHT) -> list[Item]:
    """Labelled sounds (ogg): farm animals, instruments and memory-sound recordings."""
    found = (_activity_items(a, Path(rcc_dir), cache, copyright_file) for a in SOUND_ACTIVITIES)
    return [i for items in found for i in items if i.kind == "sound"]


def available(rcc_dir: str | Path = RCC_DIR) -> bool:
    """True when the GCompris bundles are installed."""
    return (Path(rcc_dir) / "explore_farm_animals.rcc").is_file()
