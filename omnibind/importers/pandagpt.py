"""PandaGPT (Su et al., "PandaGPT: One Model To Instruction-Follow Them All", 2023) from its released
delta checkpoint, over ImageBind and a Vicuna folder the user supplies.

The delta (``pandagpt_ckpt/<size>/pytorch_model.pt``, yxuansu/PandaGPT ``code/model/agent.py``
``save_model``) holds the trainable parameters of ``OpenLLAMAPEFTModel`` only:

- ``llama_proj.weight`` (Vicuna width × 1024) and ``llama_proj.bias``: ImageBind-Huge's embedding
  → one soft token;
- ``llama_model.base_model.model.model.layers.<i>.self_attn.<q|k|v|o>_proj.lora_<A|B>[.default].weight``:
  the peft LoRA on Vicuna (r 32, alpha 32, dropout 0.1 in the released runs; r is read off the
  shapes, alpha is not in the file and defaults to PandaGPT's 32).

It is read with ``torch.load(weights_only=True)`` or from safetensors (``omnibind.tensor_files``).
The omnibind model: ImageBind encoders for image, audio, video and thermal (the inputs PandaGPT's
code feeds), identity bind heads, one ``linear`` projector per modality holding ``llama_proj``,
the LoRA under omnibind's names (``llm.base_model.model.<…>.lora_A.default.weight``) and the
``pandagpt`` chat template with ``<Img>`` … ``</Img> `` around each soft token.

PandaGPT feeds the projection ImageBind's *scaled* output (the unit embedding times the
modality's fixed logit scale: 1 for vision, 20 for audio, 10 for thermal, read from the ImageBind
checkpoint's postprocessors), while omnibind's bind vector is the unit embedding; the scale is
folded into each modality's projector weight (``W_m = s_m · W``, the bias as is), so the soft
token is exactly ``llama_proj(scaled embedding)``. Known differences: PandaGPT sums the features
of several inputs into one token (omnibind keeps a slot per input), and its video embedding is a
mean of per-clip unit vectors, not renormalised (omnibind's is).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError
from omnibind.importers.common import refuse_non_empty, require_keys
from omnibind.tensor_files import read_state_dict

PROJ_KEYS = ["llama_proj.weight", "llama_proj.bias"]
_LORA = re.compile(r"^llama_model\.base_model\.model\.(?P<path>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")
MODALITIES = ("image", "audio", "video", "thermal")
_TOWER = {"image": "vision", "audio": "audio", "thermal": "thermal"}


def read_delta(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(projection, lora)`` of a PandaGPT delta: ``{"weight", "bias"}`` and the LoRA tensors under
    omnibind's names; any other tensor is a ``CheckpointError`` (this is not a PandaGPT delta)."""
    state = read_state_dict(path, what="PandaGPT delta checkpoint")
    require_keys(state, PROJ_KEYS, f"PandaGPT delta checkpoint {path}")
    proj = {"weight": state["llama_proj.weight"], "bias": state["llama_proj.bias"]}
    lora: dict[str, torch.Tensor] = {}
    other = []
    for k, v in state.items():
        if k in PROJ_KEYS:
            continue
        m = _LORA.match(k)
        if m is None:
            other.append(k)
            continue
        lora[f"llm.base_model.model.{m['path']}.lora_{m['ab']}.default.weight"] = v
    if other:
        raise CheckpointError(f"PandaGPT delta checkpoint {path}: unexpected tensors {sorted(other)[:6]}")
    if not lora:
        raise CheckpointError(f"PandaGPT delta checkpoint {path}: no LoRA tensors (llama_model.…lora_A/B)")
    return proj, lora


def pandagpt_config(
    lora: dict[str, torch.Tensor],
    bind_dim: int,
    *,
    vicuna: str,
    imagebind: str,
    arch: dict[str, Any] | None,
    lora_alpha: int,
    lora_dropout: float,
    dtype: str,
) -> ModelConfig:
    """The omnibind config: ImageBind encoders from ``imagebind``, the LoRA's r and targets from the
    delta's tensors, Vicuna from ``vicuna``."""
    ranks = {v.shape[0] for k, v in lora.items() if ".lora_A." in k}
    if len(ranks) != 1:
        raise CheckpointError(f"PandaGPT delta: LoRA ranks differ across layers ({sorted(ranks)})")
    targets = sorted({k.split(".lora_")[0].rsplit(".", 1)[-1] for k in lora})
    ib = {"checkpoint": imagebind, **({"arch": arch} if arch else {})}
    encoders: dict[str, Any] = {m: {"name": "imagebind", "params": {"modality": _TOWER[m], **ib}} for m in _TOWER}
    encoders["video"] = {
        "name": "video_frames",
        "params": {"image_encoder": {"name": "imagebind", "params": {"modality": "vision", **ib}}},
    }
    heads = {m: {"kind": "identity"} for m in _TOWER} | {"video": {"share": "image"}}
    return ModelConfig.from_dict(
        {
            "name": "pandagpt",
            "encoders": encoders,
            "bind": {"dim": bind_dim, "heads": heads, "anchor": "image"},
            "projectors": {m: {"name": "linear", "num_tokens": 1} for m in MODALITIES},
            "llm": {
                "backend": "transformers",
                "source": vicuna,
                "template": "pandagpt",
                "dtype": dtype,
                "lora": {"r": ranks.pop(), "alpha": lora_alpha, "dropout": lora_dropout, "target_modules": targets},
            },
            "injection": {
                "kind": "prefix",
                "cues": dict.fromkeys(MODALITIES, "<Img>"),
                "cue_separator": "",
                "slot_end": "</Img> ",
            },
        }
    )


def official_scale(encoder: Any) -> float:
    """The factor ImageBind's official output puts on the unit embedding (its postprocessor's
    logit scale: a buffer of the checkpoint), 1.0 for encoders without one (video frames)."""
    post = getattr(getattr(encoder, "tower", None), "postprocessor", None)
    if post is None:
        return 1.0
    dim = int(encoder.output_dim)
    with torch.no_grad():
        unit = torch.full((1, dim), dim**-0.5, device=encoder.device)
        return float(post(unit.to(next(encoder.parameters()).dtype)).float().norm())


def import_pandagpt(
    delta: str | Path,
    vicuna: str | Path,
    imagebind: str | Path,
    out: str | Path,
    *,
    arch: dict[str, Any] | None = None,
    lora_alpha: int = 32,
    lora_dropout: float = 0.1,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Write the omnibind checkpoint of a PandaGPT delta to ``out``; returns ``out``.

    The model is built once (ImageBind and Vicuna are loaded: the checkpoint's names and shapes are
    checked against the real parts), the delta's tensors are loaded into it and the checkpoint
    written by ``omnibind.checkpoint.save_checkpoint`` (atomic). ``arch`` overrides ImageBind's
    architecture (tests use a tiny one); ``out`` refers to ``vicuna`` and ``imagebind`` in place.
    """
    from omnibind.checkpoint import save_checkpoint
    from omnibind.model import OmnibindModel

    dest = Path(out).expanduser().resolve()
    refuse_non_empty(dest, overwrite)
    proj, lora = read_delta(delta)
    llm_dim, bind_dim = proj["weight"].shape
    config = pandagpt_config(
        lora,
        int(bind_dim),
        vicuna=str(Path(vicuna).expanduser().resolve()),
        imagebind=str(Path(imagebind).expanduser().resolve()),
        arch=arch,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        dtype=dtype,
    )
    core = OmnibindModel(config)
    if core.llm.hidden_size != llm_dim:
        raise CheckpointError(
            f"PandaGPT delta {delta}: llama_proj gives width {llm_dim}, the Vicuna folder {vicuna} has "
            f"{core.llm.hidden_size} (a 7B delta on a 13B Vicuna, or the reverse?)"
        )
    state = {k: v.detach().clone() for k, v in core.trainable_state_dict().items()}
    for m in MODALITIES:
        scale = 1.0 if m == "video" else official_scale(core.encoders[m])  # video: the vision tower, L2 only
        state[f"projectors.{m}.proj.weight"] = proj["weight"].float() * scale
        state[f"projectors.{m}.proj.bias"] = proj["bias"].float().clone()
    state.update(lora)
    core.load_trainable_state_dict(state)  # names and shapes must fit the real model exactly
    return save_checkpoint(core, dest, extra={"imported_from": {"kind": "pandagpt", "delta": str(delta)}})
