"""`import omnibind` picks sleeping OpenMP waits before torch loads the runtime (shared with llama.cpp)."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "import os, omnibind, torch; print(os.environ.get('OMP_WAIT_POLICY'))"


def _run(env_policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_passive_by_default_and_user_value_wins():
    assert _run(None) == "PASSIVE"
    assert _run("ACTIVE") == "ACTIVE"


def test_import_omnibind_does_not_load_torch():
    """The policy only takes effect if it is set before libgomp loads, i.e. before torch."""
    code = "import sys, omnibind; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
