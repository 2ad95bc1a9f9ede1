"""Bounded cost at admission (issue 13), one test per threat: a prompt past the context, a prompt
over the configured cap, oversize text, too many parts in a message, a flood against a small queue,
a slow client trickling its body.
Each checks the typed refusal (Python API) or the JSON 4xx naming the numbers (server), and that a
valid request is answered afterwards. Tiny random model (fast); no timing is asserted."""

from __future__ import annotations

import concurrent.futures as cf
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from omnibind.errors import PromptTooLongError
from omnibind.serve.http import BackgroundServer, create_app
from omnibind.serve.settings import ServeSettings

LONG = " ".join(f"word{i}" for i in range(700))  # > 512 positions, the tiny LLM's context


def chat_body(content: str, **kw) -> dict:
    return {"model": "omnibind", "messages": [{"role": "user", "content": content}], "max_tokens": 4, **kw}


def test_threat_prompt_past_the_context_python_api(tiny_model):
    assert tiny_model.core.llm.context_length == 512
    with pytest.raises(PromptTooLongError) as e:
        tiny_model.chat(LONG, max_new_tokens=4)
    err = e.value
    assert err.context == 512 and err.prompt_tokens > 512 and err.max_new_tokens == 4
    assert str(err.prompt_tokens) in str(err) and "512" in str(err)
    # prompt + answer budget past the context, though the prompt alone fits
    with pytest.raises(PromptTooLongError, match="max_tokens is 510"):
        tiny_model.chat("Say hi.", max_new_tokens=510)
    with pytest.raises(PromptTooLongError, match="max_prompt_tokens=3"):
        tiny_model.chat("Say hi to everyone here.", max_prompt_tokens=3)
    assert tiny_model.chat("Say hi.", max_new_tokens=4).completion_tokens >= 1  # still answers


@pytest.fixture(scope="module")
def server(tiny_model):
    settings = ServeSettings(max_text_chars=20_000, max_parts_per_message=4, max_queue=2, max_batch_size=2)
    with BackgroundServer(create_app(tiny_model, settings)) as srv:
        yield srv


def post(srv, body, **kw) -> httpx.Response:
    return httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60, **kw)


def assert_answers(srv) -> None:
    r = post(srv, chat_body("Say hi."))
    assert r.status_code == 200, r.text


def test_threat_prompt_past_the_context_gets_400_with_numbers(server):
    r = post(server, chat_body(LONG))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded" and "512" in err["message"] and "tokens" in err["message"]
    r = post(server, chat_body("Say hi.", max_tokens=511))
    assert r.status_code == 400 and "max_tokens is 511" in r.json()["error"]["message"]
    assert_answers(server)


def test_threat_oversize_text_is_refused_before_queueing(server):
    r = post(server, chat_body("x" * 20_001))
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "text_too_long" and "20000" in err["message"]
    # the limit is per request: split over messages it still counts
    msgs = [{"role": "user", "content": "y" * 12_000}, {"role": "assistant", "content": "ok"}]
    msgs.append({"role": "user", "content": "z" * 12_000})
    r = post(server, {"model": "omnibind", "messages": msgs, "max_tokens": 4})
    assert r.status_code == 413 and r.json()["error"]["code"] == "text_too_long"
    assert_answers(server)


def test_threat_too_many_parts_in_one_message(server):
    parts = [{"type": "text", "text": "a"}] * 5
    r = post(server, chat_body(parts))  # type: ignore[arg-type]
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_many_parts" and "limit is 4" in r.json()["error"]["message"]
    assert_answers(server)


def test_threat_prompt_cap_from_settings(tiny_model):
    with BackgroundServer(create_app(tiny_model, ServeSettings(max_prompt_tokens=16))) as srv:
        r = post(srv, chat_body("Tell me about all the things you can see in the world today, please."))
        assert r.status_code == 400, r.text
        assert "max_prompt_tokens=16" in r.json()["error"]["message"]
        r = post(srv, chat_body("Hi"))
        assert r.status_code == 200, r.text


def test_threat_flood_against_a_small_queue_gets_only_200_or_429(server):
    with cf.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: post(server, chat_body("Say hi.")).status_code, range(24)))
    assert set(codes) <= {200, 429}, codes
    assert 200 in codes
    assert_answers(server)


def test_settings_reject_bad_limits():
    for kw in ({"max_prompt_tokens": 0}, {"max_text_chars": 0}, {"max_parts_per_message": 0}):
        with pytest.raises(ValueError):
            ServeSettings(**kw)


def test_threat_slow_client_trickling_its_body_gets_408(tiny_model):
    """A client that sends its headers and then a byte at a time never reaches the worker: the whole
    body has a deadline (not each read), so it gets 408 and the server keeps answering others."""
    with BackgroundServer(create_app(tiny_model, ServeSettings(body_timeout_s=1.0))) as srv:
        u = urlparse(srv.url)
        sock = socket.create_connection((u.hostname, u.port), timeout=30)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        sock.setblocking(False)
        reply = b""
        for _ in range(600):  # up to ~60 s of trickling; the answer comes after the 1 s deadline
            try:
                sock.send(b" ")
            except OSError:
                pass  # the server may close its side once it has answered
            try:
                reply += sock.recv(65536)
            except BlockingIOError:
                pass
            if b"\r\n\r\n" in reply and b"}" in reply.split(b"\r\n\r\n", 1)[1]:
                break
            time.sleep(0.1)
        sock.close()
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"body_timeout" in reply
        r = post(srv, chat_body("Say hi."))
        assert r.status_code == 200, r.text


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_threat_many_requests_at_max_tokens_and_one_arriving_during_a_long_one(tiny_model):
    """Sixteen clients at the server's max_tokens, then a short request while a long one decodes:
    every answer is a 200 or a 429, the short one is answered, and RSS stays within a generous bound
    (the KV cache and buffers of finished requests are released)."""
    settings = ServeSettings(max_tokens_limit=64, max_queue=8, max_batch_size=4)
    with BackgroundServer(create_app(tiny_model, settings)) as srv:
        post(srv, chat_body("warm up", max_tokens=64))
        before = _rss_mb()
        with cf.ThreadPoolExecutor(16) as pool:
            rs = list(pool.map(lambda i: post(srv, chat_body(f"Tell me story {i}.", max_tokens=64)), range(32)))
        assert {r.status_code for r in rs} <= {200, 429}, [r.text for r in rs if r.status_code not in (200, 429)]
        assert all(r.json()["usage"]["completion_tokens"] <= 64 for r in rs if r.status_code == 200)
        with cf.ThreadPoolExecutor(2) as pool:
            long = pool.submit(post, srv, chat_body("A long story, please.", max_tokens=64))
            short = pool.submit(post, srv, chat_body("Hi", max_tokens=2))
            assert short.result().status_code == 200 and long.result().status_code == 200
        assert _rss_mb() - before < 1024, (before, _rss_mb())  # tiny model: MBs, not GBs
