"""``omnibind bench`` runs the core bench and the transformers-vs-llama.cpp comparison in one run.

The measurements themselves are stubbed here (they take minutes on the real model); this checks
the wiring: both parts run, both land in the JSON, and a missing llama.cpp is reported, not fatal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnibind.bench import backends as bb
from omnibind.bench import core as bc
from omnibind.cli import app

runner = CliRunner()
_KV = {"history_positions": 100, "cached_positions": 80, "second_turn_seconds": 0.02, "full_history_seconds": 0.1}
_AGREE = {"cases": 20, "agree": 19, "rate": 0.95, "disagreements": []}
BACKENDS_RESULT = {
    "model": "embedded default",
    "threads": 2,
    "engines": ["transformers", "llamacpp", "llamacpp_f16"],
    "gguf": {"llamacpp": "/x/model.gguf", "llamacpp_f16": "/x/f16.gguf"},
    "llamacpp_gguf": "/x/model.gguf",
    "load_seconds": {"transformers": 1.0, "llamacpp": 0.1, "llamacpp_f16": 0.2},
    "decode": {
        "transformers": {"tokens_per_second": 20.0, "tokens": 64},
        "llamacpp": {"tokens_per_second": 100.0, "tokens": 64},
        "llamacpp_f16": {"tokens_per_second": 60.0, "tokens": 64},
        "ratio": 5.0,
        "ratios": {"llamacpp": 5.0, "llamacpp_f16": 3.0},
    },
    "first_token_with_image_seconds": {"transformers": 0.5, "llamacpp": 0.2, "llamacpp_f16": 0.1},
    "agreement": _AGREE,
    "agreement_by_engine": {
        "llamacpp": _AGREE,
        "llamacpp_f16": {
            "cases": 20,
            "agree": 18,
            "rate": 0.9,
            "disagreements": [
                {"prompt": "Why?", "agree": False, "first_difference": 3, "transformers": "a b", "llamacpp": "a c"}
            ],
        },
    },
    "kv_reuse": {"image chat": {**_KV, "ratio": 0.2}, "text chat": {**_KV, "ratio": 0.15}},
}


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> dict:
    calls: dict = {}
    monkeypatch.setattr(bc, "run_core_bench", lambda model, tokens, repeats: {"core": True})
    monkeypatch.setattr(bc, "print_report", lambda r: None)

    def fake_backends(model, *, tokens, repeats):
        calls["backends"] = {"model": model, "tokens": tokens, "repeats": repeats}
        return BACKENDS_RESULT

    monkeypatch.setattr(bb, "bench_backends", fake_backends)
    monkeypatch.setattr(bb, "llamacpp_missing", lambda: None)
    return calls


def test_bench_runs_both_backends_in_one_run(stubbed: dict, tmp_path: Path):
    out = tmp_path / "bench.json"
    res = runner.invoke(
        app, ["bench", "--repeats", "2", "--decode-tokens", "16", "--out", str(out)], env={"COLUMNS": "250"}
    )
    assert res.exit_code == 0, res.output
    assert stubbed["backends"] == {"model": None, "tokens": 16, "repeats": 2}
    saved = json.loads(out.read_text())
    assert saved["core"] is True and saved["backends"]["decode"]["ratio"] == 5.0
    assert "decode tokens/s" in res.output and "19/20" in res.output and "18/20" in res.output
    assert "3.00×" in res.output and "15% of it" in res.output
    assert "llamacpp_f16 disagrees at token 3: 'Why?'" in res.output


def test_report_prints_results_of_the_two_engine_layout(capsys: pytest.CaptureFixture, monkeypatch):
    """JSON written before the f16 column (one llama.cpp engine, one chat) still prints."""
    old = {k: v for k, v in BACKENDS_RESULT.items() if k not in ("engines", "gguf", "agreement_by_engine")}
    old["load_seconds"] = {"transformers": 1.0, "llamacpp": 0.1}
    old["decode"] = {k: v for k, v in BACKENDS_RESULT["decode"].items() if k in ("transformers", "llamacpp", "ratio")}
    old["first_token_with_image_seconds"] = {"transformers": 0.5, "llamacpp": 0.2}
    old["kv_reuse"] = {**_KV, "ratio": 0.2}
    monkeypatch.setenv("COLUMNS", "250")
    bb.print_backends_report(old)
    out = capsys.readouterr().out
    assert "5.00×" in out and "20% of it" in out


def test_bench_without_llamacpp_says_so(stubbed: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(bb, "llamacpp_missing", lambda: "llama-cpp-python is not installed")
    out = tmp_path / "bench.json"
    res = runner.invoke(app, ["bench", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipped: llama-cpp-python is not installed" in res.output
    assert json.loads(out.read_text())["backends"] == {"skipped": "llama-cpp-python is not installed"}
    assert "backends" not in stubbed


def test_bench_no_backends_flag(stubbed: dict):
    res = runner.invoke(app, ["bench", "--no-backends"])
    assert res.exit_code == 0, res.output
    assert "backends" not in stubbed


def test_llamacpp_missing_matches_the_install():
    import importlib.util

    installed = importlib.util.find_spec("llama_cpp") is not None
    assert (bb.llamacpp_missing() is None) == installed
