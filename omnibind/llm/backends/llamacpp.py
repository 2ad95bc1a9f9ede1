"""llama.cpp backend: a GGUF model driven by input embeddings, through llama-cpp-python's C API.

Why this shape:

* Soft modality tokens are not token ids, so prompts go to ``llama_decode`` as a batch of input
  *embeddings* (``llama_batch.embd``). Text tokens are embedded with the GGUF's own token table
  (``gguf_io.read_token_embeddings``, bit-identical to llama.cpp's ``get_rows``), so a prompt
  fed as embeddings gives the same logits as the same prompt fed as ids (tested).
* Several conversations decode together, one llama.cpp sequence id each, one ``llama_decode`` per
  step for all of them (what the server's batching needs).
* KV-cache reuse across turns: every llama.cpp sequence remembers the exact embeddings it holds in
  the cache (``llamacpp_batch.KVSequences``). A new prompt that extends a sequence's content (the
  next turn of a chat) only evaluates the new suffix; the comparison is on embeddings, so soft
  tokens are reused only when they are identical.
* Sampling reuses ``omnibind.llm.sampling.sample_next`` on llama.cpp's logits, so the options
  (greedy, temperature, top-p/top-k, repetition penalty, seed) behave exactly as on transformers.

The gated every-layer injection (ImageBind-LLM) needs hooks inside each decoder layer, which
llama.cpp does not offer: such a model is refused with ``BackendUnsupportedError``.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from omnibind.atomic import atomic_file
from omnibind.errors import BackendUnsupportedError, ConfigError, InputTooLargeError
from omnibind.llm.backends.base import LLM_BACKENDS, GenerationOptions, LayerInjection, LLMBackend
from omnibind.llm.backends.llamacpp_batch import (
    INSTALL_HINT,
    DecodeError,
    KVSequence,
    KVSequences,
    LlamaBatch,
    llama_lib,
)
from omnibind.llm.decoding import decode_steps
from omnibind.llm.embedded import cache_root
from omnibind.llm.gguf_io import read_token_embeddings, write_lora_adapter_gguf
from omnibind.llm.sources import resolve_gguf

if TYPE_CHECKING:
    from omnibind.llm.backends.llamacpp_continuous import ContinuousBatch

__all__ = ["INSTALL_HINT", "LlamaCppBackend"]

# llama.cpp multiplies *token* inputs of these architectures by sqrt(hidden) inside the graph but
# leaves raw embedding inputs alone, so embed_tokens applies that scale itself (as transformers does).
_SCALED_INPUT_ARCHS = ("gemma", "gemma2", "gemma3", "gemma3n")


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
        self.lib = llama_lib()
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

    @property
    def context_length(self) -> int | None:
        """The context's cells: the KV cache is unified, so one sequence may use all of them."""
        return getattr(self, "n_ctx", None)

    def _make_context(self, n_seq_max: int) -> None:
        """(Re)create the context: one unified KV cache of ``n_ctx`` cells shared by ``n_seq_max`` sequences."""
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
        p.kv_unified = True  # any one sequence may use the whole context (long chats beside idle ones)
        p.no_perf = True
        ctx = lib.llama_init_from_model(self._model, p)
        if not ctx:
            raise ConfigError(f"{self.gguf_path}: llama.cpp could not create a context (n_ctx={p.n_ctx})")
        self._ctx = ctx
        self._adapter_active = None
        self.n_ctx = int(lib.llama_n_ctx(ctx))
        self._seqs = KVSequences(lib, lib.llama_get_memory(ctx), n_seq_max, self.n_ctx)

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
        batch = LlamaBatch(
            self.lib, embd=embeds, tokens=tokens, pos=pos.astype(np.int32), seq=seq, logits=want.astype(np.int8)
        )
        rc = self.lib.llama_decode(self._ctx, batch.struct)
        if rc != 0:
            raise DecodeError(rc)
        out = {}
        for i in np.flatnonzero(want):
            ptr = self.lib.llama_get_logits_ith(self._ctx, int(i))
            out[int(i)] = np.ctypeslib.as_array(ptr, shape=(self.vocab_size,)).copy()
        return out

    def _feed_embeddings(self, jobs: list[tuple[KVSequence, torch.Tensor]]) -> dict[int, np.ndarray]:
        """Evaluate each sequence's new embeddings after what it holds, chunked by ``n_batch``; one group
        of decodes per adapter setting. Returns the logits after each sequence's last new row, by seq id."""
        logits: dict[int, np.ndarray] = {}
        for flag in (False, True):
            group = [(s, e) for s, e in jobs if s.adapted == flag]
            if group:
                self._use_adapter(flag)
                logits.update(self._feed_group(group))
        return logits

    def _feed_group(self, jobs: list[tuple[KVSequence, torch.Tensor]]) -> dict[int, np.ndarray]:
        rows_e, rows_pos, rows_seq, rows_last = [], [], [], []
        for kv, new in jobs:
            n = int(new.shape[0])
            start = kv.length
            rows_e.append(new.detach().to(torch.float32).cpu().numpy())
            rows_pos.append(np.arange(start, start + n))
            rows_seq.append(np.full(n, kv.seq_id))
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
        for kv, new in jobs:  # only after every chunk succeeded does the sequence own the new rows
            kv.held = new.detach().clone() if kv.held is None else torch.cat([kv.held, new.detach()])
        return logits

    # --- KV-cache sequences and reuse ------------------------------------------------------------
    def _claim(self, prompts: list[torch.Tensor], adapted: list[bool] | None = None) -> list[tuple[KVSequence, int]]:
        """Give each prompt a free sequence (see ``KVSequences.claim``); a batch wider than the context
        regrows it when nothing else is decoding (the caches are lost then)."""
        adapted = adapted or self.wants_adapter(prompts)
        free = self._seqs.free()
        if len(free) < len(prompts):
            total = len(self._seqs.all)
            if len(free) == total:
                self._make_context(len(prompts))
            else:
                raise BackendUnsupportedError(
                    f"llama.cpp: {len(prompts)} new sequences but only {len(free)} of {total} "
                    "sequences are free (others are still decoding); raise n_seq_max"
                )
        return self._seqs.claim(prompts, adapted)

    def reserve_sequences(self, n: int) -> None:
        """Make sure the context has at least ``n`` sequence ids (regrows it, losing the caches,
        only when nothing is decoding)."""
        with self._lock:
            if len(self._seqs.all) >= n:
                return
            if len(self._seqs.free()) != len(self._seqs.all):
                raise BackendUnsupportedError(f"llama.cpp: cannot grow to {n} sequences while others are decoding")
            self._make_context(n)

    def continuous(self, *, max_sequences: int = 8, chunk_tokens: int = 64) -> ContinuousBatch:
        """A continuous-batching step engine on this context (see ``llamacpp_continuous``)."""
        from omnibind.llm.backends.llamacpp_continuous import ContinuousBatch

        return ContinuousBatch(self, max_sequences=max_sequences, chunk_tokens=chunk_tokens)

    def reset_cache(self) -> None:
        """Forget every cached prefix (benchmarks measure cold prompt evaluation with this)."""
        with self._lock:
            self._seqs.forget_idle()

    def cached_prefix(self, prompt: torch.Tensor) -> int:
        """How many leading rows of ``prompt`` a free sequence holds already (what a new request would
        reuse: as in ``_claim``, only a cache computed with the same adapter state counts)."""
        adapted = self.wants_adapter([prompt])[0]
        with self._lock:
            return self._seqs.cached_prefix(prompt, adapted)

    def cache_lengths(self) -> list[int]:
        """How many rows each llama.cpp sequence holds in the KV cache (for tests and the bench)."""
        return self._seqs.lengths()

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
        h = hashlib.sha256(f"{self.gguf_path.name}:{alpha}".encode())
        for k in sorted(state):
            h.update(k.encode())
            h.update(state[k].detach().cpu().float().numpy().tobytes())
        folder = Path(cache_dir) if cache_dir is not None else cache_root() / "llamacpp-lora"
        path = folder / f"lora-{h.hexdigest()[:16]}.gguf"
        if not path.is_file():
            heads = self._meta_int("attention.head_count")
            kv_heads = self._meta_int("attention.head_count_kv") or heads
            with atomic_file(path) as tmp:
                write_lora_adapter_gguf(
                    state, tmp, n_head=heads, n_head_kv=kv_heads, alpha=alpha, arch=self.architecture
                )
        with self._lock:
            adapter = self.lib.llama_adapter_lora_init(self._model, str(path).encode())
            if not adapter:
                raise ConfigError(f"{path}: llama.cpp rejected the LoRA adapter built from the checkpoint")
            if self._adapter is not None:
                self.lib.llama_adapter_lora_free(self._adapter)
            self._adapter = adapter
            self._adapter_media_only = media_only
            self._adapter_active = None
            self._seqs.forget_idle()  # caches were computed without this adapter
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
        with self._lock:
            claimed = self._claim(prompts)
        seqs = [s for s, _ in claimed]
        try:
            with self._lock:
                new_rows = sum(int(p.shape[0]) - keep for p, (_, keep) in zip(prompts, claimed))
                self._seqs.make_room(new_rows + len(prompts) * options.max_new_tokens, seqs)
                jobs = [(s, p[keep:].to(torch.float32)) for p, (s, keep) in zip(prompts, claimed)]
                try:
                    by_seq = self._feed_embeddings(jobs)
                except DecodeError as e:
                    for s in seqs:
                        self._seqs.truncate(s, 0)
                    raise InputTooLargeError(
                        "<prompt>", f"llama.cpp could not evaluate the prompt ({e}; context {self.n_ctx} cells)"
                    ) from None
            logits = torch.from_numpy(np.stack([by_seq[s.seq_id] for s in seqs]))

            def advance(history: list[list[int]], live: list[int]) -> torch.Tensor | None:
                nonlocal logits
                with self._lock:
                    try:
                        rows = self._step(seqs, live, [history[b][-1] for b in live])
                    except DecodeError:
                        return None  # KV cache full: end these sequences as if they reached their length
                fresh = logits.clone()  # finished rows keep their last logits (they are not sampled)
                for b, row in zip(live, rows):
                    fresh[b] = torch.from_numpy(row)
                logits = fresh
                return fresh

            yield from decode_steps(logits, options, self.eos_token_ids, advance, detokenize=self.detokenize)
        finally:
            with self._lock:
                for s in seqs:
                    s.busy = False

    def _step(self, seqs: list[KVSequence], live: list[int], tokens: list[int]) -> list[np.ndarray]:
        """Feed one sampled token per live sequence (as ids: the same rows ``embed_tokens`` returns)."""
        toks = np.asarray(tokens, dtype=np.int32)
        pos = np.asarray([seqs[b].length for b in live], dtype=np.int32)
        seq = np.asarray([seqs[b].seq_id for b in live], dtype=np.int32)
        got: dict[int, np.ndarray] = {}
        for flag in (False, True):
            idx = [j for j, b in enumerate(live) if seqs[b].adapted == flag]
            if not idx:
                continue
            self._use_adapter(flag)
            part = self._decode(tokens=toks[idx], pos=pos[idx], seq=seq[idx], want=np.ones(len(idx), dtype=bool))
            got.update({idx[k]: v for k, v in part.items()})
        rows = self.embed_tokens(tokens)
        for j, b in enumerate(live):
            s = seqs[b]
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

        Each row is evaluated in a free sequence, reusing the prefix it shares with what that holds
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
        ((kv, keep),) = self._claim([row[: first + 1]], self.wants_adapter([row]))
        try:
            self._use_adapter(kv.adapted)
            self._seqs.make_room(int(row.shape[0]) - keep, [kv])
            new = row[keep:]
            flags = want[keep:]
            out: list[np.ndarray] = []
            pos0 = keep
            for a in range(0, new.shape[0], self.n_batch):
                b = min(a + self.n_batch, new.shape[0])
                got = self._decode(
                    embeds=np.ascontiguousarray(new[a:b].numpy(), dtype=np.float32),
                    pos=np.arange(pos0 + a, pos0 + b),
                    seq=np.full(b - a, kv.seq_id),
                    want=flags[a:b],
                )
                out.extend(got[i] for i in sorted(got))
                kv.held = row[: keep + b].clone()
            return torch.from_numpy(np.stack(out)) if out else torch.zeros((0, self.vocab_size))
        finally:
            kv.busy = False
