"""Size a model without building it: every part on the meta device, so nothing is loaded or allocated.

``size_model(config, groups)`` instantiates the whole model a ``ModelConfig`` describes — encoders
(``Encoder.meta_network``: ImageBind from its ``arch``, CLIP from its declared ``config.json`` keys),
bind heads, projectors, gates and the LLM (``llm.arch``, else the source folder's ``config.json``)
with its LoRA adapters — on ``torch.device("meta")``: tensors with shapes and no storage. A 13B LLM
plus ImageBind-Huge takes about a second that way and no memory. Only encoders that have no meta
constructor (the small packaged ones, such as EfficientNet-Lite0) are built for real.

What trains follows the recipe's parameter groups (``omnibind.train.config.PARAM_GROUPS``, the
groups of ``omnibind.train.recipes``): heads, temperature, projectors, gates, trainable encoders,
LoRA, the LLM's biases and norms. The memory arithmetic lives in
``omnibind.train.plan_memory``; the command in ``omnibind.train.plan_cli``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from omnibind.config import ModelConfig
from omnibind.encoders.base import ENCODERS, SizedNetwork
from omnibind.errors import ConfigError

STAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "bind": ("bind_heads", "logit_scale"),
    "align": ("projectors", "gates"),
    "instruct": ("projectors", "gates", "lora", "bias_norm"),
    "per_modality": ("projectors",),
}
"""The parameter groups each stage trains by default (as the shipped stage configs do); a group the
model lacks (no gates without gated injection, no LoRA without ``llm.lora``) simply matches nothing."""


@dataclass
class Part:
    """One component's parameter count: ``params`` in all, ``trainable`` of them under the recipe,
    ``dtype`` its frozen weights are kept in."""

    name: str
    what: str
    params: int
    trainable: int
    dtype: str


@dataclass
class LLMShape:
    """What the memory estimate needs of the LLM (from its config and its meta-device modules)."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    layer_params: int  # the largest decoder layer (an FSDP shard unit), LoRA included
    linear_params: int  # weights of the decoder layers' linear layers: what a 4-bit base quantises
    lora_inputs_per_layer: int  # summed input widths of one layer's LoRA-adapted modules
    lora_modules_per_layer: int = 0
    lora_r: int = 0
    lora_dropout: float = 0.0
    norms_train: bool = False  # llm.train_bias_norm in a recipe that trains bias_norm


@dataclass
class Sizing:
    """A model's parts, trainable groups and LLM shape, as ``size_model`` found them."""

    name: str
    parts: list[Part]
    groups: list[str]
    llm: LLMShape
    llm_dtype: str
    lora: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts)

    @property
    def trainable(self) -> int:
        return sum(p.trainable for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"], d["trainable"] = self.params, self.trainable
        return d


def _numel(params: Sequence[nn.Parameter] | Any) -> int:
    return sum(int(p.numel()) for p in params)


# --- encoders -----------------------------------------------------------------------------------
class _EncoderSizer:
    """Sizes encoder configs, each distinct config once (the model shares identical encoders, and an
    image wrapper reuses its inner image encoder's instance)."""

    def __init__(self) -> None:
        self.cache: dict[str, SizedNetwork] = {}

    def __call__(self, cfg: dict[str, Any]) -> SizedNetwork:
        from omnibind.encoders.lazy import encoder_key

        key = encoder_key(cfg)
        if key not in self.cache:
            cls = ENCODERS.get(cfg["name"])
            params = dict(cfg.get("params") or {})
            self.cache[key] = cls.meta_network(params, self) or _built(cfg)
        return self.cache[key]


def _built(cfg: dict[str, Any]) -> SizedNetwork:
    """An encoder without a meta constructor, built for real (the packaged ones are small and local)."""
    from omnibind.encoders.lazy import LazyEncoders

    enc = LazyEncoders({"x": cfg}, eager=True)["x"]
    params = list(enc.parameters())
    dtype = str(params[0].dtype).removeprefix("torch.") if params else "float32"
    return SizedNetwork(enc, enc.feature_dims(), dtype=dtype, trainable=bool(enc.trainable))


# --- the LLM ------------------------------------------------------------------------------------
def llm_hf_config(config: ModelConfig) -> Any:
    """The LLM's transformers config: ``llm.arch`` when declared, else the source folder's
    ``config.json`` (read offline; no weights)."""
    from transformers import AutoConfig

    from omnibind.llm.sources import resolve_hf_source

    arch = dict(config.llm.arch or {})
    if arch:
        model_type = arch.pop("model_type", None)
        if not model_type:
            raise ConfigError("llm.arch: needs model_type (e.g. llama), as in the model's config.json")
        try:
            return AutoConfig.for_model(str(model_type), **arch)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"llm.arch: not a transformers config ({e})") from None
    if config.llm.backend != "transformers":
        raise ConfigError(
            f"llm.source {config.llm.source!r} on backend {config.llm.backend!r}: plan sizes Hugging Face "
            "models; declare llm.arch (the model's config.json keys)"
        )
    path = resolve_hf_source(config.llm.source)
    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"llm.source {config.llm.source!r}: no config.json here to size it from; declare llm.arch "
            f"(the model's config.json keys) in the config ({type(e).__name__})"
        ) from None


def _meta_llm(config: ModelConfig) -> nn.Module:
    from transformers import AutoModelForCausalLM

    hf = llm_hf_config(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf)
    if config.llm.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = config.llm.lora
        cfg = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules)
        )
        with torch.device("meta"), warnings.catch_warnings():  # adapters on meta too: no memory, no init work
            warnings.filterwarnings("ignore", category=FutureWarning)
            try:
                model = get_peft_model(model, cfg)
            except ValueError as e:  # peft: target modules not found in the base model
                raise ConfigError(f"llm.lora: {e}") from None
    return model


def _decoder_layers(model: nn.Module) -> list[nn.Module]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", base)
    layers = getattr(decoder, "layers", None) or getattr(decoder, "h", None)
    if layers is None:
        raise ConfigError(f"{type(base).__name__}: cannot find its decoder layers to size activations")
    return list(layers)


def _llm_shape(model: nn.Module, config: ModelConfig, norms_train: bool) -> LLMShape:
    cfg = model.config
    layers = _decoder_layers(model)
    hidden = int(cfg.hidden_size)
    heads = int(getattr(cfg, "num_attention_heads", 1))
    linear = 0
    lora_inputs = 0
    lora_modules = 0
    for layer in layers:
        for name, mod in layer.named_modules():
            if isinstance(mod, nn.Linear) and "lora_" not in name:
                linear += int(mod.weight.numel())
            if hasattr(mod, "lora_A") and hasattr(mod, "in_features"):
                lora_inputs += int(mod.in_features)
                lora_modules += 1
    lora = config.llm.lora
    per = max(1, len(layers))
    return LLMShape(
        hidden=hidden,
        layers=len(layers),
        intermediate=int(getattr(cfg, "intermediate_size", None) or 4 * hidden),
        heads=heads,
        kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads),
        vocab=int(cfg.vocab_size),
        layer_params=max(_numel(layer.parameters()) for layer in layers),
        linear_params=linear,
        lora_inputs_per_layer=lora_inputs // per,
        lora_modules_per_layer=lora_modules // per,
        lora_r=int(lora.r) if lora is not None else 0,
        lora_dropout=float(lora.dropout) if lora is not None else 0.0,
        norms_train=norms_train,
    )


class _Width:
    """The one thing a projector's constructor asks of the LLM here: its width (no ``model``
    attribute, so ``match_embedding_scale``, which needs real embeddings, leaves the meta layer be)."""

    def __init__(self, hidden_size: int):
        self.hidden_size = hidden_size


# --- the whole model ----------------------------------------------------------------------------
def default_groups(config: ModelConfig, stage: str) -> list[str]:
    """The parameter groups ``stage`` trains by default, narrowed to what this model has."""
    if stage not in STAGE_GROUPS:
        raise ConfigError(f"stage {stage!r}: expected one of {sorted(STAGE_GROUPS)}")
    groups = list(STAGE_GROUPS[stage])
    if "bias_norm" in groups and not config.llm.train_bias_norm:
        groups.remove("bias_norm")
    return groups


def size_model(config: ModelConfig, groups: Sequence[str]) -> Sizing:
    """Every part of ``config`` on the meta device, counted; ``groups`` (recipe parameter groups)
    say which train. Raises ``ConfigError`` for a config it cannot size, naming what to declare."""
    import omnibind.encoders
    import omnibind.projectors  # noqa: F401  (register encoders and projectors)
    from omnibind.bind.heads import BindHeads
    from omnibind.llm.inject import LayerGates
    from omnibind.model import is_bias_or_norm
    from omnibind.model_setup import build_projector
    from omnibind.train.config import PARAM_GROUPS

    unknown = sorted(set(groups) - set(PARAM_GROUPS))
    if unknown:
        raise ConfigError(f"train groups {unknown}: expected some of {list(PARAM_GROUPS)}")
    wanted = set(groups)
    parts: list[Part] = []
    notes: list[str] = []
    trained: dict[str, int] = {}  # group → trainable parameters it matched

    def add(name: str, what: str, n: int, dtype: str, train: dict[str, int]) -> None:
        """A part of ``n`` parameters, of which ``train`` (group → count) train when the group is wanted."""
        chosen = {g: c for g, c in train.items() if g in wanted and c}
        for g, c in chosen.items():
            trained[g] = trained.get(g, 0) + c
        parts.append(Part(name, what, n, sum(chosen.values()), dtype))

    sizer = _EncoderSizer()
    sized = {m: sizer({"name": c.name, "params": c.params}) for m, c in config.encoders.items()}
    by_network: dict[int, list[str]] = {}
    for m, s in sized.items():
        by_network.setdefault(id(s.network), []).append(m)
    for mods in by_network.values():
        s, enc = sized[mods[0]], config.encoders[mods[0]]
        n = _numel(s.network.parameters())
        what = f"{enc.name} {enc.params.get('modality', '')}".strip()
        add(f"encoder {', '.join(mods)}", what, n, s.dtype, {"encoders": n if s.trainable else 0})
        if n == 0:
            notes.append(f"encoder {', '.join(mods)} ({enc.name}) holds no torch parameters (not counted)")

    dims = {m: s.dims for m, s in sized.items()}
    with torch.device("meta"):
        bind = BindHeads(config.bind, {m: d.pooled for m, d in dims.items()})
    heads = _numel(bind.heads.parameters())
    add("bind heads", f"{len(bind.heads)} + temperature", heads + 1, "float32", {"bind_heads": heads, "logit_scale": 1})

    llm = _meta_llm(config)
    shape = _llm_shape(llm, config, bool(config.llm.train_bias_norm and "bias_norm" in wanted))
    named = dict(llm.named_parameters())
    lora_n = sum(int(p.numel()) for n, p in named.items() if "lora_" in n)
    base_n = sum(int(p.numel()) for n, p in named.items() if "lora_" not in n)
    bias_norm = sum(int(p.numel()) for n, p in named.items() if "lora_" not in n and is_bias_or_norm(n))
    add(
        "llm",
        type(_base(llm)).__name__,
        base_n,
        config.llm.dtype,
        {"bias_norm": bias_norm if config.llm.train_bias_norm else 0},
    )
    lc = config.llm.lora
    if lora_n and lc is not None:
        short = ",".join(t.removesuffix("_proj") for t in lc.target_modules)
        what = f"r={lc.r}: {short}" if len(short) <= 18 else f"r={lc.r}: {len(lc.target_modules)} modules"
        add("lora", what, lora_n, "float32", {"lora": lora_n})

    with torch.device("meta"):
        for key, pcfg in config.projectors.items():
            proj = build_projector(key, pcfg, config, dims, _Width(shape.hidden))  # type: ignore[arg-type]
            n = _numel(proj.parameters())
            add(f"projector {key}", pcfg.name, n, "float32", {"projectors": n})
        if config.injection.kind == "gated":
            g = _numel(LayerGates(shape.layers).parameters())
            add("gates", "per layer", g, "float32", {"gates": g})

    if not trained:
        raise ConfigError(f"train groups {sorted(wanted)} match no parameter of this model (recipe trains nothing)")
    lora_dict = asdict(lc) if lc is not None else None
    return Sizing(config.name, parts, sorted(trained), shape, config.llm.dtype, lora_dict, notes)


def _base(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model
