"""kill -9 inside every writer leaves the old or the new version on disk, never a torn one.

Each test writes version A, then forks a child that writes version B and is SIGKILLed at a named
crash point (``tests/crash.py``: the child pauses there, so the kill lands inside the write, not by
timing luck). The parent then loads the on-disk state the way omnibind does (hashes verified) and
checks which version it got, and that the next write leaves no temporaries behind. Tiny random
configs: each kill costs milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.crash import kill_forked


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- plain files


@pytest.mark.parametrize("point", ["atomic.write.mid", "atomic.file.written"])
def test_a_file_killed_mid_write_keeps_the_old_bytes(tmp_path, point):
    from omnibind.atomic import atomic_file, atomic_write_bytes

    dest = tmp_path / "out" / "blob.bin"
    atomic_write_bytes(dest, b"A" * 4096)

    def write_b() -> None:
        if point == "atomic.write.mid":
            atomic_write_bytes(dest, b"B" * 4096)
        else:
            with atomic_file(dest) as tmp:
                tmp.write_bytes(b"B" * 4096)

    kill_forked(point, write_b, tmp_path / "marks")
    assert dest.read_bytes() == b"A" * 4096
    assert len(_names(dest.parent)) == 2  # the killed writer's temporary is still there ...
    atomic_write_bytes(dest, b"C")
    assert _names(dest.parent) == ["blob.bin"]  # ... until the next write sweeps it (its pid is dead)
    assert dest.read_bytes() == b"C"


def test_a_live_writers_temporary_is_never_swept(tmp_path):
    from omnibind.atomic import _tmp_prefix, sweep_stale

    dest = tmp_path / "x.bin"
    mine = tmp_path / f"{_tmp_prefix(dest)}abc.tmp"  # this (live) process's pid
    other_host = tmp_path / ".x.bin.tmp-otherhost-1-abc.tmp"
    mine.write_bytes(b"")
    other_host.write_bytes(b"")
    assert sweep_stale(tmp_path, "x\\.bin") == 0
    assert mine.exists() and other_host.exists()


# --------------------------------------------------------------------------- checkpoints

# crash point (``{dest}``: the folder being replaced) → the version a reader must find afterwards
CHECKPOINT_POINTS = {
    "atomic.write.mid@config.json": "old",
    "checkpoint.weights": "old",  # weights in the temporary folder, manifest not yet
    "atomic.write.mid@manifest.json": "old",
    "atomic.dir.filled@{dest}": "old",
    "atomic.dir.between@{dest}": "old",  # the folder is gone, .ck.old holds A: recover_dir puts it back
    "atomic.dir.swapped@{dest}": "new",
}


@pytest.mark.parametrize("point", list(CHECKPOINT_POINTS))
def test_checkpoint_killed_mid_write_loads_and_verifies_as_old_or_new(tiny_model, tmp_path, point):
    from omnibind.checkpoint import read_checkpoint, save_checkpoint

    core = tiny_model.core
    ck = tmp_path / "ck"
    save_checkpoint(core, ck)
    old = {k: v.clone() for k, v in core.trainable_state_dict().items()}
    new = {k: v + 1 for k, v in old.items()}

    def write_b() -> None:  # the child's copy of the model changes; the parent's does not
        core.load_trainable_state_dict(new)
        save_checkpoint(core, ck)

    kill_forked(point.format(dest=ck), write_b, tmp_path / "marks")
    _, state = read_checkpoint(ck, verify=True)  # the weights' SHA-256 must match the manifest
    want = old if CHECKPOINT_POINTS[point] == "old" else new
    assert set(state) == set(want)
    for k in want:
        torch.testing.assert_close(state[k], want[k], rtol=0, atol=0)
    save_checkpoint(core, ck)  # the next save sweeps the killed writer's temporary and .ck.old
    assert _names(tmp_path) == ["ck", "marks"]
    read_checkpoint(ck, verify=True)


def test_training_state_hash_is_checked(tmp_path):
    from safetensors.torch import save_file

    from omnibind.errors import CheckpointError
    from omnibind.train.state import STATE_JSON, STATE_TENSORS, read_training_state

    save_file({"rng.torch": torch.get_rng_state()}, str(tmp_path / STATE_TENSORS))
    (tmp_path / STATE_JSON).write_text(json.dumps({"step": 4, "tensors_sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="hash does not match"):
        read_training_state(tmp_path)


# --------------------------------------------------------------------------- feature cache


def _items(n: int) -> list[tuple[str, object]]:
    rng = np.random.default_rng(0)
    arrays = [rng.normal(i, 1.0, (20, 6)).astype(np.float32) for i in range(n)]
    return [(f"item-{i}", (lambda a=a: a)) for i, a in enumerate(arrays)]


def _cache_rows(folder: Path) -> list[str]:
    """Every key of every shard on disk (a shard that cannot be read fails the test)."""
    from safetensors import safe_open

    keys: list[str] = []
    for shard in sorted(folder.glob("*/shard-*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            ks = json.loads(f.metadata()["keys"])
            assert f.get_tensor("pooled").shape[0] == len(ks)
        keys.extend(ks)
    return keys


@pytest.mark.parametrize(("point", "shards_left"), [("feature_cache.shard#2", 2), ("atomic.write.mid@shard-#2", 1)])
def test_feature_cache_killed_mid_fill_keeps_whole_shards_and_resumes(tmp_path, point, shards_left):
    from omnibind.data.feature_cache import FeatureCache
    from tests.tiny_encoder import TinyTestEncoder

    enc = TinyTestEncoder(dim=24)
    items = _items(12)
    root = tmp_path / "cache"
    kill_forked(point, lambda: FeatureCache(root, shard_size=4, progress=False).fill(enc, items), tmp_path / "marks")
    kept = _cache_rows(root)
    assert len(kept) == 4 * shards_left and len(set(kept)) == len(kept)
    again = FeatureCache(root, shard_size=4, progress=False)
    out = again.get_or_compute(enc, items)
    assert again.computed == 12 - len(kept)  # what the killed run stored is reused, not encoded again
    assert sorted(_cache_rows(root)) == sorted(k for k, _ in items)  # each item once
    torch.testing.assert_close(out.pooled, enc.encode([load() for _, load in items]).pooled)
    assert not [p for p in (root / enc.fingerprint()).iterdir() if p.name.startswith(".")]  # temporaries swept


def test_feature_cache_ignores_an_unreadable_shard_and_skips_bad_items(tmp_path):
    from omnibind.data.feature_cache import FeatureCache
    from omnibind.errors import InputError
    from tests.tiny_encoder import TinyTestEncoder

    enc = TinyTestEncoder(dim=24)
    items = _items(6)
    root = tmp_path / "cache"
    FeatureCache(root, shard_size=3, progress=False).fill(enc, items)
    shard = sorted((root / enc.fingerprint()).glob("shard-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:40])  # copied half (not something omnibind writes)
    cache = FeatureCache(root, shard_size=3, progress=False)
    with pytest.warns(UserWarning, match="unreadable feature-cache shard"):
        assert len(cache.keys(enc)) == 3
    bad: list[str] = []

    def broken() -> object:
        raise InputError("x.png", "corrupt or truncated image", modality="image")

    failed = cache.fill(enc, [*items, ("item-bad", broken)], on_error=lambda key, err: bad.append(key))
    assert failed == {"item-bad"} and bad == ["item-bad"] and cache.computed == 3
    with pytest.raises(InputError, match="truncated"):
        cache.fill(enc, [("item-bad", broken)])


# --------------------------------------------------------------------------- media index


def _index(n: int, seed: int):
    from omnibind.index.store import Entry, MediaIndex

    idx = MediaIndex(8, fingerprint="bind-test")
    rng = np.random.default_rng(seed)
    idx.add([Entry(f"f{i}.png", "image", f"{seed}-{i}") for i in range(n)], rng.normal(size=(n, 8)))
    return idx


INDEX_POINTS = {
    "atomic.write.mid@index.json": "old",
    "atomic.dir.filled@{dest}": "old",
    "atomic.dir.between@{dest}": "old",
    "atomic.dir.swapped@{dest}": "new",
}


@pytest.mark.parametrize("point", list(INDEX_POINTS))
def test_index_killed_mid_save_loads_and_verifies_as_old_or_new(tmp_path, point):
    from omnibind.index.store import MediaIndex

    folder = tmp_path / "index"
    old, new = _index(3, 0), _index(5, 1)
    old.save(folder)
    kill_forked(point.format(dest=folder), lambda: new.save(folder), tmp_path / "marks")
    got = MediaIndex.load(folder)  # the vectors' SHA-256 must match index.json
    want = old if INDEX_POINTS[point] == "old" else new
    assert got.entries == want.entries
    np.testing.assert_allclose(got.vectors, want.vectors, rtol=1e-6)
    new.save(folder)
    assert _names(tmp_path) == ["index", "marks"]


def test_index_vectors_that_do_not_match_their_hash_are_refused(tmp_path):
    from omnibind.errors import CheckpointError
    from omnibind.index.store import VECTORS_FILE, MediaIndex

    _index(3, 0).save(tmp_path / "a")
    _index(3, 1).save(tmp_path / "b")
    (tmp_path / "a" / VECTORS_FILE).write_bytes((tmp_path / "b" / VECTORS_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="hash does not match"):
        MediaIndex.load(tmp_path / "a")


def test_index_build_killed_midway_keeps_the_old_index_and_restarts_cleanly(tiny_model, tmp_path):
    """A build is not resumable mid-way (it saves once, at the end): the old index survives the
    kill whole, and the next build reuses its vectors and embeds only what it lacked."""
    from PIL import Image

    from omnibind.index.build import build_index
    from omnibind.index.store import MediaIndex

    media = tmp_path / "media"
    media.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(media / f"a{i}.png")
    first = build_index(tiny_model, media, progress=False)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(media / f"b{i}.png")
    kill_forked("index.batch#1", lambda: build_index(tiny_model, media, progress=False, batch_size=2), tmp_path / "m")
    kept = MediaIndex.load(first.folder)
    assert kept.entries == first.index.entries
    again = build_index(tiny_model, media, progress=False, batch_size=2)
    assert (again.reused, again.embedded) == (3, 4)
    assert len(MediaIndex.load(first.folder)) == 7


# --------------------------------------------------------------------------- retrieval cache


def test_retrieval_cache_killed_between_its_files_stays_consistent(tmp_path):
    from omnibind.bind.cache import RetrievalCache

    rng = np.random.default_rng(0)
    old, new = RetrievalCache(8), RetrievalCache(8)
    old.add(rng.normal(size=(3, 8)), ["a", "b", "c"])
    new.add(rng.normal(size=(5, 8)), ["d", "e", "f", "g", "h"])
    old.save(tmp_path / "c")
    # keys JSON already new, vectors file still old: the vectors file carries its own keys
    kill_forked("atomic.file.written@cache.safetensors", lambda: new.save(tmp_path / "c"), tmp_path / "m")
    got = RetrievalCache.load(tmp_path / "c")
    assert got.keys == ["a", "b", "c"] and len(got) == 3
