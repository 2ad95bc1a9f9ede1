"""llama.cpp on the real embedded SmolLM2-135M GGUF: vocabulary, embeddings, answers, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (pip install 'omnibind[llamacpp]')")

from omnibind.llm.backends.base import GenerationOptions

pytestmark = pytest.mark.integration
PROMPTS = [
    "Describe a cat in one sentence.",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How do I boil an egg?",
    "Why is the sky blue?",
]


@pytest.fixture(scope="module")
def ll():
    from omnibind.llm.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend("embedded:smollm2-135m", n_ctx=2048, n_seq_max=4)
    yield backend
    backend.close()


def _chat_prompt(backend, text: str) -> torch.Tensor:
    return backend.embed_tokens(backend.tokenize(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"))


def _greedy(backend, prompts: list[torch.Tensor], n: int = 10) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in prompts]
    for step in backend.generate(prompts, GenerationOptions(max_new_tokens=n)):
        for i, t in enumerate(step):
            if t is not None:
                out[i].append(t)
    return out


def test_vocabulary_and_embeddings_match_the_hf_copy(ll, smollm_dir: Path):
    from safetensors import safe_open
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm_dir))
    for text in [
        "Hello, world!",
        "<|im_start|>user\nHi<|im_end|>\n",
        "Ünïcödé 東京 — ok?",
        "a  b\n\n\tc",
        "x=42; y = 3.5",
    ]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ll.tokenize(text) == ids, text
        assert ll.detokenize(ids) == tok.decode(ids, skip_special_tokens=True)
    with safe_open(str(smollm_dir / "model.safetensors"), "pt") as f:
        table = f.get_tensor("model.embed_tokens.weight")
    ids = [0, 1, 2, 100, 4000, 49151]
    assert torch.equal(ll.embed_tokens(ids), table[ids].float())


def test_embedded_answers_and_batching(ll):
    prompts = [_chat_prompt(ll, p) for p in PROMPTS[:3]]
    ll.reset_cache()
    together = _greedy(ll, prompts, n=16)
    text = ll.detokenize(together[0]).lower()
    assert "cat" in text or "fur" in text or "feline" in text, text
    assert "paris" in ll.detokenize(together[1]).lower()
    ll.reset_cache()
    assert _greedy(ll, [prompts[1]], n=16)[0] == together[1]


def test_exported_dequantised_copy_answers_like_the_original(ll, smollm_dir: Path, tmp_path: Path):
    """The HF copy (dequantised Q4_1) written back to GGUF gives the original's greedy tokens."""
    from transformers import AutoModelForCausalLM

    from omnibind.llm.backends.llamacpp import LlamaCppBackend
    from omnibind.llm.embedded import embedded_gguf_path
    from omnibind.llm.export_gguf import write_llama_gguf

    hf = AutoModelForCausalLM.from_pretrained(str(smollm_dir), dtype=torch.float32)
    path = tmp_path / "smollm2-f16.gguf"
    write_llama_gguf(hf, path, outtype="f16", base_gguf=embedded_gguf_path())
    del hf
    copy = LlamaCppBackend(str(path), n_ctx=1024, n_seq_max=len(PROMPTS))
    try:
        prompts = [_chat_prompt(ll, p) for p in PROMPTS]
        assert copy.tokenize(PROMPTS[0]) == ll.tokenize(PROMPTS[0])
        ll.reset_cache()
        same = sum(a == b for a, b in zip(_greedy(ll, prompts), _greedy(copy, prompts)))
    finally:
        copy.close()
    assert same >= len(PROMPTS) - 1, f"only {same}/{len(PROMPTS)} greedy answers agree on 10 tokens"


def test_embedded_default_model_on_llamacpp():
    """`omnibind.load(backend="llamacpp")`: the trained default, its media-only LoRA as an adapter."""
    import omnibind
    from omnibind.messages import Image, Message

    root = Path(__file__).resolve().parents[2]
    m = omnibind.load(backend="llamacpp")
    assert m.core.llm.name == "llamacpp" and m.core.llm._adapter is not None and m.trained
    reply = m.chat([Message.user(Image(str(root / "examples" / "image_cat.jpg")), "What is in this picture?")])
    assert reply.text.strip() and reply.completion_tokens > 0
    assert "paris" in m.chat("What is the capital of France?", max_new_tokens=16).text.lower()


def test_gated_preset_refused_on_llamacpp():
    import omnibind
    from omnibind.errors import BackendUnsupportedError

    with pytest.raises(BackendUnsupportedError, match="gated every-layer injection"):
        omnibind.load("imagebind-llm-embedded", backend="llamacpp")


def test_chat_second_turn_reuses_the_first():
    """The embedded model's replies re-tokenise as generated, so turn 2 evaluates only its new rows."""
    from omnibind.bench.backends import EXAMPLES, kv_reuse
    from omnibind.llm.backends.llamacpp import load_model

    m = load_model(None)
    for image, question in ((EXAMPLES / "image_cat.jpg", None), (None, "Give me three tips for sleeping better.")):
        kv = kv_reuse(m, image, repeats=1, question=question)
        new_turn = kv["history_positions"] - kv["cached_positions"]
        assert 10 <= new_turn <= 25, kv  # "<|im_end|>\n<|im_start|>user\n...<|im_start|>assistant\n"
        # (no timing assertion: one repeat on a shared CPU is noise; the bench reports the times)
