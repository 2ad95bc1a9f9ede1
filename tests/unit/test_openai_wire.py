"""The OpenAI wire format round-trips: typed messages → chat JSON → typed messages, and the response objects."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from omnibind.messages import MediaPart, Message, MixPart, TextPart
from omnibind.serve.openai_responses import (
    Completion,
    chunk_body,
    completion_body,
    embeddings_body,
    parse_chunks,
    parse_completion,
    parse_embeddings,
    reply_text,
)
from omnibind.serve.openai_wire import (
    chat_request,
    encode_message,
    encode_messages,
    encode_part,
    parse_messages,
)
from omnibind.serve.requests import parse_chat_request
from omnibind.serve.settings import ServeSettings

# One media part per modality, as file bytes with their format and options a client may set.
MEDIA = {
    "image": ("png", {}),
    "audio": ("wav", {}),
    "video": ("mp4", {"num_frames": 4, "audio": False}),
    "depth": ("npy", {"kind": "disparity", "scale": 0.001}),
    "thermal": ("png", {"unit": "relative", "allow_rgb": True}),
    "imu": ("csv", {"sample_rate": 50.0}),
    "points": ("ply", {"num_points": 512, "seed": 3}),
}


def view(part: object) -> object:
    """What a part says, comparable (MediaPart compares by identity; its name is not on the wire)."""
    if isinstance(part, MediaPart):
        return ("media", part.modality, bytes(part.source), part.format, part.options)
    if isinstance(part, MixPart):
        return ("mix", [view(p) for p in part.parts], part.weights)
    assert isinstance(part, TextPart)
    return ("text", part.text)


def views(messages: list[Message]) -> list[object]:
    return [(m.role, [view(p) for p in m.content]) for m in messages]


def roundtrip(messages: list[Message]) -> list[Message]:
    wire = json.loads(json.dumps(encode_messages(messages)))  # what actually travels is JSON text
    return parse_messages(wire, ServeSettings())


def test_text_messages_roundtrip():
    conv = [Message.system("Be brief."), Message.user("What is 2+2?"), Message.assistant("4"), Message.user("And 3+3?")]
    assert views(roundtrip(conv)) == views(conv)
    assert encode_message(conv[1]) == {"role": "user", "content": "What is 2+2?"}  # text-only: one string


@pytest.mark.parametrize("modality", sorted(MEDIA))
def test_each_media_modality_roundtrips(modality: str):
    fmt, options = MEDIA[modality]
    part = MediaPart(modality, f"fake {modality} bytes".encode(), format=fmt, options=dict(options))
    conv = [Message.user("Look:", part, "What is it?")]
    assert views(roundtrip(conv)) == views(conv)


def test_mix_and_unknown_format_roundtrip():
    mix = MixPart([MediaPart("image", b"img", format="jpg"), MediaPart("audio", b"snd", format="flac")], [0.7, 0.3])
    sniffed = MediaPart("points", b"pts")  # no format: the server sniffs
    conv = [Message.user(mix, sniffed, "Describe.")]
    assert views(roundtrip(conv)) == views(conv)


def test_content_part_shapes_are_openai_ones():
    image = encode_part(MediaPart("image", b"\x89PNG", format="png"))
    assert image == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}
    jpg = encode_part(MediaPart("image", b"x", format="jpg"))
    assert jpg["image_url"]["url"].startswith("data:image/jpeg;base64,")
    audio = encode_part(MediaPart("audio", b"RIFF", format="wav"))
    assert audio == {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    imu = encode_part(MediaPart("imu", b"1,2", format="csv", options={"sample_rate": 50}))
    assert imu == {"type": "input_imu", "input_imu": {"data": "MSwy", "format": "csv", "options": {"sample_rate": 50}}}


def test_paths_and_arrays_are_sent_as_files(tmp_path):
    f = tmp_path / "cat.PNG"
    f.write_bytes(b"\x89PNG fake")
    part = encode_part(MediaPart("image", str(f)))
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    wave = encode_part(MediaPart("audio", np.zeros(1600, np.float32), options={"sample_rate": 8000}))
    assert wave["input_audio"]["format"] == "wav" and "options" not in wave["input_audio"]  # the WAV has its rate
    import base64

    import soundfile as sf

    data, rate = sf.read(io.BytesIO(base64.b64decode(wave["input_audio"]["data"])))
    assert rate == 8000 and len(data) == 1600
    arr = encode_part(MediaPart("imu", np.zeros((10, 6)), options={"sample_rate": 10.0}))
    assert arr["input_imu"]["format"] == "npy" and arr["input_imu"]["options"] == {"sample_rate": 10.0}


def test_chat_request_is_what_the_server_accepts():
    conv = [Message.user(MediaPart("imu", b"1,2,3,4,5,6", format="csv", options={"sample_rate": 50.0}), "Which?")]
    body = chat_request(conv, model="omnibind", max_tokens=7, stream=True, temperature=0.5, seed=1)
    assert body["stream"] is True and body["max_tokens"] == 7 and body["temperature"] == 0.5
    req = parse_chat_request(json.loads(json.dumps(body)), ServeSettings(), ["omnibind"])
    assert req.stream and req.options["max_new_tokens"] == 7 and req.options["seed"] == 1
    assert views(req.messages) == views(conv)
    assert "stream" not in chat_request(conv, model="m", max_tokens=1)


def test_completion_object_roundtrips():
    answer = Completion("A cat.", "stop", prompt_tokens=12, completion_tokens=3)
    body = json.loads(json.dumps(completion_body("chatcmpl-1", 123, "omnibind", answer)))
    assert body["object"] == "chat.completion" and body["usage"]["total_tokens"] == 15
    assert parse_completion(body) == answer
    assert reply_text(body) == "A cat."
    assert reply_text({"choices": [{"message": {"role": "assistant", "content": None}}]}) == ""


def test_chunk_objects_roundtrip():
    answer = Completion("A small cat.", "length", prompt_tokens=9, completion_tokens=4)
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    chunks = [chunk_body("c", 1, "m", {"role": "assistant", "content": ""})]
    chunks += [chunk_body("c", 1, "m", {"content": t}) for t in ("A ", "small ", "cat.")]
    chunks += [chunk_body("c", 1, "m", {}, "length"), chunk_body("c", 1, "m", {}, usage=usage)]
    chunks = json.loads(json.dumps(chunks))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage
    assert parse_chunks(chunks) == answer


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_object_roundtrips(encoding: str):
    vectors = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    body = json.loads(json.dumps(embeddings_body(vectors, "omnibind", encoding)))
    assert body["object"] == "list" and body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    body["data"].reverse()  # order comes from "index", not from the list
    np.testing.assert_array_equal(parse_embeddings(body), vectors)
