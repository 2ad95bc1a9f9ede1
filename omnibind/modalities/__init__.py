"""Modalities: files in, validated and preprocessed arrays out. See docs/MODALITIES.md.

Importing this package registers every modality; decoders (PIL, soundfile, PyAV, trimesh) are
imported only when a file of that kind is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnibind.errors import UnsupportedFormatError
from omnibind.modalities import audio, depth, image, imu, points, text, thermal, video  # noqa: F401
from omnibind.modalities.base import MODALITIES, Limits, Modality

_INSTANCES: dict[str, Modality] = {}

# Extensions that name one modality. Some are ambiguous and default to their most common use:
# .png/.tif/.tiff/.jpg → image (depth and thermal PNG/TIFF must be named), .ply → points,
# .csv → imu, .txt → text. Arrays (.npy/.npz) are used by depth, thermal, imu and points alike, so
# they are never guessed: name the modality.
_BY_EXT = {
    **{e: "image" for e in ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")},
    **{e: "audio" for e in ("wav", "flac", "ogg", "oga", "mp3", "m4a", "aac", "opus")},
    **{e: "video" for e in ("mp4", "m4v", "mov", "avi", "mkv", "webm")},
    **{e: "points" for e in ("ply", "pcd", "xyz", "obj", "off", "stl", "glb", "gltf")},
    **{e: "imu" for e in ("csv",)},
    **{e: "text" for e in ("txt", "md")},
}
_MUST_NAME = ("npy", "npz")


def get(modality: str) -> Modality:
    """The (shared) loader instance of a modality."""
    if modality not in _INSTANCES:
        _INSTANCES[modality] = MODALITIES.get(modality)()
    return _INSTANCES[modality]


def load(
    modality: str,
    source: Any,
    *,
    format: str | None = None,
    options: dict[str, Any] | None = None,
    limits: Limits | None = None,
    name: str | None = None,
) -> Any:
    """Decode and preprocess one input; raises ``InputError`` (naming the source) on bad input."""
    return get(modality).load(source, format=format, options=options or {}, limits=limits, name=name)


def load_part(part: Any, limits: Limits | None = None) -> Any:
    """Decode a ``MediaPart``."""
    return load(part.modality, part.source, format=part.format, options=part.options, limits=limits, name=part.name)


def modality_for_path(path: str | Path) -> str:
    """Guess the modality from a file extension (ambiguous extensions give their most common use).

    Raises ``UnsupportedFormatError`` for unknown extensions and for ``.npy``/``.npz``, which
    several modalities share: pass the modality explicitly then.
    """
    ext = Path(path).suffix.lower().lstrip(".")
    if ext in _MUST_NAME:
        raise UnsupportedFormatError(
            path, f".{ext} arrays can be depth, thermal, imu or points: name the modality explicitly"
        )
    if ext not in _BY_EXT:
        raise UnsupportedFormatError(path, f"cannot tell the modality from extension {ext!r}; name it explicitly")
    return _BY_EXT[ext]


__all__ = ["MODALITIES", "Limits", "Modality", "get", "load", "load_part", "modality_for_path"]
