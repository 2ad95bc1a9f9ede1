"""Shared source handling for loaders: paths and bytes checked once, with typed errors.

Everything here is cheap (no decoder imports); the loaders call ``check_source`` first, so the
common failures (missing, empty, too big, unknown type) read the same for every modality.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError, UnsupportedFormatError
from omnibind.modalities.base import Limits

# Spellings that mean the same format; loaders only list the canonical ones and these aliases.
# What numpy's loader raises on corrupt npy/npz data (an npz is a zip of npy files, read lazily).
_NUMPY_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)

_ALIASES = {"jpeg": "jpg", "jpe": "jpg", "tif": "tiff", "oga": "ogg"}


@dataclass
class Source:
    """A checked file source: ``path`` or ``data`` (bytes), its display ``name`` and lower-case ``ext``."""

    name: str
    ext: str
    path: Path | None = None
    data: bytes | None = None
    modality: str = ""

    def read(self) -> bytes:
        """The whole file; an unreadable file (permissions, I/O error) is an ``InputError``."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise InputError(self.name, f"cannot read the file: {e.strerror or e}", modality=self.modality) from None

    def target(self) -> str | io.BytesIO:
        """Something decoders accept: a path string or a fresh BytesIO."""
        return str(self.path) if self.path is not None else io.BytesIO(self.data or b"")


def is_file_source(source: Any) -> bool:
    """True for the sources ``check_source`` reads: paths and raw bytes."""
    return isinstance(source, (str, Path, bytes, bytearray, memoryview))


def canonical_ext(ext: str | None) -> str:
    """Lower-case extension without the dot, aliases folded (``.JPEG`` → ``jpg``)."""
    e = (ext or "").lower().lstrip(".")
    return _ALIASES.get(e, e)


def check_source(
    source: Any,
    *,
    modality: str,
    limits: Limits,
    format: str | None = None,
    name: str | None = None,
    allowed: tuple[str, ...] = (),
) -> Source:
    """Validate a path or bytes source: exists, non-empty, within the byte limit, known type.

    The type is ``format`` when given, else the path's extension, else sniffed from magic bytes.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        src = _bytes_source(bytes(source), modality=modality, limits=limits, format=format, name=name)
    elif isinstance(source, (str, Path)):
        src = _path_source(Path(source), modality=modality, limits=limits, format=format, name=name or str(source))
    else:
        raise InputError(
            name or f"<{type(source).__name__}>",
            f"cannot read {modality} from a {type(source).__name__}",
            modality=modality,
        )
    if allowed and src.ext not in {canonical_ext(a) for a in allowed}:
        hint = "" if src.ext else " (pass format=... for raw bytes or files without an extension)"
        raise UnsupportedFormatError(
            src.name,
            f"unsupported {modality} format {src.ext or '(unknown)'!r}; expected one of {', '.join(allowed)}{hint}",
            modality=modality,
        )
    return src


def _bytes_source(data: bytes, *, modality: str, limits: Limits, format: str | None, name: str | None) -> Source:
    display = name or f"<{format or 'bytes'}>"
    if not data:
        raise InputError(display, "empty input (0 bytes)", modality=modality)
    if len(data) > limits.max_file_bytes:
        raise InputTooLargeError(
            display, f"{len(data)} bytes exceeds the limit of {limits.max_file_bytes}", modality=modality
        )
    return Source(name=display, ext=canonical_ext(format or sniff_format(data)), data=data, modality=modality)


def _path_source(path: Path, *, modality: str, limits: Limits, format: str | None, name: str) -> Source:
    path = path.expanduser()
    if not path.exists():
        raise InputError(name, "no such file", modality=modality)
    if path.is_dir():
        raise InputError(name, "is a directory, not a file", modality=modality)
    size = path.stat().st_size
    if size == 0:
        raise InputError(name, "empty file (0 bytes)", modality=modality)
    if size > limits.max_file_bytes:
        raise InputTooLargeError(name, f"{size} bytes exceeds the limit of {limits.max_file_bytes}", modality=modality)
    src = Source(name=name, ext=canonical_ext(format or path.suffix), path=path, modality=modality)
    if not src.ext:
        with open(path, "rb") as f:
            src.ext = canonical_ext(sniff_format(f.read(64)))
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
    (b"\x93NUMPY", 0, "npy"),
    (b"PK\x03\x04", 0, "npz"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"ply", 0, "ply"),
    (b"glTF", 0, "glb"),
    (b"OFF", 0, "off"),
    (b"# .PCD", 0, "pcd"),
    (b"\x1a\x45\xdf\xa3", 0, "ebml"),
    (b"ftyp", 4, "ftyp"),
]


def sniff_format(data: bytes) -> str | None:
    """Guess a file type from its first bytes (for bytes sources without a format hint)."""
    head = data[:64]
    for magic, offset, fmt in _MAGIC:
        if head[offset : offset + len(magic)] != magic:
            continue
        if fmt == "riff":
            return {b"WAVE": "wav", b"WEBP": "webp", b"AVI ": "avi"}.get(head[8:12])
        if fmt == "ebml":  # Matroska; WebM declares its own doctype in the EBML header
            return "webm" if b"webm" in head else "mkv"
        if fmt == "ftyp":  # ISO media: audio-only brands are m4a, the rest video
            return "m4a" if head[8:11] in (b"M4A", b"M4B") else "mp4"
        return fmt
    # An MPEG audio frame starts with 11 set sync bits (no ID3 tag in front).
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return "mp3"
    return None


def load_numpy(src: Source, *, keys: tuple[str, ...] = ()) -> tuple[np.ndarray, str | None]:
    """An array from a ``.npy``/``.npz`` source, never unpickling (object arrays are refused).

    For an npz, the first of ``keys`` present is used (or the only array); returns ``(array, key)``.
    """
    try:
        loaded = np.load(io.BytesIO(src.read()), allow_pickle=False)
    except ValueError as e:
        problem = "object arrays (pickles) are refused" if "pickle" in str(e).lower() else f"corrupt file: {e}"
        raise InputError(src.name, f"not a readable numpy file: {problem}", modality=src.modality) from None
    except _NUMPY_ERRORS as e:
        raise InputError(src.name, f"not a readable numpy file: {e}", modality=src.modality) from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        key = next((k for k in keys if k in loaded.files), None)
        if key is None and len(loaded.files) == 1:
            key = loaded.files[0]
        if key is None:
            want = " or ".join(repr(k) for k in keys) or "one array"
            raise InputError(src.name, f"npz needs an array named {want}; has {loaded.files}", modality=src.modality)
        try:
            return loaded[key], key
        except (ValueError, *_NUMPY_ERRORS) as e:  # a corrupt member only fails here
            raise InputError(src.name, f"npz array {key!r} is unreadable: {e}", modality=src.modality) from None


def npz_scalar(src: Source, key: str) -> float | None:
    """A scalar stored next to the data in an npz (e.g. ``sample_rate``), or None."""
    if src.ext != "npz":
        return None
    try:
        with np.load(io.BytesIO(src.read()), allow_pickle=False) as z:
            if key not in z.files:
                return None
            return float(np.asarray(z[key]).reshape(-1)[0])
    except (ValueError, IndexError, TypeError, *_NUMPY_ERRORS) as e:
        raise InputError(src.name, f"npz entry {key!r} is not a number: {e}", modality=src.modality) from None


def npz_array(src: Source, key: str) -> np.ndarray | None:
    """An extra array stored in an npz (e.g. ``time``), or None."""
    if src.ext != "npz":
        return None
    try:
        with np.load(io.BytesIO(src.read()), allow_pickle=False) as z:
            return np.asarray(z[key]) if key in z.files else None
    except (ValueError, *_NUMPY_ERRORS) as e:
        raise InputError(src.name, f"npz entry {key!r} is unreadable: {e}", modality=src.modality) from None
