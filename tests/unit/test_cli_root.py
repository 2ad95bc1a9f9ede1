"""The root CLI (omnibind/cli.py): every command mounted, ``--help`` without heavy imports, flags → settings."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from omnibind.cli import app

runner = CliRunner()


def test_every_command_is_mounted():
    out = runner.invoke(app, ["--help"]).output
    for name in ("chat", "embed", "info", "cache", "bench", "data", "train", "plan", "eval", "serve", "web", "export"):
        assert f" {name} " in out, name
    bench = runner.invoke(app, ["bench", "--help"]).output
    for name in ("serve", "backends", "train"):
        assert f" {name} " in bench, name


def test_python_m_omnibind_help_imports_nothing_heavy():
    code = (
        "import sys, runpy; sys.argv = ['omnibind', '--help']\n"
        "try:\n    runpy.run_module('omnibind', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'numpy', 'fastapi', 'PIL', 'av', 'transformers', 'faiss', 'llama_cpp', 'uvicorn'}\n"
        "print('HEAVY', sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "Commands" in out and "HEAVY []" in out, out


def test_serve_flags_become_settings(monkeypatch):
    import omnibind.serve.server_cli as server_cli

    got: dict = {}
    monkeypatch.setattr(server_cli, "_run", lambda model, backend, settings: got.update(settings=settings))
    args = ["serve", "--port", "9001", "--allow-url", "https://example.org/media/", "--cors-origin", "http://a"]
    args += ["--timeout", "7", "--max-tokens", "100", "--max-body-mb", "2", "--max-points", "5"]
    assert runner.invoke(app, args).exit_code == 0
    s = got["settings"]
    assert (s.port, s.url_allowlist, s.cors_origins, s.request_timeout_s) == (
        9001,
        ["https://example.org/media/"],
        ["http://a"],
        7.0,
    )
    assert (s.max_tokens_limit, s.max_body_bytes, s.limits.max_points, s.limits.max_audio_seconds) == (
        100,
        2 * 1024 * 1024,
        5,
        120.0,
    )
    assert runner.invoke(app, ["web", "--port", "9002", "--max-tokens", "50"]).exit_code == 0
    s = got["settings"]
    assert (s.host, s.port, s.web, s.max_tokens_limit, s.max_body_bytes) == ("127.0.0.1", 9002, True, 50, 40 << 20)
    assert runner.invoke(app, ["serve", "--host", "0.0.0.0"]).exit_code == 2  # no API key off loopback


def test_chat_flags_become_parts_and_generation_options(monkeypatch):
    import omnibind.serve.cli as cli

    got: dict = {}
    monkeypatch.setattr(cli, "_load", lambda *a, **kw: object())
    monkeypatch.setattr(cli, "_answer", lambda m, conv, gen, stream: got.update(conv=conv, gen=gen))
    args = ["chat", "hi", "--imu", "x.csv", "--image", "a.png", "--imu-rate", "50", "--temperature", "0.5"]
    assert runner.invoke(app, [*args, "--seed", "3"]).exit_code == 0
    assert got["gen"] == {
        "max_new_tokens": 128,
        "temperature": 0.5,
        "top_p": 1.0,
        "top_k": 0,
        "repetition_penalty": 1.0,
        "seed": 3,
    }
    media = [(p.modality, p.source, p.options) for p in got["conv"][0].media]
    assert media == [("image", "a.png", {}), ("imu", "x.csv", {"sample_rate": 50.0})]


def test_warm_start_hides_loading_bars_unless_asked(monkeypatch):
    """`omnibind chat` hides the per-load "Loading weights" bars (set before huggingface_hub reads
    the variable); -v, OMNIBIND_VERBOSE=1 or the user's own setting win."""
    from omnibind.serve import cli as serve_cli

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.delenv("OMNIBIND_VERBOSE", raising=False)
    serve_cli._quiet_loading(verbose=True)
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    monkeypatch.setenv("OMNIBIND_VERBOSE", "1")
    serve_cli._quiet_loading(verbose=False)
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    monkeypatch.delenv("OMNIBIND_VERBOSE")
    serve_cli._quiet_loading(verbose=False)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    serve_cli._quiet_loading(verbose=False)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
