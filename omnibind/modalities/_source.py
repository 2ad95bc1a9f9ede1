"""Shared source handling for loaders: paths and bytes checked once, with typed errors."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnibind.errors import InputError, InputTooLargeError, UnsupportedFormatError
from omnibind.modalities.base import Limits


@dataclass
class Source:
    """A checked file source: ``path`` or ``data`` (bytes), its display ``name`` and lower-case ``ext``."""

    name: str
    ext: str
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> io.BufferedIOBase:
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.data or b"")

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def target(self) -> str | io.BytesIO:
        """Something decoders accept: a path string or a fresh BytesIO."""
        return str(self.path) if self.path is not None else io.BytesIO(self.data or b"")


def is_file_source(source: Any) -> bool:
    return isinstance(source, (str, Path, bytes, bytearray, memoryview))


def check_source(
    source: Any,
    *,
    modality: str,
    limits: Limits,
    format: str | None = None,
    name: str | None = None,
    allowed: tuple[str, ...] = (),
) -> Source:
    """Validate a path or bytes source: exists, non-empty, within the byte limit, known extension."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        display = name or f"<{format or 'bytes'}>"
        ext = (format or sniff_format(data) or "").lower().lstrip(".")
        if not data:
            raise InputError(display, "empty input (0 bytes)", modality=modality)
        if len(data) > limits.max_file_bytes:
            raise InputTooLargeError(
                display, f"{len(data)} bytes exceeds the limit of {limits.max_file_bytes}", modality=modality
            )
        src = Source(name=display, ext=ext, data=data)
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        display = name or str(source)
        if not path.exists():
            raise InputError(display, "no such file", modality=modality)
        if path.is_dir():
            raise InputError(display, "is a directory, not a file", modality=modality)
        size = path.stat().st_size
        if size == 0:
            raise InputError(display, "empty file (0 bytes)", modality=modality)
        if size > limits.max_file_bytes:
            raise InputTooLargeError(
                display, f"{size} bytes exceeds the limit of {limits.max_file_bytes}", modality=modality
            )
        ext = (format or path.suffix).lower().lstrip(".")
        if not ext:
            with open(path, "rb") as f:
                ext = sniff_format(f.read(64)) or ""
        src = Source(name=display, ext=ext, path=path)
    else:
        raise InputError(
            name or f"<{type(source).__name__}>",
            f"cannot read {modality} from a {type(source).__name__}",
            modality=modality,
        )
    if allowed and src.ext not in allowed:
        raise UnsupportedFormatError(
            src.name,
            f"unsupported {modality} format {src.ext or '(unknown)'!r}; expected one of {', '.join(allowed)}",
            modality=modality,
        )
    return src


_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\x89PNG", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"GIF8", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"RIFF", 0, "riff"),
    (b"fLaC", 0, "flac"),
    (b"OggS", 0, "ogg"),
    (b"ID3", 0, "mp3"),
    (b"\xff\xfb", 0, "mp3"),
    (b"\xff\xf3", 0, "mp3"),
    (b"\x93NUMPY", 0, "npy"),
    (b"PK\x03\x04", 0, "npz"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"ply", 0, "ply"),
    (b"glTF", 0, "glb"),
    (b"\x1a\x45\xdf\xa3", 0, "mkv"),
    (b"ftyp", 4, "mp4"),
]


def sniff_format(data: bytes) -> str | None:
    """Guess a file type from its first bytes (for bytes sources without a format hint)."""
    for magic, offset, fmt in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if fmt == "riff":
                kind = data[8:12]
                return {b"WAVE": "wav", b"WEBP": "webp", b"AVI ": "avi"}.get(kind)
            return fmt
    return None


def as_float_array(data: Any, *, name: str, modality: str) -> Any:
    """A finite float32 numpy array from array-like input, or a typed error."""
    import numpy as np

    try:
        arr = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric data: {e}", modality=modality) from None
    return arr
