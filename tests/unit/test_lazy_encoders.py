"""Encoders are built on first use (``omnibind.encoders.lazy``), on a tiny random model.

A counting encoder with class-level (declared) widths stands in for a pretrained one: the tests
check that a text question builds none, an image builds the image encoder once (shared with the
video wrapper), that every public path still works, and the eager switch builds all at once.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from omnibind.api import Model
from omnibind.checkpoint import load_weights, save_checkpoint
from omnibind.config import ModelConfig
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.errors import ConfigError
from omnibind.messages import Image, Message, TextPart
from omnibind.model import OmnibindModel

BUILDS: list[str] = []


class _CountingEncoder(Encoder):
    """Frozen, widths declared on the class (like EfficientNet-Lite0): built lazily."""

    modalities = ("image", "text")
    output_dim = 12
    token_dim = 12
    token_grid = (2, 2)

    def __init__(self, scale: float = 1.0):
        super().__init__(scale=scale)
        BUILDS.append(type(self).__name__)
        self.proj = torch.nn.Linear(3, self.output_dim)

    def encode(self, items: list[Any]) -> EncoderOutput:
        feats = torch.tensor(
            [[float(np.asarray(getattr(x, "pixels", [len(str(x))])).mean()) / 255.0, 1.0, 0.5] for x in items]
        )
        pooled = self.proj(feats)
        return EncoderOutput(pooled=pooled, tokens=pooled[:, None, :].expand(-1, 4, -1).contiguous())


class _LyingEncoder(_CountingEncoder):
    """Declares 12 wide, builds 7 wide: the check at build time must catch it."""

    def __init__(self) -> None:
        super().__init__()
        self.output_dim = 7


if "test_counting" not in ENCODERS:
    ENCODERS.register("test_counting")(_CountingEncoder)
    ENCODERS.register("test_lying")(_LyingEncoder)


@pytest.fixture()
def config(tiny_config_dict: dict) -> dict:
    d = copy.deepcopy(tiny_config_dict)
    counting = {"name": "test_counting", "params": {}}
    d["encoders"]["image"] = counting
    d["encoders"]["text"] = counting
    d["encoders"]["video"] = {"name": "video_frames", "params": {"image_encoder": counting}}
    BUILDS.clear()
    return d


@pytest.fixture()
def image(tmp_path: Path) -> Path:
    p = tmp_path / "img.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(p)
    return p


def test_text_question_builds_no_declared_encoder(config: dict):
    core = OmnibindModel(ModelConfig.from_dict(config))
    assert BUILDS == []
    assert "image" in core.encoders and "video" in core.encoders and len(core.encoders) == len(config["encoders"])
    assert not core.encoders.is_built("image")
    # the tiny test encoder declares nothing (its width is set in __init__): built at once
    assert core.encoders.is_built("audio")
    Model(core, origin="t", trained=False).chat("Hello there", max_new_tokens=3)
    assert BUILDS == []


def test_image_builds_its_encoder_once_and_the_video_wrapper_shares_it(config: dict, image: Path):
    core = OmnibindModel(ModelConfig.from_dict(config))
    m = Model(core, origin="t", trained=False)
    m.chat([Message.user(Image(str(image)), "What is this?")], max_new_tokens=3)
    assert BUILDS == ["_CountingEncoder"]
    assert core.encoders.is_built("image") and not core.encoders.is_built("video")
    assert core.encoders["video"].image is core.encoders["image"]
    assert core.encoders["text"] is core.encoders["image"]  # identical configs: one instance
    m.chat([Message.user(Image(str(image)), "And now?")], max_new_tokens=3)
    assert BUILDS == ["_CountingEncoder"]


def test_lazy_and_eager_give_the_same_answers_and_embeddings(config: dict, image: Path):
    lazy = Model(OmnibindModel(ModelConfig.from_dict(config)), origin="t", trained=False)
    eager_core = OmnibindModel(ModelConfig.from_dict(config), eager_encoders=True)
    assert set(eager_core.encoders.built()) == set(config["encoders"])
    eager = Model(eager_core, origin="t", trained=False)
    conv = [Message.user(Image(str(image)), "Describe it.")]
    assert lazy.chat(conv, max_new_tokens=4).text == eager.chat(conv, max_new_tokens=4).text
    parts = [Image(str(image)), TextPart("a cat")]
    np.testing.assert_allclose(lazy.embed(parts), eager.embed(parts), atol=1e-6)


def test_eager_env_builds_everything(config: dict, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMNIBIND_EAGER_ENCODERS", "1")
    core = OmnibindModel(ModelConfig.from_dict(config))
    assert set(core.encoders.built()) == set(config["encoders"])
    assert BUILDS == ["_CountingEncoder"]


def test_concurrent_first_use_builds_once(config: dict):
    core = OmnibindModel(ModelConfig.from_dict(config))
    got: list[Encoder] = []
    threads = [threading.Thread(target=lambda: got.append(core.encoders["image"])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert BUILDS == ["_CountingEncoder"] and all(g is got[0] for g in got)


def test_checkpoint_round_trip_and_info_work_on_a_lazy_model(config: dict, tmp_path: Path, image: Path):
    core = OmnibindModel(ModelConfig.from_dict(config))
    save_checkpoint(core, tmp_path / "ck")  # the manifest needs every fingerprint: builds them
    fresh = OmnibindModel(ModelConfig.from_dict(config))
    load_weights(fresh, tmp_path / "ck")
    assert not fresh.encoders.is_built("image")
    for name, p in core.trainable_parameters().items():
        torch.testing.assert_close(fresh.trainable_parameters()[name], p)
    info = Model(fresh, origin="t", trained=True).info()
    assert info["encoders"]["video"]["output_dim"] == 12


def test_model_to_moves_encoders_built_later(config: dict):
    core = OmnibindModel(ModelConfig.from_dict(config))
    core.to("meta")  # no data needed: only where the later-built encoder lands is checked
    assert core.encoders["image"].proj.weight.device.type == "meta"


def test_video_frames_declares_what_it_builds(config: dict):
    core = OmnibindModel(ModelConfig.from_dict(config))
    declared = core.encoders.feature_dims("video")
    assert core.encoders["video"].feature_dims() == declared


def test_a_wrong_declaration_fails_at_first_use(config: dict):
    config["encoders"]["image"] = {"name": "test_lying", "params": {}}
    config["encoders"]["video"] = {"name": "video_frames", "params": {"image_encoder": {"name": "test_lying"}}}
    core = OmnibindModel(ModelConfig.from_dict(config))
    with pytest.raises(ConfigError, match="encoders.image: _LyingEncoder declares"):
        core.encoders["image"]
