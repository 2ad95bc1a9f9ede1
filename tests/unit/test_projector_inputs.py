"""What a projector reads (``ProjectorConfig.inputs``: bind, pooled, tokens, classes) on tiny random
configs: shapes, gradients, save/load, old configs unchanged, and clear errors for what cannot work."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from omnibind.config import ModelConfig
from omnibind.encoders.base import ENCODERS, EncoderOutput, FeatureDims
from omnibind.errors import ConfigError
from omnibind.messages import Audio, Image, Message, MixPart
from omnibind.model import OmnibindModel
from omnibind.projectors.feature_mlp import FeatureMLPProjector, pool_tokens, squarest_grid
from tests.tiny_encoder import TinyTestEncoder

K = 4


class TinyClassifierEncoder(TinyTestEncoder):
    """The tiny test encoder with a 2×2 token map and a 5-class head (an EfficientNet stand-in)."""

    modalities = ("image",)
    token_grid = (2, 2)
    num_classes = 5

    def __init__(self, dim: int = 24):
        super().__init__(dim=dim)
        gen = torch.Generator().manual_seed(7)
        self.head = torch.nn.Linear(dim, 5)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(5, dim, generator=gen))
            self.head.bias.zero_()

    @torch.inference_mode()
    def encode(self, items: list[Any]) -> EncoderOutput:
        out = super().encode(items)
        tokens = torch.cat([out.tokens, out.tokens[:, :1] * 2], dim=1)  # 4 tokens: a full 2×2 map
        return EncoderOutput(pooled=out.pooled, tokens=tokens)

    @torch.no_grad()
    def class_probs(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(pooled).softmax(-1)


if "test_tiny_classifier" not in ENCODERS:
    ENCODERS.add("test_tiny_classifier", TinyClassifierEncoder)


def _config(tiny_config_dict: dict, image_projector: dict | None, **shared: Any) -> dict:
    d = copy.deepcopy(tiny_config_dict)
    d["encoders"] = {
        "image": {"name": "test_tiny_classifier", "params": {"dim": 24}},
        "audio": {"name": "test_tiny", "params": {"dim": 24}},
    }
    d["projectors"] = {"*": {"name": "mlp", "num_tokens": 2, **shared}}
    if image_projector is not None:
        d["projectors"]["image"] = image_projector
    return d


def _model(d: dict) -> OmnibindModel:
    return OmnibindModel(ModelConfig.from_dict(d))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import soundfile as sf

    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    img = d / "img.png"
    PILImage.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(img)
    wav = d / "tone.wav"
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype(np.float32), 16000)
    return {"image": img, "audio": wav}


ALL = ["bind", "pooled", "tokens", "classes"]


@pytest.fixture(scope="module")
def full_model(tiny_config_dict: dict) -> OmnibindModel:
    return _model(_config(tiny_config_dict, {"name": "feature_mlp", "num_tokens": K, "inputs": ALL}))


# --- the projector alone ----------------------------------------------------------------------
@pytest.mark.parametrize("inputs", [["bind"], ["pooled"], ["tokens"], ["classes"], ["pooled", "classes"], ALL])
def test_each_input_gives_k_tokens_and_gradients(inputs: list[str]) -> None:
    dims = {"image": FeatureDims(pooled=12, tokens=6, grid=(2, 2), classes=5)}
    proj = FeatureMLPProjector(16, 10, K, inputs=inputs, features=dims, class_top_k=2)
    b = 3
    kwargs = {
        "modality": "image",
        "pooled": torch.randn(b, 12),
        "tokens": torch.randn(b, 4, 6),
        "classes": torch.randn(b, 5).softmax(-1),
    }
    out = proj(torch.nn.functional.normalize(torch.randn(b, 16), dim=-1), **kwargs)
    assert out.shape == (b, K, 10)
    out.square().sum().backward()
    first = {"bind": proj.bind_in, "pooled": proj.pooled_in, "tokens": proj.tokens_in, "classes": proj.classes_in}
    for name in ALL:
        layer = first[name]
        if name in inputs:
            assert layer is not None and len(list(layer.parameters())) > 0
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters() if p.dim() > 1)
        else:
            assert layer is None or len(layer) == 0
    assert proj.out.weight.grad is not None


def test_tokens_honour_num_tokens_and_grid() -> None:
    assert squarest_grid(4) == (2, 2) and squarest_grid(8) == (2, 4) and squarest_grid(7) == (1, 7)
    fmap = torch.arange(16.0).view(1, 16, 1)  # a 4×4 map, row-major
    pooled = pool_tokens(fmap, None, 4, (4, 4), (2, 2))
    assert pooled[0, :, 0].tolist() == [2.5, 4.5, 10.5, 12.5]  # the four 2×2 quadrants' means
    seq = torch.tensor([[[1.0], [3.0], [5.0], [0.0]]])
    mask = torch.tensor([[True, True, True, False]])
    assert pool_tokens(seq, mask, 3, None, (1, 3))[0, :, 0].tolist() == [1.0, 3.0, 5.0]  # padding dropped
    for k in (1, 2, 6):
        dims = {"audio": FeatureDims(pooled=8, tokens=6)}
        proj = FeatureMLPProjector(16, 10, k, inputs=["tokens"], features=dims)
        assert proj(torch.zeros(1, 16), tokens=torch.randn(1, 9, 6), modality="audio").shape == (1, k, 10)


def test_inputs_start_with_equal_spread() -> None:
    """No input dominates at the start: pooled (norm √d after LayerNorm) is scaled to the bind path."""
    dims = {"image": FeatureDims(pooled=1280, tokens=None, classes=1000)}
    proj = FeatureMLPProjector(384, 64, K, inputs=["bind", "pooled"], features=dims, hidden=64)
    v = torch.nn.functional.normalize(torch.randn(256, 384), dim=-1)
    with torch.no_grad():
        bind_part = proj.bind_in(v).std()
        pooled_part = proj.pooled_in["image"](torch.randn(256, 1280) * 5 + 3).std()
    assert 0.5 < float(pooled_part / bind_part) < 2.0


# --- through the model ------------------------------------------------------------------------
def test_model_soft_tokens_and_loss_gradients(full_model: OmnibindModel, files: dict[str, Path]) -> None:
    core = full_model
    proj = core.projector_of("image")
    assert isinstance(proj, FeatureMLPProjector) and proj.uses_tokens
    conv = [Message.user(Image(str(files["image"])), "What is this?"), Message.assistant("a thing")]
    prepared = core.prepare(conv)
    (soft,) = core.soft_tokens(prepared.inputs)
    assert soft.shape == (K, core.llm.hidden_size)
    core.train()
    try:
        core.set_trainable([n for n in core.trainable_parameters() if n.startswith("projectors.image.")])
        core.zero_grad()
        core.loss([conv]).backward()
    finally:
        core.eval()
    for name in ("bind_in", "pooled_in.image.1", "classes_in.image", "tokens_in.image.1", "out"):
        grad = dict(proj.named_parameters())[f"{name}.weight"].grad
        assert grad is not None and grad.abs().sum() > 0, name
    # the audio slot still goes through the shared mlp projector, 2 tokens
    (audio,) = core.soft_tokens(core.prepare([Message.user(Audio(str(files["audio"])), "Q")]).inputs)
    assert audio.shape == (2, core.llm.hidden_size)


def test_classes_come_from_the_encoders_head(full_model: OmnibindModel, files: dict[str, Path]) -> None:
    core = full_model
    (inp,) = core.prepare([Message.user(Image(str(files["image"])), "Q")]).inputs
    _, enc_out = core.encode_inputs([inp])[0]
    feats = core._projector_features(inp, enc_out, core.projector_of("image"))
    want = core.encoders["image"].class_probs(enc_out.pooled[None])
    assert torch.allclose(feats["classes"], want) and feats["classes"].shape == (1, 5)


def test_mix_needs_bind_among_inputs(tiny_config_dict: dict, files: dict[str, Path]) -> None:
    img, aud = Image(str(files["image"])), Audio(str(files["audio"]))
    shared = {"name": "feature_mlp", "num_tokens": K, "inputs": ["bind", "pooled"]}
    d = _config(tiny_config_dict, None)
    d["projectors"]["*"] = shared
    core = _model(d)
    (soft,) = core.soft_tokens(core.prepare([Message.user(MixPart([img, aud], [0.5, 0.5]), "Q")]).inputs)
    assert soft.shape == (K, core.llm.hidden_size)  # a mix: bind vector only
    d["projectors"]["*"] = {**shared, "inputs": ["pooled"]}
    core = _model(d)
    with pytest.raises(ConfigError, match="add 'bind'"):
        core.soft_tokens(core.prepare([Message.user(MixPart([img, aud], [0.5, 0.5]), "Q")]).inputs)


def test_saved_with_weights_and_reloaded(full_model: OmnibindModel, tmp_path: Path, files: dict[str, Path]) -> None:
    from omnibind.checkpoint import load_config, load_weights, save_checkpoint

    save_checkpoint(full_model, tmp_path / "ck")
    cfg = load_config(tmp_path / "ck")
    assert cfg.projectors["image"].inputs == ALL and cfg.projectors["image"].name == "feature_mlp"
    assert cfg.to_dict() == full_model.config.to_dict()
    cfg.seed = 5  # other random start: the loaded weights must be what makes the tokens equal
    again = OmnibindModel(cfg)
    load_weights(again, tmp_path / "ck")
    conv = [Message.user(Image(str(files["image"])), "Q")]
    with torch.no_grad():
        a = full_model.soft_tokens(full_model.prepare(conv).inputs)[0]
        b = again.soft_tokens(again.prepare(conv).inputs)[0]
    assert torch.allclose(a, b)


def test_old_config_without_new_keys_is_unchanged(tiny_config_dict: dict, files: dict[str, Path]) -> None:
    old = copy.deepcopy(tiny_config_dict)
    assert "inputs" not in old["projectors"]["*"]
    cfg = ModelConfig.from_dict(old)
    assert cfg.projectors["*"].inputs == ["bind"] and cfg.projectors["*"].token_grid is None
    explicit = copy.deepcopy(old)
    explicit["projectors"]["*"].update({"inputs": ["bind"], "token_grid": None})
    a, b = _model(old), _model(explicit)
    assert a.trainable_parameters().keys() == b.trainable_parameters().keys()
    assert [n for n in a.trainable_parameters() if n.startswith("projectors.")] == [
        "projectors.shared.net.0.bias",
        "projectors.shared.net.0.weight",
        "projectors.shared.net.2.bias",
        "projectors.shared.net.2.weight",
    ]
    assert a.projector_of("image").example_features(4, torch.Generator()) == {}  # same calibration as before
    conv = [Message.user(Image(str(files["image"])), "Q")]
    with torch.no_grad():
        assert torch.equal(a.soft_tokens(a.prepare(conv).inputs)[0], b.soft_tokens(b.prepare(conv).inputs)[0])


# --- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pcfg", "match"),
    [
        ({"inputs": ["bind", "pixels"]}, "inputs must be"),
        ({"inputs": []}, "inputs must be"),
        ({"inputs": ["bind", "bind"]}, "inputs must be"),
        ({"inputs": ["tokens"], "num_tokens": 4, "token_grid": [3, 2]}, "gives 6 tokens"),
        ({"inputs": ["bind"], "num_tokens": 4, "token_grid": [2, 2]}, "'tokens' is not among"),
        ({"num_tokens": 0}, "num_tokens"),
    ],
)
def test_config_refuses_bad_inputs(pcfg: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict({"projectors": {"*": {"name": "feature_mlp", **pcfg}}})


def test_impossible_combinations_fail_at_build(tiny_config_dict: dict) -> None:
    # classes through the shared projector: the audio encoder has no classifier
    with pytest.raises(ConfigError, match="'audio' encoder has no classifier"):
        _model(_config(tiny_config_dict, None, name="feature_mlp", inputs=["bind", "classes"]))
    # a projector that reads only the bind vector cannot take other inputs
    with pytest.raises(ConfigError, match="reads the bind vector only"):
        _model(_config(tiny_config_dict, {"name": "mlp", "inputs": ["pooled"]}))
    with pytest.raises(ConfigError, match="has no classifier"):
        TinyTestEncoder().class_probs(torch.zeros(1, 24))


def test_via_image_encoders_share_the_classifier() -> None:
    from omnibind.encoders.depth_as_image import DepthAsImageEncoder
    from omnibind.encoders.video_frames import VideoFramesEncoder

    inner = TinyClassifierEncoder()
    depth, video = DepthAsImageEncoder(inner), VideoFramesEncoder(inner)
    assert depth.feature_dims() == FeatureDims(24, 8, (2, 2), 5)
    assert video.feature_dims() == FeatureDims(24, 24, None, 5)  # frames: a sequence of pooled vectors
    x = torch.randn(2, 24)
    assert torch.equal(depth.class_probs(x), inner.class_probs(x))


# --- caches keep what the inputs need ------------------------------------------------------------
def test_feature_store_keeps_tokens_only_where_read(full_model: OmnibindModel, tmp_path: Path) -> None:
    from omnibind.train.features import FeatureStore

    store = FeatureStore(full_model, folder=tmp_path / "cache")
    assert store.token_modalities == {"image"}


def test_pooled_only_cache_is_refilled_for_a_tokens_reader(tmp_path: Path) -> None:
    from omnibind.data.feature_cache import FeatureCache

    enc = TinyTestEncoder(dim=24)
    items = [(f"k{i}", (lambda i=i: np.full((4, 4, 3), i, np.uint8))) for i in range(3)]
    FeatureCache(tmp_path, store_tokens=False, progress=False).get_or_compute(enc, items)
    again = FeatureCache(tmp_path, progress=False)
    out = again.get_or_compute(enc, items)
    assert again.computed == 3 and out.tokens is not None and out.tokens.shape == (3, 3, 8)
    third = FeatureCache(tmp_path, progress=False)
    assert third.get_or_compute(enc, items).tokens is not None and third.computed == 0
    pooled_only = FeatureCache(tmp_path, store_tokens=False, progress=False)
    pooled_only.get_or_compute(enc, items)
    assert pooled_only.computed == 0


def test_feature_modalities_limit_the_input_layers(tiny_config_dict: dict, files: dict[str, Path]) -> None:
    """A shared projector reads encoder features only for ``feature_modalities``; the others reach
    it by their bind vector alone (the default model has no video/thermal/text pairs for the LLM)."""
    d = _config(tiny_config_dict, None)
    served = sorted(m for m in d["encoders"] if m not in d["projectors"] or m == "*")
    keep = [m for m in served if m != "audio"][:1]
    d["projectors"]["*"] = {
        "name": "feature_mlp",
        "num_tokens": K,
        "inputs": ["bind", "pooled"],
        "feature_modalities": keep,
    }
    core = _model(d)
    shared = next(p for p in core.projectors.values() if getattr(p, "features", None) is not None)
    assert sorted(shared.pooled_in) == keep
    (soft,) = core.soft_tokens(core.prepare([Message.user(Audio(str(files["audio"])), "Q")]).inputs)
    assert soft.shape == (K, core.llm.hidden_size)  # audio: bind path only, no input layer needed
    d["projectors"]["*"]["feature_modalities"] = ["nonsense"]
    with pytest.raises(ConfigError, match="feature_modalities"):
        _model(d)
