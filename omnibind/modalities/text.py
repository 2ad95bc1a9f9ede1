"""Text as a modality (for bind-space mixing and retrieval, as ImageBind does): str, UTF-8 bytes or .txt."""

from __future__ import annotations

from typing import Any

from omnibind.errors import InputError
from omnibind.modalities._source import check_source
from omnibind.modalities.base import MODALITIES, Limits, Modality, source_name


@MODALITIES.register("text")
class TextModality(Modality):
    name = "text"
    extensions = ("txt", "md")
    description = "text"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> str:
        limits = limits or Limits()
        label = source_name(source, name)
        if isinstance(source, str) and not (format in ("txt", "md") or source.endswith((".txt", ".md"))):
            text = source
        else:
            src = check_source(source, modality="text", limits=limits, format=format or "txt", name=name)
            try:
                text = src.read().decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(src.name, f"not UTF-8 text ({e})", modality="text") from None
            label = src.name
        if "\x00" in text:
            raise InputError(label, "text contains NUL bytes (binary data?)", modality="text")
        if not text.strip():
            raise InputError(label, "empty text", modality="text")
        return text
