"""LLaVA-1.5 from a Hugging Face ``LlavaForConditionalGeneration`` folder (the llava-hf layout).

``import_llava(PATH, OUT)`` splits the folder into an omnibind checkpoint:

- ``OUT/vision/``: the CLIP (or SigLIP) vision tower as a ``CLIPVisionModel`` folder with the
  folder's own ``preprocessor_config.json`` (resize the shortest side, centre-crop, normalise);
- ``OUT/llm/``: the language model as a plain causal-LM folder (``LlamaForCausalLM`` for
  LLaVA-1.5) with the folder's tokenizer; it also exports to GGUF like any HF LLM;
- ``OUT/config.json`` / ``weights.safetensors`` / ``manifest.json``: the omnibind model — the
  ``hf_clip`` encoder reading hidden states ``vision_feature_layer`` (-2) without the CLS token
  (``vision_feature_select_strategy`` ``default``), the ``token_mlp`` projector holding
  ``multi_modal_projector.linear_1/linear_2`` (one soft token per patch), and the ``llava_v1``
  chat template with an empty image cue, so a user turn renders as LLaVA's
  ``"USER: <image>\\n{question} ASSISTANT:"`` with the image's soft tokens where llava-hf puts its
  ``<image>`` tokens.

Both key layouts are read: the hub's (``language_model.model.*``, ``vision_tower.*``,
``multi_modal_projector.*``) and the one transformers >= 4.52 saves (``model.language_model.*``,
``model.vision_tower.*``, ``model.multi_modal_projector.*``, ``lm_head.*``). Tensors are copied
shard by shard; nothing is unpickled. ``tests/unit/test_import_llava.py`` checks the logits and
greedy tokens against transformers' own ``LlavaForConditionalGeneration``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from omnibind.atomic import atomic_dir
from omnibind.checkpoint import llm_fingerprint, write_checkpoint
from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError, ConfigError
from omnibind.hashing import digest
from omnibind.importers.common import (
    FolderFingerprint,
    bind_state,
    refuse_non_empty,
    require_keys,
    safetensors_shards,
    split_renamed,
)

VISION_TYPES = ("clip_vision_model", "siglip_vision_model")
PROJECTOR_KEYS = ("linear_1.weight", "linear_2.weight")
# a checkpoint tensor's prefix → (part, the prefix it gets in that part's own folder); the hub
# layout and the transformers >= 4.52 in-memory layout both appear
_PREFIXES = (
    ("model.vision_tower.", "vision", ""),  # then with or without "vision_model." (_save_vision_tower)
    ("vision_tower.", "vision", ""),
    ("model.multi_modal_projector.", "projector", ""),
    ("multi_modal_projector.", "projector", ""),
    ("model.language_model.", "llm", "model."),
    ("language_model.model.", "llm", "model."),
    ("language_model.lm_head.", "llm", "lm_head."),
    ("lm_head.", "llm", "lm_head."),
)


def is_llava_folder(path: str | Path) -> bool:
    """Whether ``path`` is a Hugging Face LLaVA folder (``config.json`` with ``model_type`` llava)."""
    cfg = Path(path).expanduser() / "config.json"
    try:
        return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == "llava"
    except (OSError, ValueError, AttributeError):
        return False


def _route(name: str) -> tuple[str, str] | None:
    for prefix, part, new in _PREFIXES:
        if name.startswith(prefix):
            return part, new + name[len(prefix) :]
    raise CheckpointError(f"LLaVA checkpoint: tensor {name!r} belongs to no known part (vision tower, projector, LLM)")


def _hf_config(folder: Path) -> Any:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{folder}/config.json: cannot read as a LLaVA config ({type(e).__name__}: {e})"
        ) from None
    if cfg.model_type != "llava":
        raise ConfigError(f"{folder}: model_type is {cfg.model_type!r}, not 'llava' (LlavaForConditionalGeneration)")
    if cfg.vision_config.model_type not in VISION_TYPES:
        raise ConfigError(
            f"{folder}: vision tower {cfg.vision_config.model_type!r} is not supported; expected one of {VISION_TYPES}"
        )
    if cfg.projector_hidden_act not in ("gelu", "gelu_pytorch_tanh", "relu"):
        raise ConfigError(f"{folder}: projector_hidden_act {cfg.projector_hidden_act!r} is not supported")
    return cfg


def _dtype_name(cfg: Any, override: str | None) -> str:
    if override:
        return override
    dtype = getattr(cfg, "dtype", None) or getattr(cfg.text_config, "dtype", None)
    name = str(dtype).replace("torch.", "") if dtype is not None else "float32"
    return name if name in ("float32", "float16", "bfloat16") else "float32"


def llava_config(cfg: Any, out: Path, name: str, dtype: str) -> ModelConfig:
    """The omnibind config of an imported LLaVA whose parts live in ``out/vision`` and ``out/llm``."""
    vcfg, tcfg = cfg.vision_config, cfg.text_config
    layers = cfg.vision_feature_layer
    patches = (int(vcfg.image_size) // int(vcfg.patch_size)) ** 2
    # CLIP has a CLS token before the patches, SigLIP none; "default" drops the first token either way
    # (LLaVA's get_image_features), so its token count is the processor's: patches (+1 CLS) (-1 default)
    cls_token = 1 if vcfg.model_type == "clip_vision_model" else 0
    tokens = patches + cls_token - (1 if cfg.vision_feature_select_strategy == "default" else 0)
    act = {"gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}[cfg.projector_hidden_act]
    pooled_dim = int(vcfg.hidden_size)
    return ModelConfig.from_dict(
        {
            "name": name,
            "encoders": {
                "image": {
                    "name": "hf_clip",
                    "params": {
                        "path": str(out / "vision"),
                        "modality": "image",
                        "kind": "auto",
                        "dtype": dtype,
                        "feature_layer": layers if isinstance(layers, int) else list(layers),
                        "feature_select": cfg.vision_feature_select_strategy,
                    },
                }
            },
            "bind": {"dim": pooled_dim, "heads": {"image": {"kind": "identity"}}, "anchor": "image"},
            "projectors": {
                "image": {
                    "name": "token_mlp",
                    "num_tokens": tokens,
                    "params": {
                        "hidden": int(tcfg.hidden_size),
                        "act": act,
                        "bias": bool(cfg.multimodal_projector_bias),
                    },
                }
            },
            "llm": {"backend": "transformers", "source": str(out / "llm"), "template": "llava_v1", "dtype": dtype},
            "injection": {"kind": "prefix", "cues": {"image": ""}},
        }
    )


def import_llava(
    path: str | Path,
    out: str | Path,
    *,
    dtype: str | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert the LLaVA folder ``path`` into the omnibind checkpoint folder ``out`` (see the module
    docstring); ``dtype`` (float32 / float16 / bfloat16) defaults to the checkpoint's. Written
    atomically: a failed import leaves ``out`` as it was; a non-empty ``out`` is replaced only
    with ``overwrite``. Returns ``out``."""
    import os

    src = Path(path).expanduser().resolve()
    if not is_llava_folder(src):
        raise ConfigError(f"{src}: not a LLaVA folder (config.json with model_type 'llava' expected)")
    cfg = _hf_config(src)
    dest = Path(out).expanduser().resolve()
    if dest == src or src in dest.parents:
        raise ConfigError(f"import llava: OUT {dest} must not be {src} or inside it")
    refuse_non_empty(dest, overwrite)
    shards = safetensors_shards(src)
    dtype = _dtype_name(cfg, dtype)
    config = llava_config(cfg, dest, name or f"llava-{src.name}", dtype)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    lm_class = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(cfg.text_config.model_type)
    if lm_class is None:
        raise ConfigError(
            f"{src}: language model {cfg.text_config.model_type!r} has no causal-LM class in transformers"
        )
    with atomic_dir(dest) as tmp:
        vision, llm = tmp / "vision", tmp / "llm"
        vision.mkdir()
        llm.mkdir()
        projector: dict[str, Any] = {}
        tower: dict[str, Any] = {}
        counts = split_renamed(shards, _route, {"llm": llm}, {"projector": projector, "vision": tower})
        if not counts["vision"] or not counts["llm"]:
            raise CheckpointError(f"{src}: found {counts} tensors per part; a LLaVA checkpoint has all three")
        require_keys(projector, list(PROJECTOR_KEYS), f"{src} (multi_modal_projector)")
        _save_vision_tower(cfg.vision_config, tower, vision, src)
        _write_part_config(cfg.text_config, llm, lm_class, dtype=dtype)
        for extra in ("generation_config.json",):
            if (src / extra).is_file():
                shutil.copy2(src / extra, llm / extra)
        _copy_image_processor(src, vision)
        try:
            AutoTokenizer.from_pretrained(str(src), local_files_only=True).save_pretrained(str(llm))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{src}: cannot read its tokenizer ({type(e).__name__}: {e})") from None
        state = {f"projectors.image.{k}": v.contiguous() for k, v in sorted(projector.items())}
        state.update(bind_state(config, {"image": int(cfg.vision_config.hidden_size)}))
        from omnibind.encoders.hf_clip import folder_fingerprint

        params = dict(config.encoders["image"].params)
        write_checkpoint(
            tmp,
            config,
            state,
            {"image": FolderFingerprint(lambda: folder_fingerprint("hf_clip", params, vision))},
            base_fingerprint=llm_fingerprint(str(llm)),
            extra={"imported_from": {"kind": "llava", "path": str(src)}},
        )
    return dest


def _save_vision_tower(vcfg: Any, tensors: dict[str, Any], folder: Path, src: Path) -> None:
    """The vision tower as a ``save_pretrained`` folder in the installed transformers' own key
    layout (transformers 5's ``CLIPVisionModel`` has no ``vision_model.`` level, older ones do),
    built on the meta device so no random weights are made for a 300M-parameter tower."""
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        tower = AutoModel.from_config(vcfg)
    want = set(tower.state_dict())
    nested = any(k.startswith("vision_model.") for k in want)
    renamed = {}
    for k, v in tensors.items():
        flat = k[len("vision_model.") :] if k.startswith("vision_model.") else k
        renamed[f"vision_model.{flat}" if nested else flat] = v
    missing, unexpected = sorted(want - set(renamed)), sorted(set(renamed) - want)
    if missing or unexpected:
        raise CheckpointError(
            f"{src}: vision tower tensors do not match {type(tower).__name__}: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}"
        )
    tower.load_state_dict(renamed, strict=True, assign=True)
    tower.save_pretrained(str(folder))


def _copy_image_processor(src: Path, vision: Path) -> None:
    """The folder's image processor settings as ``vision/preprocessor_config.json``: the file
    itself (hub folders), else the ``image_processor`` entry of ``processor_config.json`` (what
    transformers 5 saves). Without either, ``hf_clip`` uses CLIP's standard resize/crop/normalise."""
    own = src / "preprocessor_config.json"
    if own.is_file():
        shutil.copy2(own, vision / "preprocessor_config.json")
        return
    proc = src / "processor_config.json"
    if not proc.is_file():
        return
    try:
        settings = json.loads(proc.read_text()).get("image_processor")
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{proc}: unreadable ({e})") from None
    if isinstance(settings, dict):
        (vision / "preprocessor_config.json").write_text(json.dumps(settings, indent=2) + "\n")


def _write_part_config(part: Any, folder: Path, architecture: str, dtype: str | None = None) -> None:
    """A sub-config (vision or text) as the ``config.json`` of its own ``save_pretrained`` folder."""
    d = part.to_dict()
    d["architectures"] = [architecture]
    if dtype is not None:
        d["dtype"] = dtype
    (folder / "config.json").write_text(json.dumps(d, indent=2, sort_keys=True, default=str) + "\n")


def imported_copy(path: str | Path, cache: Path) -> Path:
    """The omnibind import of the LLaVA folder ``path`` under ``cache`` (made on first use, then
    reused while the folder's config and weight files are unchanged). ``omnibind.load`` calls this
    for a LLaVA folder; it says on stderr where the copy goes (it is as large as the weights)."""
    src = Path(path).expanduser().resolve()
    stamp = [str(src)] + [
        f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in [src / "config.json", *safetensors_shards(src)]
    ]
    dest = cache / "imports" / f"llava-{digest(stamp, 16)}"
    if not (dest / "manifest.json").is_file():
        print(
            f"omnibind: importing LLaVA folder {src} into {dest} (once; `omnibind import llava` picks the place)",
            file=sys.stderr,
            flush=True,
        )
        import_llava(src, dest)
    return dest
