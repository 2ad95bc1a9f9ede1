"""Shared fixtures.

Unit tests use TINY random configs (a 2-layer random Llama with SmolLM2's real tokenizer, and a
small deterministic test encoder) so the model path runs in seconds. Integration tests
(``-m integration``) load the real embedded weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The real embedded LLM as a safetensors folder (converted once per machine, ~35 s)."""
    from omnibind.llm.embedded import embedded_hf_dir

    return embedded_hf_dir()


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """A 2-layer random Llama (hidden 64) with SmolLM2's real tokenizer and chat tokens."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_llm")
    tok = AutoTokenizer.from_pretrained(str(smollm_dir))
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory, tiny_llm_dir: Path) -> Path:
    """The tiny random LLM exported to an f32 GGUF (llama.cpp tests and the bench's engine limits)."""
    from transformers import AutoModelForCausalLM

    from omnibind.llm.gguf_io import guess_tokenizer_pre, write_llama_gguf

    hf = AutoModelForCausalLM.from_pretrained(str(tiny_llm_dir), dtype=torch.float32)
    out = tmp_path_factory.mktemp("tiny_gguf") / "tiny.gguf"
    write_llama_gguf(
        hf, out, outtype="f32", tokenizer_dir=tiny_llm_dir, tokenizer_pre=guess_tokenizer_pre(tiny_llm_dir)
    )
    return out


@pytest.fixture(scope="session")
def tiny_config_dict(tiny_llm_dir: Path) -> dict:
    """A complete model config over the tiny LLM and the tiny test encoder for every modality."""
    import tests.tiny_encoder  # noqa: F401  (registers "test_tiny")

    enc = {"name": "test_tiny", "params": {"dim": 24}}
    return {
        "name": "tiny",
        "encoders": {m: enc for m in ("image", "audio", "video", "depth", "thermal", "imu", "points", "text")},
        "bind": {"dim": 16, "heads": {"video": {"kind": "linear", "share": "image"}}},
        "projectors": {"*": {"name": "mlp", "num_tokens": 2}},
        "llm": {"source": str(tiny_llm_dir), "template": "chatml"},
        "injection": {"kind": "prefix"},
    }


@pytest.fixture(scope="session")
def tiny_model(tiny_config_dict: dict):
    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.model import OmnibindModel

    core = OmnibindModel(ModelConfig.from_dict(tiny_config_dict))
    return Model(core, origin="tiny-test", trained=False)


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
