"""The one atomic-write and hashing mechanism (tiny files, no models)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from omnibind.atomic import atomic_dir, atomic_file, atomic_write_text, recover_dir
from omnibind.hashing import content_hash, file_hash, media_key, text_key


def test_atomic_dir_replaces_whole_and_keeps_old_on_error(tmp_path):
    dest = tmp_path / "ckpt"
    with atomic_dir(dest) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (dest / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_dir(dest) as tmp:
        (tmp / "a.txt").write_text("two")
        raise RuntimeError("killed mid-write")
    assert (dest / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with atomic_dir(dest) as tmp:
        (tmp / "b.txt").write_text("three")
    assert sorted(p.name for p in dest.iterdir()) == ["b.txt"]


def test_recover_dir_after_kill_between_renames(tmp_path):
    dest = tmp_path / "ckpt"
    old = tmp_path / ".ckpt.old"
    old.mkdir()
    (old / "w").write_text("old")
    recover_dir(dest)
    assert (dest / "w").read_text() == "old" and not old.exists()


def test_atomic_file_and_modes(tmp_path):
    p = tmp_path / "x.bin"
    with atomic_file(p) as tmp:
        tmp.write_bytes(b"abc")
    assert p.read_bytes() == b"abc"
    assert os.stat(p).st_mode & 0o044  # readable by others, as a plain write gives
    with pytest.raises(ValueError), atomic_file(p) as tmp:
        tmp.write_bytes(b"torn")
        raise ValueError
    assert p.read_bytes() == b"abc" and len(list(tmp_path.iterdir())) == 1
    atomic_write_text(p, "new")
    assert p.read_text() == "new"


def test_media_key_is_content_not_path(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert media_key("image", a) == media_key("image", str(b)) == media_key("image", b)
    assert media_key("image", a) != media_key("image", a, options={"kind": "x"})
    assert media_key("image", a) != media_key("depth", a)
    assert file_hash(a) == content_hash(b)
    assert media_key("image", b"same", format="png") != media_key("image", b"same", format="jpg")
    arr = np.zeros((2, 3), np.float32)
    assert media_key("imu", arr) == media_key("imu", arr.copy()) != media_key("imu", arr.astype(np.float64))
    assert text_key("a") != text_key("b")
    with pytest.raises(ValueError, match="no content hash"):
        media_key("image", object())


def test_file_hash_sees_a_changed_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"1")
    h1 = file_hash(p)
    p.write_bytes(b"22")
    assert file_hash(p) != h1
