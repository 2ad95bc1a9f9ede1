"""``omnibind eval`` commands that need no model: list, argument errors, rescore."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from omnibind.eval.cli import app

runner = CliRunner()


def test_list_shows_tasks_and_suites() -> None:
    out = runner.invoke(app, ["list"])
    assert out.exit_code == 0, out.output
    assert "pope_adversarial" in out.output and "quick" in out.output and "full" in out.output


def test_run_unknown_task_fails_cleanly() -> None:
    out = runner.invoke(app, ["run", "no_such_task", "--no-cache"])
    assert out.exit_code == 2
    assert "unknown eval task 'no_such_task'" in out.output


def test_rescore_refuses_a_folder_without_results(tmp_path: Path) -> None:
    out = runner.invoke(app, ["rescore", str(tmp_path)])
    assert out.exit_code == 2 and "results.json" in out.output


def test_cli_module_imports_no_heavy_libraries() -> None:
    code = "import sys, omnibind.eval.cli; print(any(m in sys.modules for m in ('torch', 'numpy', 'transformers')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
