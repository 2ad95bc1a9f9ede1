"""Depth maps → ``DepthData`` (H, W) float32 with invalid pixels as NaN.

* 16-bit PNG/TIFF: integer units, millimetres by default (``options["scale"]`` = metres per unit,
  e.g. 0.0002 for the 1/5000 m of some scanners).
* 8-bit PNG: relative inverse depth (as most visualised depth is) → ``kind="disparity"``, /255.
* float TIFF, .npy/.npz: metres, or disparity with ``options["kind"] = "disparity"`` or an npz
  array named ``disparity``. Integer arrays are units like a 16-bit PNG.

Zero, negative, inf and NaN pixels are invalid and become NaN; a map with no valid pixel is refused.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source, load_numpy
from omnibind.modalities.base import MODALITIES, DepthData, Limits, Modality, source_name
from omnibind.modalities.options import Option

FORMATS = ("png", "npy", "npz", "tif", "tiff")
KINDS = ("metric", "disparity")
MM = 0.001  # default metres per integer unit

OPTIONS = (
    Option("kind", str, "what the values are (default: from the file)", choices=KINDS, client=True),
    Option(
        "scale",
        float,
        "metres per integer unit (default: millimetres); multiplies float values when given",
        unit="metres per unit",
        client=True,
        client_range=(1e-9, 1e3),
    ),
)


@MODALITIES.register("depth")
class DepthModality(Modality):
    """Depth or disparity maps → ``DepthData``."""

    name = "depth"
    extensions = FORMATS
    description = "depth or disparity map"
    options = OPTIONS

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> DepthData:
        limits = limits or Limits()
        label = source_name(source, name)
        options = self.checked_options(options, label)
        kind = options.get("kind")
        if kind is not None and kind not in KINDS:
            raise InputError(label, f"unknown depth kind {kind!r}; expected one of {KINDS}", modality="depth")
        scale = _scale(options, label)
        if isinstance(source, DepthData):
            return _finish(source.depth, kind or source.kind, label, limits)
        if isinstance(source, np.ndarray):
            return _finish(_apply_units(source, scale), kind or "metric", label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read depth from {type(source).__name__}", modality="depth")
        src = check_source(source, modality="depth", limits=limits, format=format, name=name, allowed=FORMATS)
        arr, file_kind = _decode(src, scale, limits)
        return _finish(arr, kind or file_kind, src.name, limits)


def _scale(options: dict[str, Any], label: str) -> float | None:
    if options.get("scale") is None:
        return None
    try:
        s = float(options["scale"])
    except (TypeError, ValueError):
        raise InputError(label, f"scale must be a number, got {options['scale']!r}", modality="depth") from None
    if not np.isfinite(s) or s <= 0:
        raise InputError(label, f"scale must be positive, got {s}", modality="depth")
    return s


def _apply_units(arr: Any, scale: float | None) -> Any:
    """Integer units × scale (default millimetres); floats are metres unless a scale is given."""
    a = np.asarray(arr)
    if a.dtype.kind in "ui":
        return a.astype(np.float32) * (scale if scale is not None else MM)
    if scale is not None and a.dtype.kind == "f":
        return a.astype(np.float32) * scale
    return a


def _decode(src: Source, scale: float | None, limits: Limits) -> tuple[np.ndarray, str]:
    if src.ext in ("npy", "npz"):
        arr, key = load_numpy(src, keys=("depth", "disparity"))
        return _apply_units(arr, scale), "disparity" if key == "disparity" else "metric"
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(src.read()))
        if im.width * im.height > limits.max_depth_pixels:  # header only, before decoding
            raise InputTooLargeError(
                src.name,
                f"{im.width * im.height} pixels exceeds the limit of {limits.max_depth_pixels}",
                modality="depth",
            )
        im.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(src.name, f"not a readable depth image: {e}", modality="depth") from None
    if im.mode.startswith("I"):  # I;16 / I;16B / I (16- or 32-bit integer units)
        return np.asarray(im).astype(np.float32) * (scale if scale is not None else MM), "metric"
    if im.mode == "F":
        return _apply_units(np.asarray(im, dtype=np.float32), scale), "metric"
    if im.mode == "L":
        return np.asarray(im, dtype=np.float32) / 255.0, "disparity"
    raise InputError(
        src.name,
        f"depth images must be single-channel (16-bit, 8-bit or float); got mode {im.mode} "
        "(a colour-mapped depth picture cannot be turned back into depth)",
        modality="depth",
    )


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
    with np.errstate(invalid="ignore"):
        d[~np.isfinite(d) | (d <= 0)] = np.nan
    if np.isnan(d).all():
        raise InputError(name, "depth map has no valid pixels (all zero, negative, inf or NaN)", modality="depth")
    return DepthData(depth=d, kind=kind)
