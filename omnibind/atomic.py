"""Atomic writes: readers see the old file (or folder) or the complete new one, never a torn one.

The one copy of this mechanism. Checkpoints, training state, feature-cache shards, media indexes,
exported models and the embedded LLM caches all write through it. A file is written under a
temporary name in its destination's folder, fsynced and renamed over the destination. A folder is
built under a temporary name beside its destination and swapped in with two renames; the previous
version is kept as ``.<name>.old`` until the new one is in place, so a kill at any moment leaves
one complete version on disk (``recover_dir`` puts the old one back when a kill fell between the
two renames).

Temporary names carry the host and process id (``.<name>.tmp-<host>-<pid>-<random>``): a later
write of the same destination removes the leftovers of writers on this host that are no longer
alive (a ``kill -9`` runs no cleanup), and never those of a writer that is still running.

``crash_point`` marks the moments a kill is most damaging (half a file written, between the two
renames); fault tests make a writer stop there (``OMNIBIND_CRASH_AT``) and ``SIGKILL`` it, so the
kill lands inside the write deterministically rather than by timing luck.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CRASH_ENV = "OMNIBIND_CRASH_AT"
"""``NAME[@TEXT][#N]``: pause at the N-th (default first) ``crash_point(NAME, detail)`` whose detail
contains TEXT."""
CRASH_MARK_ENV = "OMNIBIND_CRASH_MARK"
"""A file the paused process creates, so the test knows it may send the kill now."""

_crash_hits: dict[str, int] = {}


def crash_point(name: str, detail: str | os.PathLike[str] = "") -> None:
    """A place where a fault test may stop this process (a no-op unless ``OMNIBIND_CRASH_AT`` is set).

    When the spec matches, the process creates the ``OMNIBIND_CRASH_MARK`` file and sleeps until it
    is killed (at most ten minutes, then it exits with status 86 so a forgotten test cannot hang).
    """
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    m = re.fullmatch(r"([^@#]+)(?:@([^#]*))?(?:#(\d+))?", spec)
    if m is None or m.group(1) != name or (m.group(2) and m.group(2) not in str(detail)):
        return
    _crash_hits[spec] = _crash_hits.get(spec, 0) + 1
    if _crash_hits[spec] != int(m.group(3) or 1):
        return
    mark = os.environ.get(CRASH_MARK_ENV)
    if mark:
        Path(mark).write_text(f"{name} {detail}\n")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(86)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            view = memoryview(data)
            half = len(view) // 2
            fh.write(view[:half])
            fh.flush()
            crash_point("atomic.write.mid", path)  # half the bytes are on disk, under the temp name
            fh.write(view[half:])
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (safetensors,
    GGUF writers); it replaces ``path`` only when the block finishes without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        crash_point("atomic.file.written", path)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _old(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.old")


def recover_dir(dest: str | Path) -> Path:
    """If a swap was killed between its two renames (``dest`` gone, ``.dest.old`` complete), put the
    old version back. Readers of atomically written folders call this before reading."""
    dest = Path(dest)
    old = _old(dest)
    if not dest.exists() and old.is_dir():
        os.replace(old, dest)
    return dest


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``dest``; on success it replaces ``dest`` whole.

    On an error the temporary folder is removed and ``dest`` is untouched. The previous ``dest`` is
    renamed to ``.<name>.old`` first and deleted only after the new folder is in place.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(dest)
    _sweep(dest)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(dest), dir=dest.parent))
    try:
        yield tmp
        _fix_modes(tmp)
        crash_point("atomic.dir.filled", dest)
        old = _old(dest)
        if dest.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(dest, old)
            crash_point("atomic.dir.between", dest)  # dest is gone: recover_dir brings .old back
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        crash_point("atomic.dir.swapped", dest)  # the new version is in place, .old still on disk
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- temporary names

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"


def _tmp_prefix(dest: Path) -> str:
    return f".{dest.name}.tmp-{_HOST}-{os.getpid()}-"


def _sweep(dest: Path) -> None:
    sweep_stale(dest.parent, re.escape(dest.name))


def sweep_stale(folder: str | Path, name_pattern: str) -> int:
    """Remove temporary files/folders in ``folder`` left by dead writers on this host; how many.

    ``name_pattern`` is a regular expression for the destination names whose temporaries to look at
    (``re.escape(name)`` for one destination, ``r"shard-.*"`` for a feature cache's shards). Only
    names this module makes, only this host's (another host's pid means nothing here), and only when
    their process is gone: a writer that is still running keeps its temporary.
    """
    folder = Path(folder)
    rx = re.compile(rf"\.(?:{name_pattern})\.tmp-{re.escape(_HOST)}-(\d+)-")
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    removed = 0
    for name in names:
        m = rx.match(name)
        if m is None or _alive(int(m.group(1))):
            continue
        p = folder / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


# --------------------------------------------------------------------------- modes and fsync


def _file_mode() -> int:
    # mkstemp creates 0600 files; give what a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fix_modes(folder: Path) -> None:
    # mkdtemp makes 0700 folders and some writers (safetensors) 0600 files: an exported model that
    # another user cannot read is a bug, so give the modes a plain mkdir / write would. Files are
    # fsynced on the way, so the renamed folder never holds empty files after a power cut.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for p in folder.rglob("*"):
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)
        if p.is_file() and not p.is_symlink():
            _fsync_file(p)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    # the renames themselves reach the disk only when the folder holding them is fsynced
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
