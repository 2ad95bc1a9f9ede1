"""What a llama.cpp decode could reach here: the engine alone, and the memory-bandwidth bound.

``omnibind bench backends`` times omnibind's llama.cpp backend beside two references measured in
the same run:

- the peer: llama-cpp-python's own high-level API (``Llama.generate``, greedy) on the same GGUF,
  prompt and token count, with nothing of omnibind around it;
- the limit: a greedy decode of a dense model reads (nearly) every weight once per token, so it
  cannot beat copy bandwidth ÷ bytes of weights read per token.

Nothing here imports torch: the numbers describe the engine and the machine, not omnibind.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

COPY_BYTES = 256 * 2**20  # far above any last-level cache, so the copy measures DRAM
COPY_REPEATS = 7


def copy_bandwidth(n_bytes: int = COPY_BYTES, repeats: int = COPY_REPEATS, *, threads: int = 1) -> float:
    """Memory bandwidth in bytes/s from a large numpy array copy split over ``threads``, best of ``repeats``.

    Counted as bytes read + bytes written (STREAM's "copy" convention): a copy of N bytes moves 2N.
    Best rather than median: the bound is what the hardware can do; load from other jobs only
    lowers it. ``threads`` should be the decode's thread count: numpy's copy runs on one core (it
    releases the GIL, so Python threads copy their slices in parallel), and one core may not draw
    all the bandwidth the decode's threads do.
    """
    import threading

    import numpy as np  # here, not at module top: `omnibind --help` mounts this module's command

    src = np.ones(max(threads, n_bytes // 8), dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    cuts = np.linspace(0, src.size, max(1, threads) + 1).astype(int)
    best = float("inf")
    for _ in range(max(1, repeats)):
        workers = [threading.Thread(target=np.copyto, args=(dst[a:b], src[a:b])) for a, b in itertools.pairwise(cuts)]
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best


def gguf_bytes_per_token(path: str | Path) -> int:
    """Bytes of weights one decode step reads from a GGUF: every tensor, except that the token
    embedding table costs one row when the model has a separate output matrix (with tied
    embeddings the table is the output matrix and is read whole)."""
    from gguf import GGUFReader

    tensors = {t.name: t for t in GGUFReader(str(path)).tensors}
    total = sum(int(t.n_bytes) for t in tensors.values())
    emb = tensors.get("token_embd.weight")
    if emb is not None and "output.weight" in tensors:
        rows = int(emb.shape[-1]) if len(emb.shape) > 1 else 1  # GGUF shapes are (row length, rows)
        total -= int(emb.n_bytes) - int(emb.n_bytes) // max(1, rows)
    return total


def decode_bound(gguf: str | Path, bandwidth: float) -> dict[str, float]:
    """The memory-bandwidth bound on decode tokens/s for one GGUF."""
    per_token = gguf_bytes_per_token(gguf)
    return {"bytes_per_token": per_token, "tokens_per_second": bandwidth / per_token}


class RawLlama:
    """llama-cpp-python alone on one GGUF: greedy decode through ``Llama.generate``.

    ``prompt`` is the text omnibind's template renders for the same conversation, tokenised with
    special tokens, so both arms evaluate the same prompt and stop at the same end-of-turn token.
    """

    def __init__(self, gguf: str | Path, prompt: str, *, threads: int, n_ctx: int = 2048):
        from llama_cpp import Llama

        self.gguf = str(gguf)
        self.llm = Llama(
            model_path=self.gguf, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_gpu_layers=0, verbose=False
        )
        self.prompt = self.llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def timed(self, tokens: int) -> tuple[list[int], list[float]]:
        """Greedy token ids (stops at an end-of-generation token) and each one's time after the call."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        ids: list[int] = []
        stamps: list[float] = []
        start = time.perf_counter()
        for tok in self.llm.generate(self.prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                break
            ids.append(int(tok))
            stamps.append(time.perf_counter() - start)
            if len(ids) >= tokens:
                break
        return ids, stamps

    def close(self) -> None:
        self.llm.close()


def tokens_per_second(stamps: list[float]) -> float | None:
    """Decode rate between the first and the last token (prompt evaluation excluded)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return None
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


TimedDecode = Callable[[int], tuple[list[int], list[float]]]


def system_info() -> dict[str, Any]:
    """How the installed llama.cpp was built (OpenMP or ggml's own thread pool) and the wait policy."""
    import os

    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return {
        "llama_cpp_python": getattr(llama_cpp, "__version__", "?"),
        "openmp": "OPENMP = 1" in info,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "system_info": info.strip(),
    }
