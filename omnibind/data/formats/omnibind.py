"""omnibind's own dataset format: JSON Lines, one ``{"id", "media", "conversation", ...}`` per line
(``omnibind.data.formats.sample`` parses a record; docs/DATA.md describes every field)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omnibind.data.formats import jsonfile
from omnibind.data.formats.sample import Record, Sample, parse_sample

NAME = "omnibind"


def iter_records(path: str | Path, media_folder: str | Path | None = None) -> Iterator[Record]:
    """Every non-blank line as a ``Record`` (bad lines carry their error). Paths are relative to the
    file's folder (or ``media_folder``)."""
    yield from jsonfile.iter_records(
        path,
        media_folder,
        lambda obj, index, **kw: parse_sample(obj, **kw),  # ids are the file's own
    )


def from_sample(sample: Sample) -> dict[str, Any]:
    return sample.to_dict()


def dumps(samples: list[Sample] | list[dict[str, Any]]) -> str:
    """JSON Lines text of samples (``Sample`` or plain dicts)."""
    return jsonfile.dumps_jsonl([s.to_dict() if isinstance(s, Sample) else s for s in samples])
