"""Media out by retrieval: the index (build, incremental rebuild, bad files), search, Model.search,
``omnibind index build`` / ``omnibind search``, ``/v1/search`` and chat's retrieved items.

On the tiny random model: what is checked is the mechanism (an item's own file is its nearest
neighbour, filters, reuse by content hash, errors), not the quality of a random bind space.
"""

from __future__ import annotations

import base64
import json
import os

import httpx
import numpy as np
import pytest
import soundfile as sf
from PIL import Image as PILImage

from omnibind.errors import CheckpointError, ConfigError
from omnibind.index.build import DEFAULT_DIRNAME, build_index
from omnibind.index.store import Entry, MediaIndex
from omnibind.messages import Image, Message, RetrievedPart, TextPart, as_conversation
from omnibind.serve.http import BackgroundServer, create_app
from omnibind.serve.openai_responses import reply_parts
from omnibind.serve.settings import ServeSettings


def _png(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    PILImage.fromarray(rng.integers(0, 255 if seed % 2 else 60, (24 + seed, 20, 3), dtype=np.uint8)).save(path)


@pytest.fixture()
def media(tmp_path):
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    for i in range(4):
        _png(root / f"img{i}.png", i)
    _png(root / "sub" / "deep.png", 7)
    t = np.arange(8000) / 16000
    sf.write(root / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    sf.write(root / "noise.wav", np.random.default_rng(0).normal(0, 0.2, 8000).astype(np.float32), 16000)
    (root / "broken.png").write_bytes(b"this is not a png")
    (root / "readme.unknownext").write_text("ignored")
    (root / ".hidden.png").write_bytes(b"hidden files are not indexed")
    return root


def test_build_search_and_incremental_rebuild(tiny_model, media):
    skipped = []
    report = build_index(tiny_model, media, progress=False, on_skip=lambda p, why: skipped.append(p.name))
    idx = report.index
    assert report.embedded == 7 and report.reused == 0 and report.ignored == 1
    assert list(report.skipped) == ["broken.png"] and skipped == ["broken.png"]
    assert "broken.png" in report.skipped and "image" in report.skipped["broken.png"]
    assert idx.modalities() == {"audio": 2, "image": 5}
    assert (media / DEFAULT_DIRNAME / "index.json").is_file()
    # every indexed image is its own nearest neighbour
    for i in range(4):
        hits = tiny_model.search(Image(str(media / f"img{i}.png")), media / DEFAULT_DIRNAME, k=3)
        assert hits[0].entry.path == f"img{i}.png" and hits[0].rank == 1
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score >= hits[1].score >= hits[2].score
    audio = tiny_model.search("a tone", media / DEFAULT_DIRNAME, k=5, modality="audio")
    assert len(audio) == 2 and {h.entry.modality for h in audio} == {"audio"}
    both = tiny_model.search(["a tone", "a picture"], media / DEFAULT_DIRNAME, k=2)
    assert len(both) == 2 and all(len(h) == 2 for h in both)

    # rebuild: nothing re-embedded; a new file and a renamed one cost one embedding
    again = build_index(tiny_model, media, progress=False)
    assert again.embedded == 0 and again.reused == 7
    _png(media / "img9.png", 9)
    os.rename(media / "img0.png", media / "renamed.png")
    third = build_index(tiny_model, media, progress=False)
    assert third.embedded == 1 and third.reused == 7
    assert "renamed.png" in {e.path for e in third.index.entries}
    np.testing.assert_allclose(
        third.index.vectors[[e.path for e in third.index.entries].index("renamed.png")],
        idx.vectors[[e.path for e in idx.entries].index("img0.png")],
    )


def test_search_errors_are_typed(tiny_model, media, tmp_path):
    build_index(tiny_model, media, progress=False, modalities=["image"])
    folder = media / DEFAULT_DIRNAME
    with pytest.raises(ConfigError, match="no 'audio' items"):
        tiny_model.search("x", folder, modality="audio")
    with pytest.raises(ConfigError, match="k must be"):
        tiny_model.search("x", folder, k=0)
    with pytest.raises(ConfigError, match="empty text"):
        tiny_model.search("  ", folder)
    with pytest.raises(CheckpointError, match="not a media index"):
        tiny_model.search("x", tmp_path)
    other = MediaIndex(16, fingerprint="bind-someoneelse")
    other.add([Entry("a.png", "image", "0" * 64)], np.ones((1, 16)))
    with pytest.raises(ConfigError, match="another model"):
        tiny_model.search("x", other)
    with pytest.raises(ConfigError, match="dimensions|bind space has"):
        tiny_model.search("x", MediaIndex(5))


def test_index_round_trip_and_corrupt_folder(tmp_path):
    idx = MediaIndex(4, fingerprint="bind-x", root=tmp_path)
    idx.add([Entry("a.png", "image", "1" * 64), Entry("b.wav", "audio", "2" * 64)], np.eye(4)[:2] * 3)
    idx.save(tmp_path / "ix")
    back = MediaIndex.load(tmp_path / "ix")
    assert back.entries == idx.entries and back.fingerprint == "bind-x"
    np.testing.assert_allclose(back.vectors, np.eye(4)[:2])
    hits = back.search(np.array([0, 1, 0, 0.1]), k=2)[0]
    assert [h.entry.path for h in hits] == ["b.wav", "a.png"]
    (tmp_path / "ix" / "index.json").write_text(json.dumps({"format": 1, "dim": 4, "entries": [{"path": "a"}]}))
    with pytest.raises(CheckpointError, match="cannot read"):
        MediaIndex.load(tmp_path / "ix")


def test_classify_prompt_ensembled(tiny_model, media):
    one = tiny_model.classify(Image(str(media / "img1.png")), ["cat", "dog", "car"], templates=["a photo of {a}."])
    assert one.label in ("cat", "dog", "car") and one.labels[0] == one.label
    assert sum(one.probs) == pytest.approx(1.0, abs=1e-4) and one.probs == sorted(one.probs, reverse=True)
    many = tiny_model.classify([Image(str(media / "img1.png")), "a dog"], ["cat", "dog"])
    assert len(many) == 2
    # the ensemble is the mean of the template vectors, renormalised (CLIP)
    from omnibind.bind.zero_shot import class_vectors

    t = ["a photo of {a}.", "a drawing of {}."]
    v = class_vectors(tiny_model.embed, ["owl"], t)
    raw = tiny_model.embed(["a photo of an owl.", "a drawing of owl."]).mean(0)
    np.testing.assert_allclose(v[0], raw / np.linalg.norm(raw), atol=1e-5)
    with pytest.raises(ConfigError):
        tiny_model.classify("x", [])


def test_retrieved_part_typing():
    r = RetrievedPart("image", "a.png", 0.5, 1, 0)
    reply = Message("assistant", [TextPart("here"), r])
    assert reply.retrieved == [r] and reply.text == "here" and reply.media == []
    with pytest.raises(ValueError, match="only assistant"):
        Message("user", [r])
    conv = as_conversation([Message.user("hi"), reply, Message.user("more")])
    assert conv[1].content == [TextPart("here")]  # the model reads the text of a reply, not its pointers


# --- the CLI -----------------------------------------------------------------------------------
def test_cli_build_and_search(tiny_model, media, monkeypatch):
    from typer.testing import CliRunner

    import omnibind.serve.cli as serve_cli
    from omnibind.cli import app

    monkeypatch.setattr(serve_cli, "_load", lambda model, backend=None, verbose=False: tiny_model)
    runner = CliRunner()
    res = runner.invoke(app, ["index", "build", str(media), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "indexed 7 items (audio 2, image 5): 7 embedded, 0 reused, 1 skipped" in res.output
    assert "skipped" in res.output and "broken.png" in res.output
    res = runner.invoke(app, ["search", str(media / "img2.png"), "--file", "-i", str(media), "--k", "2", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.output)
    assert hits[0]["path"] == "img2.png" and len(hits) == 2
    res = runner.invoke(app, ["search", "a sound", "-i", str(media), "--modality", "audio"])
    assert res.exit_code == 0 and res.output.count("audio") == 2
    res = runner.invoke(app, ["search", "x", "-i", str(media), "--modality", "points"])
    assert res.exit_code == 2 and "no 'points' items" in res.output
    res = runner.invoke(app, ["index", "info", str(media)])
    assert res.exit_code == 0 and json.loads(res.output)["items"] == 7


# --- the server --------------------------------------------------------------------------------
@pytest.fixture()
def server(tiny_model, media):
    build_index(tiny_model, media, progress=False)
    settings = ServeSettings(index=media, max_tokens_limit=16, default_max_tokens=4, web=True)
    with BackgroundServer(create_app(tiny_model, settings)) as srv:
        yield srv


def _post(server, path, body):
    return httpx.post(server.url + path, json=body, timeout=60)


def _data_url(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_v1_search(server, media):
    r = _post(
        server, "/v1/search", {"query": {"type": "image_url", "image_url": {"url": _data_url(media / "img3.png")}}}
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data[0]["path"] == "img3.png" and len(data) == 5 and data[0]["rank"] == 1
    media_bytes = httpx.get(server.url + data[0]["url"], timeout=30)
    assert media_bytes.status_code == 200 and media_bytes.content == (media / "img3.png").read_bytes()
    r = _post(server, "/v1/search", {"query": "a beep", "k": 1, "modality": ["audio"]})
    assert r.status_code == 200 and [d["modality"] for d in r.json()["data"]] == ["audio"]
    # the page shows search results
    page = httpx.get(server.url + "/", timeout=30).text
    assert "/v1/search" in page


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({}, 400, "'query' is required"),
        ({"query": ""}, 400, "empty text"),
        ({"query": "x", "k": 0}, 400, "'k' must be"),
        ({"query": "x", "k": "3"}, 400, "'k' must be"),
        ({"query": "x", "modality": "smell"}, 400, "unknown modality"),
        ({"query": "x", "modality": "points"}, 400, "holds no points"),
        ({"query": "x", "extra": 1}, 400, "unknown fields"),
        ({"query": {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}}, 400, "image"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_v1_search_bad_input_is_4xx(server, body, status, needle):
    r = _post(server, "/v1/search", body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert _post(server, "/v1/search", {"query": "still here"}).status_code == 200


def test_search_media_route_serves_only_indexed_unchanged_files(server, media):
    assert httpx.get(server.url + "/v1/search/media/999", timeout=30).status_code == 404
    assert httpx.get(server.url + "/v1/search/media/..%2F..%2Fetc", timeout=30).status_code == 404
    r = _post(server, "/v1/search", {"query": "x", "k": 1, "modality": "image"})
    hit = r.json()["data"][0]
    _png(media / hit["path"], 42)  # the file changed after indexing
    assert httpx.get(server.url + hit["url"], timeout=30).status_code == 410


def test_chat_answers_with_retrieved_items(server, media):
    body = {
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": _data_url(media / "img1.png")}},
            {"type": "text", "text": "Find me pictures like this."},
        ]}],
        "max_tokens": 3,
        "omnibind_retrieve": {"k": 2, "modality": "image"},
    }  # fmt: skip
    r = _post(server, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    text, found = reply_parts(r.json())
    assert isinstance(text, str) and len(found) == 2
    assert all(isinstance(f, RetrievedPart) and f.modality == "image" for f in found)
    assert [f.rank for f in found] == [1, 2]
    # opt-in: a plain request keeps OpenAI's string content
    plain = _post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert isinstance(plain.json()["choices"][0]["message"]["content"], str)
    for bad, needle in [({"k": 99}, "k"), ("yes", "must be true"), ({"modality": "points"}, "holds no")]:
        r = _post(server, "/v1/chat/completions", {**body, "omnibind_retrieve": bad})
        assert r.status_code == 400 and needle in r.json()["error"]["message"]
    r = _post(server, "/v1/chat/completions", {**body, "stream": True})
    assert r.status_code == 400


def test_no_index_is_404(tiny_model):
    with BackgroundServer(create_app(tiny_model, ServeSettings())) as srv:
        r = _post(srv, "/v1/search", {"query": "x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "no_index"
        r = _post(
            srv, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "omnibind_retrieve": True}
        )
        assert r.status_code == 404
