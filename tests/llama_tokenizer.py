"""A tiny Llama-style tokenizer built offline (no sentencepiece, no hub), for tests of
Llama-family prompts: the template checks and the LLaVA import."""

from __future__ import annotations

from typing import Any


def llama_style_tokenizer() -> Any:
    """A tiny tokenizer built like Llama-2's / LLaVA-1.5's under transformers 5 (BPE with byte
    fallback behind a ``Metaspace`` that prepends "▁" to the first piece only), with ``<image>``."""
    import string

    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{i:02X}>": 3 + i for i in range(256)})
    for c in ["▁", *string.ascii_letters, *string.digits, *string.punctuation]:
        vocab.setdefault(c, len(vocab))
    merges = [("▁", "A"), ("▁", "U"), ("S", "E"), ("▁", "W"), ("h", "a")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tok
