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
        "raw:llamacpp": {"tokens_per_second": 125.0, "tokens": 64},
        "raw:llamacpp_f16": {"tokens_per_second": 80.0, "tokens": 64},
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
    "limits": {
        "copy_bandwidth_bytes_per_second": 24e9,
        "system": {"llama_cpp_python": "0.3.36", "openmp": False, "omp_wait_policy": "PASSIVE", "system_info": ""},
        "engines": {
            "llamacpp": {
                "gguf": "/x/model.gguf",
                "tokens_per_second": 100.0,
                "bytes_per_token": 96_000_000,
                "bound_tokens_per_second": 250.0,
                "vs_bound": 0.4,
                "raw_tokens_per_second": 125.0,
                "raw_tokens": 64,
                "vs_raw": 0.8,
            },
            "llamacpp_f16": {
                "gguf": "/x/f16.gguf",
                "tokens_per_second": 60.0,
                "bytes_per_token": 270_000_000,
                "bound_tokens_per_second": 88.9,
                "vs_bound": 0.675,
                "raw_tokens_per_second": 80.0,
                "raw_tokens": 64,
                "vs_raw": 0.75,
            },
        },
    },
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
    assert "tokens/s" in res.output and "19/20" in res.output and "18/20" in res.output
    assert "3.00×" in res.output and "15% of it" in res.output
    assert "llamacpp_f16 disagrees at token 3: 'Why?'" in res.output


def test_report_prints_results_of_the_two_engine_layout(capsys: pytest.CaptureFixture, monkeypatch):
    """JSON written before the f16 column (one llama.cpp engine, one chat) still prints."""
    old = {k: v for k, v in BACKENDS_RESULT.items() if k not in ("engines", "gguf", "agreement_by_engine", "limits")}
    old["load_seconds"] = {"transformers": 1.0, "llamacpp": 0.1}
    old["decode"] = {k: v for k, v in BACKENDS_RESULT["decode"].items() if k in ("transformers", "llamacpp", "ratio")}
    old["first_token_with_image_seconds"] = {"transformers": 0.5, "llamacpp": 0.2}
    old["kv_reuse"] = {**_KV, "ratio": 0.2}
    monkeypatch.setenv("COLUMNS", "250")
    bb.print_backends_report(old)
    out = capsys.readouterr().out
    assert "5.00×" in out and "20% of it" in out
    assert "bound" not in out  # no limits in older results: no limits table


def test_report_fits_80_columns_with_limits(capsys: pytest.CaptureFixture, monkeypatch):
    """Every table fits an 80-column terminal with no cell wrapped; the limits table shows omnibind ÷
    llama-cpp-python alone and ÷ the memory-bandwidth bound for each llama.cpp engine."""
    monkeypatch.setenv("COLUMNS", "80")
    bb.print_backends_report(BACKENDS_RESULT)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    row = next(line for line in lines if line.startswith("│ llamacpp_f16") and "270" in line)
    assert [c.strip() for c in row.strip("│").split("│")] == [
        "llamacpp_f16",
        "270",
        "60.0",
        "80.0",
        "75%",
        "88.9",
        "68%",
    ]
    row = next(line for line in lines if line.startswith("│ llamacpp ") and "96" in line)
    assert "125.0" in row and "80%" in row and "40%" in row
    assert "24.0 GB/s" in out and "ggml's own thread pool; OMP_WAIT_POLICY=PASSIVE" in out
    assert "llamacpp_f16: f16.gguf" in out


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


# --- the engine-limits measurements themselves, on the tiny GGUF (shapes, not timings) ----------


def test_bytes_per_token_and_bound(tiny_gguf: Path):
    from gguf import GGUFReader

    from omnibind.bench import engine_limits as el

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(str(tiny_gguf)).tensors}
    per_token = el.gguf_bytes_per_token(tiny_gguf)
    if "output.weight" in tensors:  # untied: one row of the embedding table is read per token
        assert sum(tensors.values()) - tensors["token_embd.weight"] < per_token < sum(tensors.values())
    else:
        assert per_token == sum(tensors.values())
    bound = el.decode_bound(tiny_gguf, 1e9)
    assert bound == {"bytes_per_token": per_token, "tokens_per_second": 1e9 / per_token}
    assert el.copy_bandwidth(4 * 2**20, repeats=2, threads=2) > 0


def test_raw_llama_and_decode_loop(tiny_gguf: Path):
    """llama-cpp-python alone decodes greedily, reproducibly, and runs as a peer arm of decode_speeds."""
    pytest.importorskip("llama_cpp")
    from omnibind.bench import engine_limits as el

    raw = el.RawLlama(tiny_gguf, "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", threads=1, n_ctx=256)
    try:
        ids, stamps = raw.timed(6)
        assert ids == raw.timed(6)[0]  # greedy
        assert len(ids) == len(stamps) <= 6 and stamps == sorted(stamps)
        speeds = bb.decode_speeds({}, tokens=6, repeats=2, peers={"raw:tiny": raw.timed})
        assert set(speeds) == {"raw:tiny"} and speeds["raw:tiny"]["tokens"] == len(ids)
        info = el.system_info()
        assert isinstance(info["openmp"], bool) and info["llama_cpp_python"]
    finally:
        raw.close()
    assert el.tokens_per_second([0.0, 0.5, 1.0]) == 2.0 and el.tokens_per_second([1.0]) is None


def test_engine_limits_ratios(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch):
    from types import SimpleNamespace

    pytest.importorskip("llama_cpp")
    monkeypatch.setattr(bb, "copy_bandwidth", lambda threads: 2e9)
    model = SimpleNamespace(core=SimpleNamespace(llm=SimpleNamespace(gguf_path=tiny_gguf)))
    speed = {"llamacpp": {"tokens_per_second": 50.0, "tokens": 64}, "raw:llamacpp": {"tokens_per_second": 100.0}}
    speed["raw:llamacpp"]["tokens"] = 64
    lim = bb.engine_limits(speed, {"llamacpp": model}, threads=2)
    row = lim["engines"]["llamacpp"]
    assert row["vs_raw"] == 0.5 and row["raw_tokens"] == 64
    assert row["bound_tokens_per_second"] == pytest.approx(2e9 / row["bytes_per_token"])
    assert row["vs_bound"] == pytest.approx(50.0 / row["bound_tokens_per_second"])
    assert lim["copy_bandwidth_bytes_per_second"] == 2e9 and "openmp" in lim["system"]


def test_report_of_a_decode_only_run(capsys: pytest.CaptureFixture, monkeypatch):
    keep = ("model", "threads", "engines", "gguf", "llamacpp_gguf", "load_seconds", "decode", "limits")
    monkeypatch.setenv("COLUMNS", "80")
    bb.print_backends_report({k: BACKENDS_RESULT[k] for k in keep})
    out = capsys.readouterr().out
    assert "125.0" in out and "88.9" in out and "2nd chat turn" not in out
