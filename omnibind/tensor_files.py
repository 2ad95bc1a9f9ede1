"""A weight file's tensors without unpickling code: the one reader of foreign checkpoints
(ImageBind's ``.pth``, PandaGPT's ``pytorch_model.pt``, LAVIS's Q-Former ``.pth``).

``torch.load(weights_only=True)`` admits tensors and plain containers only (torch refuses any other
pickled object); safetensors files hold nothing else by construction. Omnibind's own checkpoints
are read by ``omnibind.checkpoint`` (verified against their manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from omnibind.errors import CheckpointError


def read_state_dict(path: str | Path, *, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: ``.safetensors``, or a torch file read with ``weights_only=True``
    (plain tensors only; a ``{"model": ...}``/``{"state_dict": ...}`` wrapper and ``module.`` prefixes
    are accepted). ``what`` names the file in ``CheckpointError`` messages."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"{what} {p}: file not found")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(p))
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise CheckpointError(f"{what} {p}: not a readable safetensors file ({e})") from None
    else:
        state = _torch_load(p, what)
    for wrapper in ("model", "state_dict", "module"):
        if isinstance(state, dict) and len(state) == 1 and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} {p}: expected a mapping of parameter names to tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _torch_load(p: Path, what: str) -> Any:
    import pickle

    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap" not in str(e):  # legacy (non-zip) files cannot be memory-mapped: read them normally
            raise CheckpointError(f"{what} {p}: unreadable ({e})") from None
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{what} {p}: holds objects other than tensors, which are not unpickled for safety ({e})"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{what} {p}: unreadable ({e})") from None
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{what} {p}: unreadable ({e})") from None
