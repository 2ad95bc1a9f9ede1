"""OmnibindModel: encoders → bind heads → projectors → LLM, as one torch module.

It owns the data path every request takes. ``prepare`` turns a conversation into prepared inputs
(``PreparedInput``: one per media part, two for a video with sound), ``encode_inputs`` runs each
modality's encoder once per batch, and everything then goes through ``omnibind.llm.assemble`` —
for the training loss, generation and candidate scoring alike.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from omnibind.bind.heads import BindHeads
from omnibind.bind.mix import mix
from omnibind.config import ExpertsConfig, ModelConfig
from omnibind.encoders import experts
from omnibind.encoders.base import EncoderOutput
from omnibind.encoders.lazy import LazyEncoders, eager_from_env
from omnibind.errors import BackendUnsupportedError, ConfigError
from omnibind.experts_text import expert_note
from omnibind.llm.assemble import IGNORE_INDEX, Assembled, Segment, Slot, assemble, check_template, render_segments
from omnibind.llm.backends.base import GenerationOptions, LayerInjection, LLMBackend, check_prompt_budget
from omnibind.llm.chat_templates import TEMPLATES
from omnibind.llm.inject import LayerGates, check_injection
from omnibind.messages import Conversation, MediaPart, MixPart, TextPart
from omnibind.modalities.base import Limits, VideoData
from omnibind.model_setup import apply_lora, build_backend, build_projector
from omnibind.projectors.base import Projector

log = logging.getLogger(__name__)

VIDEO_SOUND = "video_sound"  # cue key of a video's audio track: audio encoder + audio head, its own cue
ExpertSwitch = bool | ExpertsConfig | dict[str, Any] | None
"""A per-call experts choice: None = the config's, True/False = all/none, or an explicit setting."""


@dataclass
class PreparedInput:
    """One media input ready to encode: the encoder modality, decoded data or cached features.

    (Not to be confused with ``omnibind.llm.assemble.Slot``, the cue + soft-token place an input
    takes in the LLM sequence, nor with a llama.cpp sequence.)
    """

    modality: str  # which encoder/head: image, audio, ..., or "mix"
    cue_key: str
    data: Any = None
    features: EncoderOutput | None = None  # precomputed (training feature cache)
    mix_of: list[PreparedInput] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    instruction: str = ""
    note: str = ""


@dataclass
class Prepared:
    """A conversation with its media decoded: ``inputs_per_part`` holds, for each non-text part in
    order, the prepared inputs it gives (a video with sound gives two)."""

    conversation: Conversation
    inputs_per_part: list[list[PreparedInput]]

    @property
    def inputs(self) -> list[PreparedInput]:
        """Every prepared input, flattened in order."""
        return [s for group in self.inputs_per_part for s in group]


FeatureLookup = Callable[[MediaPart], "EncoderOutput | None"]


class OmnibindModel(nn.Module):
    """The full model. Build with ``OmnibindModel(config)``; weights via ``omnibind.checkpoint``."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        backend: LLMBackend | None = None,
        device: str = "cpu",
        eager_encoders: bool | None = None,
    ):
        """``eager_encoders``: build every encoder now (None: ``$OMNIBIND_EAGER_ENCODERS``, default
        off: each is built on first use, ``omnibind.encoders.lazy``)."""
        super().__init__()
        import omnibind.encoders
        import omnibind.modalities
        import omnibind.projectors  # noqa: F401  (registers projectors)

        torch.manual_seed(config.seed)
        self.config = config
        self.limits = Limits.from_dict(config.limits)
        self.template = TEMPLATES.get(config.llm.template)
        self.injection_kind = check_injection(config.injection.kind)
        eager = eager_from_env() if eager_encoders is None else eager_encoders
        self.encoders = LazyEncoders({m: c.__dict__ for m, c in config.encoders.items()}, device=device, eager=eager)
        self.llm = backend if backend is not None else build_backend(config, device=device)
        # A template whose segment-wise tokenisation differs from whole-string tokenisation trains
        # labels the model never sees at inference (the bug that zeroed LLaVA's labels): refuse it
        # here, once per model, so it fails at load and when training starts, not silently later.
        with torch.no_grad():
            check_template(self.template, self.llm)
        if self.injection_kind == "gated" and not self.llm.supports_layer_injection:
            raise BackendUnsupportedError(
                f"gated every-layer injection (ImageBind-LLM) needs per-layer hooks; backend {self.llm.name!r} has "
                "none. Use the transformers backend or a prefix-injection config."
            )
        # sized from the encoders' declared widths: building heads and projectors loads no encoder
        features = {m: self.encoders.feature_dims(m) for m in self.encoders}
        self.bind = BindHeads(config.bind, {m: f.pooled for m, f in features.items()})
        self.projectors = nn.ModuleDict(
            {
                _pkey(key): build_projector(key, pcfg, config, features, self.llm)
                for key, pcfg in config.projectors.items()
            }
        )
        self.gates = LayerGates(self.llm.num_layers) if self.injection_kind == "gated" else None
        self.retrieval_cache = None
        if config.cache.enabled and config.cache.path:
            from omnibind.bind.cache import RetrievalCache

            self.retrieval_cache = RetrievalCache.load(config.cache.path)
        if config.llm.lora is not None:
            apply_lora(self.llm, config.llm.lora)
        self.to(device)
        self.eval()

    # --- building ------------------------------------------------------------------------
    def build_encoders(self) -> None:
        """Build every encoder now instead of on first use (a server warming up before serving)."""
        self.encoders.build_all()

    @property
    def device(self) -> torch.device:
        return self.llm.device if hasattr(self.llm, "device") else torch.device("cpu")

    def train(self, mode: bool = True) -> OmnibindModel:
        super().train(mode)
        for enc in self.encoders.built().values():  # frozen encoders stay in eval mode (batch-norm statistics)
            if not enc.trainable:
                enc.eval()
        # The backend's HF model is no submodule of ours, so the mode must be passed on by hand:
        # peft creates LoRA layers in training mode, and without this their dropout stayed on at
        # inference (found by the PandaGPT import test's hand-merged comparison).
        llm_model = getattr(self.llm, "model", None)
        if isinstance(llm_model, nn.Module):
            llm_model.train(mode)
        return self

    # --- preparing inputs ----------------------------------------------------------------
    def prepare(
        self, conversation: Conversation, feature_lookup: FeatureLookup | None = None, experts: ExpertSwitch = None
    ) -> Prepared:
        """Decode every media part (typed errors surface here) and lay out its inputs.

        ``experts``: which expert notes to add (``ExpertsConfig.switched``; None = the config's).
        """
        exp = self.config.experts.switched(experts)
        groups: list[list[PreparedInput]] = []
        for msg in conversation:
            instruction = msg.text
            for part in msg.content:
                if isinstance(part, TextPart):
                    continue
                if isinstance(part, MixPart):
                    subs = [self._inputs_for(p, instruction, feature_lookup, exp)[0] for p in part.parts]
                    groups.append(
                        [PreparedInput("mix", "mix", mix_of=subs, weights=list(part.weights), instruction=instruction)]
                    )
                else:
                    groups.append(self._inputs_for(part, instruction, feature_lookup, exp))
        return Prepared(conversation, groups)

    def _inputs_for(
        self, part: MediaPart | TextPart, instruction: str, lookup: FeatureLookup | None, exp: ExpertsConfig
    ) -> list[PreparedInput]:
        from omnibind.modalities import load_part

        if isinstance(part, TextPart):
            return [PreparedInput("text", "text", data=part.text, instruction=instruction)]
        self._require_encoder(part.modality)
        cached = lookup(part) if lookup is not None else None
        if cached is not None:
            inp = PreparedInput(part.modality, part.modality, features=cached, instruction=instruction)
            inp.note = self._expert_note(inp, exp)
            return [inp]
        data = load_part(part, self.limits)
        inputs = [PreparedInput(part.modality, part.modality, data=data, instruction=instruction)]
        if isinstance(data, VideoData) and data.audio is not None and "audio" in self.encoders:
            inputs.append(PreparedInput("audio", VIDEO_SOUND, data=data.audio, instruction=instruction))
        for s in inputs:
            s.note = self._expert_note(s, exp)
        return inputs

    def _require_encoder(self, modality: str) -> None:
        if modality not in self.encoders:
            raise ConfigError(f"this model has no encoder for {modality!r} inputs; configured: {sorted(self.encoders)}")

    def _expert_note(self, inp: PreparedInput, exp: ExpertsConfig) -> str:
        """Modality experts as text context (ImageBind-LLM fed detector labels; Whisper for speech)."""
        if exp.transcript and inp.modality == "audio" and inp.data is not None:
            heard = experts.speech(inp.data, self.encoders["audio"] if "audio" in self.encoders else None)
            return expert_note("transcript", (heard.text, heard.confidence))
        if exp.image_labels > 0 and inp.modality == "image":
            enc = self.encoders["image"]
            if inp.features is not None:
                labels = experts.common_labels_from_pooled(enc, inp.features.pooled, exp.image_labels)
            else:
                labels = experts.common_labels(enc, [inp.data], exp.image_labels)[0]
            return expert_note("labels", labels)
        return ""

    # --- encoding ------------------------------------------------------------------------
    def encode_inputs(self, inputs: Sequence[PreparedInput]) -> list[tuple[torch.Tensor, EncoderOutput | None]]:
        """Bind-space vector (D,) and the encoder output of each input; one encoder call per modality."""
        flat: list[PreparedInput] = []
        for s in inputs:
            flat.extend(s.mix_of if s.modality == "mix" else [s])
        by_mod: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(flat):
            by_mod[s.modality].append(i)
        vectors: dict[int, torch.Tensor] = {}
        outputs: dict[int, EncoderOutput] = {}
        for modality, idx in by_mod.items():
            out = self._encoder_output(modality, [flat[i] for i in idx]).to(self.device)
            vec = self.bind(modality, out.pooled)
            if self.retrieval_cache is not None and modality in self.config.cache.modalities:
                vec = self.retrieval_cache.blend(vec, top_k=self.config.cache.top_k, alpha=self.config.cache.alpha)
            for j, i in enumerate(idx):
                vectors[i] = vec[j]
                outputs[i] = out.row(j)
        result: list[tuple[torch.Tensor, EncoderOutput | None]] = []
        pos = 0
        for s in inputs:
            if s.modality == "mix":
                n = len(s.mix_of)
                result.append((mix(torch.stack([vectors[pos + k] for k in range(n)]), s.weights), None))
                pos += n
            else:
                result.append((vectors[pos], outputs[pos]))
                pos += 1
        return result

    def _encoder_output(self, modality: str, inputs: list[PreparedInput]) -> EncoderOutput:
        if all(s.features is not None for s in inputs):
            return EncoderOutput.stack([s.features for s in inputs])  # type: ignore[misc]
        enc = self.encoders[modality]
        todo = [s for s in inputs if s.features is None]
        grad = enc.trainable and self.training
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            fresh = enc.encode([s.data for s in todo])
        if len(todo) == len(inputs):
            return fresh
        rows, k = [], 0
        for s in inputs:
            if s.features is not None:
                rows.append(s.features)
            else:
                rows.append(fresh.row(k))
                k += 1
        return EncoderOutput.stack(rows)

    def projector_of(self, modality: str) -> Projector:
        """The projector that serves ``modality`` (its own, else the shared ``"*"`` one)."""
        key, _ = self.config.projector_for(modality)
        return self.projectors[_pkey(key)]  # type: ignore[return-value]

    def soft_tokens(self, inputs: Sequence[PreparedInput]) -> list[torch.Tensor]:
        """(k, H) soft tokens per input through its projector."""
        encoded = self.encode_inputs(inputs)
        out: list[torch.Tensor] = []
        for inp, (vec, enc_out) in zip(inputs, encoded, strict=True):
            proj = self.projector_of(inp.modality if inp.cue_key != VIDEO_SOUND else "audio")
            kwargs: dict[str, Any] = {}
            if proj.uses_tokens and enc_out is not None and enc_out.tokens is not None:
                kwargs["tokens"] = enc_out.tokens[None]
                kwargs["token_mask"] = enc_out.token_mask[None] if enc_out.token_mask is not None else None
            if proj.supports_inputs:
                kwargs.update(self._projector_features(inp, enc_out, proj))
            if proj.uses_instruction and inp.instruction:
                ids = self.llm.tokenize(inp.instruction)
                if ids:
                    kwargs["instruction"] = self.llm.embed_tokens(ids)[None].detach()
            out.append(proj(vec[None], **kwargs)[0])
        return out

    def _projector_features(self, inp: PreparedInput, enc_out: EncoderOutput | None, proj: Projector) -> dict[str, Any]:
        """The encoder features a ``supports_inputs`` projector reads beside the bind vector: the
        modality (its input layers are per modality), pooled features and class probabilities
        (from the pooled features by the encoder's own classifier, so feature caches need nothing
        more). A mix has no encoder output: it reaches the projector as a bind vector only."""
        if enc_out is None:
            return {"modality": inp.modality}
        out: dict[str, Any] = {"modality": inp.modality}
        if "pooled" in proj.inputs:
            out["pooled"] = enc_out.pooled[None]
        if "classes" in proj.inputs:
            with torch.no_grad():
                out["classes"] = self.encoders[inp.modality].class_probs(enc_out.pooled[None]).to(self.device)
        return out

    # --- the one assembly path -----------------------------------------------------------
    def build_inputs(
        self,
        prepared: Prepared,
        *,
        add_generation_prompt: bool,
        soft: list[torch.Tensor] | None = None,
    ) -> tuple[Assembled, LayerInjection | None, list[Segment]]:
        """Conversation → embeddings + labels (+ gated injection), via ``assemble``.

        ``soft`` reuses soft tokens already computed for these inputs (candidate scoring).
        """
        inputs = prepared.inputs
        if soft is None:
            soft = self.soft_tokens(inputs) if inputs else []
        cues = self.config.injection.cues
        layout = [
            [Slot(s.modality, _cue(cues, s.cue_key), s.note) for s in group] for group in prepared.inputs_per_part
        ]
        segs = render_segments(
            prepared.conversation,
            self.template,
            layout,
            add_generation_prompt=add_generation_prompt,
            system_prompt=self.config.llm.system_prompt,
            inline_media=self.injection_kind == "prefix",
            cue_separator=self.config.injection.cue_separator,
            slot_end=self.config.injection.slot_end,
        )
        assembled = assemble(segs, soft, self.llm)
        injection = None
        if self.gates is not None:
            if soft:
                feature = torch.stack([t.mean(dim=0) for t in soft]).sum(dim=0)
            else:
                feature = torch.zeros(self.llm.hidden_size, device=assembled.embeds.device)
            injection = self.gates.injection(feature[None])
        return assembled, injection, segs

    # --- training loss -------------------------------------------------------------------
    def loss(self, conversations: Sequence[Conversation], feature_lookup: FeatureLookup | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy over assistant tokens of a batch of conversations."""
        built = [self.build_inputs(self.prepare(c, feature_lookup), add_generation_prompt=False) for c in conversations]
        embeds, mask, labels = _right_pad([b[0] for b in built])
        injection = _stack_injections([b[1] for b in built])
        # position t predicts token t+1: take the rows whose next token is a label
        targets = labels[:, 1:]
        where = torch.zeros_like(labels, dtype=torch.bool)
        where[:, :-1] = targets != IGNORE_INDEX
        if not where.any():
            raise ValueError("batch has no assistant tokens to train on")
        with self._adapters_on(self._adapter_rows(conversations)):
            logits = self.llm.forward_logits(embeds, mask, injection, positions=where)
        return nn.functional.cross_entropy(logits.float(), targets[targets != IGNORE_INDEX])

    # --- generation ----------------------------------------------------------------------
    def generate_ids(
        self,
        conversations: Sequence[Conversation],
        options: GenerationOptions,
        experts: ExpertSwitch | Sequence[ExpertSwitch] = None,
    ) -> tuple[Iterator[list[int | None]], list[int]]:
        """Start decoding a batch; returns the per-step token iterator and each prompt's text-token count.

        ``experts``: one switch for every row, or one per conversation (see ``prepare``).
        """
        switches = list(experts) if isinstance(experts, (list, tuple)) else [experts] * len(conversations)
        with torch.inference_mode():
            built = [
                self.build_inputs(self.prepare(c, experts=e), add_generation_prompt=True)
                for c, e in zip(conversations, switches, strict=True)
            ]
        injection = _stack_injections([b[1] for b in built])
        seqs = [b[0].embeds for b in built]
        for e in seqs:  # before the lazy decode starts: a prompt that cannot fit costs no forward pass
            check_prompt_budget(e.shape[0], options, self.llm.context_length)
        rows = self._adapter_rows([c for c in conversations])
        steps = self.llm.generate(seqs, options, injection)
        return _with_context(steps, lambda: self._adapters_on(rows)), [b[0].embeds.shape[0] for b in built]

    def _adapter_rows(self, conversations: Sequence[Conversation]) -> list[bool] | None:
        """Which rows the LoRA adapters act on, when ``llm.lora_media_only`` is set (else None = all).

        Keeping pure-text conversations on the untouched base LLM preserves its language ability,
        the way ImageBind-LLM's zero-gated injection leaves text-only prompts to the base model.
        """
        if self.config.llm.lora is None or not self.config.llm.lora_media_only:
            return None
        return [any(not isinstance(p, TextPart) for m in c for p in m.content) for c in conversations]

    @contextlib.contextmanager
    def _adapters_on(self, rows: list[bool] | None) -> Iterator[None]:
        """Scale each LoRA branch's output per batch row (1 = adapted, 0 = base model)."""
        if rows is None or all(rows):
            yield
            return
        handles = []
        for name, module in _llm_named_modules(self.llm):
            if name.endswith("lora_B.default"):

                def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> torch.Tensor:
                    mask = torch.tensor(rows, dtype=out.dtype, device=out.device)
                    return out * mask.view(-1, *([1] * (out.dim() - 1)))

                handles.append(module.register_forward_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    # --- candidate scoring ---------------------------------------------------------------
    @torch.inference_mode()
    def score(
        self,
        conversation: Conversation,
        candidates: Sequence[str],
        *,
        normalize: bool = False,
        experts: ExpertSwitch = None,
    ) -> torch.Tensor:
        """Log-likelihood of each candidate as the assistant's reply (closed-vocabulary ranking).

        Only the candidate's own tokens count (not the template's end marker), so candidates of
        different lengths compare on their words; ``normalize`` divides by their token count.
        """
        from omnibind.messages import Message

        if not candidates:
            raise ValueError("no candidates to score")
        prepared = self.prepare(conversation, experts=experts)
        soft = self.soft_tokens(prepared.inputs) if prepared.inputs else []
        rows = []
        for cand in candidates:
            p = Prepared([*conversation, Message.assistant(cand)], prepared.inputs_per_part)
            assembled, injection, segs = self.build_inputs(p, add_generation_prompt=False, soft=soft)
            rows.append((assembled, injection, self._candidate_end(segs, assembled)))
        embeds, mask, labels = _right_pad([r[0] for r in rows])
        for i, r in enumerate(rows):
            labels[i, r[2] :] = IGNORE_INDEX
        injection = _stack_injections([r[1] for r in rows])
        tgt = labels[:, 1:]
        valid = tgt != IGNORE_INDEX
        where = torch.zeros_like(labels, dtype=torch.bool)
        where[:, :-1] = valid
        with self._adapters_on(self._adapter_rows([conversation] * len(candidates))):
            logp = self.llm.forward_logits(embeds, mask, injection, positions=where).float().log_softmax(-1)
        picked = logp.gather(-1, tgt[valid][:, None])[:, 0]
        row = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(tgt)[valid]
        total = torch.zeros(labels.shape[0], device=picked.device).index_add(0, row, picked)
        return total / valid.sum(-1).clamp(min=1) if normalize else total

    def _candidate_end(self, segs: list[Segment], assembled: Assembled) -> int:
        """Position just past the candidate's own tokens (before the end marker and tail)."""
        trailing = [s for s in segs[segs.index(next(s for s in reversed(segs) if s.train)) + 1 :]]
        end = self.template.assistant_end
        n_after = sum(len(self.llm.tokenize_in_context(s.text, at_start=False)) for s in trailing if s.media is None)
        n_end = len(self.llm.tokenize_in_context(end, at_start=False)) if end else 0
        return assembled.embeds.shape[0] - n_after - n_end

    # --- embeddings ----------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, parts: Sequence[MediaPart | TextPart | MixPart]) -> torch.Tensor:
        """(N, D) L2-normalised bind-space vectors."""
        inputs: list[PreparedInput] = []
        no_notes = ExpertsConfig()  # bind-space vectors never read expert text: don't compute it
        for p in parts:
            if isinstance(p, MixPart):
                subs = [self._inputs_for(q, "", None, no_notes)[0] for q in p.parts]
                inputs.append(PreparedInput("mix", "mix", mix_of=subs, weights=list(p.weights)))
            else:
                inputs.append(self._inputs_for(p, "", None, no_notes)[0])
        for s in inputs:
            if s.modality == "text":
                self._require_encoder("text")
        return torch.stack([v for v, _ in self.encode_inputs(inputs)])

    # --- weights ---------------------------------------------------------------------------
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Checkpoint name → parameter for every weight a checkpoint holds, sorted by name.

        The one place that knows which weights are trainable and where they live: everything
        except frozen encoders and the frozen LLM base; inside the LLM only LoRA adapters and, with
        ``llm.train_bias_norm``, biases and norm scales, named ``llm.<name in the HF model>``.
        Checkpoints, recipes and the optimiser state all name parameters through this.
        """
        # encoders not built yet hold no parameters here (and frozen ones are never checkpointed)
        frozen_enc = {id(p) for e in self.encoders.built().values() if not e.trainable for p in e.parameters()}
        llm_model = getattr(self.llm, "model", None)
        llm_params = list(llm_model.named_parameters()) if isinstance(llm_model, nn.Module) else []
        llm_ids = {id(p) for _, p in llm_params}
        out: dict[str, nn.Parameter] = {}
        for n, p in self.named_parameters():
            if id(p) not in frozen_enc and id(p) not in llm_ids:
                out[n] = p
        for n, p in llm_params:
            if "lora_" in n or (self.config.llm.train_bias_norm and is_bias_or_norm(n)):
                out.setdefault(f"llm.{n}", p)
        return dict(sorted(out.items()))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The checkpointed weights as detached CPU tensors."""
        return {n: p.detach().cpu().contiguous() for n, p in self.trainable_parameters().items()}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy checkpointed weights in; names and shapes must match the config exactly."""
        from omnibind.errors import CheckpointError

        params = self.trainable_parameters()
        missing, unexpected = set(params) - set(state), set(state) - set(params)
        if missing or unexpected:
            raise CheckpointError(
                f"weights do not match the config: missing {sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}"
            )
        with torch.no_grad():
            for n, t in state.items():
                target = params[n]
                if target.shape != t.shape:
                    raise CheckpointError(f"{n}: shape {tuple(t.shape)} in file, {tuple(target.shape)} in model")
                target.copy_(t.to(target.dtype))

    def set_trainable(self, names: Sequence[str] | None = None) -> list[nn.Parameter]:
        """Freeze everything but ``names`` (default: all checkpointed weights); returns those
        parameters in sorted-name order."""
        params = self.trainable_parameters()
        wanted = sorted(set(names if names is not None else params))
        unknown = [n for n in wanted if n not in params]
        if unknown:
            raise KeyError(f"not trainable parameters of this model: {unknown[:8]}")
        for p in self.parameters():
            p.requires_grad_(False)
        llm_model = getattr(self.llm, "model", None)
        if isinstance(llm_model, nn.Module):  # a backend that is not a module keeps its model apart
            llm_model.requires_grad_(False)
        for n in wanted:
            params[n].requires_grad_(True)
        return [params[n] for n in wanted]


# --- helpers -------------------------------------------------------------------------------
def _with_context(steps: Iterator[Any], make_context: Callable[[], Any]) -> Iterator[Any]:
    """Run a lazy decode with a context (adapter row masks) active during each step only, so
    streams interleaving step by step under the model lock never see each other's hooks."""
    it = iter(steps)
    try:
        while True:
            with make_context():
                try:
                    step = next(it)
                except StopIteration:
                    return
            yield step
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _llm_named_modules(backend: LLMBackend) -> list[tuple[str, nn.Module]]:
    model = getattr(backend, "model", None)
    return list(model.named_modules()) if isinstance(model, nn.Module) else []


def is_bias_or_norm(name: str) -> bool:
    """Whether an LLM parameter name is a bias or a norm scale (the ``bias_norm`` group; ``omnibind
    plan`` counts it too)."""
    return name.endswith(".bias") or "norm" in name.split(".")[-2]


def _pkey(key: str) -> str:
    return "shared" if key == "*" else key


def _cue(cues: dict[str, str], key: str) -> str:
    if key == VIDEO_SOUND:
        return cues.get(VIDEO_SOUND, "Sound of the video:")
    return cues.get(key, f"{key.capitalize()}:")


def _right_pad(items: list[Assembled]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    longest = max(a.embeds.shape[0] for a in items)
    hidden = items[0].embeds.shape[1]
    embeds = items[0].embeds.new_zeros((len(items), longest, hidden))
    mask = torch.zeros((len(items), longest), dtype=torch.long, device=embeds.device)
    labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long, device=embeds.device)
    for i, a in enumerate(items):
        n = a.embeds.shape[0]
        embeds[i, :n] = a.embeds
        mask[i, :n] = 1
        labels[i, :n] = a.labels
    return embeds, mask, labels


def _stack_injections(items: list[LayerInjection | None]) -> LayerInjection | None:
    if all(i is None for i in items):
        return None
    first = next(i for i in items if i is not None)
    feats = [i.feature if i is not None else torch.zeros_like(first.feature) for i in items]
    return LayerInjection(feature=torch.cat(feats, dim=0), gates=first.gates)
