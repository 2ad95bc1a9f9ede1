"""Dataset file formats, one reader/writer module each, all producing ``Sample``s.

=============  ==========================================================  ===============
name           layout                                                      written as
=============  ==========================================================  ===============
omnibind       ``{"id", "media": [{type, path}], "conversation"}``           JSON Lines
llava          ``{"id", "image", "conversations": [{from, value}]}``         JSON array
llamafactory   sharegpt / openai / alpaca + ``images``/``videos``/``audios``  JSON array
swift          ``{"messages": [{role, content}], "images", ...}`` (+ others)  JSON Lines
=============  ==========================================================  ===============

Any format may be a JSON array or JSON Lines on reading. ``detect`` names a file's format from its
first record's keys. Each module has ``iter_records(path, media_folder)``, ``from_sample`` and
``dumps``; docs/DATA.md shows every layout.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from omnibind.data.formats import jsonfile, llamafactory, llava, omnibind, swift
from omnibind.data.formats.sample import DatasetError

FORMATS: dict[str, ModuleType] = {m.NAME: m for m in (omnibind, llava, llamafactory, swift)}
ALIASES = {"jsonl": "omnibind", "llama-factory": "llamafactory", "llama_factory": "llamafactory", "ms-swift": "swift"}


def get(name: str) -> ModuleType:
    """The module of a format name (aliases: ``jsonl`` = omnibind, ``ms-swift`` = swift...)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise DatasetError(None, None, f"unknown dataset format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[key]


def sniff(obj: Any) -> str:
    """The format a record's keys say (``omnibind`` when they say nothing known)."""
    if not isinstance(obj, dict):
        return "omnibind"
    keys = set(obj)
    media_cols = keys & {"images", "videos", "audios"}
    if "conversation" in keys and isinstance(obj["conversation"], list) and obj["conversation"]:
        first = obj["conversation"][0]
        return "swift" if isinstance(first, dict) and "human" in first else "omnibind"
    if "media" in keys:
        return "omnibind"
    if "conversations" in keys:
        return "llava" if "image" in keys or ("id" in keys and not media_cols) else "llamafactory"
    if "messages" in keys:
        return "swift"  # LLaMA-Factory's openai layout is the same record; both readers give one Sample
    if "query" in keys:
        return "swift"
    if "instruction" in keys:
        return "llamafactory"
    return "omnibind"


def detect(path: str | Path) -> str:
    """A file's format from its first record (a ``dataset_info.json`` beside it naming the file
    means LLaMA-Factory)."""
    path = Path(path)
    if llamafactory.find_spec(path).named:
        return "llamafactory"
    return sniff(jsonfile.first_object(path))
