"""QLoRA's 4-bit base (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs"): the
frozen LLM loads as 4-bit NormalFloat with double quantisation through bitsandbytes, computes in
``llm.dtype``, and LoRA adapters (``llm.lora``) train on top in higher precision.

bitsandbytes' 4-bit kernels need a CUDA GPU, so on a CPU (or without the package) the config stops
with a ``BackendUnsupportedError`` before any weight loads. Not yet run here: no GPU was lent to the
session that wrote it (docs/TRAINING.md says what has run where).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from omnibind.errors import BackendUnsupportedError, ConfigError


def bnb_config(quantization: str, dtype: str, device: str) -> Any:
    """The transformers ``BitsAndBytesConfig`` for ``llm.quantization``; a clear error where it cannot run."""
    if quantization != "4bit":
        raise ConfigError(f"llm.quantization: expected '4bit', got {quantization!r}")
    if not str(device).startswith("cuda"):
        raise BackendUnsupportedError(
            f"llm.quantization: 4bit (QLoRA) needs a CUDA GPU (bitsandbytes' 4-bit kernels); this model is on "
            f"device {device!r}. Set device: cuda on a GPU machine, or drop llm.quantization to train LoRA on "
            "the full-precision base"
        )
    import torch

    if not torch.cuda.is_available():
        raise BackendUnsupportedError(f"llm.quantization: 4bit needs CUDA, and torch sees no GPU for device {device!r}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise BackendUnsupportedError(
            "llm.quantization: 4bit needs the bitsandbytes package (pip install bitsandbytes); it is not installed"
        )
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, dtype),
    )
