"""Modality experts: common-name merge, the speech decision, the one phrasing, the per-call switch
(model, API, CLI, server) and the gated layout (the note is written, the cue is not), on tiny configs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from omnibind.config import DEFAULT_IMAGE_LABELS, ExpertsConfig, ModelConfig
from omnibind.encoders import experts
from omnibind.encoders.imagenet_classes import IMAGENET_CLASSES
from omnibind.encoders.imagenet_common_names import COMMON_NAMES
from omnibind.encoders.whisper_encoder import SegmentStats, segment_confidence, speech_from_segments, spoken_text
from omnibind.errors import ConfigError
from omnibind.experts_text import expert_note, format_labels, format_transcript
from omnibind.messages import Audio, Image, Message
from omnibind.model import OmnibindModel

CAT_PROBS = [
    ("tabby cat", 0.4),
    ("tiger cat", 0.2),
    ("Egyptian cat", 0.1),
    ("Granny Smith", 0.15),
    ("toy poodle", 0.05),
]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import soundfile as sf

    d = tmp_path_factory.mktemp("expert_media")
    rng = np.random.default_rng(0)
    img = d / "img.png"
    PILImage.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(img)
    wav = d / "a.wav"
    sf.write(wav, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return {"image": img, "audio": wav}


@pytest.fixture()
def fake_experts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny test encoder has no classifier and no Whisper: fixed expert outputs instead."""
    from omnibind.encoders.whisper_encoder import Heard

    monkeypatch.setattr(experts, "common_labels", lambda enc, images, k=3: [[("cat", 0.7), ("apple", 0.15)][:k]])
    monkeypatch.setattr(experts, "speech", lambda audio, encoder=None: Heard("hello there", 0.82))


# --- the common-name table and merge ----------------------------------------------------------------------
def test_table_has_one_everyday_name_per_class():
    assert len(COMMON_NAMES) == len(IMAGENET_CLASSES) == 1000
    by_class = dict(zip(IMAGENET_CLASSES, COMMON_NAMES, strict=True))
    assert by_class["tabby cat"] == by_class["tiger cat"] == by_class["Egyptian cat"] == "cat"
    assert (by_class["Granny Smith"], by_class["fox squirrel"], by_class["espresso"]) == ("apple", "squirrel", "coffee")
    assert all(n and "(" not in n for n in COMMON_NAMES)  # no "crane (machine)" disambiguations left


def test_merge_sums_classes_of_one_name_best_first():
    merged = experts.merge_by_common_name(CAT_PROBS, k=3)
    assert [n for n, _ in merged] == ["cat", "apple", "dog"]
    assert [round(p, 4) for _, p in merged] == [0.7, 0.15, 0.05]
    assert format_labels(merged) == "Detected: cat (0.70), apple (0.15), dog (0.05)"
    assert experts.merge_by_common_name(CAT_PROBS, k=1) == [("cat", pytest.approx(0.7))]
    # names under the floor cost tokens and say nothing
    assert experts.merge_by_common_name([("tabby cat", 0.995), ("toy poodle", 0.005)], k=3) == [
        ("cat", pytest.approx(0.995))
    ]
    assert experts.merge_by_common_name([("not an imagenet class", 0.5)], k=2) == [("not an imagenet class", 0.5)]


def test_common_labels_read_every_class_from_the_encoder():
    asked: list[int] = []

    class FakeClassifier:
        def top_labels(self, images: list[Any], k: int) -> list[list[tuple[str, float]]]:
            asked.append(k)
            return [CAT_PROBS for _ in images]

    assert experts.image_labels(FakeClassifier(), [object()], 2) == ["Detected: cat (0.70), apple (0.15)"]
    assert asked == [1000]  # a name's share needs every class's probability
    assert experts.image_labels(object(), [object(), object()]) == ["", ""]  # no classifier, no line


# --- the phrasing ----------------------------------------------------------------------------------------
def test_expert_note_is_the_one_phrasing():
    assert expert_note("labels", [("cat", 0.7), ("dog", 0.05)]) == "Detected: cat (0.70), dog (0.05)"
    assert expert_note("labels", [["cat", 0.7]]) == "Detected: cat (0.70)"  # as read back from JSON
    assert expert_note("labels", "Detected: tabby cat (0.41)") == "Detected: tabby cat (0.41)"  # older datasets
    assert expert_note("transcript", ("hello there", 0.823)) == 'Speech: "hello there" (0.82)'
    assert expert_note("transcript", {"text": "hi", "confidence": 0.5}) == 'Speech: "hi" (0.50)'
    assert expert_note("transcript", "hi") == format_transcript("hi") == 'Speech: "hi"'
    assert expert_note("transcript", ("", 0.0)) == expert_note("labels", []) == expert_note("transcript", "") == ""
    with pytest.raises(ValueError):
        expert_note("caption", "x")


# --- the speech decision -----------------------------------------------------------------------------------
def test_speech_decision_keeps_speech_with_its_confidence():
    said = SegmentStats(" Hello, the coffee is ready.", no_speech_prob=0.08, avg_logprob=-0.22, duration=4.0)
    heard = speech_from_segments([said])
    assert heard.text == "Hello, the coffee is ready."
    assert heard.confidence == pytest.approx(0.92 * np.exp(-0.22))
    # two kept segments: the confidence is their duration-weighted mean
    other = SegmentStats(" Yes.", no_speech_prob=0.2, avg_logprob=-0.3, duration=1.0)
    both = speech_from_segments([said, other])
    assert both.text == "Hello, the coffee is ready. Yes."
    want = (4 * segment_confidence(said) + segment_confidence(other)) / 5
    assert both.confidence == pytest.approx(want)


@pytest.mark.parametrize(
    "seg",
    [
        SegmentStats(" (laughing)", 0.1, -0.2),
        SegmentStats(" [MUSIC]", 0.1, -0.2),
        SegmentStats(" ♪ ♪", 0.1, -0.2),
        SegmentStats(" ...", 0.1, -0.2),
        SegmentStats(" Ah! Ah! Ah!", 0.66, -0.84),  # a donkey, as tiny.en hears it
        SegmentStats(" Nice job!", 0.42, -1.03),  # a sea lion
        SegmentStats(" Yay!", 0.51, -0.70),  # an elephant
    ],
)
def test_non_speech_gives_no_transcript(seg: SegmentStats):
    assert speech_from_segments([seg]).text == ""
    assert expert_note("transcript", speech_from_segments([seg]).text) == ""


def test_annotations_are_cut_from_real_speech():
    assert spoken_text(" (laughs) I told you so [MUSIC]") == "I told you so"
    assert speech_from_segments([]).text == ""


# --- the switch --------------------------------------------------------------------------------------------
def test_experts_config_switched():
    cfg = ExpertsConfig()
    assert cfg.switched(None) is cfg
    assert cfg.switched(True) == ExpertsConfig(transcript=True, image_labels=DEFAULT_IMAGE_LABELS)
    assert ExpertsConfig(image_labels=5).switched(True).image_labels == 5
    assert ExpertsConfig(True, 5).switched(False) == ExpertsConfig(False, 0)
    assert cfg.switched({"image_labels": 2}) == ExpertsConfig(False, 2)
    with pytest.raises(ConfigError):
        cfg.switched({"labels": 2})
    with pytest.raises(ConfigError):
        cfg.switched({"image_labels": -1})
    with pytest.raises(ConfigError):
        cfg.switched("yes")  # type: ignore[arg-type]


def test_model_prepare_per_call(tiny_model, media, fake_experts):
    core = tiny_model.core
    assert core.config.experts == ExpertsConfig()  # off in the config
    conv = [Message.user(Image(str(media["image"])), Audio(str(media["audio"])), "What is this?")]
    assert [i.note for i in core.prepare(conv).inputs] == ["", ""]
    assert [i.note for i in core.prepare(conv, experts=True).inputs] == [
        "Detected: cat (0.70), apple (0.15)",
        'Speech: "hello there" (0.82)',
    ]
    assert [i.note for i in core.prepare(conv, experts={"image_labels": 1}).inputs] == ["Detected: cat (0.70)", ""]
    assert [i.note for i in core.prepare(conv, experts=False).inputs] == ["", ""]


def test_api_chat_passes_the_switch(tiny_model, media, fake_experts, monkeypatch):
    core = tiny_model.core
    seen: list[Any] = []
    real = core.prepare

    def spy(conversation, feature_lookup=None, experts=None):
        seen.append(experts)
        return real(conversation, feature_lookup, experts)

    monkeypatch.setattr(core, "prepare", spy)
    conv = [Message.user(Image(str(media["image"])), "What is this?")]
    tiny_model.chat(conv, max_new_tokens=1, experts=True)
    tiny_model.chat(conv, max_new_tokens=1)
    tiny_model.generate([conv, conv], max_new_tokens=1, experts=False)
    tiny_model.open_batch([conv, conv], max_new_tokens=1, experts=[True, None]).close()
    tiny_model.score(conv, ["a cat"], experts=True)
    assert seen == [True, None, False, False, True, None, True]
    with pytest.raises(TypeError):
        tiny_model.chat(conv, max_new_tokens=1, experts_on=True)


def test_cli_experts_flag(monkeypatch):
    from typer.testing import CliRunner

    import omnibind.serve.cli as cli
    from omnibind.cli import app

    got: list[dict] = []
    monkeypatch.setattr(cli, "_load", lambda *a, **k: object())
    monkeypatch.setattr(cli, "_answer", lambda m, conv, gen, stream: got.append(gen))
    runner = CliRunner()
    for flag in ("--experts", "--no-experts"):
        assert runner.invoke(app, ["chat", "hi", flag]).exit_code == 0
    assert runner.invoke(app, ["chat", "hi"]).exit_code == 0
    assert [g.get("experts", "unset") for g in got] == [True, False, "unset"]


def test_server_field_is_checked_and_reaches_each_row():
    from omnibind.serve import batching
    from omnibind.serve.errors import APIError
    from omnibind.serve.openai_wire import EXPERTS_FIELD, chat_request
    from omnibind.serve.requests import parse_chat_request
    from omnibind.serve.settings import ServeSettings

    settings, served = ServeSettings(), ["omnibind"]
    conv = [Message.user("hi")]
    assert (
        "experts"
        not in parse_chat_request(chat_request(conv, model="omnibind", max_tokens=4), settings, served).options
    )
    for value in (True, False, {"image_labels": 2, "transcript": False}):
        body = chat_request(conv, model="omnibind", max_tokens=4, experts=value)
        assert body[EXPERTS_FIELD] == value
        assert parse_chat_request(body, settings, served).options["experts"] == value
    for bad in ("yes", 1, {"labels": 3}, {"image_labels": -1}, {"image_labels": 99}, {"transcript": "on"}):
        body = {"messages": [{"role": "user", "content": "hi"}], EXPERTS_FIELD: bad}
        with pytest.raises(APIError) as e:
            parse_chat_request(body, settings, served)
        assert e.value.status == 400 and e.value.param == EXPERTS_FIELD

    calls: list[dict] = []

    class FakeModel:
        def open_batch(self, conversations, **kw):
            calls.append(kw)
            from omnibind.api import BatchSteps

            return BatchSteps(iter([]), [1] * len(conversations), None)

    jobs = [
        SimpleNamespace(options={"max_new_tokens": 2, "experts": True}),
        SimpleNamespace(options={"max_new_tokens": 3}),
    ]
    batching._open_batch(FakeModel(), [conv, conv], jobs)  # type: ignore[arg-type]
    assert calls[0]["experts"] == [True, None]


# --- the layout: data and model give the same text; gated keeps cue and note ------------------------------------
def _ids(core: OmnibindModel, segs) -> list[int]:
    return [i for s in segs if s.media is None for i in core.llm.tokenize(s.text)]


def _contains(seq: list[int], sub: list[int]) -> bool:
    return any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


@pytest.fixture(scope="module")
def gated_core(tiny_config_dict: dict) -> OmnibindModel:
    d = {**tiny_config_dict, "injection": {"kind": "gated"}, "projectors": {"*": {"name": "linear", "num_tokens": 1}}}
    return OmnibindModel(ModelConfig.from_dict(d))


def test_gated_injection_keeps_cue_and_expert_note(gated_core: OmnibindModel, media, fake_experts):
    conv = [Message.user(Image(str(media["image"])), "What is this?")]
    prepared = gated_core.prepare(conv, experts=True)
    assembled, injection, segs = gated_core.build_inputs(prepared, add_generation_prompt=True)
    assert injection is not None  # the feature still enters through the gates
    ids = _ids(gated_core, segs)
    assert assembled.text_tokens == len(ids) == assembled.embeds.shape[0]  # no media positions under gated
    note = "Detected: cat (0.70), apple (0.15)"
    assert _contains(ids, gated_core.llm.tokenize(note))
    # no cue under gated (as before), and the same text a dataset's expert fields give
    assert not any("Image:" in s.text for s in segs)
    from omnibind.data.format import MediaItem, Sample, Turn

    item = MediaItem("image", str(media["image"]), extra={"labels": [["cat", 0.7], ["apple", 0.15]]})
    sample = Sample("s", [item], [Turn("user", "<image>\nWhat is this?")])
    data_side = gated_core.build_inputs(
        gated_core.prepare(sample.to_messages(experts=True)), add_generation_prompt=True
    )
    assert [s.text for s in data_side[2]] == [s.text for s in segs]


def test_model_note_equals_the_dataset_expert_text(tiny_model, media, fake_experts):
    """Training with a dataset's expert fields and inference with the model's notes see one text."""
    from omnibind.data.format import MediaItem, Sample, Turn

    core = tiny_model.core
    item = MediaItem("image", str(media["image"]), extra={"labels": [["cat", 0.7], ["apple", 0.15]]})
    sample = Sample("s", [item], [Turn("user", "<image>\nWhat is this?"), Turn("assistant", "A cat.")])
    data_side = core.build_inputs(core.prepare(sample.to_messages(experts=True)), add_generation_prompt=False)[2]
    model_side = core.build_inputs(
        core.prepare(sample.to_messages(experts=False), experts={"image_labels": 2}), add_generation_prompt=False
    )[2]
    assert [(s.text, s.media) for s in data_side] == [(s.text, s.media) for s in model_side]
    assert any("Detected: cat (0.70), apple (0.15)\nWhat is this?" in s.text for s in model_side)
