"""llama.cpp backend: a GGUF model driven by input embeddings, through llama-cpp-python's C API.

Why this shape:

* Soft modality tokens are not token ids, so prompts go to ``llama_decode`` as a batch of input
  *embeddings* (``llama_batch.embd``). Text tokens are embedded with the GGUF's own token table
  (dequantised with the ``gguf`` package, bit-identical to llama.cpp's ``get_rows``), so a prompt
  fed as embeddings gives the same logits as the same prompt fed as ids (tested).
* Several conversations decode together, one llama.cpp sequence id each, one ``llama_decode`` per
  step for all of them (what the server's batching needs).
* KV-cache reuse across turns: every sequence slot remembers the exact embeddings it holds in the
  cache. A new prompt that extends a slot's content (the next turn of a chat) only evaluates the new
  suffix; the comparison is on embeddings, so soft tokens are reused only when they are identical.
* Sampling reuses ``omnibind.llm.sampling.sample_next`` on llama.cpp's logits, so the options
  (greedy, temperature, top-p/top-k, repetition penalty, seed) behave exactly as on transformers.

The gated every-layer injection (ImageBind-LLM) needs hooks inside each decoder layer, which
llama.cpp does not offer: such a model is refused with ``BackendUnsupportedError``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.errors import BackendUnsupportedError, ConfigError, InputTooLargeError
from omnibind.llm.backends.base import LLM_BACKENDS, GenerationOptions, LayerInjection, LLMBackend
from omnibind.llm.sampling import sample_next

INSTALL_HINT = "pip install 'omnibind[llamacpp]' (llama-cpp-python)"
# llama.cpp multiplies *token* inputs of these architectures by sqrt(hidden) inside the graph but
# leaves raw embedding inputs alone, so embed_tokens applies that scale itself (as transformers does).
_SCALED_INPUT_ARCHS = ("gemma", "gemma2", "gemma3", "gemma3n")

_INIT_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def _lib() -> Any:
    """Import llama-cpp-python's low-level API once, initialise the backend and quiet its logging."""
    with _INIT_LOCK:
        if "lib" in _STATE:
            return _STATE["lib"]
        # ggml's OpenMP workers spin while waiting for work by default; on a CPU shared with other
        # processes a descheduled spinner stalls every step (1 token/s instead of ~40 with 2 threads
        # on 2 busy cores). libgomp reads the policy once, when it loads, and torch usually loads it
        # first (llama.cpp then reuses torch's libgomp.so.1): `import omnibind` sets it before any
        # torch import; this line only matters when llama_cpp is the first to load libgomp.
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


def resolve_gguf(source: str) -> Path:
    """``embedded:smollm2-135m`` → an f16 GGUF of the packaged model's weights (the ones transformers
    runs; built once); ``embedded:smollm2-135m-q4_1`` → the packaged 4-bit GGUF itself; a ``.gguf``
    file → itself; a folder with one GGUF → it."""
    if source.startswith("embedded:"):
        from omnibind.llm.embedded import EMBEDDED_LLM, check_embedded_source, embedded_f16_gguf, embedded_gguf_path

        return embedded_f16_gguf() if check_embedded_source(source) == EMBEDDED_LLM else embedded_gguf_path()
    p = Path(source).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ConfigError(f"{p}: the llamacpp backend reads .gguf files (export one with `omnibind export gguf`)")
        return p
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        what = "no .gguf file" if not found else f"several .gguf files ({', '.join(f.name for f in found)})"
        raise ConfigError(f"{p}: {what}; point llm.source at the GGUF file")
    raise ConfigError(f"{source}: no such GGUF file or folder (the llamacpp backend loads local GGUF files only)")


def read_token_embeddings(path: Path) -> tuple[np.ndarray, str]:
    """The GGUF's ``token_embd`` table dequantised to float32 (V, H), and the architecture name.

    The header is walked directly (``gguf.GGUFReader`` parses every vocabulary string into numpy
    views, ~5 s for a 49k vocabulary); the tensor is then dequantised by the ``gguf`` package,
    exactly as llama.cpp's ``get_rows`` does."""
    import gguf

    arch, tensors, data_start = _walk_gguf_header(path)
    if "token_embd.weight" not in tensors:
        raise ConfigError(f"{path}: GGUF has no token_embd.weight tensor")
    qtype, dims, offset = tensors["token_embd.weight"]
    qtype = gguf.GGMLQuantizationType(qtype)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    rows, cols = int(np.prod(dims[1:])), int(dims[0])  # GGUF lists the fastest-varying dimension first
    row_bytes = cols // block * type_size
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start + offset, shape=(rows, row_bytes))
    table = gguf.quants.dequantize(np.asarray(raw), qtype)
    return np.require(table.reshape(rows, cols), dtype=np.float32, requirements=["C", "W"]), arch


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type → bytes


def _walk_gguf_header(path: Path) -> tuple[str, dict[str, tuple[int, list[int], int]], int]:
    """(architecture, {tensor: (ggml type, dims, offset in data)}, data section start) of a GGUF v2/v3."""
    import struct

    with open(path, "rb") as f:
        buf = f.read(min(path.stat().st_size, 64 << 20))  # metadata of any sane GGUF fits well within this
    try:
        if buf[:4] != b"GGUF":
            raise ValueError("not a GGUF file (bad magic)")
        _, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        pos = 24
        arch, alignment = "", 32

        def string(at: int) -> tuple[str, int]:
            (n,) = struct.unpack_from("<Q", buf, at)
            return buf[at + 8 : at + 8 + n].decode("utf-8", errors="replace"), at + 8 + n

        def skip(vtype: int, at: int) -> int:
            if vtype == 8:
                (n,) = struct.unpack_from("<Q", buf, at)
                return at + 8 + n
            if vtype == 9:
                itype, count = struct.unpack_from("<IQ", buf, at)
                at += 12
                if itype in _SCALAR_SIZES:
                    return at + count * _SCALAR_SIZES[itype]
                for _ in range(count):
                    at = skip(itype, at)
                return at
            return at + _SCALAR_SIZES[vtype]

        for _ in range(n_kv):
            key, pos = string(pos)
            (vtype,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            if key == "general.architecture" and vtype == 8:
                arch, pos = string(pos)
            elif key == "general.alignment" and vtype == 4:
                (alignment,) = struct.unpack_from("<I", buf, pos)
                pos += 4
            else:
                pos = skip(vtype, pos)
        tensors = {}
        for _ in range(n_tensors):
            name, pos = string(pos)
            (nd,) = struct.unpack_from("<I", buf, pos)
            dims = list(struct.unpack_from(f"<{nd}Q", buf, pos + 4))
            qtype, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
            pos += 4 + 8 * nd + 12
            tensors[name] = (qtype, dims, offset)
    except (struct.error, KeyError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable GGUF header ({e})") from None
    return arch, tensors, (pos + alignment - 1) // alignment * alignment


def tokenize_vocab_only(path: Path, text: str) -> list[int] | None:
    """Tokenise with llama.cpp from a GGUF's vocabulary alone (None when llama.cpp rejects the file)."""
    lib = _lib()
    params = lib.llama_model_default_params()
    params.vocab_only = True
    model = lib.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        return None
    try:
        vocab = lib.llama_model_get_vocab(model)
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int32 * cap)()
        n = lib.llama_tokenize(vocab, data, len(data), buf, cap, False, True)
        return list(buf[:n]) if n >= 0 else None
    finally:
        lib.llama_model_free(model)


@dataclass
class _Slot:
    """One llama.cpp sequence: the exact embeddings its KV cache holds, positions 0..n-1."""

    seq_id: int
    held: torch.Tensor | None = None
    busy: bool = False
    last_used: int = 0
    adapted: bool = False  # the cache was computed with the LoRA adapter on

    @property
    def length(self) -> int:
        return 0 if self.held is None else int(self.held.shape[0])


class _Batch:
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


@LLM_BACKENDS.register("llamacpp")
class LlamaCppBackend(LLMBackend):
    """A GGUF model run by llama.cpp on the CPU; inference only (no training, no per-layer hooks)."""

    name = "llamacpp"
    supports_layer_injection = False
    supports_training = False

    def __init__(
        self,
        source: str,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        n_ctx: int = 8192,
        n_seq_max: int = 8,
        n_batch: int = 512,
        n_threads: int | None = None,
    ):
        if str(device) != "cpu":
            raise BackendUnsupportedError(
                f"the llamacpp backend runs on the CPU here; device {device!r} is not supported"
            )
        self.lib = _lib()
        self.source = source
        self.gguf_path = resolve_gguf(source)
        self.dtype = dtype  # llama.cpp computes in the GGUF's own types; kept for config symmetry
        self._lock = threading.RLock()
        self._load_model()
        table, arch = read_token_embeddings(self.gguf_path)
        if table.shape != (self.vocab_size, self.hidden_size):
            raise ConfigError(
                f"{self.gguf_path}: token_embd is {table.shape}, model says {self.vocab_size}×{self.hidden_size}"
            )
        self.architecture = arch
        scale = float(self.hidden_size) ** 0.5 if arch in _SCALED_INPUT_ARCHS else 1.0
        self._table = torch.from_numpy(table * scale if scale != 1.0 else table)
        self.n_threads = int(n_threads or torch.get_num_threads())
        self.n_batch = int(n_batch)
        self.n_ctx_requested = int(n_ctx)
        self._ctx = None
        self._adapter = None  # llama.cpp LoRA adapter (see load_peft_lora)
        self._adapter_media_only = False
        self._adapter_active: bool | None = None
        self._make_context(n_seq_max)
        self._clock = 0

    # --- loading ---------------------------------------------------------------------------
    def _load_model(self) -> None:
        lib = self.lib
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        model = lib.llama_model_load_from_file(str(self.gguf_path).encode(), params)
        if not model:
            raise ConfigError(
                f"{self.gguf_path}: llama.cpp could not load this GGUF (corrupt or unsupported architecture)"
            )
        self._model = model
        self._vocab = lib.llama_model_get_vocab(model)
        self.hidden_size = int(lib.llama_model_n_embd(model))
        self.num_layers = int(lib.llama_model_n_layer(model))
        self.vocab_size = int(lib.llama_vocab_n_tokens(self._vocab))
        self.n_ctx_train = int(lib.llama_model_n_ctx_train(model))
        self.num_parameters = int(lib.llama_model_n_params(model))
        self.eos_token_ids = {t for t in range(self.vocab_size) if lib.llama_vocab_is_eog(self._vocab, t)}

    def _make_context(self, n_seq_max: int) -> None:
        """(Re)create the context: one unified KV cache of ``n_ctx`` cells shared by ``n_seq_max`` slots."""
        lib = self.lib
        if self._ctx is not None:
            lib.llama_free(self._ctx)
            self._ctx = None
        p = lib.llama_context_default_params()
        p.n_ctx = min(self.n_ctx_requested, self.n_ctx_train) if self.n_ctx_train > 0 else self.n_ctx_requested
        p.n_batch = self.n_batch
        p.n_ubatch = self.n_batch
        p.n_seq_max = n_seq_max
        p.n_threads = self.n_threads
        p.n_threads_batch = self.n_threads
        p.kv_unified = True  # any one sequence may use the whole context (long chats beside idle slots)
        p.no_perf = True
        ctx = lib.llama_init_from_model(self._model, p)
        if not ctx:
            raise ConfigError(f"{self.gguf_path}: llama.cpp could not create a context (n_ctx={p.n_ctx})")
        self._ctx = ctx
        self._adapter_active = None
        self._mem = lib.llama_get_memory(ctx)
        self.n_ctx = int(lib.llama_n_ctx(ctx))
        self._slots = [_Slot(i) for i in range(n_seq_max)]

    def close(self) -> None:
        """Free the llama.cpp context and model (also done when the backend is garbage collected)."""
        lib = getattr(self, "lib", None)
        if lib is None:
            return
        if getattr(self, "_ctx", None):
            lib.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_adapter", None):
            lib.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        if getattr(self, "_model", None):
            lib.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    # --- tokens ------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Ids with no BOS/EOS added; special tokens written as text (``<|im_start|>``) are parsed."""
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int32 * cap)()
        n = self.lib.llama_tokenize(self._vocab, data, len(data), buf, cap, False, True)
        if n < 0:  # buffer too small: llama.cpp returns the negated size it needs
            cap = -n
            buf = (ctypes.c_int32 * cap)()
            n = self.lib.llama_tokenize(self._vocab, data, len(data), buf, cap, False, True)
        return list(buf[:n])

    def detokenize(self, ids: list[int]) -> str:
        """Text of ``ids`` with control tokens (chat markers, EOS) left out."""
        ids = [int(i) for i in ids]
        if not ids:
            return ""
        arr = (ctypes.c_int32 * len(ids))(*ids)
        cap = 16 * len(ids) + 16
        buf = ctypes.create_string_buffer(cap)
        n = self.lib.llama_detokenize(self._vocab, arr, len(ids), buf, cap, False, False)
        if n < 0:
            cap = -n
            buf = ctypes.create_string_buffer(cap)
            n = self.lib.llama_detokenize(self._vocab, arr, len(ids), buf, cap, False, False)
        return buf.raw[:n].decode("utf-8", errors="replace")

    def embed_tokens(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(ids, dtype=torch.long)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
            raise ValueError(f"token id out of range 0..{self.vocab_size - 1}")
        return self._table[t]

    # --- low-level decoding ------------------------------------------------------------------
    def _decode(
        self,
        *,
        embeds: np.ndarray | None = None,
        tokens: np.ndarray | None = None,
        pos: np.ndarray,
        seq: np.ndarray,
        want: np.ndarray,
    ) -> dict[int, np.ndarray]:
        """One ``llama_decode``; returns logits (V,) for each batch row flagged in ``want``."""
        batch = _Batch(
            self.lib, embd=embeds, tokens=tokens, pos=pos.astype(np.int32), seq=seq, logits=want.astype(np.int8)
        )
        rc = self.lib.llama_decode(self._ctx, batch.struct)
        if rc != 0:
            raise _DecodeError(rc)
        out = {}
        for i in np.flatnonzero(want):
            ptr = self.lib.llama_get_logits_ith(self._ctx, int(i))
            out[int(i)] = np.ctypeslib.as_array(ptr, shape=(self.vocab_size,)).copy()
        return out

    def _feed_embeddings(self, jobs: list[tuple[_Slot, torch.Tensor]]) -> dict[int, np.ndarray]:
        """Evaluate each slot's new embeddings after what it holds, chunked by ``n_batch``; one group
        of decodes per adapter setting. Returns the logits after each slot's last new row, by seq id."""
        logits: dict[int, np.ndarray] = {}
        for flag in (False, True):
            group = [(s, e) for s, e in jobs if s.adapted == flag]
            if group:
                self._use_adapter(flag)
                logits.update(self._feed_group(group))
        return logits

    def _feed_group(self, jobs: list[tuple[_Slot, torch.Tensor]]) -> dict[int, np.ndarray]:
        rows_e, rows_pos, rows_seq, rows_last = [], [], [], []
        for slot, new in jobs:
            n = int(new.shape[0])
            start = slot.length
            rows_e.append(new.detach().to(torch.float32).cpu().numpy())
            rows_pos.append(np.arange(start, start + n))
            rows_seq.append(np.full(n, slot.seq_id))
            last = np.zeros(n, dtype=bool)
            last[-1] = True
            rows_last.append(last)
        emb = np.ascontiguousarray(np.concatenate(rows_e), dtype=np.float32)
        pos, seq, last = np.concatenate(rows_pos), np.concatenate(rows_seq), np.concatenate(rows_last)
        logits: dict[int, np.ndarray] = {}
        for a in range(0, len(pos), self.n_batch):
            b = min(a + self.n_batch, len(pos))
            got = self._decode(embeds=np.ascontiguousarray(emb[a:b]), pos=pos[a:b], seq=seq[a:b], want=last[a:b])
            for i, row in got.items():
                logits[int(seq[a + i])] = row
        for slot, new in jobs:  # only after every chunk succeeded does the slot own the new rows
            slot.held = new.detach().clone() if slot.held is None else torch.cat([slot.held, new.detach()])
        return logits

    # --- slots and KV reuse --------------------------------------------------------------------
    def _claim(self, prompts: list[torch.Tensor], adapted: list[bool] | None = None) -> list[tuple[_Slot, int]]:
        """Give each prompt a free slot, preferring the one whose cached prefix it extends the most.

        Returns (slot, rows kept from the cache) per prompt; the cache beyond those rows is dropped.
        A cache computed with the LoRA adapter on is only reused by prompts that want it on, and back.
        """
        adapted = adapted or self.wants_adapter(prompts)
        free = [s for s in self._slots if not s.busy]
        if len(free) < len(prompts):
            busy = len(self._slots) - len(free)
            if busy == 0:
                self._make_context(len(prompts))  # a batch wider than the context: regrow it (caches lost)
                free = list(self._slots)
            else:
                raise BackendUnsupportedError(
                    f"llama.cpp: {len(prompts)} new sequences but only {len(free)} of {len(self._slots)} "
                    "sequence slots are free (others are still decoding); raise n_seq_max"
                )
        scores = sorted(
            (
                (_common_prefix(s.held, p) if s.adapted == adapted[pi] else 0, -s.last_used, si, pi)
                for si, s in enumerate(free)
                for pi, p in enumerate(prompts)
            ),
            reverse=True,
        )
        chosen: dict[int, tuple[_Slot, int]] = {}
        taken: set[int] = set()
        for common, _, si, pi in scores:
            if pi in chosen or si in taken:
                continue
            chosen[pi] = (free[si], common)
            taken.add(si)
        out = []
        for pi, p in enumerate(prompts):
            slot, common = chosen[pi]
            keep = min(common, int(p.shape[0]) - 1)  # at least one row is evaluated, to get logits
            self._truncate(slot, keep)
            slot.adapted = adapted[pi]
            slot.busy = True
            self._clock += 1
            slot.last_used = self._clock
            out.append((slot, keep))
        return out

    def _truncate(self, slot: _Slot, keep: int) -> None:
        """Keep the first ``keep`` rows of a slot; always clears the cache past them (a failed decode
        may have left cells there that ``held`` does not list)."""
        keep = min(keep, slot.length)
        if keep <= 0 or not self.lib.llama_memory_seq_rm(self._mem, slot.seq_id, keep, -1):
            self.lib.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            slot.held = None
            return
        slot.held = slot.held[:keep] if slot.held is not None else None

    def _make_room(self, needed: int, active: list[_Slot]) -> None:
        """Free KV cells for ``needed`` new rows by forgetting idle slots, least recently used first."""
        used = sum(s.length for s in self._slots)
        if used + needed <= self.n_ctx:
            return
        for s in sorted(
            (s for s in self._slots if s not in active and not s.busy and s.length), key=lambda s: s.last_used
        ):
            self._truncate(s, 0)
            used = sum(x.length for x in self._slots)
            if used + needed <= self.n_ctx:
                return

    def reset_cache(self) -> None:
        """Forget every cached prefix (benchmarks measure cold prompt evaluation with this)."""
        with self._lock:
            for s in self._slots:
                if not s.busy:
                    self._truncate(s, 0)

    def cached_prefix(self, prompt: torch.Tensor) -> int:
        """How many leading rows of ``prompt`` a free slot holds already (what a new request would reuse:
        as in ``_claim``, only a cache computed with the same adapter state counts)."""
        adapted = self.wants_adapter([prompt])[0]
        with self._lock:
            best = max(
                (_common_prefix(s.held, prompt) for s in self._slots if not s.busy and s.adapted == adapted), default=0
            )
        return min(best, int(prompt.shape[0]) - 1)

    def cache_lengths(self) -> list[int]:
        """How many rows each sequence slot holds in the KV cache (for tests and the bench)."""
        return [s.length for s in self._slots]

    # --- LoRA adapters -------------------------------------------------------------------------
    def load_peft_lora(
        self, state: dict[str, torch.Tensor], *, alpha: float, media_only: bool = False, cache_dir: Path | None = None
    ) -> Path:
        """Run peft LoRA weights (names as in omnibind checkpoints) as a llama.cpp adapter.

        The adapter is written once as a GGUF (keyed by a hash of the weights) and applied by
        llama.cpp at compute time, so the base GGUF stays unmerged. ``media_only`` mirrors
        ``llm.lora_media_only``: the adapter acts only on sequences that carry soft tokens, i.e.
        whose prompt has a row that is not a word embedding. Returns the adapter file.
        """
        import hashlib

        from omnibind.llm.export_gguf import write_lora_adapter_gguf

        h = hashlib.sha256(f"{self.gguf_path.name}:{alpha}".encode())
        for k in sorted(state):
            h.update(k.encode())
            h.update(state[k].detach().cpu().float().numpy().tobytes())
        if cache_dir is None:
            from omnibind.llm.embedded import cache_root

            cache_dir = cache_root() / "llamacpp-lora"
        path = Path(cache_dir) / f"lora-{h.hexdigest()[:16]}.gguf"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            heads = self._meta_int("attention.head_count")
            kv_heads = self._meta_int("attention.head_count_kv") or heads
            write_lora_adapter_gguf(state, tmp, n_head=heads, n_head_kv=kv_heads, alpha=alpha, arch=self.architecture)
            os.replace(tmp, path)
        with self._lock:
            adapter = self.lib.llama_adapter_lora_init(self._model, str(path).encode())
            if not adapter:
                raise ConfigError(f"{path}: llama.cpp rejected the LoRA adapter built from the checkpoint")
            if self._adapter is not None:
                self.lib.llama_adapter_lora_free(self._adapter)
            self._adapter = adapter
            self._adapter_media_only = media_only
            self._adapter_active = None
            for s in self._slots:  # caches were computed without this adapter
                if not s.busy:
                    self._truncate(s, 0)
        return path

    def _meta_int(self, key: str) -> int:
        buf = ctypes.create_string_buffer(64)
        n = self.lib.llama_model_meta_val_str(self._model, f"{self.architecture}.{key}".encode(), buf, 64)
        return int(buf.value.decode()) if n > 0 else 0

    def wants_adapter(self, prompts: list[torch.Tensor]) -> list[bool]:
        """Whether the LoRA adapter acts on each prompt (all, none, or those with soft tokens)."""
        if self._adapter is None:
            return [False] * len(prompts)
        if not self._adapter_media_only:
            return [True] * len(prompts)
        if getattr(self, "_row_hashes", None) is None:
            self._row_hashes = {hash(r.tobytes()) for r in self._table.numpy()}
        return [
            any(hash(r.tobytes()) not in self._row_hashes for r in p.detach().to(torch.float32).cpu().numpy())
            for p in prompts
        ]

    def _use_adapter(self, on: bool) -> None:
        """Switch the context's adapter (llama.cpp rebuilds its graph only when this changes)."""
        if self._adapter is None or self._adapter_active == on:
            return
        if on:
            arr = (self.lib.llama_adapter_lora_p_ctypes * 1)(self._adapter)
            scales = (ctypes.c_float * 1)(1.0)
            rc = self.lib.llama_set_adapters_lora(self._ctx, arr, 1, scales)
        else:
            rc = self.lib.llama_set_adapters_lora(self._ctx, None, 0, None)
        if rc != 0:
            raise ConfigError(f"llama.cpp could not {'apply' if on else 'remove'} the LoRA adapter (code {rc})")
        self._adapter_active = on

    # --- generation --------------------------------------------------------------------------
    def generate(
        self,
        inputs_embeds: list[torch.Tensor],
        options: GenerationOptions,
        injection: LayerInjection | None = None,
    ) -> Iterator[list[int | None]]:
        if injection is not None:
            raise BackendUnsupportedError(
                "llama.cpp has no per-layer hook for the gated every-layer injection (ImageBind-LLM); "
                "use the transformers backend or a prefix-injection model"
            )
        options.validate()
        if not inputs_embeds:
            raise ValueError("no sequences to decode")
        for e in inputs_embeds:
            if e.ndim != 2 or e.shape[1] != self.hidden_size or e.shape[0] == 0:
                raise ValueError(f"expected (T, {self.hidden_size}) prompt embeddings, got {tuple(e.shape)}")
            if e.shape[0] + 1 > self.n_ctx:
                raise InputTooLargeError(
                    "<prompt>", f"{e.shape[0]} positions do not fit the llama.cpp context of {self.n_ctx}"
                )
        return self._generate(list(inputs_embeds), options)

    def _generate(self, prompts: list[torch.Tensor], options: GenerationOptions) -> Iterator[list[int | None]]:
        gen = torch.Generator(device="cpu")
        if options.seed is not None:
            gen.manual_seed(options.seed)
        else:
            gen.seed()
        with self._lock:
            claimed = self._claim(prompts)
        slots = [s for s, _ in claimed]
        try:
            with self._lock:
                new_rows = sum(int(p.shape[0]) - keep for p, (_, keep) in zip(prompts, claimed))
                self._make_room(new_rows + len(prompts) * options.max_new_tokens, slots)
                jobs = [(s, p[keep:].to(torch.float32)) for p, (s, keep) in zip(prompts, claimed)]
                try:
                    by_seq = self._feed_embeddings(jobs)
                except _DecodeError as e:
                    for s in slots:
                        self._truncate(s, 0)
                    raise InputTooLargeError(
                        "<prompt>", f"llama.cpp could not evaluate the prompt ({e}; context {self.n_ctx} cells)"
                    ) from None
            yield from self._decode_loop(slots, [by_seq[s.seq_id] for s in slots], options, gen)
        finally:
            with self._lock:
                for s in slots:
                    s.busy = False

    def _decode_loop(
        self, slots: list[_Slot], first: list[np.ndarray], options: GenerationOptions, gen: torch.Generator
    ) -> Iterator[list[int | None]]:
        batch = len(slots)
        finished = [False] * batch
        history: list[list[int]] = [[] for _ in range(batch)]
        logits = torch.from_numpy(np.stack(first))
        for _step in range(options.max_new_tokens):
            next_ids = sample_next(logits, history, options, gen, self.eos_token_ids)
            step: list[int | None] = []
            for b in range(batch):
                if finished[b]:
                    step.append(None)
                    continue
                tok = int(next_ids[b])
                history[b].append(tok)
                if tok in self.eos_token_ids:
                    finished[b] = True
                    step.append(None)
                else:
                    step.append(tok)
            if all(s is None for s in step):
                return
            yield step
            live = [b for b in range(batch) if not finished[b]]
            if not live or _step + 1 >= options.max_new_tokens:
                return
            with self._lock:
                try:
                    rows = self._step(slots, live, [history[b][-1] for b in live])
                except _DecodeError:
                    return  # KV cache full: end these sequences as if they reached their length
            fresh = logits.clone()
            for b, row in zip(live, rows):
                fresh[b] = torch.from_numpy(row)
            logits = fresh

    def _step(self, slots: list[_Slot], live: list[int], tokens: list[int]) -> list[np.ndarray]:
        """Feed one sampled token per live sequence (as ids: the same rows ``embed_tokens`` returns)."""
        toks = np.asarray(tokens, dtype=np.int32)
        pos = np.asarray([slots[b].length for b in live], dtype=np.int32)
        seq = np.asarray([slots[b].seq_id for b in live], dtype=np.int32)
        got: dict[int, np.ndarray] = {}
        for flag in (False, True):
            idx = [j for j, b in enumerate(live) if slots[b].adapted == flag]
            if not idx:
                continue
            self._use_adapter(flag)
            part = self._decode(tokens=toks[idx], pos=pos[idx], seq=seq[idx], want=np.ones(len(idx), dtype=bool))
            got.update({idx[k]: v for k, v in part.items()})
        rows = self.embed_tokens(tokens)
        for j, b in enumerate(live):
            s = slots[b]
            s.held = rows[j : j + 1].clone() if s.held is None else torch.cat([s.held, rows[j : j + 1]])
        return [got[j] for j in range(len(live))]

    # --- scoring -------------------------------------------------------------------------------
    @torch.inference_mode()
    def forward_logits(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        injection: LayerInjection | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of right-padded rows (candidate scoring). Not differentiable: inference only.

        Each row is evaluated in a free slot, reusing the prefix it shares with what the slot holds
        (candidates of one question share the whole prompt)."""
        if injection is not None:
            raise BackendUnsupportedError("llama.cpp cannot apply the gated every-layer injection")
        outs: list[torch.Tensor] = []
        with self._lock:
            for b in range(inputs_embeds.shape[0]):
                n = int(attention_mask[b].sum())
                row = inputs_embeds[b, :n].to(torch.float32)
                want = positions[b, :n] if positions is not None else torch.ones(n, dtype=torch.bool)
                outs.append(self._row_logits(row, want.cpu().numpy().astype(bool)))
        if positions is not None:
            return torch.cat(outs) if outs else torch.zeros((0, self.vocab_size))
        full = torch.zeros((inputs_embeds.shape[0], inputs_embeds.shape[1], self.vocab_size))
        for b, o in enumerate(outs):
            full[b, : o.shape[0]] = o
        return full

    def _row_logits(self, row: torch.Tensor, want: np.ndarray) -> torch.Tensor:
        """(n, V) logits at the rows flagged in ``want`` for one sequence of embeddings."""
        first = int(np.argmax(want)) if want.any() else len(want) - 1
        # reuse the cache only up to the first wanted row; the adapter choice looks at the whole row
        ((slot, keep),) = self._claim([row[: first + 1]], self.wants_adapter([row]))
        try:
            self._use_adapter(slot.adapted)
            self._make_room(int(row.shape[0]) - keep, [slot])
            new = row[keep:]
            flags = want[keep:]
            out: list[np.ndarray] = []
            pos0 = keep
            for a in range(0, new.shape[0], self.n_batch):
                b = min(a + self.n_batch, new.shape[0])
                got = self._decode(
                    embeds=np.ascontiguousarray(new[a:b].numpy(), dtype=np.float32),
                    pos=np.arange(pos0 + a, pos0 + b),
                    seq=np.full(b - a, slot.seq_id),
                    want=flags[a:b],
                )
                out.extend(got[i] for i in sorted(got))
                slot.held = row[: keep + b].clone()
            return torch.from_numpy(np.stack(out)) if out else torch.zeros((0, self.vocab_size))
        finally:
            slot.busy = False


class _DecodeError(RuntimeError):
    """``llama_decode`` failed (1: no room in the KV cache; negative: a hard error)."""

    def __init__(self, rc: int):
        super().__init__(f"llama_decode returned {rc}")
        self.rc = rc


def _common_prefix(held: torch.Tensor | None, prompt: torch.Tensor) -> int:
    """How many leading rows of ``prompt`` equal (exactly) the rows a slot holds."""
    if held is None:
        return 0
    n = min(int(held.shape[0]), int(prompt.shape[0]))
    if n == 0:
        return 0
    same = (held[:n] == prompt[:n].to(held.dtype)).all(dim=1)
    if bool(same.all()):
        return n
    return int(torch.argmin(same.to(torch.int8)))


def load_model(name_or_path: str | Path | None = None, *, device: str = "cpu", source: str | None = None) -> Any:
    """``omnibind.load(name_or_path, backend="llamacpp")``, optionally on another GGUF.

    ``source`` replaces the config's GGUF (e.g. an f32 export of the same base weights; the check
    that the checkpoint was trained on that base is then skipped). LoRA checkpoints need nothing
    special: ``omnibind.load`` turns their LoRA weights into a llama.cpp adapter (see
    ``build_with_adapter``).
    """
    import omnibind

    if source is None:
        return omnibind.load(name_or_path, backend="llamacpp", device=device)
    return omnibind.load(
        name_or_path,
        backend="llamacpp",
        device=device,
        config_overrides={"llm": {"source": source}},
        verify_base=False,
    )


def build_with_adapter(config: Any, weights_dir: Path | None, *, device: str = "cpu", verify_base: bool = True) -> Any:
    """An ``OmnibindModel`` on llama.cpp for a config with LoRA: the checkpoint's LoRA weights become
    a llama.cpp adapter over the unmerged base GGUF (honouring ``llm.lora_media_only``).

    peft cannot wrap llama.cpp, so the model is built without LoRA and the adapter goes to
    llama.cpp. Without weights (a preset) the LoRA is untrained (B = 0, no effect): none is made.
    """
    from omnibind.checkpoint import WEIGHTS_FILE, llm_fingerprint, read_manifest, sha256_file
    from omnibind.errors import CheckpointError
    from omnibind.model import OmnibindModel

    lora = config.llm.lora
    config.llm.lora = None  # the model must not wrap llama.cpp with peft
    try:
        core = OmnibindModel(config, device=device)
    finally:
        config.llm.lora = lora
    if weights_dir is None:
        return core
    folder = Path(weights_dir)
    manifest = read_manifest(folder)
    wpath = folder / WEIGHTS_FILE
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    if sha256_file(wpath) != manifest.get("weights_sha256"):
        raise CheckpointError(f"{wpath}: hash does not match the manifest (corrupt or replaced file)")
    want = manifest.get("base_llm", {}).get("fingerprint")
    have = llm_fingerprint(config.llm.source)
    if verify_base and want not in (None, "unknown") and have != "unknown" and want != have:
        raise CheckpointError(f"{folder}: trained on base LLM {want}, but {config.llm.source} is {have}")
    from safetensors.torch import load_file

    state = load_file(str(wpath))
    core.load_trainable_state_dict({k: v for k, v in state.items() if not k.startswith("llm.")})
    lora_state = {k: v for k, v in state.items() if k.startswith("llm.")}
    if lora is not None and lora_state:
        core.llm.load_peft_lora(
            lora_state, alpha=float(lora.alpha), media_only=bool(getattr(config.llm, "lora_media_only", False))
        )
    return core
