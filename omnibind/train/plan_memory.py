"""Memory per GPU of a sized model (``omnibind.train.plan.Sizing``) under DDP, ZeRO-2, FSDP and QLoRA.

Every figure is arithmetic on parameter counts and shapes, stated in docs/TRAINING.md ("Scaling
out"); activations are an *estimate* (the tensors autograd keeps, after Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models", adapted to Llama's SwiGLU MLP,
grouped-query attention and fused attention). Not counted: the CUDA context and allocator
fragmentation (leave 10-20 % headroom), communication buffers (DDP gradient buckets, DeepSpeed's
reduce/all-gather buckets), the frozen encoders' transient forward (run without gradients, or not at
all with the feature cache), and the optimiser's temporaries.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from omnibind.errors import ConfigError
from omnibind.train.plan import LLMShape, Sizing

GIB = 2**30
DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0}
NF4_BYTES = (4 + 8 / 64 + 32 / (64 * 256)) / 8
"""QLoRA's 4-bit NormalFloat with double quantisation: 4 bits per weight, an 8-bit absmax per block of
64 and an fp32 constant per 256 blocks (Dettmers et al. 2023): 4.127 bits = 0.516 bytes."""

PRECISIONS: dict[str, tuple[float, float, float, float]] = {
    # bytes per trainable parameter for (weights, gradients, optimiser), then per activation element
    "bf16-mixed": (2.0, 2.0, 12.0, 2.0),  # 16-bit copy + 16-bit grad; fp32 master + Adam m, v (ZeRO paper)
    "fp32": (4.0, 4.0, 8.0, 4.0),  # fp32 weight and grad; Adam m, v
}
STRATEGIES = ("ddp", "zero2", "fsdp", "qlora")
STRATEGY_TITLES = {
    "ddp": "DDP",
    "zero2": "ZeRO-2",
    "fsdp": "FSDP full shard",
    "qlora": "QLoRA 4-bit, DDP",
}
ATTENTION = ("sdpa", "eager")


@dataclass
class Memory:
    """Bytes per GPU; ``*_ckpt``: with gradient checkpointing (one decoder layer's input kept each)."""

    weights: float
    grads: float
    optimizer: float
    activations: float
    activations_ckpt: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations

    @property
    def total_ckpt(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations_ckpt

    def to_dict(self, gpu_bytes: float) -> dict[str, Any]:
        d: dict[str, Any] = {k: round(v) for k, v in asdict(self).items()}
        d["total"], d["total_ckpt"] = round(self.total), round(self.total_ckpt)
        d["fits"] = self.total <= gpu_bytes
        d["fits_ckpt"] = self.total_ckpt <= gpu_bytes
        return d


def layer_activation_bytes(llm: LLMShape, seq: int, elem: float, attention: str = "sdpa") -> float:
    """Bytes one decoder layer keeps for backward, per token, with a frozen base (omnibind's recipes:
    the base weights need no gradient, so the inputs of its linear layers are not kept).

    - each of the two RMSNorms keeps its fp32 input (4h bytes; transformers upcasts to compute the
      variance), and, when the norms train (``bias_norm``), its output (elem·h);
    - attention, fused (``sdpa``: FlashAttention or memory-efficient kernels): q, k, v (k and v at
      grouped-query width h_kv), the output, and the fp32 log-sum-exp per head: elem·(2h + 2h_kv) + 4a;
      ``eager``: q, k, v expanded to every head (elem·3h) and the probabilities in fp32 and in the
      compute dtype ((4 + elem)·a·seq): the seq² term that makes eager attention quadratic;
    - SwiGLU MLP: the gate's output, SiLU(gate) and the up projection: 3·elem·i;
    - LoRA (peft keeps adapters in fp32): each adapted module's input cast to fp32 (4·d_in), its
      r-wide output (4r) and, with dropout, the dropout mask (1 byte per input element).

    Checked against the tensors autograd really saves for a small bf16 Llama on CPU
    (``tests/unit/test_plan.py::test_layer_estimate_matches_saved_tensors``).
    """
    h, i, a = llm.hidden, llm.intermediate, llm.heads
    kv = llm.kv_heads * (h // max(1, a))
    b = 2 * 4.0 * h + (2 * elem * h if llm.norms_train else 0.0)
    if attention == "eager":
        b += elem * 3 * h + (4 + elem) * a * seq
    else:
        b += elem * (2 * h + 2 * kv) + 4 * a
    b += 3 * elem * i
    if llm.lora_modules_per_layer:
        b += 4 * llm.lora_inputs_per_layer + 4 * llm.lora_r * llm.lora_modules_per_layer
        if llm.lora_dropout > 0:
            b += llm.lora_inputs_per_layer
    return b


def activation_bytes(llm: LLMShape, micro_batch: int, seq: int, elem: float, attention: str) -> tuple[float, float]:
    """(without, with gradient checkpointing) activation bytes of one micro-batch through the LLM.

    Without: every layer keeps ``layer_activation_bytes``. With (per decoder layer, as transformers'
    ``gradient_checkpointing_enable``): every layer keeps only its input (elem·h per token) and one
    layer's activations exist at a time, while it is recomputed. Both add the output side: the final
    norm's fp32 input (4h) and the logits over the vocabulary in fp32, kept by the loss, with their
    gradient (8·vocab) — for every token, an upper bound: omnibind computes logits only where labels
    are. Gradients flow back through the frozen LLM to the soft tokens, so this holds for a
    projector-only stage too; the bind stage runs no LLM (``estimate(runs_llm=False)``).
    """
    tokens = micro_batch * seq
    per_layer = layer_activation_bytes(llm, seq, elem, attention)
    out = tokens * (4 * llm.hidden + 8 * llm.vocab)
    full = llm.layers * tokens * per_layer + out
    ckpt = llm.layers * tokens * elem * llm.hidden + tokens * per_layer + out
    return full, ckpt


def estimate(
    sizing: Sizing,
    *,
    gpus: int,
    batch: int,
    seq: int,
    grad_accum: int = 1,
    precision: str = "bf16-mixed",
    attention: str = "sdpa",
    gpu_memory_gib: float = 80.0,
    strategies: tuple[str, ...] = STRATEGIES,
    runs_llm: bool = True,
) -> dict[str, Any]:
    """Memory per GPU under each strategy for a global ``batch`` of ``seq``-token samples on ``gpus``
    GPUs (micro-batch per GPU: ⌈batch / (gpus · grad_accum)⌉), as a plain dict (``--json``).
    ``runs_llm=False``: the bind stage, which contrasts encoder features and keeps no LLM activations."""
    if gpus < 1 or batch < 1 or seq < 1 or grad_accum < 1:
        raise ConfigError(
            f"plan: gpus, batch, seq and grad_accum must be >= 1 (got {gpus}, {batch}, {seq}, {grad_accum})"
        )
    if precision not in PRECISIONS:
        raise ConfigError(f"plan: precision {precision!r}: expected one of {sorted(PRECISIONS)}")
    if attention not in ATTENTION:
        raise ConfigError(f"plan: attention {attention!r}: expected one of {list(ATTENTION)}")
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise ConfigError(f"plan: strategies {unknown}: expected some of {list(STRATEGIES)}")
    for p in sizing.parts:
        if p.dtype not in DTYPE_BYTES:
            raise ConfigError(f"plan: {p.name} dtype {p.dtype!r}: expected one of {sorted(DTYPE_BYTES)}")
    w, g, o, elem = PRECISIONS[precision]
    micro = math.ceil(batch / (gpus * grad_accum))
    train = sizing.trainable
    frozen = sum((p.params - p.trainable) * DTYPE_BYTES[p.dtype] for p in sizing.parts)
    weights = frozen + train * w
    act, act_ckpt = activation_bytes(sizing.llm, micro, seq, elem, attention) if runs_llm else (0.0, 0.0)
    llm_bytes = DTYPE_BYTES[sizing.llm_dtype]
    layer = sizing.llm.layer_params * llm_bytes
    root = weights - sizing.llm.layers * layer  # everything outside the decoder layers: one FSDP unit
    memory = {
        "ddp": Memory(weights, train * g, train * o, act, act_ckpt),
        "zero2": Memory(weights, train * g / gpus, train * o / gpus, act, act_ckpt),
        "fsdp": Memory(
            weights / gpus + (1 - 1 / gpus) * (root + 2 * layer), train * g / gpus, train * o / gpus, act, act_ckpt
        ),
        "qlora": Memory(
            weights - sizing.llm.linear_params * (llm_bytes - NF4_BYTES), train * g, train * o, act, act_ckpt
        ),
    }
    gpu_bytes = gpu_memory_gib * GIB
    return {
        "gpus": gpus,
        "batch": batch,
        "grad_accum": grad_accum,
        "micro_batch": micro,
        "seq": seq,
        "precision": precision,
        "attention": attention,
        "gpu_memory_gib": gpu_memory_gib,
        "bytes_per_trainable_param": {"weights": w, "grads": g, "optimizer": o},
        "activation_bytes_per_token_per_layer": round(layer_activation_bytes(sizing.llm, seq, elem, attention)),
        "strategies": {s: memory[s].to_dict(gpu_bytes) for s in strategies},
    }
