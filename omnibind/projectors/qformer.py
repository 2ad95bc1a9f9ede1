"""Instruction-aware Q-Former (InstructBLIP / X-InstructBLIP).

k learned queries self-attend together with the instruction's token embeddings (so what is
extracted depends on the question), then cross-attend to the encoder's tokens; the query outputs
are projected to LLM width. Without encoder tokens the bind vector serves as a single token.
"""

from __future__ import annotations

import torch
from torch import nn

from omnibind.projectors.base import PROJECTORS, Projector, small_init_


class QFormerLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_norm = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))

    def forward(
        self,
        x: torch.Tensor,
        x_pad: torch.Tensor | None,
        memory: torch.Tensor,
        memory_pad: torch.Tensor | None,
        nq: int,
    ) -> torch.Tensor:
        h = self.self_norm(x)
        x = x + self.self_attn(h, h, h, key_padding_mask=x_pad, need_weights=False)[0]
        q = self.cross_norm(x[:, :nq])  # only the queries read the media (InstructBLIP)
        upd = self.cross_attn(q, memory, memory, key_padding_mask=memory_pad, need_weights=False)[0]
        x = torch.cat([x[:, :nq] + upd, x[:, nq:]], dim=1)
        return x + self.ffn(self.ffn_norm(x))


@PROJECTORS.register("qformer")
class QFormerProjector(Projector):
    uses_tokens = True
    uses_instruction = True

    def __init__(
        self,
        bind_dim: int,
        llm_dim: int,
        num_tokens: int = 8,
        token_dim: int | None = None,
        dim: int = 256,
        layers: int = 2,
        heads: int = 4,
        max_instruction_tokens: int = 32,
    ):
        super().__init__(bind_dim, llm_dim, num_tokens, token_dim)
        self.max_instruction_tokens = max_instruction_tokens
        self.queries = nn.Parameter(torch.randn(1, num_tokens, dim) * 0.02)
        self.memory_in = nn.Linear(token_dim or bind_dim, dim)
        self.vector_in = nn.Linear(bind_dim, dim)
        self.instruction_in = nn.Linear(llm_dim, dim)
        self.layers = nn.ModuleList([QFormerLayer(dim, heads) for _ in range(layers)])
        self.out_norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, llm_dim)
        small_init_(self)
        nn.init.normal_(self.queries, std=0.02)

    def forward(
        self,
        vector: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        instruction: torch.Tensor | None = None,
        instruction_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b = vector.shape[0]
        # memory: the encoder tokens (when shapes fit) plus the bind vector, which every input has
        mem = [self.vector_in(vector)[:, None]]
        pads = [torch.zeros((b, 1), dtype=torch.bool, device=vector.device)]
        if tokens is not None and tokens.shape[-1] == self.memory_in.in_features:
            mem.append(self.memory_in(tokens))
            real = token_mask if token_mask is not None else torch.ones(tokens.shape[:2], dtype=torch.bool)
            pads.append(~real.to(vector.device))
        memory, memory_pad = torch.cat(mem, dim=1), torch.cat(pads, dim=1)
        x = self.queries.expand(b, -1, -1)
        x_pad = torch.zeros((b, self.num_tokens), dtype=torch.bool, device=vector.device)
        if instruction is not None and instruction.shape[1] > 0:
            instr = self.instruction_in(instruction[:, : self.max_instruction_tokens])
            x = torch.cat([x, instr], dim=1)
            imask = (
                instruction_mask[:, : self.max_instruction_tokens]
                if instruction_mask is not None
                else torch.ones(instr.shape[:2], dtype=torch.bool, device=vector.device)
            )
            x_pad = torch.cat([x_pad, ~imask.bool()], dim=1)
        for layer in self.layers:
            x = layer(x, x_pad, memory, memory_pad, self.num_tokens)
        return self.out(self.out_norm(x[:, : self.num_tokens]))
