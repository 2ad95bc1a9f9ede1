"""Contrastive loss and retrieval metrics for the bind stage (CLIP / ImageBind).

Under several processes ``contrastive_loss`` gathers every process's embeddings (keeping their
gradients) so that the InfoNCE logits span the global batch, as CLIP and ImageBind train: with N
processes each sample then meets all the batch's negatives, not 1/N of them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from omnibind.hashing import digest

# ``local_negatives()`` turns the gather off, e.g. for a validation batch that every process
# evaluates whole (too small to split); a context variable, so nothing global stays switched
_LOCAL_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("omnibind_local_negatives", default=False)


def positives(keys_a: Sequence[str], keys_b: Sequence[str]) -> torch.Tensor:
    """(A, B) bool: row i's positives are the columns whose key equals i's partner key.

    Small datasets repeat captions ("a person walking" for every walking recording); treating a
    duplicate as a negative would push identical meanings apart, so all equal keys are positives.
    """
    return torch.tensor([[ka == kb for kb in keys_b] for ka in keys_a], dtype=torch.bool)


def info_nce(
    za: torch.Tensor, zb: torch.Tensor, logit_scale: torch.Tensor, pos: torch.Tensor, max_scale: float = 100.0
) -> torch.Tensor:
    """Symmetric InfoNCE over L2-normalised ``za`` (N, D) and ``zb`` (N, D), learned temperature.

    ``pos`` (N, N) marks positive pairs (the diagonal at least); targets spread evenly over them.
    """
    scale = logit_scale.exp().clamp(max=max_scale)
    logits = scale * za @ zb.T
    pos = pos.to(logits.device).float()
    t_ab = pos / pos.sum(1, keepdim=True)
    t_ba = pos.T / pos.T.sum(1, keepdim=True)
    loss_ab = -(t_ab * nn.functional.log_softmax(logits, dim=1)).sum(1).mean()
    loss_ba = -(t_ba * nn.functional.log_softmax(logits.T, dim=1)).sum(1).mean()
    return (loss_ab + loss_ba) / 2


def recall_at_k(za: torch.Tensor, zb: torch.Tensor, keys_b: Sequence[str], ks: Sequence[int]) -> dict[str, float]:
    """Retrieval a → b for aligned pairs (``za[i]`` belongs with ``zb[i]``, whose key is ``keys_b[i]``):
    the share of queries whose partner's key ranks in the top k among the *distinct* b keys.

    Duplicated candidates (the same caption many times) are merged first — by their mean vector —
    so recall is measured against the number of distinct answers, and chance is ``k / distinct``.
    """
    uniq = sorted(set(keys_b))
    index = {k: i for i, k in enumerate(uniq)}
    cand = torch.zeros(len(uniq), zb.shape[1])
    counts = torch.zeros(len(uniq), 1)
    for v, k in zip(zb, keys_b):
        cand[index[k]] += v.float().cpu()
        counts[index[k]] += 1
    cand = nn.functional.normalize(cand / counts, dim=-1)
    sims = za.float().cpu() @ cand.T
    order = sims.argsort(dim=1, descending=True)
    truth = torch.tensor([index[k] for k in keys_b])
    rank = (order == truth[:, None]).float().argmax(dim=1)
    out: dict[str, float] = {"queries": len(keys_b), "candidates": len(uniq)}
    for k in ks:
        out[f"recall@{k}"] = float((rank < k).float().mean())
        out[f"chance@{k}"] = min(1.0, k / len(uniq))
    return out


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) when there is none."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def gathers_across_processes() -> bool:
    """Whether ``contrastive_loss(..., gather=True)`` would gather here (several processes, not
    inside ``local_negatives()``)."""
    return _world()[1] > 1 and not _LOCAL_ONLY.get()


@contextlib.contextmanager
def local_negatives() -> Iterator[None]:
    """Within this block ``contrastive_loss`` contrasts the rows it is given only (no gather)."""
    token = _LOCAL_ONLY.set(True)
    try:
        yield
    finally:
        _LOCAL_ONLY.reset(token)


class _GatherRows(torch.autograd.Function):
    """All-gather of ``(n_r, ...)`` rows from every process (``n_r`` may differ by process), in rank order.

    Backward: every process computed the same loss from the gathered rows, so the gradient of
    this process's rows is the sum over processes of their gradients for those rows (an
    all-reduce, then this process's slice). With DDP averaging the parameter gradients over the N
    processes afterwards, the result is exactly the single-process gradient of the global batch.
    ``torch.distributed.nn.functional.all_gather`` needs equal sizes and a reduce-scatter (which
    gloo lacks), hence this small Function.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
        import torch.distributed as dist

        longest = max(sizes)
        buf = torch.cat([x, x.new_zeros((longest - x.shape[0], *x.shape[1:]))]).contiguous()
        out = [torch.empty_like(buf) for _ in sizes]
        dist.all_gather(out, buf)
        ctx.sizes, ctx.rank = sizes, rank
        return torch.cat([o[:n] for o, n in zip(out, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        import torch.distributed as dist

        g = grad.contiguous().clone()
        dist.all_reduce(g)  # sum
        start = sum(ctx.sizes[: ctx.rank])
        return g[start : start + ctx.sizes[ctx.rank]], None, None


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Every process's ``x`` stacked in rank order (with gradients); ``x`` itself with one process."""
    import torch.distributed as dist

    rank, world = _world()
    if world == 1:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    return _GatherRows.apply(x, [int(s) for s in sizes], rank)


def key_ids(keys: Sequence[str]) -> torch.Tensor:
    """(N,) int64 identities of string keys (60 bits of their SHA-256), for comparing across processes."""
    return torch.tensor([int(digest(k, 15), 16) for k in keys], dtype=torch.long)


def contrastive_loss(
    za: torch.Tensor,
    zb: torch.Tensor,
    keys_a: Sequence[str],
    keys_b: Sequence[str],
    logit_scale: torch.Tensor,
    max_scale: float = 100.0,
    *,
    gather: bool = True,
) -> torch.Tensor:
    """The bind stage's loss: symmetric InfoNCE of pairs (``za[i]``, ``zb[i]``); pairs whose a keys
    or whose b keys are equal are positives of each other (see ``positives``).

    With ``gather`` and several processes, the rows (and keys) of every process are gathered first,
    so every process returns the loss of the *global* batch, and gradients reach each process's own
    rows through the gather. Rows come in rank order; InfoNCE does not depend on the order of pairs.
    """
    if not (gather and gathers_across_processes()):
        pos = positives(keys_b, keys_b) | positives(keys_a, keys_a)
        return info_nce(za, zb, logit_scale, pos, max_scale)
    ids_a = gather_rows(key_ids(keys_a).to(za.device))
    ids_b = gather_rows(key_ids(keys_b).to(za.device))
    pos = (ids_b[:, None] == ids_b[None, :]) | (ids_a[:, None] == ids_a[None, :])
    return info_nce(gather_rows(za), gather_rows(zb), logit_scale, pos, max_scale)
