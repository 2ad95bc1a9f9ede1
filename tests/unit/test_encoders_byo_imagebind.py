"""ImageBind from a local checkpoint: official key names, strict loading, preprocessing, encoding.

Real ImageBind weights are not available offline, so a tiny random configuration exercises the same
loading and encoding code; the Huge configuration is checked by key names and shapes on the meta device.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnibind.encoders.base import ENCODERS
from omnibind.encoders.imagebind import ImageBindEncoder, load_net, read_state_dict
from omnibind.encoders.imagebind_model import preprocess as pre
from omnibind.encoders.imagebind_model.bpe import BPETokenizer
from omnibind.encoders.imagebind_model.net import MODALITIES, ImageBindConfig, ImageBindNet
from omnibind.errors import CheckpointError, ConfigError, InputError
from omnibind.modalities.base import AudioData, DepthData, ImageData, IMUData, ThermalData, VideoData

# Tiny towers; image_size 32 with 8-px patches keeps every tower a few tokens long.
TINY = {
    "out_embed_dim": 16,
    "image_size": 32,
    "vision_patch": 8,
    "depth_patch": 8,
    "thermal_patch": 8,
    "vocab_size": 512 + 3 + 2,  # 256 bytes ×2, the 3 merges below, start and end tokens
    **{f"{m}_embed_dim": 16 for m in MODALITIES},
    **{f"{m}_num_blocks": 1 for m in MODALITIES},
    **{f"{m}_num_heads": 2 for m in MODALITIES},
}
MERGES = "#version: 0.2\nc a\nca t</w>\nd o\n"

# The official imagebind_huge.pth layout, read off facebookresearch/ImageBind (imagebind_model.py,
# multimodal_preprocessors.py, transformer.py, helpers.py): its first keys in order ...
OFFICIAL_FIRST_KEYS = [
    ("modality_preprocessors.vision.cls_token", (1, 1, 1280)),
    ("modality_preprocessors.vision.rgbt_stem.proj.1.weight", (1280, 3, 2, 14, 14)),
    ("modality_preprocessors.vision.pos_embedding_helper.pos_embed", (1, 257, 1280)),
    ("modality_preprocessors.text.pos_embed", (1, 77, 1024)),
    ("modality_preprocessors.text.mask", (77, 77)),
    ("modality_preprocessors.text.token_embedding.weight", (49408, 1024)),
    ("modality_preprocessors.audio.cls_token", (1, 1, 768)),
    ("modality_preprocessors.audio.rgbt_stem.proj.weight", (768, 1, 16, 16)),
    ("modality_preprocessors.audio.rgbt_stem.norm_layer.weight", (768,)),
    ("modality_preprocessors.audio.rgbt_stem.norm_layer.bias", (768,)),
    ("modality_preprocessors.audio.pos_embedding_helper.pos_embed", (1, 229, 768)),
    ("modality_preprocessors.depth.cls_token", (1, 1, 384)),
    ("modality_preprocessors.depth.depth_stem.proj.weight", (384, 1, 16, 16)),
    ("modality_preprocessors.depth.depth_stem.norm_layer.weight", (384,)),
    ("modality_preprocessors.depth.depth_stem.norm_layer.bias", (384,)),
    ("modality_preprocessors.depth.pos_embedding_helper.pos_embed", (1, 197, 384)),
    ("modality_preprocessors.thermal.cls_token", (1, 1, 768)),
    ("modality_preprocessors.thermal.rgbt_stem.proj.weight", (768, 1, 16, 16)),
    ("modality_preprocessors.thermal.rgbt_stem.norm_layer.weight", (768,)),
    ("modality_preprocessors.thermal.rgbt_stem.norm_layer.bias", (768,)),
    ("modality_preprocessors.thermal.pos_embedding_helper.pos_embed", (1, 197, 768)),
    ("modality_preprocessors.imu.pos_embed", (1, 251, 512)),
    ("modality_preprocessors.imu.cls_token", (1, 1, 512)),
    ("modality_preprocessors.imu.imu_stem.proj.weight", (512, 48)),
    ("modality_preprocessors.imu.imu_stem.norm_layer.weight", (512,)),
    ("modality_preprocessors.imu.imu_stem.norm_layer.bias", (512,)),
    ("modality_trunks.vision.pre_transformer_layer.0.weight", (1280,)),
    ("modality_trunks.vision.pre_transformer_layer.0.bias", (1280,)),
    ("modality_trunks.vision.blocks.0.attn.in_proj_weight", (3840, 1280)),
    ("modality_trunks.vision.blocks.0.attn.in_proj_bias", (3840,)),
]
# ... and representative keys further in: last blocks, key/value biases, heads, logit scales.
OFFICIAL_KEYS = {
    "modality_trunks.vision.blocks.31.attn.out_proj.weight": (1280, 1280),
    "modality_trunks.vision.blocks.31.mlp.fc1.weight": (5120, 1280),
    "modality_trunks.vision.blocks.31.norm_2.bias": (1280,),
    "modality_trunks.text.blocks.23.mlp.fc2.weight": (1024, 4096),
    "modality_trunks.audio.blocks.11.attn.bias_k": (1, 1, 768),
    "modality_trunks.audio.blocks.11.attn.bias_v": (1, 1, 768),
    "modality_trunks.depth.blocks.11.attn.in_proj_weight": (1152, 384),
    "modality_trunks.thermal.blocks.0.norm_1.weight": (768,),
    "modality_trunks.imu.blocks.5.attn.bias_k": (1, 1, 512),
    "modality_heads.vision.0.weight": (1280,),
    "modality_heads.vision.2.weight": (1024, 1280),
    "modality_heads.text.proj.0.bias": (1024,),
    "modality_heads.text.proj.1.weight": (1024, 1024),
    "modality_heads.audio.2.weight": (1024, 768),
    "modality_heads.depth.2.weight": (1024, 384),
    "modality_heads.thermal.2.weight": (1024, 768),
    "modality_heads.imu.3.weight": (1024, 512),
    "modality_postprocessors.text.1.log_logit_scale": (),
    "modality_postprocessors.audio.1.log_logit_scale": (),
    "modality_postprocessors.depth.1.log_logit_scale": (),
    "modality_postprocessors.thermal.1.log_logit_scale": (),
    "modality_postprocessors.imu.1.log_logit_scale": (),
}
OFFICIAL_ABSENT = [
    "modality_trunks.vision.blocks.0.attn.bias_k",  # vision and text attention have no k/v bias
    "modality_trunks.text.blocks.0.attn.bias_k",
    "modality_trunks.text.pre_transformer_layer.0.weight",  # only vision has a pre-trunk LayerNorm
    "modality_trunks.vision.blocks.32.attn.in_proj_weight",
    "modality_postprocessors.vision.1.log_logit_scale",
]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> str:
    import gzip

    path = tmp_path_factory.mktemp("bpe") / "tiny_bpe.txt.gz"
    path.write_bytes(gzip.compress(MERGES.encode()))
    return str(path)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    from safetensors.torch import save_file

    torch.manual_seed(123)  # not the encoders' random_init seed, so an ignored file would show
    net = ImageBindNet(ImageBindConfig.from_dict(TINY))
    path = tmp_path_factory.mktemp("ib") / "imagebind_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return str(path)


def _inputs() -> dict[str, list]:
    rng = np.random.default_rng(0)
    return {
        "vision": [ImageData(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))],
        "text": ["a cat", "do the cat"],
        "audio": [AudioData(rng.standard_normal(40000).astype(np.float32) * 0.1)],
        "depth": [DepthData(rng.uniform(0.5, 4.0, (30, 40)).astype(np.float32))],
        "thermal": [ThermalData(rng.uniform(0, 1, (30, 40)).astype(np.float32))],
        "imu": [IMUData(rng.standard_normal((300, 6)).astype(np.float32), 100.0)],
    }


def test_huge_state_dict_names_and_shapes_match_official() -> None:
    with torch.device("meta"):
        state = ImageBindNet().state_dict()
    keys = list(state)
    assert len(keys) == 1311
    assert [(k, tuple(state[k].shape)) for k in keys[: len(OFFICIAL_FIRST_KEYS)]] == OFFICIAL_FIRST_KEYS
    for key, shape in OFFICIAL_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    for key in OFFICIAL_ABSENT:
        assert key not in state
    assert sum(v.numel() for v in state.values()) == 1_200_786_990


def test_safetensors_roundtrip_through_registry_gives_identical_outputs(tiny_checkpoint: str, vocab: str) -> None:
    torch.manual_seed(123)
    reference = ImageBindNet(ImageBindConfig.from_dict(TINY)).eval()  # same seed → same weights as saved
    cls = ENCODERS.get("imagebind")
    for modality, items in _inputs().items():
        params = {"modality": modality, "checkpoint": tiny_checkpoint, "arch": TINY, "bpe_path": vocab}
        enc = cls.from_config(params, build=lambda c: None)  # type: ignore[arg-type, return-value]
        out = enc.encode(items)
        ref_enc = ImageBindEncoder(modality=modality, arch=TINY, bpe_path=vocab, random_init=True)
        ref_enc.tower = reference.tower(modality)
        ref = ref_enc.encode(items)
        assert out.pooled.shape == (len(items), 16)
        loaded, saved = enc.tower.state_dict(), ref_enc.tower.state_dict()
        assert loaded.keys() == saved.keys()
        for key in saved:  # the round trip itself is bit-exact ...
            assert torch.equal(loaded[key], saved[key]), key
        # ... the outputs only to float rounding: kernels may pick other paths for other buffers/threads
        torch.testing.assert_close(out.pooled, ref.pooled, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.tokens, ref.tokens, rtol=1e-5, atol=1e-6)
        assert torch.allclose(out.pooled.norm(dim=-1), torch.ones(len(items)))
        untrained = ImageBindEncoder(modality=modality, arch=TINY, bpe_path=vocab, random_init=True).encode(items)
        assert not torch.allclose(untrained.pooled, out.pooled)


def test_towers_share_one_loaded_network(tiny_checkpoint: str, vocab: str) -> None:
    a = ImageBindEncoder(modality="vision", checkpoint=tiny_checkpoint, arch=TINY)
    b = ImageBindEncoder(modality="image", checkpoint=tiny_checkpoint, arch=TINY)
    c = ImageBindEncoder(modality="audio", checkpoint=tiny_checkpoint, arch=TINY)
    assert a.tower.trunk is b.tower.trunk
    assert a.__dict__["_shared_net"] is c.__dict__["_shared_net"]
    assert a.modalities == ("image", "video") and c.modalities == ("audio",)
    assert a.output_dim == 16 and a.token_dim == 16


def test_pth_checkpoint_with_wrapper_and_prefix_loads(tmp_path, tiny_checkpoint: str) -> None:
    state = read_state_dict(tiny_checkpoint)
    path = tmp_path / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, path)
    net = load_net(path, ImageBindConfig.from_dict(TINY))
    loaded = net.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_mismatched_checkpoint_lists_missing_unexpected_and_shapes(tmp_path, tiny_checkpoint: str) -> None:
    from safetensors.torch import save_file

    state = dict(read_state_dict(tiny_checkpoint))
    del state["modality_heads.imu.3.weight"]
    state["modality_heads.extra.weight"] = torch.zeros(2)
    state["modality_preprocessors.text.pos_embed"] = torch.zeros(1, 10, 16)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad))
    with pytest.raises(CheckpointError) as err:
        ImageBindEncoder(modality="vision", checkpoint=str(bad), arch=TINY)
    msg = str(err.value)
    assert "missing keys: modality_heads.imu.3.weight" in msg
    assert "unexpected keys: modality_heads.extra.weight" in msg
    assert "modality_preprocessors.text.pos_embed: checkpoint (1, 10, 16) vs model (1, 77, 16)" in msg
    assert str(bad) in msg
    # The tiny checkpoint against the default (Huge) architecture: every shape differs.
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_net(tiny_checkpoint, ImageBindConfig())


def test_unsafe_or_missing_checkpoints_are_refused(tmp_path) -> None:
    import collections

    pickled = tmp_path / "objects.pth"
    torch.save({"weights": collections.Counter(a=1)}, pickled)  # an object weights_only must not unpickle
    with pytest.raises(CheckpointError, match=r"objects\.pth"):
        read_state_dict(pickled)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="safetensors"):
        read_state_dict(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        ImageBindEncoder(modality="vision", checkpoint=str(tmp_path / "absent.pth"), arch=TINY)
    with pytest.raises(ConfigError, match="checkpoint"):
        ImageBindEncoder(modality="vision", arch=TINY)


def test_config_roundtrip_and_validation(tiny_checkpoint: str, vocab: str) -> None:
    cfg = ImageBindConfig.from_dict(TINY)
    assert ImageBindConfig.from_dict(cfg.to_dict()) == cfg
    assert ImageBindConfig().vision_embed_dim == 1280  # defaults are Huge
    with pytest.raises(ConfigError, match="vision_width"):
        ImageBindConfig.from_dict({"vision_width": 3})
    with pytest.raises(ConfigError, match="divisible"):
        ImageBindConfig.from_dict({"audio_embed_dim": 10, "audio_num_heads": 3})
    enc = ImageBindEncoder(modality="text", checkpoint=tiny_checkpoint, arch=TINY, bpe_path=vocab)
    again = ImageBindEncoder.from_config(dict(enc.params), build=lambda c: None)  # type: ignore[arg-type, return-value]
    assert again.params == enc.params and again.fingerprint() == enc.fingerprint()
    other = ImageBindEncoder(modality="text", checkpoint=tiny_checkpoint, arch=TINY, bpe_path=vocab, dtype="bfloat16")
    assert other.fingerprint() != enc.fingerprint()
    torch.testing.assert_close(again.encode(["a cat"]).pooled, enc.encode(["a cat"]).pooled)
    with pytest.raises(ConfigError, match="bpe_path"):
        ImageBindEncoder(modality="text", checkpoint=tiny_checkpoint, arch=TINY)
    with pytest.raises(ConfigError, match="modality"):
        ImageBindEncoder(modality="smell", checkpoint=tiny_checkpoint, arch=TINY)


def test_bad_inputs_raise_input_errors(tiny_checkpoint: str) -> None:
    audio = ImageBindEncoder(modality="audio", checkpoint=tiny_checkpoint, arch=TINY)
    with pytest.raises(InputError, match="16 kHz"):
        audio.encode([AudioData(np.zeros(8000, np.float32), sample_rate=8000)])
    with pytest.raises(InputError, match="AudioData"):
        audio.encode([ImageData(np.zeros((8, 8, 3), np.uint8))])
    imu = ImageBindEncoder(modality="imu", checkpoint=tiny_checkpoint, arch=TINY)
    with pytest.raises(InputError, match=r"\(T, 6\)"):
        imu.encode([IMUData(np.zeros((10, 3), np.float32), 50.0)])


def test_text_padding_does_not_change_embeddings(tiny_checkpoint: str, vocab: str) -> None:
    enc = ImageBindEncoder(modality="text", checkpoint=tiny_checkpoint, arch=TINY, bpe_path=vocab)
    alone = enc.encode(["a cat"])
    batch = enc.encode(["a cat", "a much longer sentence about a dog and a cat"])
    torch.testing.assert_close(batch.pooled[0], alone.pooled[0], rtol=1e-5, atol=1e-6)
    assert batch.token_mask is not None
    assert batch.token_mask[0].sum().item() == alone.tokens.shape[1]  # start, "a", "cat", end
    assert batch.token_mask[1].all()


def test_still_video_matches_its_frame(tiny_checkpoint: str) -> None:
    """A constant-colour video: every clip and crop equals the image, so embeddings agree."""
    enc = ImageBindEncoder(modality="vision", checkpoint=tiny_checkpoint, arch=TINY)
    frame = np.full((36, 48, 3), (200, 40, 90), np.uint8)
    video = VideoData(frames=np.stack([frame] * 6), timestamps=np.linspace(0, 5, 6), duration=6.0)
    out = enc.encode([ImageData(frame), video])
    torch.testing.assert_close(out.pooled[0], out.pooled[1], rtol=1e-4, atol=1e-5)
    assert pre.vision_video(video.frames, video.timestamps, 6.0, 32, clips=5, crops=3).shape == (15, 3, 2, 32, 32)


def test_bpe_tokenizer_merges_and_truncation(vocab: str) -> None:
    tok = BPETokenizer.from_file(vocab, context_length=8)
    assert tok.vocab_size == 517
    cat, eot = tok.ids["cat</w>"], tok.eot
    rows, eos = tok(["A  CAT", "cat " * 20])
    assert rows[0] == [tok.sot, tok.ids["a</w>"], cat, eot] and eos[0] == 3
    assert len(rows[1]) == 8 and rows[1][-1] == eot and eos[1] == 7  # the end token survives truncation
    assert tok.encode("dog") == [tok.ids["do"], tok.ids["g</w>"]]
    assert tok.encode("&amp;") == [tok.ids["&</w>"]]  # HTML entities are unescaped, like upstream


def test_fbank_matches_kaldi_layout_and_tone_position() -> None:
    sr = 16000
    t = np.arange(2 * sr) / sr
    tone = torch.from_numpy((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    fb = pre.kaldi_fbank(tone, sr, 128)
    assert fb.shape == (198, 128)  # 1 + (32000 - 400) // 160 frames
    # The loudest bin is the one whose triangle peaks nearest 1 kHz on Kaldi's mel scale.
    mel = lambda f: 1127 * np.log1p(f / 700)  # noqa: E731
    centres = mel(20) + (np.arange(128) + 1) * (mel(8000) - mel(20)) / 129
    assert abs(int(fb.mean(0).argmax()) - int(np.argmin(np.abs(centres - mel(1000))))) <= 1
    clips = pre.audio_clips(np.zeros(8000, np.float32), sr, clips=3)
    assert clips.shape == (3, 1, 128, 204)
    # Frames past the 0.5 s of audio are zero-padded before normalisation, as upstream does.
    assert torch.allclose(clips[0, 0, :, 60:], torch.full((128, 144), (0 - pre.AUDIO_MEAN) / pre.AUDIO_STD))


def test_clip_windows_and_modality_maps() -> None:
    from fractions import Fraction

    # pytorchvideo's ConstantClipsPerVideoSampler: starts at multiples of (10 - 2) / 3, the last ending
    # before the end of the clip
    assert pre.clip_windows(10.0, Fraction(2), 3) == [
        (0, 2),
        (Fraction(8, 3), Fraction(14, 3)),
        (Fraction(16, 3), Fraction(22, 3)),
    ]
    assert pre.clip_windows(1.0, Fraction(2), 2) == [(0, 2), (0, 2)]
    img = pre.vision_image(np.full((100, 50, 3), 255, np.uint8), 32)
    assert img.shape == (3, 32, 32)
    torch.testing.assert_close(img[:, 0, 0], (1 - torch.tensor(pre.CLIP_MEAN)) / torch.tensor(pre.CLIP_STD))
    depth = np.full((20, 30), 2.0, np.float32)
    depth[0, 0] = np.nan
    d = pre.depth_map(depth, "metric", 16)
    assert d.shape == (1, 16, 16) and torch.isfinite(d).all()
    expected = (0.075 * 518.8579 / 2.0 - pre.DEPTH_MEAN) / pre.DEPTH_STD
    assert abs(float(d[0, 8, 8]) - expected) < 1e-3
    th = pre.thermal_map(np.linspace(20, 40, 600).reshape(20, 30), "celsius", 16)
    assert float(th.min()) >= 0 and float(th.max()) <= 1
    imu = pre.imu_window(np.ones((20, 6), np.float32), 10.0, rate=400.0, length=2000)  # 1.9 s → 761 steps
    assert imu.shape == (6, 2000) and float(imu[:, :761].min()) == 1.0 and float(imu[:, 761:].abs().sum()) == 0.0
    long = pre.imu_window(np.arange(600, dtype=np.float32)[:, None].repeat(6, 1), 100.0, rate=400.0, length=2000)
    assert long.shape == (6, 2000) and float(long[0, 0]) == pytest.approx(49.5)  # 2397 steps, centre crop from 198


def test_meta_network_sizes_a_tower_like_the_loaded_one(tiny_checkpoint: str) -> None:
    """`omnibind plan`'s view: the tower on the meta device (no checkpoint read) has the loaded tower's
    parameters and widths; the six towers' sizings share one meta network."""
    loaded = ImageBindEncoder(modality="audio", checkpoint=tiny_checkpoint, arch=TINY)
    sized = ImageBindEncoder.meta_network({"modality": "audio", "checkpoint": "/nowhere.pth", "arch": TINY}, None)
    assert all(p.is_meta for p in sized.network.parameters())
    assert sum(p.numel() for p in sized.network.parameters()) == sum(p.numel() for p in loaded.tower.parameters())
    assert sized.dims == loaded.feature_dims() and sized.dtype == "float32"
    vision = ImageBindEncoder.meta_network({"modality": "image", "arch": TINY, "dtype": "float16"}, None)
    assert vision.dtype == "float16"
    again = ImageBindEncoder.meta_network({"modality": "vision", "arch": TINY}, None)
    assert again.network.trunk is vision.network.trunk  # one meta network per architecture
    with pytest.raises(ConfigError, match="imagebind modality"):
        ImageBindEncoder.meta_network({"modality": "smell"}, None)
