"""Feature cache: encode once, reuse across instances, rebuild on a new encoder, atomic safetensors shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omnibind.data.feature_cache import FeatureCache, media_key
from omnibind.encoders.base import Encoder, EncoderOutput
from tests.tiny_encoder import TinyTestEncoder


class VarLenEncoder(Encoder):
    """Tokens of different lengths per item with a mask (like Whisper's audio frames)."""

    modalities = ("audio",)
    output_dim = 3
    token_dim = 2

    def encode(self, items):
        lens = [len(x) for x in items]
        tok = torch.zeros(len(items), max(lens), 2)
        mask = torch.zeros(len(items), max(lens), dtype=torch.bool)
        for i, x in enumerate(items):
            tok[i, : len(x), 0] = torch.tensor(x, dtype=torch.float32)
            mask[i, : len(x)] = True
        pooled = torch.tensor([[float(sum(x)), float(len(x)), 1.0] for x in items])
        return EncoderOutput(pooled=pooled, tokens=tok, token_mask=mask)


def _items(n: int, calls: list[int] | None = None):
    def loader(i: int):
        if calls is not None:
            calls.append(i)
        return np.full((6, 5, 3), i * 10, np.uint8)

    return [(f"k{i}", lambda i=i: loader(i)) for i in range(n)]


def test_encode_once_and_reuse(tmp_path: Path) -> None:
    enc = TinyTestEncoder(dim=24)
    calls: list[int] = []
    cache = FeatureCache(tmp_path, shard_size=3, progress=False)
    out = cache.get_or_compute(enc, _items(7, calls), batch_size=2)
    assert cache.computed == 7 and sorted(calls) == list(range(7))
    direct = enc.encode([np.full((6, 5, 3), i * 10, np.uint8) for i in range(7)])
    torch.testing.assert_close(out.pooled, direct.pooled)
    torch.testing.assert_close(out.tokens, direct.tokens)
    assert out.token_mask.all()
    shards = list((tmp_path / enc.fingerprint()).glob("shard-*.safetensors"))
    assert len(shards) == 3  # 3 + 3 + 1
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temp files

    # a new instance (next epoch, next stage, next run) reads from disk and loads nothing
    calls.clear()
    again = FeatureCache(tmp_path, progress=False)
    order = list(reversed(_items(7, calls))) + _items(2, calls)
    out2 = again.get_or_compute(enc, order)
    assert again.computed == 0 and calls == []
    torch.testing.assert_close(out2.pooled[:7], out.pooled.flip(0))
    torch.testing.assert_close(out2.pooled[7:], out.pooled[:2])


def test_partial_hits_and_new_encoder(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, progress=False)
    enc = TinyTestEncoder(dim=24)
    cache.get_or_compute(enc, _items(3))
    calls: list[int] = []
    cache.get_or_compute(enc, _items(5, calls))
    assert sorted(calls) == [3, 4]  # only the missing ones
    other = TinyTestEncoder(dim=16)  # different encoder → different fingerprint → recomputed
    assert other.fingerprint() != enc.fingerprint()
    calls.clear()
    out = cache.get_or_compute(other, _items(5, calls))
    assert sorted(calls) == list(range(5)) and out.pooled.shape == (5, 16)
    assert set(cache.stats()) == {enc.fingerprint(), other.fingerprint()}
    assert cache.prune([other.fingerprint()]) == [enc.fingerprint()]
    assert cache.fingerprints() == [other.fingerprint()]


def test_variable_length_tokens_and_half_precision(tmp_path: Path) -> None:
    enc = VarLenEncoder()
    items = [("a", lambda: [1, 2, 3]), ("b", lambda: [4]), ("c", lambda: [5, 6])]
    cache = FeatureCache(tmp_path, dtype="float16", progress=False)
    cache.get_or_compute(enc, items)
    out = FeatureCache(tmp_path, progress=False).get_or_compute(enc, [items[1], items[2]])
    assert out.tokens.shape == (2, 2, 2) and out.tokens.dtype == torch.float32
    assert out.token_mask.tolist() == [[True, False], [True, True]]
    assert out.tokens[1, :, 0].tolist() == [5.0, 6.0]
    assert out.pooled[0].tolist() == [4.0, 1.0, 1.0]


def test_shards_are_safetensors_with_keys(tmp_path: Path) -> None:
    from safetensors import safe_open

    enc = TinyTestEncoder(dim=24)
    FeatureCache(tmp_path, store_tokens=False, progress=False).get_or_compute(enc, _items(2))
    (shard,) = (tmp_path / enc.fingerprint()).glob("shard-*.safetensors")
    with safe_open(str(shard), framework="pt") as f:
        assert set(f.keys()) == {"pooled"}
        assert f.metadata()["keys"] == '["k0", "k1"]'
    assert (tmp_path / enc.fingerprint() / "encoder.json").is_file()
    with pytest.raises(ValueError):
        FeatureCache(tmp_path).get_or_compute(enc, [])


def test_media_key_hashes_content(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"other")
    assert media_key(a, "image") == media_key(b, "image") != media_key(c, "image")
    assert media_key(a, "image") != media_key(a, "depth") != media_key(a, "depth", {"kind": "disparity"})
