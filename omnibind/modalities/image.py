"""Images: jpg/png/webp/bmp/gif (first frame), any mode → RGB uint8 (H, W, 3).

EXIF orientation is applied; transparency is composited on white; 16-bit and float images are
scaled to 8 bits. Resizing is the encoder's business, not the loader's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import check_source, is_file_source
from omnibind.modalities.base import MODALITIES, ImageData, Limits, Modality, source_name

FORMATS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")


@MODALITIES.register("image")
class ImageModality(Modality):
    name = "image"
    extensions = FORMATS
    description = "RGB photo or drawing"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> ImageData:
        limits = limits or Limits()
        if isinstance(source, ImageData):
            return _check_array(source.pixels, source_name(source, name), limits)
        if isinstance(source, np.ndarray):
            return _check_array(source, source_name(source, name), limits)
        if type(source).__module__.startswith("PIL."):
            return ImageData(_pil_to_rgb(source, source_name(source, name), limits))
        if not is_file_source(source):
            raise InputError(
                source_name(source, name), f"cannot read an image from {type(source).__name__}", modality="image"
            )
        src = check_source(source, modality="image", limits=limits, format=format, name=name, allowed=FORMATS)
        return ImageData(decode_image(src.read(), src.name, limits))


def decode_image(data: bytes, name: str, limits: Limits) -> np.ndarray:
    """Decode image bytes with Pillow into RGB uint8, checking the pixel limit before decoding."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > limits.max_image_pixels:
                raise InputTooLargeError(
                    name, f"{w}×{h} = {w * h} pixels exceeds the limit of {limits.max_image_pixels}", modality="image"
                )
            im.seek(0)  # first frame of animated GIF/WebP
            im.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(name, f"not a readable image ({e.__class__.__name__}: {e})", modality="image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(name, f"corrupt or truncated image: {e}", modality="image") from None
    return _pil_to_rgb(im, name, limits)


def _pil_to_rgb(im: Any, name: str, limits: Limits) -> np.ndarray:
    from PIL import Image, ImageOps

    if im.width * im.height > limits.max_image_pixels:
        raise InputTooLargeError(name, f"{im.width}×{im.height} pixels exceeds the limit", modality="image")
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:
        pass
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(arr.astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(name, "image has no pixels", modality="image")
    return np.ascontiguousarray(rgb)


def _check_array(arr: np.ndarray, name: str, limits: Limits) -> ImageData:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise InputError(
            name, f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {a.shape}", modality="image"
        )
    if a.shape[0] * a.shape[1] > limits.max_image_pixels:
        raise InputTooLargeError(name, f"{a.shape[1]}×{a.shape[0]} pixels exceeds the limit", modality="image")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(name, "image has no pixels", modality="image")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.shape[2] == 4:  # composite on white like decoded files
        alpha = a[..., 3:4].astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
        rgb = a[..., :3].astype(np.float32)
        white = 255.0 if a.dtype == np.uint8 else 1.0
        a = rgb * alpha + white * (1 - alpha)
    if a.dtype != np.uint8:
        f = np.nan_to_num(a.astype(np.float32))
        if f.max() <= 1.0:
            f = f * 255.0
        a = np.clip(f, 0, 255).astype(np.uint8)
    return ImageData(np.ascontiguousarray(a))
