"""Feature cache: encode once, reuse across instances, rebuild on a new encoder, atomic safetensors shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omnibind.data.feature_cache import FeatureCache
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


def test_training_and_dataset_features_share_one_key(tmp_path: Path) -> None:
    """The on-disk cache filled by ``omnibind data features`` is the one training reads: same key."""
    from omnibind.data.features import media_items
    from omnibind.data.format import parse_sample
    from omnibind.hashing import media_key
    from omnibind.messages import MediaPart, TextPart
    from omnibind.train.features import part_key

    (tmp_path / "a.png").write_bytes(b"same")
    (tmp_path / "copy.png").write_bytes(b"same")
    obj = {
        "id": "s",
        "media": [{"type": "image", "path": "a.png"}, {"type": "image", "path": "copy.png"}],
        "conversation": [{"role": "user", "content": "<image><image> Same?"}, {"role": "assistant", "content": "Yes"}],
    }
    sample = parse_sample(obj, base_dir=tmp_path)
    parts = [p for m in sample.to_messages() for p in m.content if isinstance(p, MediaPart)]
    keys = {part_key(p) for p in parts}
    assert keys == {k for k, _ in media_items([sample], "image")} == {media_key("image", tmp_path / "a.png")}
    assert part_key(MediaPart("image", tmp_path / "a.png", options={"kind": "x"})) not in keys  # options count
    assert part_key(TextPart("hi")) != part_key(TextPart("ho"))
    # no content hash (an arbitrary object) or no file to read: not cacheable, decoding reports it
    assert part_key(MediaPart("image", object(), name="thing")) is None
    assert part_key(MediaPart("image", tmp_path / "missing.png")) is None
    arr = np.zeros((4, 4, 3), np.uint8)
    assert part_key(MediaPart("image", arr)) == part_key(MediaPart("image", arr.copy(), name="other name"))
