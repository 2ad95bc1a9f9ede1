"""Label masking and tokenisation checks for EVERY registered chat template (tiny: tokenizer only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibind.errors import TemplateMismatchError
from omnibind.llm.assemble import IGNORE_INDEX, Slot, assemble, check_template, render_segments
from omnibind.llm.backends.transformers import TransformersBackend
from omnibind.llm.chat_templates import TEMPLATES
from omnibind.messages import MediaPart, Message
from tests.llama_tokenizer import llama_style_tokenizer

# The markers each template's own tokenizer treats as single special tokens.
SPECIAL = {
    "chatml": [],
    "smollm2": [],
    "plain": [],
    "vicuna_v1": ["<s>", "</s>"],
    "llava_v1": ["<s>", "</s>"],
    "pandagpt": ["<s>", "</s>"],
    "llama2": ["<s>", "</s>"],
    "llama3": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "gemma": ["<bos>", "<start_of_turn>", "<end_of_turn>"],
}


class TokenizerOnly:
    """Just enough of a backend for assembly: real tokenizer, one-hot-free fake embedding by id."""

    name = "tokenizer-only"

    def __init__(self, tok):
        self.tok = self.tokenizer = tok

    def tokenize(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    # the transformers backend's own segment tokenisation (it reads only ``self.tokenizer``)
    tokenize_in_context = TransformersBackend.tokenize_in_context

    def detokenize(self, ids: list[int]) -> str:
        return self.tok.decode(ids)

    def embed_tokens(self, ids):
        import torch

        return torch.tensor(ids, dtype=torch.float32)[:, None].repeat(1, 4)


def _tokenizer(smollm_dir: Path, extra: list[str]):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm_dir))
    if extra:
        tok.add_special_tokens({"additional_special_tokens": extra})
    return tok


def test_every_template_is_covered():
    assert set(SPECIAL) == set(TEMPLATES.names())


# Under SmolLM2's GPT-2-style pre-tokeniser, Llama-3's "\n\n" after a header merges differently in
# pieces than whole, so the check MUST refuse it (Llama-3's own tokenizer splits newlines apart).
MISMATCH_UNDER_SMOLLM_BPE = {"llama3"}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_template_masking_is_exact(name: str, smollm_dir: Path):
    backend = TokenizerOnly(_tokenizer(smollm_dir, SPECIAL[name]))
    template = TEMPLATES.get(name)
    if name in MISMATCH_UNDER_SMOLLM_BPE:
        with pytest.raises(TemplateMismatchError, match="segment-wise"):
            check_template(template, backend)
    else:
        check_template(template, backend)  # raises on any mismatch
    conv = [Message.user("Hi"), Message.assistant("Hello there."), Message.user("Bye"), Message.assistant("Bye!")]
    segs = render_segments(conv, template, [], add_generation_prompt=False)
    a = assemble(segs, [], backend)
    trained = [int(t) for t in a.labels if t != IGNORE_INDEX]
    text = backend.detokenize(trained)
    assert "Hello there." in text and "Bye!" in text
    assert "Hi" not in text.replace("Hello", "")  # user text is never trained
    assert text.endswith(template.assistant_end)


def test_mismatch_fails_loudly(smollm_dir: Path):
    """Vicuna markup without its special tokens tokenises differently in pieces: must raise."""
    backend = TokenizerOnly(_tokenizer(smollm_dir, []))
    with pytest.raises(TemplateMismatchError):
        check_template(TEMPLATES.get("llama2"), backend)


def test_generation_prompt_ends_with_assistant_start(smollm_dir: Path):
    template = TEMPLATES.get("chatml")
    segs = render_segments([Message.user("Hi")], template, [], add_generation_prompt=True)
    assert "".join(s.text for s in segs).endswith(template.assistant_start)
    assert not any(s.train for s in segs)


def test_registry_refuses_duplicates():
    from omnibind.errors import RegistryError

    with pytest.raises(RegistryError):
        TEMPLATES.add("chatml", TEMPLATES.get("chatml"))


@pytest.mark.parametrize("name", ["vicuna_v1", "llava_v1", "pandagpt", "llama2"])
def test_llama_tokenizer_segments_equal_the_whole_prompt(name: str):
    """Under a first-piece-only Metaspace, a segment after an image must not gain a "▁" and the
    template's leading "<s>" must be the BOS the tokenizer adds itself: the ids equal those of
    the whole prompt with ``<image>`` where the soft tokens go, tokenised with add_special_tokens
    (what llava-hf's processor does)."""
    import torch

    tok = llama_style_tokenizer()
    backend = TokenizerOnly(tok)
    template = TEMPLATES.get(name)
    check_template(template, backend)
    conv = [Message.user(MediaPart("image", "x.png"), "What is shown?")]
    segs = render_segments(conv, template, [[Slot("image", "")]], add_generation_prompt=True)
    image_id = tok.convert_tokens_to_ids("<image>")
    a = assemble(segs, [torch.full((1, 4), float(image_id))], backend)
    ours = [int(v) for v in a.embeds[:, 0]]
    prompt = "".join("<image>" if s.media is not None else s.text for s in segs)
    assert prompt.startswith("<s>")
    theirs = tok(prompt[len("<s>") :], add_special_tokens=True)["input_ids"]
    assert theirs[0] == tok.bos_token_id
    assert ours == theirs
