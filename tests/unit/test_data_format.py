"""Dataset format: parsing, placeholders → messages, LLaVA JSON, and checks reported with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnibind.data.check import check_dataset
from omnibind.data.format import DatasetError, read_dataset
from omnibind.messages import MediaPart, TextPart


@pytest.fixture()
def media_dir(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(d / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "b.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return d


def sample(sid: str, media: list[dict], *turns: tuple[str, str], **extra) -> dict:
    return {"id": sid, "media": media, "conversation": [{"role": r, "content": c} for r, c in turns], **extra}


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_roundtrip_and_messages(tmp_path: Path, media_dir: Path) -> None:
    img = {"type": "image", "path": "imgs/a.png"}
    rows = [
        sample(
            "two",
            [img, {"type": "image", "path": "imgs/b.png", "labels": "(labels: x 0.9)"}],
            ("user", "Compare <image>\nand <image>\nplease."),
            ("assistant", "Both are squares."),
            ("user", "Sure?"),
            ("assistant", "Yes."),
            caption="two squares",
        ),
        sample("text", [], ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello.")),
    ]
    path = write_lines(tmp_path / "d.jsonl", rows)
    samples = read_dataset(path)
    assert [s.id for s in samples] == ["two", "text"]
    s = samples[0]
    assert s.line == 1 and samples[1].line == 2
    assert s.extra["caption"] == "two squares"
    assert s.media_path(0) == (tmp_path / "imgs/a.png").resolve()
    msgs = s.to_messages()
    parts = msgs[0].content
    assert [type(p) for p in parts] == [TextPart, MediaPart, TextPart, MediaPart, TextPart]
    assert parts[0].text == "Compare " and parts[2].text == "and " and parts[4].text == "please."
    assert parts[1].source == str((tmp_path / "imgs/a.png").resolve())
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]
    with_experts = s.to_messages(experts=True)[0].content
    assert any(isinstance(p, TextPart) and "(labels: x 0.9)" in p.text for p in with_experts)
    assert samples[1].to_messages()[0].role == "system"
    assert s.to_dict() == rows[0]


def test_to_messages_refuses_mismatch(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "d.jsonl",
        [sample("x", [{"type": "audio", "path": "a.wav"}], ("user", "<image> what?"), ("assistant", "A."))],
    )
    with pytest.raises(DatasetError, match=r"d.jsonl:1: .*placeholder 1 is <image> but media\[0\] is 'audio'"):
        read_dataset(path)[0].to_messages()


def test_check_reports_every_problem_with_line_numbers(tmp_path: Path, media_dir: Path) -> None:
    ok = {"type": "image", "path": "imgs/a.png"}
    rows = [
        sample("good", [ok], ("user", "<image>\nWhat?"), ("assistant", "A square.")),  # 1
        "{not json",  # 2
        "",  # 3 blank lines are skipped, numbering continues
        sample("fewer", [ok, ok], ("user", "<image> what?"), ("assistant", "A.")),  # 4
        sample("type", [{"type": "audio", "path": "imgs/a.png"}], ("user", "<image>?"), ("assistant", "A.")),  # 5
        sample("empty", [], ("user", "   "), ("assistant", "A.")),  # 6
        sample("order", [], ("assistant", "A."), ("user", "Q?")),  # 7
        sample("good", [], ("user", "Q?"), ("assistant", "A.")),  # 8 duplicate id
        sample("missing", [{"type": "image", "path": "imgs/nope.png"}], ("user", "<image>"), ("assistant", "A.")),  # 9
        sample("broken", [{"type": "image", "path": "imgs/broken.png"}], ("user", "<image>"), ("assistant", "A.")),
        sample("role", [], ("user", "Q?"), ("robot", "A.")),  # 11
        sample("ph", [], ("user", "Q?"), ("assistant", "See <image>.")),  # 12
        {"id": "nomedia", "media": [{"type": "smell", "path": "x"}], "conversation": []},  # 13
        sample("leak", [], ("user", "Q?"), ("assistant", "A."), source="fashion-mnist", split="train", item="test-1"),
    ]
    report = check_dataset(write_lines(tmp_path / "bad.jsonl", rows))
    by_line: dict[int, list[str]] = {}
    for issue in report.issues:
        by_line.setdefault(issue.line, []).append(issue.message)
    assert 1 not in by_line
    assert "invalid JSON" in by_line[2][0]
    assert "1 placeholder(s) <image> but 2 media item(s)" in by_line[4][0]
    assert "placeholder 1 is <image> but media[0] is 'audio'" in " ".join(by_line[5])
    assert "empty user turn" in by_line[6][0]
    assert "alternate" in by_line[7][0]
    assert "duplicate id 'good' (first at line 1)" in by_line[8][0]
    assert "missing file" in by_line[9][0]
    assert "unreadable image" in by_line[10][0]
    assert "unknown role 'robot'" in by_line[11][0]
    assert "placeholder in a assistant turn" in by_line[12][0]
    assert "unknown type 'smell'" in by_line[13][0]
    assert "split_of('fashion-mnist', 'test-1') is 'test'" in by_line[14][0]
    assert not report.ok and (report.records, report.samples) == (13, 11)  # nothing dropped silently
    assert {i.line for i in report.errors} == {2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}


def test_check_without_decoding_only_needs_files(tmp_path: Path, media_dir: Path) -> None:
    rows = [sample("b", [{"type": "image", "path": "imgs/broken.png"}], ("user", "<image>"), ("assistant", "A."))]
    path = write_lines(tmp_path / "d.jsonl", rows)
    assert check_dataset(path, decode=False).ok
    assert not check_dataset(path).ok


def test_llava_json_as_is(tmp_path: Path, media_dir: Path) -> None:
    data = [
        {
            "id": "000001",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is in the image?"},
                {"from": "gpt", "value": "A grey square."},
                {"from": "human", "value": "Is it big?"},
                {"from": "gpt", "value": "No."},
            ],
        },
        {"id": "000002", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        {"id": "000003", "image": "missing.png", "conversations": [{"from": "human", "value": "<image>"}]},
    ]
    path = tmp_path / "llava.json"
    path.write_text(json.dumps(data, indent=2))
    samples = read_dataset(path, image_folder=media_dir)
    assert [s.id for s in samples] == ["000001", "000002", "000003"]
    assert samples[0].line == 2 and samples[1].line > samples[0].line
    assert samples[0].media_path(0) == media_dir.resolve() / "a.png"
    assert [t.role for t in samples[0].conversation] == ["user", "assistant", "user", "assistant"]
    assert isinstance(samples[0].to_messages()[0].content[0], MediaPart)
    report = check_dataset(path, image_folder=media_dir)
    assert [(i.line, i.sample_id) for i in report.errors] == [(samples[2].line, "000003")]
    assert "missing file" in report.errors[0].message
    assert report.warnings and report.warnings[0].sample_id == "000003"  # ends on a user turn


def test_llava_broken_json_has_a_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n {"id": "1", "conversations": []},\n {"id": 2,, }\n]')
    report = check_dataset(path)
    assert report.errors[-1].line == 3 and "invalid JSON" in report.errors[-1].message


def test_cli_check_exit_codes(tmp_path: Path, media_dir: Path) -> None:
    from typer.testing import CliRunner

    from omnibind.data.cli import app

    good = write_lines(
        tmp_path / "g.jsonl",
        [sample("g", [{"type": "image", "path": "imgs/a.png"}], ("user", "<image>\nWhat?"), ("assistant", "A."))],
    )
    bad = write_lines(tmp_path / "b.jsonl", [sample("b", [], ("user", "<audio>?"), ("assistant", "A."))])
    runner = CliRunner()
    res = runner.invoke(app, ["check", str(good)])
    assert res.exit_code == 0, res.output
    assert "1 samples, 1 media" in res.output and "0 errors" in res.output
    res = runner.invoke(app, ["check", str(bad)])
    assert res.exit_code == 1
    assert "b.jsonl:1: error: 1 placeholder(s) <audio> but 0 media item(s)" in res.output
    res = runner.invoke(app, ["check", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["stats", str(good), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["samples"] == 1


def test_expert_text_is_phrased_by_the_one_helper() -> None:
    from omnibind.data.format import MediaItem, expert_text
    from omnibind.experts_text import expert_note

    item = MediaItem("audio", "a.wav", extra={"labels": "Detected: bell (0.50)", "transcript": "ding dong"})
    assert expert_text(item) == 'Detected: bell (0.50) Speech: "ding dong"\n'
    assert (
        expert_text(item)
        == expert_note("labels", "Detected: bell (0.50)") + " " + expert_note("transcript", "ding dong") + "\n"
    )
    assert expert_text(MediaItem("image", "a.png")) == ""
