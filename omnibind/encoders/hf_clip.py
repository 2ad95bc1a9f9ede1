"""CLIP (Radford et al. 2021) and SigLIP (Zhai et al. 2023) image/text encoders from a local Hugging Face
folder (``save_pretrained`` layout: ``config.json``, weights, tokenizer and preprocessor files).

Registry name ``hf_clip``; params ``path`` (the folder), ``modality`` (``image`` or ``text``), ``kind``
(``auto`` reads ``model_type`` from ``config.json``; or ``clip``/``siglip``), ``dtype``. Nothing is
downloaded: every load is ``local_files_only`` with ``HF_HUB_OFFLINE=1``.

``pooled`` is the model's own projected embedding, L2-normalised: image and text already share one space,
so the omnibind bind head for these encoders can be ``identity`` (``bind.dim`` = the projection width).
``tokens`` are the tower's last hidden states (text: with the tokenizer's attention mask).
Both modalities of one folder share a single loaded model.

A vision-only folder (``CLIPVisionModel`` / ``SiglipVisionModel``: ``model_type`` ``clip_vision_model``
or ``siglip_vision_model``, what ``omnibind import llava`` writes) serves ``image``; it has no
projection, so ``pooled`` is its pooled output L2-normalised. LLaVA reads other tokens than the
last layer's: ``feature_layer`` picks hidden states by index (``-2``: the penultimate layer's
output, LLaVA-1.5's ``vision_feature_layer``; a list concatenates several along the width;
None: the last hidden states) and ``feature_select`` ``default`` drops the first (CLS) token,
``full`` keeps it (LLaVA's ``vision_feature_select_strategy``).
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput, FeatureDims, SizedNetwork
from omnibind.errors import CheckpointError, ConfigError, InputError
from omnibind.modalities.base import ImageData

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_KINDS = {"clip": "clip", "siglip": "siglip"}  # model_type in config.json → family
_VISION_ONLY = {"clip_vision_model": "clip", "siglip_vision_model": "siglip"}  # image tower folders
FEATURE_SELECT = ("full", "default")
_MODELS: weakref.WeakValueDictionary[str, nn.Module] = weakref.WeakValueDictionary()


# --- helpers shared with hf_audio ----------------------------------------------------------------
def local_model_dir(path: str | Path | None, what: str) -> Path:
    """The folder, checked to hold a ``config.json``; a typed error names it otherwise."""
    if not path:
        raise ConfigError(f"{what} encoder needs `path`: a local folder saved with save_pretrained")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise CheckpointError(f"{what} model folder {p}: no config.json (expected a save_pretrained folder)")
    return p


def model_type(folder: Path) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text())["model_type"])
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"model folder {folder}: config.json has no readable model_type ({e})") from None


def load_local(folder: Path, loader: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(folder, local_files_only=True)`` offline; failures become ``CheckpointError``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return loader(str(folder), local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{what} in {folder}: cannot load ({type(e).__name__}: {e})") from None


def check_dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r}: expected one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def shared_model(folder: Path, dtype: str, what: str) -> nn.Module:
    """One frozen ``AutoModel`` per (folder version, dtype), kept while any encoder uses it."""
    from transformers import AutoModel

    st = (folder / "config.json").stat()
    key = json.dumps([str(folder.resolve()), st.st_mtime_ns, dtype])
    model = _MODELS.get(key)
    if model is None:
        model = load_local(folder, AutoModel.from_pretrained, what, dtype=check_dtype(dtype))
        model = model.eval().requires_grad_(False)
        _MODELS[key] = model
    return model


def folder_fingerprint(kind: str, params: dict[str, Any], folder: Path) -> str:
    import hashlib

    from omnibind.encoders._weights import file_hash

    blob = json.dumps({"p": params, "w": file_hash(folder)}, sort_keys=True, default=str)
    return f"{kind}-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def _feature_layers(layer: int | list[int] | None) -> list[int] | None:
    """``feature_layer`` as a list of hidden-state indices (None: the last hidden states)."""
    if layer is None:
        return None
    layers = [layer] if isinstance(layer, int) and not isinstance(layer, bool) else layer
    if not isinstance(layers, list) or not layers or any(not isinstance(i, int) or isinstance(i, bool) for i in layers):
        raise ConfigError(f"hf_clip feature_layer must be an integer, a non-empty list of them or null, got {layer!r}")
    return list(layers)


# --- the encoder -----------------------------------------------------------------------------------
@ENCODERS.register("hf_clip")
class HFClipEncoder(Encoder):
    """The image or text tower of a local CLIP / SigLIP checkpoint (see the module docstring)."""

    trainable = False

    def __init__(
        self,
        path: str | None = None,
        modality: str = "image",
        kind: str = "auto",
        dtype: str = "float32",
        feature_layer: int | list[int] | None = None,
        feature_select: str = "full",
        arch: dict[str, Any] | None = None,
    ):
        # the LLaVA params and `arch` join the fingerprinted params only when set, so existing
        # fingerprints stay
        extra: dict[str, Any] = {"feature_layer": feature_layer} if feature_layer is not None else {}
        if feature_select != "full":
            extra["feature_select"] = feature_select
        if arch:
            extra["arch"] = arch
        super().__init__(path=path, modality=modality, kind=kind, dtype=dtype, **extra)
        if modality not in ("image", "text"):
            raise ConfigError(f"hf_clip modality {modality!r}: expected image or text")
        self.folder = local_model_dir(path, "hf_clip")
        found = model_type(self.folder)
        vision_only = found in _VISION_ONLY
        if found not in _KINDS and not vision_only:
            raise ConfigError(
                f"hf_clip: {self.folder} holds a {found!r} model; supported: clip, siglip, "
                "clip_vision_model, siglip_vision_model"
            )
        family = _VISION_ONLY[found] if vision_only else _KINDS[found]
        if kind not in ("auto", found, family):
            raise ConfigError(f"hf_clip kind {kind!r} does not match the folder's model_type {found!r}")
        if vision_only and modality != "image":
            raise ConfigError(f"hf_clip: {self.folder} holds only an image tower ({found}); modality must be image")
        self.feature_layers = _feature_layers(feature_layer)
        if feature_select not in FEATURE_SELECT:
            raise ConfigError(f"hf_clip feature_select {feature_select!r}: expected one of {list(FEATURE_SELECT)}")
        if modality == "text" and (self.feature_layers is not None or feature_select != "full"):
            raise ConfigError("hf_clip: feature_layer / feature_select apply to the image tower only")
        self.feature_select = feature_select
        self.kind = family
        if arch:  # before any weight is read; against the parsed config (defaults filled in)
            from transformers import AutoConfig

            from omnibind.config import check_declared_arch

            loaded = load_local(self.folder, AutoConfig.from_pretrained, "hf_clip config").to_dict()
            check_declared_arch(arch, {**loaded, "model_type": found}, f"hf_clip arch of {path}")
        model = shared_model(self.folder, dtype, "hf_clip model")
        self.__dict__["_shared_model"] = model  # keeps the cache entry alive; only the tower is registered
        self.modalities = (modality,)
        cfg = model.config
        if modality == "image":
            vcfg = cfg if vision_only else cfg.vision_config
            # transformers 5 makes CLIPVisionModel the tower itself (CLIPModel.vision_model is one)
            self.tower = nn.ModuleDict({"model": getattr(model, "vision_model", model)})
            if self.kind == "clip" and not vision_only:
                self.tower["projection"] = model.visual_projection
            self.output_dim = cfg.projection_dim if "projection" in self.tower else vcfg.hidden_size
            self.token_dim = vcfg.hidden_size * (len(self.feature_layers) if self.feature_layers else 1)
            self.processor = self._image_processor(vcfg)
        else:
            self.tower = nn.ModuleDict({"model": model.text_model})
            if self.kind == "clip":
                self.tower["projection"] = model.text_projection
            self.output_dim = cfg.projection_dim if self.kind == "clip" else cfg.text_config.projection_size
            self.token_dim = cfg.text_config.hidden_size
            from transformers import AutoTokenizer

            self.tokenizer = load_local(self.folder, AutoTokenizer.from_pretrained, "hf_clip tokenizer")
            self.max_length = int(cfg.text_config.max_position_embeddings)

    @classmethod
    def meta_network(cls, params: dict[str, Any], build: Any) -> SizedNetwork:
        """The tower (+ projection) on the meta device from ``arch`` (or, without it, the folder's
        ``config.json``): no weights are read."""
        from transformers import AutoConfig, AutoModel

        modality = params.get("modality", "image")
        if modality not in ("image", "text"):
            raise ConfigError(f"hf_clip modality {modality!r}: expected image or text")
        arch = dict(params.get("arch") or {})
        if arch:
            kind = arch.pop("model_type", None) or params.get("kind", "auto")
            if kind not in _KINDS:
                raise ConfigError(f"hf_clip arch: give model_type (clip or siglip) or kind, got {kind!r}")
            cfg = AutoConfig.for_model(kind, **arch)
        else:
            cfg = AutoConfig.from_pretrained(str(local_model_dir(params.get("path"), "hf_clip")), local_files_only=True)
            kind = cfg.model_type
            if kind not in _KINDS:
                raise ConfigError(f"hf_clip: {params.get('path')} holds a {kind!r} model; supported: clip, siglip")
        with torch.device("meta"):
            model = AutoModel.from_config(cfg)
        side = "vision" if modality == "image" else "text"
        tower = nn.ModuleDict({"model": getattr(model, f"{side}_model")})
        if kind == "clip":
            tower["projection"] = getattr(model, "visual_projection" if side == "vision" else "text_projection")
            out = cfg.projection_dim
        else:
            out = cfg.vision_config.hidden_size if side == "vision" else cfg.text_config.projection_size
        width = getattr(cfg, f"{side}_config").hidden_size
        return SizedNetwork(tower, FeatureDims(int(out), int(width)), dtype=str(params.get("dtype", "float32")))

    def _image_processor(self, cfg: Any) -> Any:
        """The folder's image processor (PIL backend: no torchvision needed), else one built from the
        vision config with the family's standard resize/crop/normalisation."""
        from transformers import AutoImageProcessor, CLIPImageProcessorPil, SiglipImageProcessorPil

        if (self.folder / "preprocessor_config.json").is_file():
            return load_local(self.folder, AutoImageProcessor.from_pretrained, "hf_clip image processor")
        size = int(cfg.image_size)
        if self.kind == "clip":
            return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        return SiglipImageProcessorPil(size={"height": size, "width": size})

    def fingerprint(self) -> str:
        return folder_fingerprint("hf_clip", self.params, self.folder)

    @torch.no_grad()
    def encode(self, items: list[Any]) -> EncoderOutput:
        """Images (``ImageData``) or strings, per the configured modality."""
        if not items:
            raise InputError("<batch>", "empty batch", modality=self.modalities[0])
        return self._encode_images(items) if self.modalities[0] == "image" else self._encode_text(items)

    def _param_dtype(self) -> torch.dtype:
        return next(self.tower.parameters()).dtype

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        if "projection" in self.tower:
            pooled = self.tower["projection"](pooled)
        return nn.functional.normalize(pooled.float(), dim=-1)

    def _encode_images(self, items: list[Any]) -> EncoderOutput:
        pixels = []
        for i, item in enumerate(items):
            px = np.asarray(item.pixels) if isinstance(item, ImageData) else None
            if px is None or px.ndim != 3 or px.shape[2] != 3 or px.dtype != np.uint8:
                got = f"{px.shape} {px.dtype}" if px is not None else type(item).__name__
                raise InputError(f"<item {i}>", f"hf_clip image encoder takes (H, W, 3) uint8 ImageData, got {got}")
            pixels.append(px)
        batch = self.pixel_values(pixels)
        layers = self.feature_layers
        out = self.tower["model"](
            pixel_values=batch.to(self.device, self._param_dtype()), output_hidden_states=layers is not None
        )
        if layers is None:
            tokens = out.last_hidden_state
        else:  # LLaVA's get_image_features: hidden_states[i] for each layer, concatenated along the width
            tokens = torch.cat([out.hidden_states[i] for i in layers], dim=-1)
        if self.feature_select == "default":
            tokens = tokens[:, 1:]
        return EncoderOutput(pooled=self._project(out.pooler_output), tokens=tokens.float())

    def pixel_values(self, items: list[np.ndarray]) -> torch.Tensor:
        """The preprocessed batch the tower reads (the folder's image processor: resize, crop,
        normalise); the LLaVA equivalence test compares it with the processor's own output."""
        return self.processor(images=items, return_tensors="pt")["pixel_values"]

    def _encode_text(self, items: list[Any]) -> EncoderOutput:
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise InputError(f"<item {i}>", f"expected a str, got {type(t).__name__}", modality="text")
        # SigLIP was trained on max-length padded text without an attention mask; CLIP pools the end token
        # and masks padding itself, so the batch's longest row suffices.
        padding = "max_length" if self.kind == "siglip" else "longest"
        enc = self.tokenizer(
            items,
            padding=padding,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
        kwargs = {"attention_mask": mask} if self.kind == "clip" else {}
        out = self.tower["model"](input_ids=ids, **kwargs)
        return EncoderOutput(
            pooled=self._project(out.pooler_output), tokens=out.last_hidden_state.float(), token_mask=mask.bool()
        )
