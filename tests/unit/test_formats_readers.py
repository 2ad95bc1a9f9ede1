"""LLaMA-Factory and ms-swift files read as they are; placeholders counted against media columns;
conversion between every format and back is exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from omnibind.data.check import check_dataset
from omnibind.data.cli import app
from omnibind.data.format import DatasetError, detect_format, iter_records, read_dataset
from omnibind.messages import MediaPart


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    """An image, a WAV and a tiny MP4-free folder (videos are checked for existence only, --no-decode)."""
    import soundfile as sf

    d = tmp_path / "media"
    d.mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(d / "a.png")
    Image.fromarray(np.full((8, 8, 3), 10, np.uint8)).save(d / "b.png")
    sf.write(d / "s.wav", np.zeros(1600, np.float32), 16000)
    (d / "v.mp4").write_bytes(b"not decoded in these tests")
    return d


def dump(path: Path, records: list, jsonl: bool = False) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) if jsonl else json.dumps(records, indent=2))
    return path


def test_llamafactory_sharegpt_openai_and_alpaca(tmp_path: Path, media: Path) -> None:
    rows = [
        {
            "conversations": [
                {"from": "human", "value": "<image>Compare with <image>. And this sound: <audio>"},
                {"from": "gpt", "value": "Two squares and silence."},
            ],
            "system": "Be brief.",
            "images": ["media/a.png", "media/b.png"],
            "audios": ["media/s.wav"],
        },
        {
            "messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": "X."}],
            "videos": ["media/v.mp4"],
        },
        {"instruction": "<image>Name it.", "input": "One word.", "output": "Square.", "images": ["media/a.png"]},
    ]
    path = dump(tmp_path / "lf.json", rows)
    assert detect_format(path) == "llamafactory"
    a, b, c = read_dataset(path, fmt="llamafactory")
    assert [t.role for t in a.conversation] == ["system", "user", "assistant"]
    # one ordered media list in placeholder order across the per-modality columns
    assert [(m.type, m.path) for m in a.media] == [
        ("image", "media/a.png"),
        ("image", "media/b.png"),
        ("audio", "media/s.wav"),
    ]
    parts = a.to_messages()[1].content
    assert [p.modality for p in parts if isinstance(p, MediaPart)] == ["image", "image", "audio"]
    assert a.id == "lf-1" and b.id == "lf-2"
    assert [m.type for m in b.media] == ["video"] and b.conversation[0].role == "user"
    assert c.conversation[0].content == "<image>Name it.\nOne word." and c.conversation[1].content == "Square."
    report = check_dataset(path, decode=False)
    assert report.ok, [str(i) for i in report.issues]
    assert report.modality_counts == {"image": 3, "audio": 1, "video": 1}


def test_llamafactory_dataset_info_renames_columns_and_tags(tmp_path: Path, media: Path) -> None:
    rows = [
        {"chat": [{"speaker": "me", "text": "<image>What?"}, {"speaker": "bot", "text": "A."}], "pics": ["media/a.png"]}
    ]
    dump(tmp_path / "custom.json", rows)
    info = {
        "mine": {
            "file_name": "custom.json",
            "formatting": "sharegpt",
            "columns": {"messages": "chat", "images": "pics"},
            "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"},
        }
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    assert detect_format(tmp_path / "custom.json") == "llamafactory"
    (s,) = read_dataset(tmp_path / "custom.json")
    assert [(t.role, t.content) for t in s.conversation] == [("user", "<image>What?"), ("assistant", "A.")]
    assert s.media_path(0) == (media / "a.png").resolve()
    assert "pics" not in s.extra and "chat" not in s.extra


def test_swift_layouts(tmp_path: Path, media: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "You see."},
                {"role": "user", "content": "<image><image>Same?"},
                {"role": "assistant", "content": "No."},
            ],
            "images": ["media/a.png", {"path": "media/b.png"}],
        },
        {
            "system": "S.",
            "conversation": [{"human": "<audio>Hear?", "assistant": "Nothing."}],
            "audios": ["media/s.wav"],
        },
        {"query": "And now?", "response": "Still.", "history": [["Hi", "Hello"]]},
        {"instruction": "Say hi.", "input": "", "output": "hi"},
    ]
    path = dump(tmp_path / "sw.jsonl", rows, jsonl=True)
    assert detect_format(path) == "swift"
    a, b, c, d = read_dataset(path)
    assert [m.path for m in a.media] == ["media/a.png", "media/b.png"]
    assert [t.role for t in b.conversation] == ["system", "user", "assistant"] and b.media[0].type == "audio"
    assert [t.content for t in c.conversation] == ["Hi", "Hello", "And now?", "Still."]
    assert d.conversation[0].content == "Say hi." and (a.line, d.line) == (1, 4)
    assert check_dataset(path).ok


def test_check_counts_placeholders_against_each_media_column(tmp_path: Path, media: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "<image>?"}, {"role": "assistant", "content": "A."}], "images": []},
        {
            "messages": [{"role": "user", "content": "<image><image>?"}, {"role": "assistant", "content": "A."}],
            "images": ["media/a.png"],
            "audios": ["media/s.wav"],
        },
        {"messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "A."}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
    ]
    path = dump(tmp_path / "bad.jsonl", rows, jsonl=True)
    report = check_dataset(path)
    msgs = [(i.line, i.sample_id, i.message) for i in report.errors]
    assert (1, "bad-1", "1 <image> placeholder(s) but 0 path(s) in 'images'") in msgs
    assert (2, "bad-2", "2 <image> placeholder(s) but 1 path(s) in 'images'") in msgs
    assert (2, "bad-2", "0 <audio> placeholder(s) but 1 path(s) in 'audios'") in msgs
    assert not [m for m in msgs if m[0] == 3]
    assert any(line == 4 and "must be a string with placeholders" in m for line, _, m in msgs)
    res = CliRunner().invoke(app, ["check", str(path)])
    assert res.exit_code == 1
    assert f"{path}:2: error: 2 <image> placeholder(s) but 1 path(s) in 'images' [bad-2]" in res.output
    with pytest.raises(DatasetError, match=r"bad.jsonl:4: 'messages'\[0\].content must be a string"):
        read_dataset(path)
    first = next(iter_records(path)).sample
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: sample 'bad-1': 1 <image> placeholder"):
        first.to_messages()


def omnibind_rows() -> list[dict]:
    conv = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "<image>\nand <audio> and <image>?"},
        {"role": "assistant", "content": "A pair."},
        {"role": "user", "content": "<video> then?"},
        {"role": "assistant", "content": "Motion."},
    ]
    media = [
        {"type": "image", "path": "media/a.png"},
        {"type": "audio", "path": "media/s.wav"},
        {"type": "image", "path": "media/b.png"},
        {"type": "video", "path": "media/v.mp4"},
    ]
    return [
        {"id": "x1", "media": media, "conversation": conv, "source": "mine", "split": "train", "caption": "c"},
        {"id": "x2", "media": [], "conversation": _text_turns(), "task": "chat"},
        {"id": "x3", "media": [{"type": "points", "path": "media/p.ply"}], "conversation": _points_turns()},
    ]


def _text_turns() -> list[dict]:
    return [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]


def _points_turns() -> list[dict]:
    return [{"role": "user", "content": "<points> shape?"}, {"role": "assistant", "content": "A cube."}]


@pytest.mark.parametrize("fmt", ["llamafactory", "swift", "omnibind"])
def test_convert_round_trip_is_exact(tmp_path: Path, media: Path, fmt: str) -> None:
    rows = omnibind_rows()
    src = dump(tmp_path / "orig.jsonl", rows, jsonl=True)
    runner = CliRunner()
    mid = tmp_path / "out" / f"mid.{'json' if fmt == 'llamafactory' else 'jsonl'}"
    mid.parent.mkdir()
    res = runner.invoke(app, ["convert", str(src), str(mid), "--to", fmt])
    assert res.exit_code == 0, res.output
    assert detect_format(mid) == fmt
    if fmt == "llamafactory":
        assert '"formatting": "sharegpt"' in res.output
        first = json.loads(mid.read_text())[0]
        assert first["images"] == ["../media/a.png", "../media/b.png"] and first["system"] == "Be brief."
        assert json.loads(mid.read_text())[2]["points"] == ["../media/p.ply"]  # the omnibind extension column
    back = tmp_path / "back.jsonl"
    res = runner.invoke(app, ["convert", str(mid), str(back), "--to", "omnibind"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x) for x in back.read_text().splitlines()] == rows
    for a, b in zip(read_dataset(src), read_dataset(mid)):  # the same files through either copy
        assert [a.media_path(i).resolve() for i in range(len(a.media))] == [
            b.media_path(i).resolve() for i in range(len(b.media))
        ]


def test_convert_to_llava_and_back(tmp_path: Path, media: Path) -> None:
    rows = [
        {
            "id": "l1",
            "media": [{"type": "image", "path": "media/a.png"}],
            "conversation": [{"role": "user", "content": "<image>\nWhat?"}, {"role": "assistant", "content": "A."}],
            "source": "llava",
        }
    ]
    src = dump(tmp_path / "o.jsonl", rows, jsonl=True)
    runner = CliRunner()
    res = runner.invoke(app, ["convert", str(src), str(tmp_path / "l.json"), "--to", "llava"])
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "l.json").read_text())[0]
    assert rec["image"] == "media/a.png" and rec["conversations"][0] == {"from": "human", "value": "<image>\nWhat?"}
    res = runner.invoke(app, ["convert", str(tmp_path / "l.json"), str(tmp_path / "b.jsonl")])
    assert [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()] == rows
    # LLaVA holds images only: another modality is refused, naming the sample
    audio = {**rows[0], "media": [{"type": "audio", "path": "media/s.wav"}], "conversation": _text_turns()}
    audio["conversation"][0] = {"role": "user", "content": "<audio>"}
    src2 = dump(tmp_path / "o2.jsonl", [audio], jsonl=True)
    res = runner.invoke(app, ["convert", str(src2), str(tmp_path / "x.json"), "--to", "llava"])
    assert res.exit_code == 2 and "LLaVA JSON holds images only" in res.output


def test_convert_refuses_mismatched_samples_and_unknown_formats(tmp_path: Path) -> None:
    bad = [{"messages": [{"role": "user", "content": "<image>?"}, {"role": "assistant", "content": "A."}]}]
    src = dump(tmp_path / "s.jsonl", bad, jsonl=True)
    runner = CliRunner()
    res = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "s.jsonl:1: sample 's-1': 1 <image> placeholder(s) but 0 path(s)" in res.output
    res = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.jsonl"), "--to", "alpaca"])
    assert res.exit_code == 2 and "unknown dataset format 'alpaca'" in res.output
