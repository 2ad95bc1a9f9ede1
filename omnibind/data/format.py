"""Reading and writing dataset files in any supported format: dispatch to ``omnibind.data.formats``.

omnibind's own sample (one JSON object per line)::

    {"id": "tux-badger", "media": [{"type": "image", "path": "imgs/badger.png"}],
     "conversation": [{"role": "user", "content": "<image>\\nWhat is this?"},
                      {"role": "assistant", "content": "A badger."}],
     "source": "tuxpaint", "split": "train"}

Placeholders ``<image> <audio> <video> <depth> <thermal> <imu> <points>`` in user turns are matched
in order to ``media`` (same count, same types). Relative paths resolve against the file's folder.
Any other top-level key (``caption``, ``label``, ``item``, ``task``...) is kept in ``Sample.extra``;
any other media key (``labels``, ``transcript``...) in ``MediaItem.extra``. LLaVA JSON, LLaMA-Factory
and ms-swift files are read as they are (``omnibind.data.formats``). See docs/DATA.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omnibind.atomic import atomic_write_text
from omnibind.data import formats
from omnibind.data.formats.sample import (
    EXPERT_KEYS,
    MEDIA_KEYS,
    PLACEHOLDER_RE,
    SAMPLE_KEYS,
    SPLITS,
    DatasetError,
    MediaItem,
    Record,
    Sample,
    Turn,
    expert_text,
    parse_sample,
    placeholder_problems,
)

__all__ = [
    "EXPERT_KEYS",
    "MEDIA_KEYS",
    "PLACEHOLDER_RE",
    "SAMPLE_KEYS",
    "SPLITS",
    "DatasetError",
    "MediaItem",
    "Record",
    "Sample",
    "Turn",
    "detect_format",
    "dumps",
    "expert_text",
    "iter_records",
    "parse_sample",
    "placeholder_problems",
    "read_dataset",
    "write_dataset",
    "write_jsonl",
]

FORMAT_NAMES = tuple(formats.FORMATS)


def detect_format(path: str | Path) -> str:
    """The format of a dataset file: ``omnibind``, ``llava``, ``llamafactory`` or ``swift``."""
    return formats.detect(path)


def iter_records(
    path: str | Path, *, image_folder: str | Path | None = None, fmt: str | None = None
) -> Iterator[Record]:
    """Records of a dataset file (format detected unless ``fmt`` is given). ``image_folder``: the
    folder relative media paths resolve against (LLaVA's ``--image_folder``, LLaMA-Factory's
    ``media_dir``); default the file's folder."""
    module = formats.get(fmt or detect_format(path))
    return module.iter_records(path, image_folder)


def read_dataset(path: str | Path, *, image_folder: str | Path | None = None, fmt: str | None = None) -> list[Sample]:
    """All samples of a dataset file; the first malformed record raises ``DatasetError`` (file:line).

    Use ``omnibind.data.check.check_dataset`` to report every problem instead.
    """
    out = []
    for rec in iter_records(path, image_folder=image_folder, fmt=fmt):
        if rec.error is not None:
            raise rec.error
        out.append(rec.sample)
    return out


def dumps(samples: list[Sample], fmt: str) -> str:
    """The text of a dataset file holding ``samples`` in format ``fmt``."""
    return formats.get(fmt).dumps(samples)


def write_dataset(path: str | Path, samples: list[Sample], fmt: str = "omnibind") -> Path:
    """Write samples atomically in ``fmt`` (paths as they are in each ``MediaItem``)."""
    return atomic_write_text(Path(path), dumps(samples, fmt))


def write_jsonl(path: str | Path, samples: list[Sample] | list[dict[str, Any]]) -> Path:
    """Write samples (``Sample`` or dicts) atomically as omnibind JSONL."""
    return atomic_write_text(Path(path), formats.omnibind.dumps(samples))
