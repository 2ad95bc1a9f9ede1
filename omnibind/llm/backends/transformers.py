"""Hugging Face transformers backend: any local causal LM, driven by input embeddings.

Decoding is our own short KV-cached loop rather than ``model.generate`` so that every backend
yields the same per-step batch of token ids, streaming and cancellation stay simple, and the
gated every-layer injection (forward pre-hooks) covers prompt and generated tokens alike.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import torch

from omnibind.errors import ConfigError
from omnibind.llm.backends.base import LLM_BACKENDS, GenerationOptions, LayerInjection, LLMBackend
from omnibind.llm.decoding import decode_steps
from omnibind.llm.sources import resolve_hf_source


@LLM_BACKENDS.register("transformers")
class TransformersBackend(LLMBackend):
    """A transformers ``AutoModelForCausalLM`` loaded from a local path, offline."""

    name = "transformers"
    supports_layer_injection = True
    supports_training = True

    @property
    def context_length(self) -> int | None:
        """``max_position_embeddings`` of the model's config (None if it declares none)."""
        return self._context_length

    def __init__(
        self,
        source: str,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        model: Any = None,
        tokenizer: Any = None,
        quantization: str | None = None,
    ):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.source = source
        # QLoRA: a 4-bit base is placed on its device while it loads (a quantised model cannot .to())
        quant: dict[str, Any] = {}
        if quantization is not None:
            from omnibind.llm.quantization import bnb_config

            quant = {"quantization_config": bnb_config(quantization, dtype, device), "device_map": {"": device}}
        if model is None:
            path = resolve_hf_source(source)
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(
                    str(path), dtype=getattr(torch, dtype), local_files_only=True, **quant
                )
            except OSError as e:
                raise ConfigError(f"cannot load LLM from {source!r} (offline, local files only): {e}") from e
        self.model = model if quant else model.to(device)
        self.model.eval()
        self.tokenizer = tokenizer
        cfg = self.model.config
        self.hidden_size = int(cfg.hidden_size)
        self.num_layers = int(cfg.num_hidden_layers)
        # positions the model was built for; rotary models extrapolate past it, but badly and at a
        # quadratic cost, so requests are held to it
        ctx = getattr(cfg, "max_position_embeddings", None)
        self._context_length = int(ctx) if ctx else None
        eos = getattr(self.model.generation_config, "eos_token_id", None) or cfg.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        if tokenizer.eos_token_id is not None:
            self.eos_token_ids.add(tokenizer.eos_token_id)
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(self.eos_token_ids))
        )
        self._embed_scale = _embedding_scale(self.model)

    # --- tokens ------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def tokenize_in_context(self, text: str, *, at_start: bool) -> list[int]:
        """A prompt segment's ids as the tokenizer gives them inside the whole prompt (see the base).

        Hugging Face tokenisers split on special tokens before pre-tokenising, and a media slot
        stands where such a token would (LLaVA's ``<image>``), so a segment that follows anything
        is tokenised behind a special token whose id is then dropped: for a ``Metaspace`` with
        ``prepend_scheme="first"`` (Llama-2 / LLaVA-1.5 tokenisers under transformers 5) that keeps
        the "▁" off ``"\nWhat"`` after an image, as the whole-prompt tokenisation does. At the start,
        a template's leading BOS text becomes the BOS id with the rest tokenised as the opening
        text, which is what ``add_special_tokens=True`` does (the rest keeps its leading "▁").
        Byte-level BPE tokenisers (SmolLM2, Llama-3, Qwen) give the same ids either way.
        """
        bos = self.tokenizer.bos_token
        if at_start:
            if bos and text.startswith(bos) and self.tokenizer.bos_token_id is not None:
                return [int(self.tokenizer.bos_token_id), *self.tokenize(text[len(bos) :])]
            return self.tokenize(text)
        mark = bos or self.tokenizer.eos_token
        if not mark or not text:
            return self.tokenize(text)
        ids = self.tokenize(mark + text)
        mark_ids = self.tokenize(mark)
        if len(mark_ids) != 1 or not ids or ids[0] != mark_ids[0]:  # not a special token here: no context to give
            return self.tokenize(text)
        return ids[1:]

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def embed_tokens(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        return self.model.get_input_embeddings()(t) * self._embed_scale

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def decoder_layers(self) -> list[torch.nn.Module]:
        """The transformer blocks, found structurally (no model-name dispatch)."""
        base = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model.model
        layers = getattr(base, "layers", None)
        if layers is None:
            raise ConfigError(f"{self.source}: cannot find decoder layers for gated injection")
        return list(layers)

    # --- forward -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _injected(self, injection: LayerInjection | None) -> Iterator[None]:
        if injection is None:
            yield
            return
        handles = []
        for i, layer in enumerate(self.decoder_layers()):

            def hook(_module: Any, args: tuple, kwargs: dict, i: int = i) -> tuple[tuple, dict]:
                add = (injection.gates[i] * injection.feature)[:, None, :]
                if args:
                    return (args[0] + add.to(args[0].dtype), *args[1:]), kwargs
                kwargs["hidden_states"] = kwargs["hidden_states"] + add.to(kwargs["hidden_states"].dtype)
                return args, kwargs

            handles.append(layer.register_forward_pre_hook(hook, with_kwargs=True))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def forward_logits(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        injection: LayerInjection | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Full (B, T, V) logits, or (N, V) at ``positions`` (a (B, T) bool mask) only.

        Training and scoring need logits only where labels are: projecting just those rows through
        the 49k-word output layer saves about a fifth of the compute on the embedded model.
        """
        position_ids = _positions(attention_mask)
        lm = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        softcap = getattr(lm.config, "final_logit_softcapping", None)
        with self._injected(injection):
            if positions is None or softcap or not hasattr(lm, "get_decoder"):
                out = self.model(
                    inputs_embeds=inputs_embeds,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    use_cache=False,
                )
                return out.logits if positions is None else out.logits[positions]
            hidden = lm.get_decoder()(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
            ).last_hidden_state
        return lm.get_output_embeddings()(hidden[positions])

    def generate(
        self,
        inputs_embeds: list[torch.Tensor],
        options: GenerationOptions,
        injection: LayerInjection | None = None,
    ) -> Iterator[list[int | None]]:
        options.validate()
        embeds, mask = left_pad(inputs_embeds)
        with torch.inference_mode(), self._injected(injection):
            out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=_positions(mask), use_cache=True)
            past, cache_kw = cache_of(out), cache_keyword(self.model)

            def advance(history: list[list[int]], _live: list[int]) -> torch.Tensor:
                # every row is fed (a finished row its EOS again): the batch keeps one shape
                nonlocal past, mask
                feed = torch.tensor([h[-1] if h else self.pad_token_id for h in history], device=self.device)[:, None]
                mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=mask.device)], dim=1)
                pos = (mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)
                step = self.model(
                    inputs_embeds=self.embed_tokens(feed),
                    attention_mask=mask,
                    position_ids=pos,
                    use_cache=True,
                    **{cache_kw: past},
                )
                past = cache_of(step)
                return step.logits[:, -1, :]

            yield from decode_steps(
                out.logits[:, -1, :], options, self.eos_token_ids, advance, detokenize=self.detokenize
            )


def cache_keyword(model: Any) -> str:
    """The forward keyword for the KV cache: transformers 5.24 renamed ``past_key_values`` to
    ``cache`` (the old name still works there but logs a deprecation)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def cache_of(output: Any) -> Any:
    """The KV cache of a forward's output, under either name."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def left_pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (T_i, H) sequences with left padding → (B, T, H) and a (B, T) mask."""
    if not seqs:
        raise ValueError("no sequences to decode")
    longest = max(s.shape[0] for s in seqs)
    hidden = seqs[0].shape[1]
    out = seqs[0].new_zeros((len(seqs), longest, hidden))
    mask = torch.zeros((len(seqs), longest), dtype=torch.long, device=seqs[0].device)
    for i, s in enumerate(seqs):
        out[i, longest - s.shape[0] :] = s
        mask[i, longest - s.shape[0] :] = 1
    return out, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so padded and unpadded runs see the same RoPE phases."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


def _embedding_scale(model: Any) -> float:
    """Gemma-style models scale token embeddings by √hidden inside the embedding call or the model;
    ``inputs_embeds`` skips that, so we apply the scale ourselves when the config says so."""
    cfg = model.config
    if getattr(cfg, "model_type", "").startswith("gemma"):
        emb = model.get_input_embeddings()
        if type(emb).__name__.endswith("ScaledWordEmbedding"):
            return 1.0  # the embedding module already scales
        return float(cfg.hidden_size) ** 0.5
    return 1.0
