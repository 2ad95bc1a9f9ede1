"""`import omnibind` picks sleeping OpenMP waits before torch loads the runtime; llama.cpp built without
OpenMP shares no runtime with torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


def test_no_openmp_build_loads_no_libgomp():
    """A GGML_OPENMP=OFF llama-cpp-python (what `make install-dev` builds) runs on ggml's own thread
    pool: loading it maps no OpenMP runtime, so torch's wait policy cannot reach it. An OpenMP build
    (pip's default) maps libgomp, which it would share with torch."""
    pytest.importorskip("llama_cpp")
    code = (
        "import llama_cpp; llama_cpp.llama_backend_init(); "
        "info = llama_cpp.llama_print_system_info().decode(); "
        "maps = open('/proc/self/maps').read(); "
        "print('OPENMP = 1' in info, 'libgomp' in maps)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    openmp, gomp = out.stdout.split()
    assert gomp == openmp  # the build flag and what the process maps agree
