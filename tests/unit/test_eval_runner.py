"""The runner on the tiny random model: all three methods, baselines, the output cache, reports, re-scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omnibind.eval import report
from omnibind.eval.cache import OutputCache, media_id
from omnibind.eval.datasets import DATASETS, Sample
from omnibind.eval.models import LocalModel
from omnibind.eval.prompts import build_messages, class_prompts
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import TaskRegistry, parse_task
from omnibind.messages import MediaPart, TextPart

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def _colour_samples() -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        name = list(COLOURS)[i % 3]
        img = np.clip(np.array(COLOURS[name]) + rng.integers(-20, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
        out.append(
            Sample(f"c{i}", f"test-{i}", "test", [MediaPart("image", img, name=f"c{i}.png")], name, list(COLOURS))
        )
    return out


if "test_colours" not in DATASETS:
    DATASETS.register("test_colours")(_colour_samples)

BASE = {"dataset": "test_colours", "metric": "classification", "baselines": ["chance", "text_only", "caption"]}
TASKS = {
    "colours_bind": {"method": "bind", "templates": ["a {} square.", "{a} image."], "prompt": "a square."},
    "colours_rank": {"method": "rank", "prompt": "Which colour? Choose one of: {options}."},
    "colours_generate": {
        "method": "generate",
        "prompt": "Which colour? Answer with one of: {options_or}.",
        "extract": "class_name",
        "max_new_tokens": 3,
    },
}


class _CountingModel(LocalModel):
    """The real tiny model, counting how often each method actually runs (to check the cache)."""

    def __init__(self, model):
        super().__init__(model)
        self.calls = {"embed": 0, "score": 0, "generate": 0}

    def embed(self, inputs):
        self.calls["embed"] += 1
        return super().embed(inputs)

    def score(self, messages, candidates, normalize):
        self.calls["score"] += 1
        return super().score(messages, candidates, normalize)

    def generate(self, conversations, max_new_tokens):
        self.calls["generate"] += len(conversations)
        return super().generate(conversations, max_new_tokens)


class _FixedDescriber:
    """A different, deterministic 'label' per input (so a cache mixing samples up would show)."""

    def describe(self, part: MediaPart) -> str:
        return f"Detected: {media_id(part)[:6]} square"


@pytest.fixture(scope="module")
def tasks() -> TaskRegistry:
    reg = TaskRegistry("eval task")
    for name, body in TASKS.items():
        reg.add(name, parse_task({"task": name, **BASE, **body}))
    return reg


def _runner(tiny_model, cache: OutputCache) -> Runner:
    r = Runner(_CountingModel(tiny_model), cache=cache, seed=0, batch_size=4, progress=False)
    r._describer = _FixedDescriber()  # the real describer loads EfficientNet weights: integration territory
    return r


def test_runner_methods_cache_and_reports(tiny_model, tasks: TaskRegistry, tmp_path: Path) -> None:
    cache = OutputCache(tmp_path / "cache.sqlite")
    runner = _runner(tiny_model, cache)
    results = [runner.run(tasks.get(n)) for n in TASKS]
    for res in results:
        assert set(res.systems) == {"model", "chance", "text_only", "caption"}
        for sysname, s in res.systems.items():
            assert s.skipped is None, (res.task.name, sysname, s.skipped)
            assert len(s.raw) == 6 and 0.0 <= s.metrics["accuracy"] <= 1.0
            assert np.asarray(s.metrics["confusion"]).sum() == 6
    gen = results[2].systems
    assert len(set(map(str, gen["text_only"].raw))) == 1  # one prompt without media → one answer
    calls = dict(runner.model.calls)
    # text-only generation is one request shared by the 6 samples: 6 (model) + 1 (text) + 6 (caption)
    assert calls["generate"] == 6 + 1 + 6
    cache.close()

    # a second run reads everything from the cache: not one model call
    again = _runner(tiny_model, OutputCache(tmp_path / "cache.sqlite"))
    results2 = [again.run(tasks.get(n)) for n in TASKS]
    assert again.model.calls == {"embed": 0, "score": 0, "generate": 0}
    for a, b in zip(results, results2):
        for sysname in a.systems:
            assert a.systems[sysname].raw == b.systems[sysname].raw, (a.task.name, sysname)
            assert a.systems[sysname].metrics == b.systems[sysname].metrics

    paths = report.write_report(tmp_path / "out", results, {"model": runner.model.info(), "seed": 0, "seconds": 1.0})
    body = json.loads(paths["json"].read_text())
    assert set(body["tasks"]) == set(TASKS)
    md = paths["markdown"].read_text()
    assert "| colours_rank | rank | 6 | accuracy |" in md
    assert paths["summary_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "plots" / "confusion-colours_bind.png").is_file()
    lines = (tmp_path / "out" / "samples" / "colours_generate.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert set(rec["outputs"]) == {"model", "chance", "text_only", "caption"}
    assert rec["media"][0]["modality"] == "image"

    # re-scoring from the logs alone reproduces the metrics
    before = body["tasks"]["colours_generate"]["systems"]["model"]["metrics"]
    report.rescore(tmp_path / "out", registry=tasks)
    after = json.loads(paths["json"].read_text())["tasks"]["colours_generate"]["systems"]["model"]["metrics"]
    assert after == before


def test_rescore_uses_current_extraction(tmp_path: Path, tasks: TaskRegistry) -> None:
    """Edit a logged reply: re-scoring must re-extract the answer (no model needed)."""
    task = tasks.get("colours_generate")
    samples = _colour_samples()
    from omnibind.eval.runner import SystemResult, TaskResult

    raw = ["It is red."] * 6
    sr = SystemResult(raw=raw, preds=["red"] * 6, metrics={})
    res = TaskResult(task, samples, {"model": sr}, 0.0)
    paths = report.write_report(tmp_path, [res], {"seed": 0}, plots=False)
    log = tmp_path / "samples" / "colours_generate.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    for x in lines:
        x["outputs"]["model"]["raw"] = f"Surely {x['target']}!"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report.rescore(tmp_path, registry=tasks)
    m = json.loads(paths["json"].read_text())["tasks"]["colours_generate"]["systems"]["model"]["metrics"]
    assert m["accuracy"] == 1.0


def test_build_messages_layouts(tasks: TaskRegistry) -> None:
    s = _colour_samples()[0]
    t = tasks.get("colours_generate")
    model = build_messages(t, s, "model")
    assert isinstance(model[-1].content[0], MediaPart)
    assert model[-1].content[1].text == "Which colour? Answer with one of: red, green or blue."
    text = build_messages(t, s, "text_only")
    assert [type(p) for p in text[-1].content] == [TextPart]
    cap = build_messages(t, s, "caption", lambda p: "Detected: square")
    assert cap[-1].content[0].text.startswith("(image: Detected: square)")
    two = parse_task(
        {
            "task": "x",
            "dataset": "test_colours",
            "method": "generate",
            "metric": "choice",
            "extract": "position",
            "prompt": "A: {media1} B: {media0} Which?",
        }
    )
    s2 = Sample("p", "p", "t", [s.media[0], _colour_samples()[1].media[0]], "first", ["first", "second"])
    parts = build_messages(two, s2, "model")[-1].content
    assert parts[1] is s2.media[1] and parts[3] is s2.media[0]


def test_media_id_and_class_prompts(tmp_path: Path) -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert media_id(MediaPart("image", a)) != media_id(MediaPart("image", b))
    assert media_id(MediaPart("image", a)) == media_id(MediaPart("image", a.copy()))
    f = tmp_path / "x.wav"
    f.write_bytes(b"1")
    h1 = media_id(MediaPart("audio", str(f)))
    f.write_bytes(b"22")
    assert media_id(MediaPart("audio", str(f))) != h1
    assert class_prompts(["a photo of {a}.", "{}!"], "apple") == ["a photo of an apple.", "apple!"]


def test_chance_is_averaged_over_draws(tiny_model, tasks: TaskRegistry) -> None:
    from omnibind.eval.runner import chance_metrics

    m = chance_metrics(tasks.get("colours_rank"), _colour_samples(), seed=0)
    assert m["chance_draws"] > 50 and abs(m["accuracy"] - 1 / 3) < 0.05


def test_endpoint_model_against_the_omnibind_server(tiny_model, tasks: TaskRegistry, tmp_path: Path) -> None:
    """The OpenAI-client path end to end: generation and embeddings work, ranking is skipped with a note."""
    from omnibind.eval.models import EndpointModel
    from omnibind.serve.http import BackgroundServer, create_app
    from omnibind.serve.settings import ServeSettings

    with BackgroundServer(create_app(tiny_model, ServeSettings(max_tokens_limit=16))) as srv:
        ev = EndpointModel(srv.url + "/v1", api_key="unused", workers=2)
        assert ev.fingerprint.startswith("endpoint-")
        r = Runner(ev, cache=OutputCache(None), batch_size=3, progress=False, baselines=False)
        gen = r.run(tasks.get("colours_generate"), limit=3)
        assert gen.systems["model"].skipped is None and len(gen.systems["model"].raw) == 3
        rank = r.run(tasks.get("colours_rank"), limit=3)
        assert "log-likelihoods" in (rank.systems["model"].skipped or "")
        bind = r.run(tasks.get("colours_bind"), limit=3)
        assert bind.systems["model"].skipped is None
        # the server's bind vectors equal the local model's
        local = tiny_model.embed([_colour_samples()[0].media[0]])
        remote = ev.embed([_colour_samples()[0].media[0]])
        assert np.allclose(local, remote, atol=1e-4)


def test_two_caches_on_one_file_write_at_once(tmp_path) -> None:
    """Two eval runs sharing the output cache (two models side by side) must not fail with
    "database is locked": each waits for the other's write."""
    import threading

    from omnibind.eval.cache import OutputCache

    path = tmp_path / "outputs.sqlite"
    caches = [OutputCache(path), OutputCache(path)]
    errors: list[BaseException] = []

    def write(c, tag: str) -> None:
        try:
            for i in range(200):
                c.put(f"{tag}-{i}", "fp", "task", str(i), f"req-{tag}-{i}", {"v": i})
                if i % 20 == 0:
                    c.commit()
            c.commit()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(c, t)) for c, t in zip(caches, "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert caches[0].get("b-199", "req-b-199") == {"v": 199}
