"""Images: jpg/png/webp/bmp/gif (first frame)/tiff, any mode → RGB uint8 (H, W, 3).

EXIF orientation is applied; transparency is composited on white; 16-bit images are scaled by
their full range (÷257) and 32-bit/float images stretched min..max to 8 bits. Resizing is the
encoder's business, not the loader's.
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import check_source, is_file_source
from omnibind.modalities.base import MODALITIES, ImageData, Limits, Modality, source_name

FORMATS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


@MODALITIES.register("image")
class ImageModality(Modality):
    """Photos and drawings → ``ImageData`` (RGB uint8)."""

    name = "image"
    extensions = FORMATS
    description = "RGB photo or drawing"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> ImageData:
        limits = limits or Limits()
        label = source_name(source, name)
        self.checked_options(options, label)  # none declared: any key is a mistake
        if isinstance(source, ImageData):
            return _from_array(source.pixels, label, limits)
        if isinstance(source, np.ndarray):
            return _from_array(source, label, limits)
        if type(source).__module__.startswith("PIL."):
            return ImageData(pil_to_rgb(source, label, limits))
        if not is_file_source(source):
            raise InputError(label, f"cannot read an image from {type(source).__name__}", modality="image")
        src = check_source(source, modality="image", limits=limits, format=format, name=name, allowed=FORMATS)
        return ImageData(decode_image(src.read(), src.name, limits))


def decode_image(data: bytes, name: str, limits: Limits) -> np.ndarray:
    """Decode image bytes with Pillow into RGB uint8, checking the pixel limit before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns below its own bomb threshold; our limit is the one that counts.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            _check_pixels(im.width, im.height, name, limits)  # header only: bombs never get decoded
            im.seek(0)  # first frame of animated GIF/WebP
            im.load()
    except InputError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own ceiling, when max_image_pixels is set above it
        raise InputTooLargeError(name, str(e), modality="image") from None
    except UnidentifiedImageError as e:
        raise InputError(name, f"not a readable image ({e})", modality="image") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        raise InputError(name, f"corrupt or truncated image: {e}", modality="image") from None
    return pil_to_rgb(im, name, limits)


def pil_to_rgb(im: Any, name: str, limits: Limits) -> np.ndarray:
    """Any Pillow image mode → RGB uint8 with EXIF orientation applied and alpha composited on white."""
    from PIL import Image, ImageOps

    _check_pixels(im.width, im.height, name, limits)
    if im.width == 0 or im.height == 0:
        raise InputError(name, "image has no pixels", modality="image")
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not lose a good picture
        pass
    try:
        if im.mode in _SIXTEEN_BIT:
            im = Image.fromarray((np.asarray(im, dtype=np.uint32) // 257).astype(np.uint8), "L")
        elif im.mode in ("I", "F"):
            im = Image.fromarray(_stretch(np.asarray(im, dtype=np.float32)), "L")
        if im.mode in ("P", "PA") or (im.mode in ("L", "RGB") and "transparency" in im.info):
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA", "La", "RGBa"):
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as e:
        raise InputError(name, f"cannot convert image mode {im.mode} to RGB: {e}", modality="image") from None
    return np.ascontiguousarray(rgb)


def _stretch(a: np.ndarray) -> np.ndarray:
    """Min..max → 0..255 (for 32-bit/float images, which have no fixed range)."""
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(finite.min()), float(finite.max())
    scaled = (np.nan_to_num(a, nan=lo) - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _check_pixels(w: int, h: int, name: str, limits: Limits) -> None:
    if w * h > limits.max_image_pixels:
        raise InputTooLargeError(
            name, f"{w}×{h} = {w * h} pixels exceeds the limit of {limits.max_image_pixels}", modality="image"
        )


def _from_array(arr: Any, name: str, limits: Limits) -> ImageData:
    """(H, W), (H, W, 1|3|4) arrays → RGB uint8.

    uint8 is kept; uint16 is divided by 257; floats in [0, 1] are scaled by 255, other numbers
    are clipped to 0..255. A 4th channel is alpha and is composited on white.
    """
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise InputError(name, f"image arrays must be numeric, got dtype {a.dtype}", modality="image")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise InputError(
            name, f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {a.shape}", modality="image"
        )
    _check_pixels(a.shape[1], a.shape[0], name, limits)
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(name, "image has no pixels", modality="image")
    f = _to_unit(a, name)
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    if f.shape[2] == 4:  # composite on white like decoded files
        f = f[..., :3] * f[..., 3:4] + (1.0 - f[..., 3:4])
    return ImageData(np.ascontiguousarray(np.clip(np.round(f * 255), 0, 255).astype(np.uint8)))


def _to_unit(a: np.ndarray, name: str) -> np.ndarray:
    """Numeric pixels → float32 in [0, 1] by dtype convention."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    f = a.astype(np.float32)
    if not np.isfinite(f).all():
        raise InputError(name, "image array contains NaN or infinite values", modality="image")
    return f if f.max(initial=0) <= 1.0 and f.min(initial=0) >= 0 else np.clip(f, 0, 255) / 255
