"""Continuous batching on llama.cpp: sequences join and leave one running batch between decode steps.

``ContinuousBatch`` is the step engine under the server's continuous scheduler
(``omnibind.serve.scheduler``). Each request owns one llama.cpp sequence id and its KV cells
(``KVSequence``). Every ``step()`` is ONE ``llama_decode`` (one per LoRA-adapter setting) that
holds, side by side:

* one row per decoding sequence: the token it sampled last step, fed as its embedding row
  (the GGUF's own token table, bit-identical to llama.cpp's ``get_rows``), and
* up to ``chunk_tokens`` rows of the prompts still being evaluated, oldest newcomer first
  (chunked prefill), so a long prompt costs the running streams at most one chunk per step.

Rows of different sequences never attend to each other (their sequence ids differ), and every
sequence samples from its own logits with its own options and its own seeded generator, so
greedy answers equal one-at-a-time answers and mixed sampling options share a batch.

KV cells are reserved at admission (prompt + ``max_new_tokens``, capped at the context), so a
running sequence never finds the cache full. ``release`` frees a sequence at once: a finished one
stays as a reclaimable prefix cache (the next turn of the chat reuses it; a newcomer evicts it,
least recently used first, when it needs the room); a cancelled, expired or failed one is wiped.

The caller drives it from one thread; the backend's lock is held around each call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from omnibind.errors import InputTooLargeError
from omnibind.llm.backends.base import GenerationOptions, check_prompt_budget
from omnibind.llm.backends.llamacpp_batch import DecodeError, KVSequence
from omnibind.llm.decoding import seeded_generator
from omnibind.llm.sampling import sample_next

if TYPE_CHECKING:
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

_ids = itertools.count(1)


class KVCacheFullError(InputTooLargeError):
    """llama.cpp found no free KV cells for a prompt chunk (the context is shared by every sequence)."""


@dataclass(eq=False)
class StepSequence:
    """One request inside a ``ContinuousBatch``: its sequence, prompt progress and sampling state."""

    kv: KVSequence
    prompt: torch.Tensor | None  # (T, H) float32; dropped once evaluated or released
    prompt_len: int
    fed: int  # prompt rows in the KV cache (a reused prefix counts)
    options: GenerationOptions
    max_new: int  # max_new_tokens, capped so prompt + answer fit the context
    reserve: int  # KV cells reserved for this sequence
    generator: torch.Generator
    adapted: bool
    history: list[int] = field(default_factory=list)
    pending: int | None = None  # sampled last step, not fed yet
    done: bool = False
    finish_reason: str | None = None  # "stop" | "length" once done
    reused: int = 0  # prompt rows taken from the prefix cache
    controls: Any = None  # decoding.RowControls: constraint, penalties, logprobs, own seed (None = plain)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def prefilling(self) -> bool:
        return self.fed < self.prompt_len


class ContinuousBatch:
    """Sequences decoding together on one llama.cpp context; ``add`` and ``release`` between steps."""

    def __init__(self, backend: LlamaCppBackend, *, max_sequences: int = 8, chunk_tokens: int = 64):
        if chunk_tokens < 1:
            raise ValueError("chunk_tokens must be >= 1")
        self.backend = backend
        self.max_sequences = max(1, int(max_sequences))
        backend.reserve_sequences(self.max_sequences)
        # one step's rows (a chunk + a row per decoding sequence) must fit one llama_batch
        self.chunk_tokens = max(1, min(int(chunk_tokens), backend.n_batch - self.max_sequences))
        self.active: list[StepSequence] = []
        self.steps = 0
        self.rows = 0  # rows fed over all steps (prefill + decode)

    # --- admission -------------------------------------------------------------------------
    @property
    def reserved(self) -> int:
        """KV cells reserved by the active sequences."""
        return sum(s.reserve for s in self.active)

    def fits(self, prompt_len: int, max_new_tokens: int) -> bool:
        """Whether a sequence of this size can join now (a free sequence id and enough KV cells)."""
        need = min(prompt_len + max_new_tokens, self.backend.n_ctx)
        return len(self.active) < self.max_sequences and self.reserved + need <= self.backend.n_ctx

    def add(self, prompt: torch.Tensor, options: GenerationOptions) -> StepSequence | None:
        """Join the batch with ``prompt`` (T, H) embeddings; None when there is no room right now
        (retry after someone leaves). Raises ``PromptTooLongError`` when it could never fit."""
        b = self.backend
        options.validate()
        n = int(prompt.shape[0])
        if prompt.ndim != 2 or prompt.shape[1] != b.hidden_size or n == 0:
            raise ValueError(f"expected (T, {b.hidden_size}) prompt embeddings, got {tuple(prompt.shape)}")
        check_prompt_budget(n, options, b.n_ctx)  # PromptTooLongError: it could never fit
        if not self.fits(n, options.max_new_tokens):
            return None
        prompt = prompt.detach().to(torch.float32)
        with b._lock:
            adapted = b.wants_adapter([prompt])[0]
            ((kv, keep),) = b._claim([prompt], [adapted])
        max_new = min(options.max_new_tokens, b.n_ctx - n)
        seq = StepSequence(
            kv=kv,
            prompt=prompt,
            prompt_len=n,
            fed=keep,
            options=options,
            max_new=max_new,
            reserve=n + max_new,
            generator=seeded_generator(options.seed),
            adapted=adapted,
            reused=keep,
        )
        if options.rows or options.response_format or options.presence_penalty or options.frequency_penalty:
            from omnibind.llm.constrained import grammar_for_response_format
            from omnibind.llm.decoding import RowControls

            spec = options.rows[0] if options.rows else None
            grammar = grammar_for_response_format(options.response_format)
            ctl = RowControls(spec, options, grammar, b.detokenize, b.vocab_size, b.eos_token_ids)
            if not ctl.plain or ctl.generator is not None:
                seq.controls = ctl
                if ctl.generator is not None:
                    seq.generator = ctl.generator
        self.active.append(seq)
        return seq

    def release(self, seq: StepSequence, *, keep_cache: bool) -> None:
        """Take ``seq`` out of the batch now. ``keep_cache``: leave its cells as a reusable prefix
        (a finished answer); otherwise wipe them (cancelled, expired, failed)."""
        if seq in self.active:
            self.active.remove(seq)
        with self.backend._lock:
            if not keep_cache or seq.prefilling:
                self.backend._seqs.truncate(seq.kv, 0)
            seq.kv.busy = False
        seq.prompt = None
        seq.done = True

    # --- one step --------------------------------------------------------------------------
    def step(self) -> list[tuple[StepSequence, int | None]]:
        """One decode for every active sequence: returns ``(sequence, token)`` for each sequence
        that sampled a token this step; token None means it ended on EOS. A sequence is ``done``
        after EOS or ``max_new`` tokens; the caller then ``release``s it. Sequences whose prompt
        chunk could not be evaluated raise nothing here: they come back in ``failed``."""
        b = self.backend
        self.failed: list[tuple[StepSequence, Exception]] = []
        plan: list[tuple[StepSequence, torch.Tensor, bool]] = []  # (seq, rows, logits wanted at the last row)
        for s in self.active:
            if not s.done and not s.prefilling and s.pending is not None:
                plan.append((s, b.embed_tokens([s.pending]), True))
        budget = self.chunk_tokens
        for s in self.active:
            if budget <= 0:
                break
            if s.done or not s.prefilling or s.prompt is None:
                continue
            n = min(budget, s.prompt_len - s.fed)
            plan.append((s, s.prompt[s.fed : s.fed + n], s.fed + n == s.prompt_len))
            budget -= n
        if not plan:
            return []
        with b._lock:
            b._seqs.make_room(sum(int(r.shape[0]) for _, r, _ in plan), [s.kv for s in self.active])
            logits: dict[int, np.ndarray] = {}
            for flag in (False, True):
                group = [p for p in plan if p[0].adapted == flag]
                if group:
                    b._use_adapter(flag)
                    logits.update(self._feed(group))
        self.steps += 1
        out: list[tuple[StepSequence, int | None]] = []
        for s, _, _ in plan:
            row = logits.get(s.id)
            if row is None or s.done:
                continue
            if not s.prefilling:
                s.prompt = None  # the prompt lives in the KV cache now
            out.append((s, self._sample(s, row)))
        return out

    def _feed(self, group: list[tuple[StepSequence, torch.Tensor, bool]]) -> dict[int, np.ndarray]:
        """Decode one group's rows; on a full cache retry without the prefill chunks (they fail)."""
        try:
            return self._decode(group)
        except DecodeError as e:
            chunks = [p for p in group if p[0].prefilling]
            for s, _, _ in chunks:
                self.failed.append(
                    (s, KVCacheFullError("<prompt>", f"llama.cpp has no free KV cells for the prompt ({e})"))
                )
            rest = [p for p in group if not p[0].prefilling]
            if not rest or not chunks:
                for s, _, _ in rest:  # nothing left to drop: end as if they reached their length
                    s.done, s.finish_reason = True, "length"
                return {}
            try:
                return self._decode(rest)
            except DecodeError:
                for s, _, _ in rest:
                    s.done, s.finish_reason = True, "length"
                return {}

    def _decode(self, group: list[tuple[StepSequence, torch.Tensor, bool]]) -> dict[int, np.ndarray]:
        b = self.backend
        emb = np.ascontiguousarray(torch.cat([r for _, r, _ in group]).numpy(), dtype=np.float32)
        pos = np.concatenate([np.arange(s.kv.length, s.kv.length + r.shape[0]) for s, r, _ in group])
        seq = np.concatenate([np.full(r.shape[0], s.kv.seq_id) for s, r, _ in group])
        want = np.zeros(len(pos), dtype=bool)
        ends = np.cumsum([int(r.shape[0]) for _, r, _ in group]) - 1
        for (_, _, w), end in zip(group, ends):
            want[end] = w
        got = b._decode(embeds=emb, pos=pos, seq=seq, want=want)
        self.rows += len(pos)
        out: dict[int, np.ndarray] = {}
        for (s, r, w), end in zip(group, ends):
            # only after the decode succeeded does the sequence own the new rows
            s.kv.held = r.clone() if s.kv.held is None else torch.cat([s.kv.held, r])
            if s.prefilling:
                s.fed += int(r.shape[0])
            else:
                s.pending = None
            if w:
                out[s.id] = got[int(end)]
        return out

    def _sample(self, s: StepSequence, row: np.ndarray) -> int | None:
        """Next token from this sequence's own logits, options and generator (as ``decode_steps``)."""
        eos = self.backend.eos_token_ids
        logits = torch.from_numpy(row)[None].float()
        ctl, recorded = s.controls, None
        if ctl is not None and not ctl.plain:  # the same per-row steps as decoding.decode_steps
            from omnibind.llm.sampling import apply_openai_penalties, top_logprobs

            if ctl.top is not None:
                recorded = top_logprobs(logits[0], ctl.top)
            apply_openai_penalties(logits[0], s.history, ctl.presence, ctl.frequency)
            if ctl.constraint is not None:
                mask = torch.from_numpy(ctl.constraint.mask())
                logits[0] = logits[0].masked_fill(~mask[: logits.shape[-1]], float("-inf"))
        tok = int(sample_next(logits, [s.history], s.options, s.generator, eos)[0])
        if ctl is not None and tok not in eos:
            if recorded is not None:
                ctl.record(tok, *recorded)
            if ctl.constraint is not None:
                ctl.constraint.accept(tok)
        s.history.append(tok)
        if tok in eos:
            s.done, s.finish_reason = True, "stop"
            return None
        if len(s.history) >= s.max_new:
            s.done, s.finish_reason = True, "length"
        else:
            s.pending = tok
        return tok
