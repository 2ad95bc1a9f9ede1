"""llama.cpp's C API from Python: loading the library, ``llama_batch`` buffers, KV-cache sequences.

The backend (``llamacpp.py``) decides *what* to decode; this module holds the ctypes plumbing and
the bookkeeping of which embeddings each llama.cpp sequence holds in the KV cache, so a prompt that
extends what a sequence holds (the next turn of a chat) only evaluates the new suffix. The
comparison is on embeddings, so soft tokens are reused only when they are identical.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from omnibind.errors import BackendUnsupportedError

INSTALL_HINT = "pip install 'omnibind[llamacpp]' (llama-cpp-python)"

_INIT_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def llama_lib() -> Any:
    """Import llama-cpp-python's low-level API once, initialise the backend and quiet its logging."""
    with _INIT_LOCK:
        if "lib" in _STATE:
            return _STATE["lib"]
        # Only for an OpenMP build of llama-cpp-python (pip's default; `make install-dev` builds it with
        # GGML_OPENMP=OFF, whose ggml thread pool ignores this variable): its OpenMP workers spin while
        # waiting by default, and on a CPU shared with other processes a descheduled spinner stalls every
        # step. libgomp reads the policy once, when it loads; `import omnibind` sets it before torch
        # loads it, so this line only matters when llama_cpp is the first to load libgomp.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import llama_cpp as lib
        except ImportError as e:
            raise BackendUnsupportedError(f"the llamacpp backend needs llama-cpp-python: {INSTALL_HINT} ({e})") from e
        lib.llama_backend_init()
        verbose = os.environ.get("OMNIBIND_LLAMACPP_VERBOSE") == "1"

        def _log(level: int, text: bytes, _user: Any) -> None:
            # GGML_LOG_LEVEL_ERROR = 4: keep errors visible, drop the load chatter
            if verbose or level == 4:
                os.write(2, text or b"")

        cb = lib.llama_log_callback(_log)
        lib.llama_log_set(cb, ctypes.c_void_p(0))
        _STATE["log_cb"] = cb  # the C side keeps only a pointer: keep the Python callback alive
        _STATE["lib"] = lib
        return lib


class DecodeError(RuntimeError):
    """``llama_decode`` failed (1: no room in the KV cache; negative: a hard error)."""

    def __init__(self, rc: int):
        super().__init__(f"llama_decode returned {rc}")
        self.rc = rc


class LlamaBatch:
    """A ``llama_batch`` whose arrays are numpy buffers we own (no per-element ctypes copies)."""

    def __init__(
        self,
        lib: Any,
        *,
        embd: np.ndarray | None,
        tokens: np.ndarray | None,
        pos: np.ndarray,
        seq: np.ndarray,
        logits: np.ndarray,
    ):
        n = int(pos.shape[0])
        self._keep = [embd, tokens, pos, seq, logits]  # buffers must outlive llama_decode
        self._n_seq = np.ones(n, dtype=np.int32)
        self._seq = np.ascontiguousarray(seq, dtype=np.int32)
        base = self._seq.ctypes.data
        self._seq_ptrs = (ctypes.POINTER(ctypes.c_int32) * n)(
            *[ctypes.cast(base + 4 * i, ctypes.POINTER(ctypes.c_int32)) for i in range(n)]
        )
        b = lib.llama_batch()
        b.n_tokens = n
        b.token = tokens.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)) if tokens is not None else None
        b.embd = embd.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if embd is not None else None
        b.pos = pos.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        b.n_seq_id = self._n_seq.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        b.seq_id = ctypes.cast(self._seq_ptrs, ctypes.POINTER(ctypes.POINTER(ctypes.c_int32)))
        b.logits = logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
        self.struct = b


@dataclass
class KVSequence:
    """One llama.cpp sequence: the exact embeddings its KV cache holds, positions 0..n-1."""

    seq_id: int
    held: torch.Tensor | None = None
    busy: bool = False
    last_used: int = 0
    adapted: bool = False  # the cache was computed with the LoRA adapter on

    @property
    def length(self) -> int:
        return 0 if self.held is None else int(self.held.shape[0])


def common_prefix(held: torch.Tensor | None, prompt: torch.Tensor) -> int:
    """How many leading rows of ``prompt`` equal (exactly) the rows a sequence holds."""
    if held is None:
        return 0
    n = min(int(held.shape[0]), int(prompt.shape[0]))
    if n == 0:
        return 0
    same = (held[:n] == prompt[:n].to(held.dtype)).all(dim=1)
    if bool(same.all()):
        return n
    return int(torch.argmin(same.to(torch.int8)))


class KVSequences:
    """The sequences of one llama.cpp context sharing a unified KV cache of ``n_ctx`` cells.

    Callers hold the backend's lock around every method: llama.cpp contexts are not thread-safe.
    """

    def __init__(self, lib: Any, memory: Any, n_seq: int, n_ctx: int):
        self.lib = lib
        self.memory = memory
        self.n_ctx = n_ctx
        self.all = [KVSequence(i) for i in range(n_seq)]
        self._clock = 0

    def free(self) -> list[KVSequence]:
        """The sequences no decode is using."""
        return [s for s in self.all if not s.busy]

    def claim(self, prompts: list[torch.Tensor], adapted: list[bool]) -> list[tuple[KVSequence, int]]:
        """Give each prompt a free sequence, preferring the one whose cached prefix it extends the most.

        Returns (sequence, rows kept from the cache) per prompt; the cache beyond those rows is
        dropped. A cache computed with the LoRA adapter on is only reused by prompts that want it
        on, and back. The caller checks that enough sequences are free.
        """
        free = self.free()
        scores = sorted(
            (
                (common_prefix(s.held, p) if s.adapted == adapted[pi] else 0, -s.last_used, si, pi)
                for si, s in enumerate(free)
                for pi, p in enumerate(prompts)
            ),
            reverse=True,
        )
        chosen: dict[int, tuple[KVSequence, int]] = {}
        taken: set[int] = set()
        for common, _, si, pi in scores:
            if pi in chosen or si in taken:
                continue
            chosen[pi] = (free[si], common)
            taken.add(si)
        out = []
        for pi, p in enumerate(prompts):
            seq, common = chosen[pi]
            keep = min(common, int(p.shape[0]) - 1)  # at least one row is evaluated, to get logits
            self.truncate(seq, keep)
            seq.adapted = adapted[pi]
            seq.busy = True
            self._clock += 1
            seq.last_used = self._clock
            out.append((seq, keep))
        return out

    def truncate(self, seq: KVSequence, keep: int) -> None:
        """Keep the first ``keep`` rows of a sequence; always clears the cache past them (a failed
        decode may have left cells there that ``held`` does not list)."""
        keep = min(keep, seq.length)
        if keep <= 0 or not self.lib.llama_memory_seq_rm(self.memory, seq.seq_id, keep, -1):
            self.lib.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
            seq.held = None
            return
        seq.held = seq.held[:keep] if seq.held is not None else None

    def make_room(self, needed: int, active: list[KVSequence]) -> None:
        """Free KV cells for ``needed`` new rows by forgetting idle sequences, least recently used first."""
        used = sum(s.length for s in self.all)
        if used + needed <= self.n_ctx:
            return
        for s in sorted(
            (s for s in self.all if s not in active and not s.busy and s.length), key=lambda s: s.last_used
        ):
            self.truncate(s, 0)
            used = sum(x.length for x in self.all)
            if used + needed <= self.n_ctx:
                return

    def forget_idle(self) -> None:
        """Drop what every idle sequence holds."""
        for s in self.free():
            self.truncate(s, 0)

    def cached_prefix(self, prompt: torch.Tensor, adapted: bool) -> int:
        """How many leading rows of ``prompt`` a free sequence with the same adapter state holds."""
        best = max((common_prefix(s.held, prompt) for s in self.free() if s.adapted == adapted), default=0)
        return min(best, int(prompt.shape[0]) - 1)

    def lengths(self) -> list[int]:
        """How many rows each sequence holds in the KV cache."""
        return [s.length for s in self.all]
