"""Thermal images → ``ThermalData`` (H, W) float32.

* 8/16-bit single-channel PNG/TIFF/BMP/JPEG: relative counts scaled by full range to [0, 1]
  (``unit="relative"``). Radiometric 16-bit files become °C with ``options["unit"] = "celsius"``
  plus ``scale`` and ``offset`` (°C = counts × scale + offset; e.g. centi-kelvin: 0.01, -273.15).
* float TIFF and .npy/.npz (array ``celsius``/``thermal``/``temperature``): radiometric °C.
* Colour images are refused (a false-colour palette cannot be inverted to temperatures) unless
  ``options["allow_rgb"]`` is true; then their luminance is used as relative counts.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source, load_numpy
from omnibind.modalities.base import MODALITIES, Limits, Modality, ThermalData, source_name
from omnibind.modalities.options import Option

FORMATS = ("png", "tif", "tiff", "npy", "npz", "jpg", "jpeg", "bmp")
UNITS = ("celsius", "relative")

OPTIONS = (
    Option("unit", str, "what the values are (default: from the file)", choices=UNITS, client=True),
    Option("allow_rgb", bool, "use a colour image's luminance as relative counts", default=False, client=True),
    Option("scale", float, "°C per count of a radiometric file (°C = counts × scale + offset)"),
    Option("offset", float, "°C at count 0 of a radiometric file", default=0.0, unit="°C"),
)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@MODALITIES.register("thermal")
class ThermalModality(Modality):
    """Thermal (infrared) images → ``ThermalData``."""

    name = "thermal"
    extensions = FORMATS
    description = "thermal (infrared) image"
    options = OPTIONS

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> ThermalData:
        limits = limits or Limits()
        label = source_name(source, name)
        options = self.checked_options(options, label)
        unit = options.get("unit")
        if unit is not None and unit not in UNITS:
            raise InputError(label, f"unknown thermal unit {unit!r}; expected one of {UNITS}", modality="thermal")
        if isinstance(source, ThermalData):
            return _finish(source.values, source.unit, label, limits)
        if isinstance(source, np.ndarray):
            arr = _check_channels(source, label, bool(options.get("allow_rgb")))
            return _finish(*_to_unit(arr, unit, options, label), label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read thermal data from {type(source).__name__}", modality="thermal")
        src = check_source(source, modality="thermal", limits=limits, format=format, name=name, allowed=FORMATS)
        arr = _decode(src, limits)
        arr = _check_channels(arr, src.name, bool(options.get("allow_rgb")))
        return _finish(*_to_unit(arr, unit, options, src.name), src.name, limits)


def _decode(src: Source, limits: Limits) -> np.ndarray:
    """The file's raw array: floats (°C) or integer counts, 2-D or with colour channels."""
    if src.ext in ("npy", "npz"):
        return load_numpy(src, keys=("celsius", "thermal", "temperature"))[0]
    if src.ext == "tiff":
        return _read_tiff(src)
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(src.read()))
        _check_pixels(im.width * im.height, src.name, limits)
        im.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(src.name, f"not a readable thermal image: {e}", modality="thermal") from None
    if im.mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if im.mode == "P":  # a palette is a colour picture
        im = im.convert("RGB")
    return np.asarray(im)


def _read_tiff(src: Source) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(io.BytesIO(src.read()))
    except Exception as e:  # tifffile raises many unrelated types on bad files
        raise InputError(src.name, f"not a readable TIFF: {e}", modality="thermal") from None


def _check_channels(arr: Any, name: str, allow_rgb: bool) -> np.ndarray:
    """Single-channel stays; colour is refused, or reduced to luminance when ``allow_rgb``."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        if not allow_rgb:
            raise InputError(
                name,
                "thermal images must be single-channel; this one is colour (a false-colour palette cannot be "
                "turned back into temperatures; pass options={'allow_rgb': True} to use its luminance)",
                modality="thermal",
            )
        a = (a[..., :3].astype(np.float32) @ _LUMA).astype(a.dtype)
    return a


def _to_unit(a: np.ndarray, unit: str | None, options: dict[str, Any], name: str) -> tuple[np.ndarray, str]:
    """Integer counts → relative [0, 1] (or °C with scale/offset); floats are °C (or relative if told)."""
    if a.dtype.kind in "ui":
        if unit == "celsius":
            if options.get("scale") is None:
                raise InputError(
                    name,
                    "integer counts are not °C: give options 'scale' and 'offset' (°C = counts × scale + offset)",
                    modality="thermal",
                )
            try:
                scale, offset = float(options["scale"]), float(options.get("offset", 0.0))
            except (TypeError, ValueError):
                raise InputError(name, "scale and offset must be numbers", modality="thermal") from None
            return a.astype(np.float32) * scale + offset, "celsius"
        full = float(np.iinfo(a.dtype).max) if a.dtype.itemsize <= 2 else float(a.max() or 1)
        return a.astype(np.float32) / full, "relative"
    if a.dtype.kind == "f":
        return a.astype(np.float32), unit or "celsius"
    if a.dtype.kind == "b":
        return a.astype(np.float32), "relative"
    raise InputError(name, f"thermal data must be numeric, got dtype {a.dtype}", modality="thermal")


def _check_pixels(n: int, name: str, limits: Limits) -> None:
    if n > limits.max_image_pixels:
        raise InputTooLargeError(name, f"{n} pixels exceeds the limit of {limits.max_image_pixels}", modality="thermal")


def _finish(arr: Any, unit: str, name: str, limits: Limits) -> ThermalData:
    try:
        v = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric thermal data: {e}", modality="thermal") from None
    if v.ndim == 3 and v.shape[-1] == 1:
        v = v[..., 0]
    if v.ndim != 2 or min(v.shape) == 0:
        raise InputError(name, f"expected an (H, W) thermal image, got shape {v.shape}", modality="thermal")
    _check_pixels(v.size, name, limits)
    finite = np.isfinite(v)
    if not finite.any():
        raise InputError(name, "thermal image has no finite values", modality="thermal")
    lo, hi = float(v[finite].min()), float(v[finite].max())
    if unit == "celsius" and (lo < -273.15 or hi > 2000):
        raise InputError(
            name,
            f"temperatures {lo:.1f} … {hi:.1f} are outside -273 °C … 2000 °C: is this really °C?",
            modality="thermal",
        )
    return ThermalData(values=np.where(finite, v, np.nan).astype(np.float32), unit=unit)
