"""The new raw sources on the real installed data (Debian ``wordnet-base``, ``openclipart-png``,
``gcompris-qt-data``; scikit-image's bundled files); each test skips when its package is absent.
The counts are those of the Debian bookworm packages and are quoted in ``docs/SOURCES.md``."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibind.data.sources import gcompris, heldout, openclipart, skimage_photos, wordnet
from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES

pytestmark = pytest.mark.integration

needs_wordnet = pytest.mark.skipif(not wordnet.available(), reason="apt-get install wordnet-base")
needs_openclipart = pytest.mark.skipif(not openclipart.available(), reason="apt-get install openclipart-png")
needs_gcompris = pytest.mark.skipif(not gcompris.available(), reason="apt-get install gcompris-qt-data")
needs_skimage = pytest.mark.skipif(not skimage_photos.available(), reason="pip install scikit-image")

# ImageNet class -> the word people use, checked on WordNet 3.0 (the report's 20 examples).
EXAMPLES = {
    "tabby cat": "cat",
    "tiger cat": "cat",
    "Egyptian cat": "cat",
    "Persian cat": "cat",
    "golden retriever": "dog",
    "Chihuahua": "dog",
    "Granny Smith": "apple",
    "fox squirrel": "squirrel",
    "espresso": "coffee",
    "goldfinch": "bird",
    "bald eagle": "eagle",
    "tree frog": "frog",
    "king penguin": "penguin",
    "African elephant": "elephant",
    "sports car": "car",
    "airliner": "aeroplane",
    "garbage truck": "truck",
    "rocking chair": "chair",
    "coffee mug": "mug",
    "acoustic guitar": "guitar",
}


@pytest.fixture(autouse=True)
def _cache_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("OMNIBIND_CACHE", str(tmp_path_factory.getbasetemp() / "omnibind-cache"))


@needs_wordnet
def test_wordnet_real_synsets() -> None:
    wn = wordnet.load()
    tabby = wn.synset("n02123045")
    assert tabby.lemmas == ("tabby", "tabby cat")
    assert [s.name for s in wn.hypernym_chain("n02123045")][:3] == ["tabby", "domestic cat", "cat"]
    assert wn.hypernym_chain("n02123045")[-1].name == "entity"


@needs_wordnet
def test_imagenet_wnids_name_their_classes() -> None:
    wn = wordnet.load()
    fixes = {"crane (bird)": "crane", "crane (machine)": "crane", "maillot (swimsuit)": "maillot", "tabby cat": "tabby"}
    for wnid, name in zip(wordnet.imagenet_wnids(), IMAGENET_CLASSES, strict=True):
        want = fixes.get(name, name).lower()
        assert want in [lemma.lower() for lemma in wn.lemmas(wnid)], (wnid, name)


@needs_wordnet
def test_common_names_and_coverage() -> None:
    ids = dict(zip(IMAGENET_CLASSES, wordnet.imagenet_wnids(), strict=True))
    got = {name: wordnet.common_name(ids[name]) for name in EXAMPLES}
    assert got == EXAMPLES
    assert wordnet.common_name(ids["abacus"]) == "abacus"  # no everyday category above it
    n, mapping = wordnet.imagenet_coverage()
    assert n == len(mapping) == 712
    assert len(set(mapping.values())) >= 250
    assert sum(v == "dog" for v in mapping.values()) >= 118


@needs_wordnet
def test_every_basic_level_entry_resolves_and_basic_level_words() -> None:
    cats = wordnet.basic_categories(wordnet.load())
    assert len(set(cats.values())) == len({n for n, _ in wordnet.read_basic_level()})
    for word, want in {"european bear": "bear", "polar bear": "bear", "chameleon": "lizard", "mice": "mouse",
                       "scarlet macaw": "parrot", "dog on leash": "dog", "dolphin": "dolphin"}.items():  # fmt: skip
        assert wordnet.basic_level(word) == want, word


@needs_openclipart
@needs_wordnet
def test_openclipart_counts_and_labels() -> None:
    kept, dropped = openclipart.scan()
    assert len(kept) + sum(dropped.values()) == 8121
    assert len(kept) == 1562
    assert dropped["category: computer"] == 2158 and dropped["non-English or junk name"] == 697
    assert sum(i.basic is not None for i in kept) == 785
    by_name = {i.path.name: i for i in kept}
    assert by_name["emperor_penguin_ralf_ste_01.png"].label == "emperor penguin"
    assert by_name["emperor_penguin_ralf_ste_01.png"].basic == "penguin"
    assert by_name["lucertola_architetto_fra_01.png"].label == "lizard"
    assert by_name["bison_leif_lodahl_01.png"].label == "bison"
    assert all(not i.category.startswith(("shapes", "signs_and_symbols", "computer")) for i in kept)


@needs_gcompris
def test_gcompris_photos_sounds_and_licences() -> None:
    photos, sounds, drawings = gcompris.photos(), gcompris.sounds(), gcompris.drawings()
    assert (len(photos), len(sounds), len(drawings)) == (245, 61, 9)
    farm = {p.label for p in photos if p.activity == "explore_farm_animals"}
    assert farm == {"cat", "chicken", "cow", "dog", "duck", "horse", "owl", "pig", "sheep"}
    assert farm == {s.label for s in sounds if s.activity == "explore_farm_animals"}
    assert {s.label for s in sounds if s.activity == "instruments"} >= {"violin", "piano", "trumpet", "flute"}
    assert all(i.licence != "unknown" for i in photos + sounds)
    assert {p.licence for p in photos if p.activity == "explore_farm_animals"} <= {"public-domain", "CC0-1.0"}
    cow = next(p for p in photos if p.label == "cow")
    assert cow.path.is_file() and cow.path.read_bytes()[:4] == b"RIFF"  # webp
    assert next(s for s in sounds if s.label == "cow").path.read_bytes()[:4] == b"OggS"


@needs_gcompris
def test_gcompris_bundle_reader_reads_every_bundle() -> None:
    total = 0
    for rcc in sorted(Path(gcompris.RCC_DIR).glob("*.rcc")):
        total += len(gcompris.bundle_files(rcc))
    assert total > 4000


@needs_skimage
def test_skimage_photos_are_local() -> None:
    photos = skimage_photos.photos()
    assert len(photos) == 17 and all(p.path.is_file() for p in photos)
    assert {p.label for p in photos} >= {"cat", "coffee", "astronaut", "rocket", "horse"}


@needs_gcompris
@needs_skimage
def test_heldout_sets_have_ten_classes_each() -> None:
    test_photos, test_sounds = heldout.photo_set("test"), heldout.sound_set("test")
    assert len({i.label for i in test_photos}) >= 10 and len({i.label for i in test_sounds}) >= 10
    assert (len(test_photos), len(test_sounds)) == (46, 14)
    train_ids = {(i.source, i.item_id) for i in heldout.photo_set("train") + heldout.sound_set("train")}
    assert not train_ids & {(i.source, i.item_id) for i in test_photos + test_sounds}
    assert heldout.photo_set("test") == test_photos  # fixed
