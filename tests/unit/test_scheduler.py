"""Continuous batching on llama.cpp (tiny random GGUF): the step engine and the server's scheduler."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install 'omnibind[llamacpp]')")

from omnibind.errors import ConfigError, InputError, InputTooLargeError, PromptTooLongError
from omnibind.llm.backends.base import GenerationOptions
from omnibind.messages import Image, MediaPart, Message

TEXTS = ["Tell me a story about a cat.", "Hi", "What is the capital of France? " * 6, "Describe the sea."]


@pytest.fixture(scope="module")
def ll(tiny_gguf: Path):
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(tiny_gguf), n_ctx=512, n_seq_max=2)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def lm(tiny_config_dict: dict, tiny_gguf: Path):
    """The tiny omnibind model on llama.cpp."""
    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.model import OmnibindModel

    cfg = ModelConfig.from_dict({**tiny_config_dict, "llm": {"backend": "llamacpp", "source": str(tiny_gguf)}})
    return Model(OmnibindModel(cfg), origin="t", trained=False)


def _prompt(backend, text: str) -> torch.Tensor:
    return backend.embed_tokens(backend.tokenize(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"))


def _solo(backend, prompt: torch.Tensor, opts: GenerationOptions) -> list[int]:
    backend.reset_cache()
    out: list[int] = []
    for step in backend.generate([prompt], opts):
        if step[0] is not None:
            out.append(step[0])
    return out


def _drain(engine, seqs, join: dict | None = None) -> dict[int, list[int]]:
    """Step until every sequence is done; ``join`` adds (prompt, options) at the given step number."""
    got: dict[int, list[int]] = {s.id: [] for s in seqs}
    order = list(seqs)
    step = 0
    while engine.active or (join and any(k >= step for k in join)):
        for prompt, opts in (join or {}).pop(step, []) if join else []:
            s = engine.add(prompt, opts)
            assert s is not None
            got[s.id] = []
            order.append(s)
        for s, tok in engine.step():
            if tok is not None:
                got[s.id].append(tok)
        for s in [s for s in engine.active if s.done]:
            engine.release(s, keep_cache=True)
        step += 1
    return {i: got[s.id] for i, s in enumerate(order)}


def test_newcomers_join_between_steps_and_match_one_at_a_time(ll):
    """Sequences that join a running batch mid-way, with prompts evaluated in chunks of 5 rows and
    mixed options (greedy, seeded sampling, a repetition penalty), decode exactly as alone."""
    prompts = [_prompt(ll, t) for t in TEXTS]
    opts = [
        GenerationOptions(max_new_tokens=12, ignore_eos=True),
        GenerationOptions(max_new_tokens=5, temperature=0.8, top_p=0.9, seed=7, ignore_eos=True),
        GenerationOptions(max_new_tokens=9, repetition_penalty=1.3, ignore_eos=True),
        GenerationOptions(max_new_tokens=7, temperature=1.2, top_k=20, seed=3, ignore_eos=True),
    ]
    alone = [_solo(ll, p, o) for p, o in zip(prompts, opts)]
    ll.reset_cache()
    engine = ll.continuous(max_sequences=4, chunk_tokens=5)
    assert len(ll.cache_lengths()) >= 4  # the context grew to hold a sequence per seat
    first = engine.add(prompts[0], opts[0])
    together = _drain(
        engine, [first], join={2: [(prompts[1], opts[1])], 4: [(prompts[2], opts[2]), (prompts[3], opts[3])]}
    )
    assert [together[i] for i in range(4)] == alone
    assert engine.steps < sum(len(a) for a in alone) + sum(int(p.shape[0]) for p in prompts) // 5
    # a long prompt is fed at most chunk_tokens rows per step beside the decode rows
    assert engine.rows <= engine.steps * (5 + 4)


def test_release_frees_kv_cells_and_admission_respects_the_context(ll):
    ll.reset_cache()
    engine = ll.continuous(max_sequences=4, chunk_tokens=4)
    long = _prompt(ll, TEXTS[2])
    s = engine.add(long, GenerationOptions(max_new_tokens=50))
    engine.step()  # 4 rows of the prompt are in its cells now
    assert s.prefilling and s.kv.length == 4
    engine.release(s, keep_cache=False)  # cancelled mid-prompt: its cells are wiped at once
    assert s.kv.length == 0 and not s.kv.busy and not engine.active and s.prompt is None
    # reservations: prompt + max_new_tokens cells each, capped by the context of 512
    a = engine.add(long, GenerationOptions(max_new_tokens=300))
    assert a is not None and a.reserve == long.shape[0] + 300
    assert not engine.fits(int(long.shape[0]), 300)
    assert engine.add(long, GenerationOptions(max_new_tokens=300)) is None  # waits for room, no error
    engine.release(a, keep_cache=False)
    with pytest.raises(InputTooLargeError, match="512"):
        engine.add(ll.embed_tokens([1] * 600), GenerationOptions(max_new_tokens=4))
    # prompt + max_new_tokens past the context: refused with the numbers (it used to be capped,
    # which let one request reserve the whole context), and nothing stays reserved
    with pytest.raises(PromptTooLongError, match="max_tokens is 10000"):
        engine.add(long, GenerationOptions(max_new_tokens=10_000))
    assert not engine.active and engine.reserved == 0


def test_a_finished_answer_stays_as_a_prefix_cache_for_the_next_turn(ll):
    ll.reset_cache()
    engine = ll.continuous(max_sequences=4, chunk_tokens=64)
    first = _prompt(ll, "Hello there")
    (reply,) = _drain(engine, [engine.add(first, GenerationOptions(max_new_tokens=4, ignore_eos=True))]).values()
    follow = torch.cat([first, ll.embed_tokens(reply), _prompt(ll, "More?")])
    again = engine.add(follow, GenerationOptions(max_new_tokens=3))
    assert again.reused == first.shape[0] + len(reply) - 1  # the last sampled token was never fed
    engine.release(again, keep_cache=False)


async def _results(sched, convs, options, stagger: float = 0.0):
    handles = []
    for c, o in zip(convs, options):
        handles.append(sched.submit_chat(c, o))
        if stagger:
            await asyncio.sleep(stagger)
    return await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)


def test_scheduler_answers_equal_one_at_a_time_and_late_requests_join(lm):
    from omnibind.serve.scheduler import ContinuousScheduler

    img = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    convs = [[Message.user(TEXTS[0])], [Message.user("Tell me more")], [Message.user(Image(img), "What?")]]
    budgets = [40, 6, 8]
    solo = [lm.generate([c], max_new_tokens=n)[0].text for c, n in zip(convs, budgets)]

    async def run():
        sched = ContinuousScheduler(lm, max_batch_size=4, chunk_tokens=8)
        try:
            opts = [{"max_new_tokens": n, "temperature": 0.0, "stop": []} for n in budgets]
            return await _results(sched, convs, opts, stagger=0.02), sched.stats
        finally:
            sched.close()

    results, stats = asyncio.run(run())
    assert [r.text for r in results] == solo
    assert max(r.batch_size for r in results) > 1  # later requests shared steps with the long one
    assert stats.steps > 0 and stats.step_rows > stats.steps


def test_deadline_cancel_and_bad_input_inside_the_worker(lm):
    """A request past its deadline or cancelled stops between steps and its KV cells are wiped; a bad
    request fails alone; the scheduler keeps serving."""
    from omnibind.serve.batching import RequestCancelledError, RequestTimeoutError
    from omnibind.serve.scheduler import ContinuousScheduler

    llm = lm.core.llm
    greedy = {"max_new_tokens": 4, "temperature": 0.0, "stop": []}
    bad = [Message.user(MediaPart("image", b"\x00junk" * 10, format="png", name="bad.png"), "What?")]

    llm.reset_cache()  # earlier answers stay as prefix caches; start from none

    async def run():
        sched = ContinuousScheduler(lm, max_batch_size=4, chunk_tokens=4, timeout_s=30)
        try:
            gone = sched.submit_chat([Message.user(TEXTS[0])], {**greedy, "max_new_tokens": 300})
            broken = sched.submit_chat(bad, greedy)
            # a deadline already past when the worker sees it: timed out however fast the machine is
            # (a 0.4 s budget was a race: on an idle machine the tiny model finished inside it)
            sched.timeout_s = 0.001
            slow = sched.submit_chat([Message.user(TEXTS[2])], {**greedy, "max_new_tokens": 300})
            sched.timeout_s = 30
            await asyncio.sleep(0.1)
            gone.cancel()
            with pytest.raises(RequestCancelledError):
                await gone.result()
            with pytest.raises(InputError, match="bad.png"):
                await broken.result()
            with pytest.raises(RequestTimeoutError):
                await slow.result()
            for _ in range(100):  # the worker frees the cells at its next step; on a loaded CI runner
                if not any(s.busy for s in llm._seqs.all):  # that can take longer than a fixed sleep
                    break
                await asyncio.sleep(0.05)
            busy = [s.seq_id for s in llm._seqs.all if s.busy]
            lengths = llm.cache_lengths()
            ok = await sched.submit_chat([Message.user("Hi")], greedy).result()
            return busy, lengths, ok, sched.stats, sched.engine.active
        finally:
            sched.close()

    busy, lengths, ok, stats, active = asyncio.run(run())
    assert busy == [] and active == []
    assert lengths == [0] * len(lengths)  # nothing of the expired and the cancelled request stays
    assert ok.completion_tokens >= 1
    assert stats.timeouts == 1 and stats.cancelled == 1


def test_scheduler_choice(lm, tiny_model):
    from omnibind.serve.scheduler import make_scheduler, resolve_scheduler
    from omnibind.serve.settings import ServeSettings

    assert resolve_scheduler("auto", lm) == "continuous"
    assert resolve_scheduler("micro", lm) == "micro"
    assert resolve_scheduler("auto", tiny_model) == "micro"  # transformers stays on micro-batching
    with pytest.raises(ConfigError, match="llamacpp"):
        resolve_scheduler("continuous", tiny_model)
    with pytest.raises(ValueError, match="scheduler"):
        ServeSettings(scheduler="fifo")
    sched = make_scheduler(lm, ServeSettings(prefill_chunk_tokens=32, max_batch_size=3))
    try:
        assert sched.kind == "continuous" and sched.chunk_tokens == 32 and sched.engine.max_sequences == 3
    finally:
        sched.close()


def test_health_and_metrics_name_the_scheduler(lm):
    from fastapi.testclient import TestClient

    from omnibind.serve.http import create_app

    with TestClient(create_app(lm)) as client:
        assert client.get("/health").json()["scheduler"] == "continuous"
        assert 'omnibind_scheduler{kind="continuous"} 1' in client.get("/metrics").text
        r = client.post(
            "/v1/chat/completions",
            json={"model": "omnibind", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
        )
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 3
