"""The micro-batching queue on its own (tiny random-weight model, no HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from omnibind.errors import InputError
from omnibind.messages import MediaPart, Message
from omnibind.serve.batching import Batcher, QueueFullError, RequestTimeoutError

GREEDY = {"max_new_tokens": 6, "temperature": 0.0, "stop": []}


def test_bad_row_fails_alone_and_batch_mates_match_solo(tiny_model):
    good = [Message.user("Hello there")]
    bad = [Message.user(MediaPart("image", b"\x00junk" * 10, format="png", name="bad.png"), "What?")]
    solo = tiny_model.generate([good], max_new_tokens=6)[0]

    async def run():
        batcher = Batcher(tiny_model, max_batch_size=4, autostart=False)
        try:
            h_good = batcher.submit_chat(good, GREEDY)
            h_bad = batcher.submit_chat(bad, GREEDY)
            batcher.start()
            result = await h_good.result()
            with pytest.raises(InputError, match="bad.png"):
                await h_bad.result()
            return result, batcher.stats
        finally:
            batcher.close()

    result, stats = asyncio.run(run())
    assert result.text == solo.text and result.completion_tokens == solo.completion_tokens
    assert stats.batches == 1  # the failed batch of two was retried row by row: only the good row ran


def test_queue_bound_deadline_and_per_request_max_tokens(tiny_model):
    async def run():
        batcher = Batcher(tiny_model, max_batch_size=4, max_queue=2, timeout_s=30, autostart=False)
        try:
            short = batcher.submit_chat([Message.user("a")], {**GREEDY, "max_new_tokens": 2})
            long = batcher.submit_chat([Message.user("b")], {**GREEDY, "max_new_tokens": 7})
            with pytest.raises(QueueFullError) as ei:
                batcher.submit_chat([Message.user("c")], GREEDY)
            assert ei.value.retry_after >= 1
            batcher.start()
            a, b = await short.result(), await long.result()
            assert a.batch_size == b.batch_size == 2
            return a, b
        finally:
            batcher.close()

    a, b = asyncio.run(run())
    assert a.completion_tokens <= 2 and b.completion_tokens <= 7
    assert a.finish_reason in ("length", "stop")

    async def expire():
        batcher = Batcher(tiny_model, timeout_s=0.3, autostart=True)
        try:
            batcher.pause()
            handle = batcher.submit_chat([Message.user("late")], GREEDY)
            with pytest.raises(RequestTimeoutError):
                await asyncio.wait_for(handle.result(), 5)
            return batcher.stats.timeouts
        finally:
            batcher.close()

    assert asyncio.run(expire()) == 1


def test_embeddings_are_batched_across_requests(tiny_model):
    import numpy as np

    async def run():
        batcher = Batcher(tiny_model, autostart=False)
        try:
            futures = [
                asyncio.ensure_future(batcher.embed(["a cat", "a dog"])),
                asyncio.ensure_future(batcher.embed(["x"])),
            ]
            await asyncio.sleep(0.05)
            batcher.start()
            return await asyncio.gather(*futures), batcher.stats.batches
        finally:
            batcher.close()

    (v1, v2), batches = asyncio.run(run())
    assert batches == 1 and v1.shape[0] == 2 and v2.shape[0] == 1
    np.testing.assert_allclose(v2[0], tiny_model.embed(["x"])[0], atol=1e-5)
