"""``kill -9`` a writer at a named crash point (``omnibind.atomic.crash_point``), deterministically.

The writer runs in a child process with ``OMNIBIND_CRASH_AT`` set; when it reaches the point it
creates a mark file and sleeps, and the test sends ``SIGKILL`` then. No sleep-timing luck: the kill
lands exactly inside the write it names, and SIGKILL runs no cleanup (no ``finally``, no atexit).

``kill_forked`` forks the test process (the tiny model is already built, so a kill costs
milliseconds); ``kill_command`` starts a real command (e.g. ``python -m omnibind.train.cli``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from omnibind.atomic import CRASH_ENV, CRASH_MARK_ENV

# Not a timing assertion: only how long to wait before calling a writer hung (loaded CI machines
# take seconds for what takes milliseconds here).
HANG_S = 300


def _mark(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"crash-{uuid.uuid4().hex[:8]}.mark"


def kill_forked(spec: str, write: Callable[[], object], marks: Path) -> str:
    """Run ``write()`` in a forked child that stops at crash point ``spec``; SIGKILL it there.

    Returns what the paused child wrote into its mark (the point and its detail). Fails the test
    when the child finished, or failed, without reaching the point.
    """
    mark = _mark(marks)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            import torch

            torch.set_num_threads(1)  # OpenMP's pool does not survive fork (as in DataLoader workers)
            os.environ[CRASH_ENV] = spec
            os.environ[CRASH_MARK_ENV] = str(mark)
            write()
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return _wait_and_kill(pid, mark, spec, lambda: _reap(pid, os.WNOHANG))


def kill_command(spec: str, argv: Sequence[str], marks: Path, *, env: dict[str, str] | None = None, cwd=None) -> str:
    """``kill_forked`` for a command line: start it, SIGKILL it once it pauses at ``spec``."""
    mark = _mark(marks)
    full_env = {**os.environ, **(env or {}), CRASH_ENV: spec, CRASH_MARK_ENV: str(mark)}
    proc = subprocess.Popen(list(argv), env=full_env, cwd=cwd)
    try:
        return _wait_and_kill(proc.pid, mark, spec, lambda: proc.poll())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _reap(pid: int, flags: int) -> int | None:
    """The child's return code as ``Popen.returncode`` gives it (-N: killed by signal N), or None."""
    done, status = os.waitpid(pid, flags)
    return None if done == 0 else os.waitstatus_to_exitcode(status)


def _wait_and_kill(pid: int, mark: Path, spec: str, finished: Callable[[], int | None]) -> str:
    deadline = time.monotonic() + HANG_S
    while not mark.exists():
        rc = finished()
        if rc is not None:
            raise AssertionError(f"the writer ended (return code {rc}) without reaching crash point {spec!r}")
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the writer never reached crash point {spec!r}")
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    rc = None
    while rc is None:
        rc = finished()
        time.sleep(0.005)
    if rc != -signal.SIGKILL:
        raise AssertionError(f"the writer ended with return code {rc}, not by the SIGKILL")
    # the child may be killed between creating the mark and writing it: the point is the mark's name
    return mark.read_text().strip() or spec
