"""Next-token selection shared by backends that produce logits in torch.

The order per step (``decoding.decode_steps`` drives it): the model's log-probabilities are
recorded first (what ``logprobs`` reports), then presence / frequency penalties (OpenAI's), the
constraint mask (``llm/constrained.py``), repetition penalty, and greedy or temperature /
top-k / top-p sampling.
"""

from __future__ import annotations

from collections import Counter

import torch

from omnibind.llm.backends.base import GenerationOptions


def apply_openai_penalties(logits: torch.Tensor, seen: list[int], presence: float, frequency: float) -> None:
    """In place on one (V,) row: ``logit -= presence * (count > 0) + frequency * count`` (OpenAI's formula)."""
    if not seen or (presence == 0 and frequency == 0):
        return
    counts = Counter(seen)
    idx = torch.tensor(list(counts), device=logits.device)
    n = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
    logits[idx] -= presence + frequency * n


def top_logprobs(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, list[tuple[int, float]]]:
    """One (V,) row → its log-softmax and the ``k`` most likely (id, logprob)."""
    lp = torch.log_softmax(logits.float(), dim=-1)
    if k <= 0:
        return lp, []
    vals, ids = torch.topk(lp, min(k, lp.shape[-1]))
    return lp, [(int(i), float(v)) for i, v in zip(ids, vals)]


def sample_next(
    logits: torch.Tensor,
    history: list[list[int]],
    options: GenerationOptions,
    generator: torch.Generator,
    eos_ids: set[int] | None = None,
) -> torch.Tensor:
    """(B, V) logits → (B,) token ids: repetition penalty, then greedy or temperature/top-k/top-p sampling.
    With ``options.ignore_eos`` the ``eos_ids`` can never be chosen."""
    logits = logits.clone()
    if options.ignore_eos and eos_ids:
        logits[:, sorted(eos_ids)] = float("-inf")
    if options.repetition_penalty != 1.0:
        for b, seen in enumerate(history):
            if seen:
                idx = torch.tensor(sorted(set(seen)), device=logits.device)
                vals = logits[b, idx]
                logits[b, idx] = torch.where(
                    vals > 0, vals / options.repetition_penalty, vals * options.repetition_penalty
                )
    if options.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / options.temperature
    if options.top_k > 0:
        k = min(options.top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the mass before it already reaches top_p (the first token always stays)
        drop = probs.cumsum(dim=-1) - probs >= options.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)
