"""Depth maps: 16-bit PNG (millimetres by default; ``options["scale"]`` metres per unit), 8-bit
PNG (relative inverse depth, as most visualised depth is), and float .npy/.npz (metres, or
disparity with ``options["kind"] = "disparity"`` or an npz key named ``disparity``).
Zero, negative, inf and NaN pixels are invalid and become NaN.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source
from omnibind.modalities.base import MODALITIES, DepthData, Limits, Modality, source_name

FORMATS = ("png", "npy", "npz", "tif", "tiff")
KINDS = ("metric", "disparity")


@MODALITIES.register("depth")
class DepthModality(Modality):
    name = "depth"
    extensions = FORMATS
    description = "depth or disparity map"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> DepthData:
        limits = limits or Limits()
        options = options or {}
        label = source_name(source, name)
        kind = options.get("kind")
        if kind is not None and kind not in KINDS:
            raise InputError(label, f"unknown depth kind {kind!r}; expected one of {KINDS}", modality="depth")
        if isinstance(source, DepthData):
            return _finish(source.depth, source.kind, label, limits)
        if isinstance(source, np.ndarray):
            return _finish(source, kind or "metric", label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read depth from {type(source).__name__}", modality="depth")
        src = check_source(source, modality="depth", limits=limits, format=format, name=name, allowed=FORMATS)
        arr, file_kind = _decode(src, options)
        return _finish(arr, kind or file_kind, src.name, limits)


def _decode(src: Source, options: dict[str, Any]) -> tuple[np.ndarray, str]:
    if src.ext in ("npy", "npz"):
        return _decode_numpy(src)
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(src.read()))
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(src.name, f"not a readable depth image: {e}", modality="depth") from None
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        mm = np.asarray(im, dtype=np.float32)
        return mm * float(options.get("scale", 0.001)), "metric"
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32), "metric"
    if im.mode == "L":
        return np.asarray(im, dtype=np.float32) / 255.0, "disparity"
    raise InputError(
        src.name, f"depth images must be single-channel (16-bit or 8-bit); got mode {im.mode}", modality="depth"
    )


def _decode_numpy(src: Source) -> tuple[np.ndarray, str]:
    try:
        loaded = np.load(io.BytesIO(src.read()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(src.name, f"not a readable numpy file: {e}", modality="depth") from None
    if isinstance(loaded, np.ndarray):
        return loaded, "metric"
    with loaded:
        for key, kind in (("depth", "metric"), ("disparity", "disparity")):
            if key in loaded.files:
                return loaded[key], kind
        if len(loaded.files) == 1:
            return loaded[loaded.files[0]], "metric"
        raise InputError(src.name, f"npz needs a 'depth' or 'disparity' array; has {loaded.files}", modality="depth")


def _finish(arr: Any, kind: str, name: str, limits: Limits) -> DepthData:
    try:
        d = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric depth data: {e}", modality="depth") from None
    if d.ndim == 3 and d.shape[-1] == 1:
        d = d[..., 0]
    if d.ndim != 2 or min(d.shape) == 0:
        raise InputError(name, f"expected an (H, W) depth map, got shape {d.shape}", modality="depth")
    if d.size > limits.max_depth_pixels:
        raise InputTooLargeError(
            name, f"{d.size} pixels exceeds the limit of {limits.max_depth_pixels}", modality="depth"
        )
    d = d.copy()
    d[~np.isfinite(d) | (d <= 0)] = np.nan
    if np.isnan(d).all():
        raise InputError(name, "depth map has no valid pixels (all zero, negative, inf or NaN)", modality="depth")
    return DepthData(depth=d, kind=kind)
