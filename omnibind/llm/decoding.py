"""The decode loop both backends share: seeding, sampling, end-of-sequence bookkeeping.

A backend supplies the logits after the prompt and an ``advance`` callback that feeds the sampled
tokens and returns the next logits; this loop decides which sequences have finished, so EOS, seed
and ``max_new_tokens`` behave identically on transformers and llama.cpp. Per-row controls
(``GenerationOptions.rows``: constrained output, own seed, OpenAI penalties, logprobs) are applied
here too, so both backends get them from one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from omnibind.llm.backends.base import GenerationOptions, RowOptions, TokenLogprob
from omnibind.llm.constrained import Grammar, TokenConstraint, grammar_for_response_format, vocabulary_for
from omnibind.llm.sampling import apply_openai_penalties, sample_next, top_logprobs

Advance = Callable[[list[list[int]], list[int]], "torch.Tensor | None"]
"""``advance(history, live)`` → the next (B, V) logits after feeding each live row's last token
(``history[b][-1]``; finished rows may be fed too), or None to end every sequence now."""
Detokenize = Callable[[list[int]], str]


def seeded_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed``, or from fresh entropy when it is None."""
    gen = torch.Generator(device="cpu")
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    return gen


class RowControls:
    """One sequence's controls at run time (see ``RowOptions``)."""

    def __init__(
        self,
        spec: RowOptions | None,
        options: GenerationOptions,
        batch_grammar: Grammar | None,
        detokenize: Detokenize | None,
        vocab_size: int,
        eos: set[int],
    ):
        self.spec = spec
        self.presence = options.presence_penalty
        self.frequency = options.frequency_penalty
        grammar = batch_grammar
        self.generator: torch.Generator | None = None
        self.top: int | None = None
        if spec is not None:
            if spec.presence_penalty is not None:
                self.presence = spec.presence_penalty
            if spec.frequency_penalty is not None:
                self.frequency = spec.frequency_penalty
            if spec.grammar is not None:
                grammar = spec.grammar
            if spec.seed is not None:
                self.generator = seeded_generator(spec.seed)
            self.top = spec.top_logprobs
        self.constraint: TokenConstraint | None = None
        if grammar is not None:
            if detokenize is None:
                raise ValueError("constrained decoding needs the backend's detokenize")
            self.constraint = TokenConstraint(grammar, vocabulary_for(detokenize, vocab_size), eos)
        self.detokenize = detokenize

    @property
    def plain(self) -> bool:
        return self.constraint is None and self.top is None and self.presence == 0 and self.frequency == 0

    def record(self, token: int, lp: torch.Tensor, top: list[tuple[int, float]]) -> None:
        assert self.spec is not None and self.detokenize is not None
        text = self.detokenize
        self.spec.logprobs.append(
            TokenLogprob(token, text([token]), float(lp[token]), [(i, text([i]), v) for i, v in top])
        )


def decode_steps(
    logits: torch.Tensor,
    options: GenerationOptions,
    eos_token_ids: set[int],
    advance: Advance,
    generator: torch.Generator | None = None,
    detokenize: Detokenize | None = None,
) -> Iterator[list[int | None]]:
    """Yield one list per step: each sequence's new token id, or None once it has finished.

    A sequence finishes on an end-of-sequence token (not yielded) or after ``max_new_tokens``;
    ``advance`` is not called after the last step, nor once every sequence has finished.
    ``detokenize`` (the backend's) is needed for constrained rows and logprobs.
    """
    gen = generator if generator is not None else seeded_generator(options.seed)
    batch = int(logits.shape[0])
    specs = list(options.rows or [])
    if specs and len(specs) != batch:
        raise ValueError(f"{len(specs)} row options for a batch of {batch}")
    batch_grammar = grammar_for_response_format(options.response_format)
    vocab = int(logits.shape[-1])
    rows = [
        RowControls(specs[b] if specs else None, options, batch_grammar, detokenize, vocab, eos_token_ids)
        for b in range(batch)
    ]
    special = [b for b in range(batch) if not rows[b].plain]
    own_gen = [b for b in range(batch) if rows[b].generator is not None]
    finished = [False] * batch
    history: list[list[int]] = [[] for _ in range(batch)]
    for step_index in range(options.max_new_tokens):
        logits = logits.float()
        recorded: dict[int, tuple[torch.Tensor, list[tuple[int, float]]]] = {}
        if special:
            logits = logits.clone()
            for b in special:
                if finished[b]:
                    continue
                r = rows[b]
                if r.top is not None:
                    recorded[b] = top_logprobs(logits[b], r.top)
                apply_openai_penalties(logits[b], history[b], r.presence, r.frequency)
                if r.constraint is not None:
                    mask = torch.from_numpy(r.constraint.mask()).to(logits.device)
                    logits[b] = logits[b].masked_fill(~mask[: logits.shape[-1]], float("-inf"))
        next_ids = sample_next(logits, history, options, gen, eos_token_ids)
        for b in own_gen:  # a seeded row samples from its own stream: independent of its batch-mates
            if not finished[b]:
                next_ids[b] = sample_next(logits[b : b + 1], [history[b]], options, rows[b].generator, eos_token_ids)[0]
        step: list[int | None] = []
        for b in range(batch):
            if finished[b]:
                step.append(None)
                continue
            tok = int(next_ids[b])
            history[b].append(tok)
            if tok in eos_token_ids:
                finished[b] = True
                step.append(None)
                continue
            if b in recorded:
                rows[b].record(tok, *recorded[b])
            if rows[b].constraint is not None:
                rows[b].constraint.accept(tok)
            step.append(tok)
        if all(s is None for s in step):
            return
        yield step
        live = [b for b in range(batch) if not finished[b]]
        if not live or step_index + 1 >= options.max_new_tokens:
            return
        nxt = advance(history, live)
        if nxt is None:
            return
        logits = nxt
