"""Text as a modality (for bind-space mixing and retrieval, as ImageBind does): str, UTF-8 bytes or .txt.

A ``str`` is the text itself unless it names an existing ``.txt``/``.md`` file; pass a ``Path`` to
always read a file (then a missing file is an error, not a short sentence).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import check_source
from omnibind.modalities.base import MODALITIES, Limits, Modality, source_name

FORMATS = ("txt", "md")
# More control characters than this (other than tab/newline/CR/form feed) means binary data.
_MAX_CONTROL_FRACTION = 0.05


@MODALITIES.register("text")
class TextModality(Modality):
    """Text → ``str`` (UTF-8 checked, not empty, not binary)."""

    name = "text"
    extensions = FORMATS
    description = "text"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> str:
        limits = limits or Limits()
        label = source_name(source, name)
        self.checked_options(options, label)  # none declared: any key is a mistake
        if isinstance(source, str) and not _names_text_file(source):
            text = source
            if len(text.encode("utf-8", "surrogatepass")) > limits.max_file_bytes:
                raise InputTooLargeError(label, "text exceeds max_file_bytes", modality="text")
        elif isinstance(source, (str, Path, bytes, bytearray, memoryview)):
            allowed = FORMATS if isinstance(source, (str, Path)) and format is None else ()
            src = check_source(source, modality="text", limits=limits, format=format, name=name, allowed=allowed)
            try:
                text = src.read().decode("utf-8-sig")
            except UnicodeDecodeError as e:
                raise InputError(src.name, f"not UTF-8 text (byte {e.start}: {e.reason})", modality="text") from None
            label = src.name
        else:
            raise InputError(label, f"cannot read text from {type(source).__name__}", modality="text")
        _check_text(text, label)
        return text


def _names_text_file(s: str) -> bool:
    """A short one-line string ending in .txt/.md that exists on disk is a path."""
    if "\n" in s or len(s) > 4096 or not s.lower().endswith((".txt", ".md")):
        return False
    try:
        return Path(s).expanduser().is_file()
    except OSError:
        return False


def _check_text(text: str, label: str) -> None:
    if "\x00" in text:
        raise InputError(label, "text contains NUL bytes (binary data?)", modality="text")
    if not text.strip():
        raise InputError(label, "empty text", modality="text")
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if control > _MAX_CONTROL_FRACTION * len(text):
        raise InputError(label, f"{control} control characters in {len(text)}: binary data, not text", modality="text")
