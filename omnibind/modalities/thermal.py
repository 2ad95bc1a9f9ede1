"""Thermal images: 8/16-bit single-channel PNG/TIFF (relative counts scaled to [0, 1]), float
TIFF or .npy/.npz radiometric temperatures in °C. Colour images are refused unless
``options["allow_rgb"]`` (then converted to luminance, as a false-colour palette cannot be inverted).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source
from omnibind.modalities.base import MODALITIES, Limits, Modality, ThermalData, source_name

FORMATS = ("png", "tif", "tiff", "npy", "npz", "jpg", "jpeg", "bmp")
UNITS = ("celsius", "relative")


@MODALITIES.register("thermal")
class ThermalModality(Modality):
    name = "thermal"
    extensions = FORMATS
    description = "thermal (infrared) image"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> ThermalData:
        limits = limits or Limits()
        options = options or {}
        label = source_name(source, name)
        unit = options.get("unit")
        if unit is not None and unit not in UNITS:
            raise InputError(label, f"unknown thermal unit {unit!r}; expected one of {UNITS}", modality="thermal")
        if isinstance(source, ThermalData):
            return _finish(source.values, source.unit, label, limits)
        if isinstance(source, np.ndarray):
            return _finish(source, unit or "celsius", label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read thermal data from {type(source).__name__}", modality="thermal")
        src = check_source(source, modality="thermal", limits=limits, format=format, name=name, allowed=FORMATS)
        arr, file_unit = _decode(src, bool(options.get("allow_rgb", False)))
        return _finish(arr, unit or file_unit, src.name, limits)


def _decode(src: Source, allow_rgb: bool) -> tuple[np.ndarray, str]:
    if src.ext in ("npy", "npz"):
        try:
            loaded = np.load(io.BytesIO(src.read()), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(src.name, f"not a readable numpy file: {e}", modality="thermal") from None
        if not isinstance(loaded, np.ndarray):
            with loaded:
                key = next((k for k in ("celsius", "thermal", "temperature") if k in loaded.files), None)
                if key is None and len(loaded.files) == 1:
                    key = loaded.files[0]
                if key is None:
                    raise InputError(src.name, f"npz needs a 'thermal' array; has {loaded.files}", modality="thermal")
                loaded = loaded[key]
        return loaded, "celsius"
    if src.ext in ("tif", "tiff"):
        import tifffile

        try:
            arr = tifffile.imread(io.BytesIO(src.read()))
        except Exception as e:
            raise InputError(src.name, f"not a readable TIFF: {e}", modality="thermal") from None
        return _scale_counts(arr, src.name, allow_rgb)
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(src.read()))
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(src.name, f"not a readable thermal image: {e}", modality="thermal") from None
    if im.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im, dtype=np.float32) / 65535.0, "relative"
    return _scale_counts(np.asarray(im), src.name, allow_rgb)


def _scale_counts(arr: np.ndarray, name: str, allow_rgb: bool) -> tuple[np.ndarray, str]:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        if not allow_rgb:
            raise InputError(
                name,
                "thermal images must be single-channel; this one is colour (pass options={'allow_rgb': True} "
                "to use its luminance)",
                modality="thermal",
            )
        a = (a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(a.dtype)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32), "celsius"
    maxval = 65535.0 if a.dtype == np.uint16 else 255.0
    return a.astype(np.float32) / maxval, "relative"


def _finish(arr: Any, unit: str, name: str, limits: Limits) -> ThermalData:
    try:
        v = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric thermal data: {e}", modality="thermal") from None
    if v.ndim == 3 and v.shape[-1] == 1:
        v = v[..., 0]
    if v.ndim != 2 or min(v.shape) == 0:
        raise InputError(name, f"expected an (H, W) thermal image, got shape {v.shape}", modality="thermal")
    if v.size > limits.max_image_pixels:
        raise InputTooLargeError(name, f"{v.size} pixels exceeds the limit", modality="thermal")
    if not np.isfinite(v).any():
        raise InputError(name, "thermal image has no finite values", modality="thermal")
    if unit == "celsius" and (np.nanmin(v) < -273.15 or np.nanmax(v) > 2000):
        raise InputError(name, "temperatures outside -273 °C … 2000 °C: is this really °C?", modality="thermal")
    return ThermalData(values=np.where(np.isfinite(v), v, np.nan).astype(np.float32), unit=unit)
