"""Contrastive loss and retrieval metrics for the bind stage (CLIP / ImageBind)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
