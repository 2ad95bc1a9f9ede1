"""OpenAI request JSON → omnibind messages: parts, sources, limits and every refusal (no server needed)."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest

from omnibind.messages import MediaPart, MixPart, TextPart
from omnibind.modalities.base import Limits
from omnibind.serve.errors import APIError
from omnibind.serve.media_sources import url_allowed
from omnibind.serve.openai_wire import parse_messages
from omnibind.serve.requests import decode_media, parse_chat_request, parse_embedding_inputs
from omnibind.serve.settings import ServeSettings

SERVED = ["omnibind", "tiny"]


def png_bytes(size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), 120, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def user(*parts: object) -> list[dict]:
    return [{"role": "user", "content": list(parts)}]


def expect(status: int, fn, *args, match: str = "") -> APIError:
    with pytest.raises(APIError) as ei:
        fn(*args)
    assert ei.value.status == status, ei.value.message
    assert match.lower() in ei.value.message.lower(), ei.value.message
    body = ei.value.body()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return ei.value


@pytest.fixture()
def settings(tmp_path) -> ServeSettings:
    root = tmp_path / "media"
    root.mkdir()
    (root / "cat.png").write_bytes(png_bytes())
    (tmp_path / "secret.png").write_bytes(png_bytes())
    os.symlink(tmp_path / "secret.png", root / "escape.png")
    return ServeSettings(media_root=root, max_tokens_limit=32, limits=Limits(max_file_bytes=50_000))


def test_text_and_string_content(settings):
    msgs = parse_messages(
        [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}, {"role": "assistant"}],
        settings,
    )
    assert [m.role for m in msgs] == ["system", "user", "assistant"]
    assert msgs[1].content == [TextPart("hi")]


def test_data_url_image_and_input_audio(settings):
    url = "data:image/png;base64," + b64(png_bytes())
    msgs = parse_messages(
        user(
            {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": b64(b"RIFF...."), "format": "wav"}},
            {"type": "text", "text": "what?"},
        ),
        settings,
    )
    img, aud, txt = msgs[0].content
    assert isinstance(img, MediaPart) and img.modality == "image" and img.format == "png"
    assert img.source == png_bytes()
    assert aud.modality == "audio" and aud.format == "wav" and aud.source == b"RIFF...."
    assert txt == TextPart("what?")


@pytest.mark.parametrize("modality", ["video", "depth", "thermal", "imu", "points"])
def test_extension_parts(settings, modality):
    kind = f"input_{modality}"
    msgs = parse_messages(user({"type": kind, kind: {"data": b64(b"abc"), "format": "npy"}}), settings)
    part = msgs[0].content[0]
    assert part.modality == modality and part.source == b"abc" and part.format == "npy"


def test_extension_options_checked(settings):
    ok = {"type": "input_imu", "input_imu": {"data": b64(b"1,2"), "format": "csv", "options": {"sample_rate": 50}}}
    assert parse_messages(user(ok), settings)[0].content[0].options == {"sample_rate": 50.0}
    bad_key = {"type": "input_points", "input_points": {"data": b64(b"x"), "options": {"evil": 1}}}
    expect(400, parse_messages, user(bad_key), settings, match="unknown points option")
    too_many = {"type": "input_points", "input_points": {"data": b64(b"x"), "options": {"num_points": 10**9}}}
    expect(400, parse_messages, user(too_many), settings, match="num_points")


def test_mix_part(settings):
    url = "data:image/png;base64," + b64(png_bytes())
    mix = {
        "type": "mix",
        "mix": {"parts": [{"type": "image_url", "image_url": {"url": url}}, "a cat"], "weights": [2, 1]},
    }
    part = parse_messages(user(mix, "what?"), settings)[0].content[0]
    assert isinstance(part, MixPart) and part.weights == (2.0, 1.0)
    bad_w = {"type": "mix", "mix": {"parts": ["a", "b"], "weights": [1]}}
    expect(400, parse_messages, user(bad_w), settings, match="2 parts but 1 weights")
    nested = {"type": "mix", "mix": {"parts": [mix]}}
    expect(400, parse_messages, user(nested), settings, match="mix cannot contain")


def test_local_paths_only_under_root(settings):
    ok = parse_messages(user({"type": "image_url", "image_url": {"url": "cat.png"}}), settings)
    assert str(ok[0].content[0].source).endswith("cat.png")
    ok2 = parse_messages(
        user({"type": "image_url", "image_url": {"url": f"file://{settings.media_root}/cat.png"}}), settings
    )
    assert ok2[0].content[0].source == ok[0].content[0].source
    for url in ("../secret.png", "/etc/passwd", "file:///etc/passwd", "escape.png", "sub/../../secret.png"):
        expect(403, parse_messages, user({"type": "image_url", "image_url": {"url": url}}), settings, match="outside")
    expect(
        404, parse_messages, user({"type": "image_url", "image_url": {"url": "nope.png"}}), settings, match="no such"
    )
    closed = ServeSettings()
    expect(403, parse_messages, user({"type": "image_url", "image_url": {"url": "cat.png"}}), closed, match="disabled")


def test_remote_urls_refused_unless_allowlisted(settings):
    part = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}
    expect(403, parse_messages, user(part), settings, match="not fetched")
    assert url_allowed("https://example.org/media/a.png", ["https://example.org/media/"])
    assert not url_allowed("https://example.org/other/a.png", ["https://example.org/media/"])
    assert not url_allowed("https://example.org.evil.net/media/a.png", ["https://example.org/media/"])
    assert not url_allowed("https://user@example.org/media/a.png", ["https://example.org/media/"])
    assert not url_allowed("https://example.org/media/../x.png", ["https://example.org/media/"])
    expect(400, parse_messages, user({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}), settings)


def test_remote_fetch_from_allowlisted_loopback(tmp_path):
    import http.server
    import threading

    (tmp_path / "cat.png").write_bytes(png_bytes())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/"
        s = ServeSettings(url_allowlist=[base])
        msgs = parse_messages(user({"type": "image_url", "image_url": {"url": base + "cat.png"}}), s)
        assert msgs[0].content[0].source == png_bytes() and msgs[0].content[0].format == "png"
        expect(400, parse_messages, user({"type": "image_url", "image_url": {"url": base + "missing.png"}}), s)
    finally:
        srv.shutdown()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("not base64!!", "invalid base64"),
        (12, "expected a base64 string"),
        ("", "empty media"),
    ],
)
def test_bad_base64(settings, raw, match):
    part = {"type": "input_audio", "input_audio": {"data": raw, "format": "wav"}}
    expect(400, parse_messages, user(part), settings, match=match)


def test_oversized_payload_refused_before_decoding(settings):
    part = {"type": "input_audio", "input_audio": {"data": "A" * 100_000, "format": "wav"}}
    expect(413, parse_messages, user(part), settings, match="exceeds")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("hello", "non-empty array"),
        ([], "non-empty array"),
        ([42], "expected an object"),
        ([{"role": "function", "content": "x"}], "unsupported role"),
        ([{"role": "user", "content": 5}], "string or an array"),
        ([{"role": "user", "content": [{"text": "no type"}]}], "unknown content part type"),
        ([{"role": "user", "content": [{"type": "text", "text": 3}]}], "expected a string"),
        ([{"role": "user", "content": [{"type": "video_url"}]}], "unknown content part type"),
        ([{"role": "assistant", "content": [{"type": "input_audio", "input_audio": {"data": "QQ=="}}]}], "only user"),
    ],
)
def test_malformed_messages(settings, messages, match):
    expect(400, parse_messages, messages, settings, match=match)


def test_chat_request_fields(settings):
    body = {
        "model": "omnibind",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "temperature": 0.5,
        "stop": "\n",
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 3,
        "top_k": 5,
    }
    req = parse_chat_request(body, settings, SERVED)
    assert req.stream and req.include_usage
    assert req.options == {
        "max_new_tokens": 8,
        "temperature": 0.5,
        "top_p": 1.0,
        "top_k": 5,
        "repetition_penalty": 1.0,
        "stop": ["\n"],
        "seed": 3,
    }
    assert parse_chat_request({"messages": [{"role": "user", "content": "x"}]}, settings, SERVED).model == "omnibind"


@pytest.mark.parametrize(
    ("patch", "status", "match"),
    [
        ({"model": "gpt-4"}, 404, "does not exist"),
        ({"model": 3}, 400, "must be a string"),
        ({"n": 9}, 400, "'n' must be an integer in [1, 8]"),
        ({"max_tokens": 33}, 400, "at most 32"),
        ({"max_tokens": "ten"}, 400, "positive integer"),
        ({"max_completion_tokens": 0}, 400, "positive integer"),
        ({"temperature": "hot"}, 400, "temperature"),
        ({"temperature": 5}, 400, "temperature"),
        ({"top_p": 0}, 400, "top_p"),
        ({"stream": "yes"}, 400, "true or false"),
        ({"stop": [1, 2]}, 400, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, 400, "at most 4"),
        ({"tools": [{"type": "function"}]}, 400, "tools[0]"),
        ({"functions": [{"name": "f"}]}, 400, "not supported"),
        ({"logprobs": "yes"}, 400, "true or false"),
        ({"presence_penalty": 3.0}, 400, "presence_penalty"),
        ({"response_format": {"type": "xml"}}, 400, "json_schema"),
        ({"seed": 1.5}, 400, "seed"),
    ],
)
def test_chat_request_refusals(settings, patch, status, match):
    body = {"model": "omnibind", "messages": [{"role": "user", "content": "hi"}], **patch}
    expect(status, parse_chat_request, body, settings, SERVED, match=match)
    expect(400, parse_chat_request, [body], settings, SERVED, match="JSON object")


def test_too_many_parts_and_messages():
    s = ServeSettings(max_parts=2, max_messages=3)
    part = {"type": "input_audio", "input_audio": {"data": "QQ==", "format": "wav"}}
    expect(413, parse_messages, user(part, part, part), s, match="more than 2 media parts")
    expect(413, parse_messages, [{"role": "user", "content": "x"}] * 4, s, match="limit is 3")


def test_embedding_inputs(settings):
    model, parts, enc = parse_embedding_inputs({"input": "a cat", "model": "tiny"}, settings, SERVED)
    assert (model, parts, enc) == ("tiny", [TextPart("a cat")], "float")
    url = "data:image/png;base64," + b64(png_bytes())
    _, parts, enc = parse_embedding_inputs(
        {"input": ["x", {"type": "image_url", "image_url": {"url": url}}], "encoding_format": "base64"},
        settings,
        SERVED,
    )
    assert isinstance(parts[1], MediaPart) and enc == "base64"
    expect(400, parse_embedding_inputs, {"input": [1, 2, 3]}, settings, SERVED, match="token-id")
    expect(400, parse_embedding_inputs, {"input": ""}, settings, SERVED, match="empty text")
    expect(400, parse_embedding_inputs, {"input": []}, settings, SERVED, match="non-empty")
    expect(400, parse_embedding_inputs, {"input": "x", "encoding_format": "int8"}, settings, SERVED)
    expect(404, parse_embedding_inputs, {"input": "x", "model": "nope"}, settings, SERVED)


def test_decode_media_replaces_sources_and_maps_errors(settings):
    url = "data:image/png;base64," + b64(png_bytes())
    msgs = parse_messages(user({"type": "image_url", "image_url": {"url": url}}, "q"), settings)
    decoded = decode_media(msgs, settings.limits)
    from omnibind.modalities.base import ImageData

    assert isinstance(decoded[0].content[0].source, ImageData)
    corrupt = parse_messages(user({"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}), settings)
    err = expect(400, decode_media, corrupt, settings.limits, match="messages[0].content[0]")
    assert err.code == "invalid_media"
    big = parse_messages(
        user({"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(png_bytes(64))}}), settings
    )
    expect(413, decode_media, big, Limits(max_image_pixels=1000), match="pixels")
