"""The decode loop both backends share: seeding, sampling, end-of-sequence bookkeeping.

A backend supplies the logits after the prompt and an ``advance`` callback that feeds the sampled
tokens and returns the next logits; this loop decides which sequences have finished, so EOS, seed
and ``max_new_tokens`` behave identically on transformers and llama.cpp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from omnibind.llm.backends.base import GenerationOptions
from omnibind.llm.sampling import sample_next

Advance = Callable[[list[list[int]], list[int]], "torch.Tensor | None"]
"""``advance(history, live)`` → the next (B, V) logits after feeding each live row's last token
(``history[b][-1]``; finished rows may be fed too), or None to end every sequence now."""


def seeded_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed``, or from fresh entropy when it is None."""
    gen = torch.Generator(device="cpu")
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    return gen


def decode_steps(
    logits: torch.Tensor,
    options: GenerationOptions,
    eos_token_ids: set[int],
    advance: Advance,
    generator: torch.Generator | None = None,
) -> Iterator[list[int | None]]:
    """Yield one list per step: each sequence's new token id, or None once it has finished.

    A sequence finishes on an end-of-sequence token (not yielded) or after ``max_new_tokens``;
    ``advance`` is not called after the last step, nor once every sequence has finished.
    """
    gen = generator if generator is not None else seeded_generator(options.seed)
    batch = int(logits.shape[0])
    finished = [False] * batch
    history: list[list[int]] = [[] for _ in range(batch)]
    for step_index in range(options.max_new_tokens):
        next_ids = sample_next(logits.float(), history, options, gen, eos_token_ids)
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
            else:
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
