"""LLaVA's instruction JSON as is: ``[{"id", "image", "conversations": [{"from", "value"}]}]``.

``image`` is one path (LLaVA-1.5) or a list (LLaVA-NeXT interleaved data), relative to the
``--image-folder`` LLaVA's trainer is given (default here: the JSON's folder). ``from`` is
``human`` / ``gpt`` (``system`` accepted). Only images: writing a sample with another modality
raises ``DatasetError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omnibind.data.formats import columns, jsonfile
from omnibind.data.formats.sample import DatasetError, Record, Sample

NAME = "llava"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_BACK = {"user": "human", "assistant": "gpt", "system": "system"}


def iter_records(path: str | Path, media_folder: str | Path | None = None) -> Iterator[Record]:
    """Every record of a LLaVA JSON (or JSONL) file; line numbers are where each element starts."""
    yield from jsonfile.iter_records(path, media_folder, to_sample)


def to_sample(
    obj: Any, *, file: Path | None = None, line: int | None = None, base_dir: Path | None = None, index: int = 0
) -> Sample:
    """One LLaVA record as a ``Sample`` (``from``: human→user, gpt→assistant; source ``llava``)."""
    if not isinstance(obj, dict):
        raise DatasetError(file, line, f"a LLaVA sample must be an object, got {type(obj).__name__}")

    def bad(problem: str) -> DatasetError:
        return DatasetError(file, line, problem)

    turns = columns.turns_from_list(obj.get("conversations"), "conversations", "from", "value", ROLES, bad)
    names = {"image": "image"}
    return columns.build_sample(
        obj,
        turns,
        consumed={"conversations"},
        system=None,
        names=names,
        default_id=f"{Path(file).stem if file else 'llava'}-{index}",
        source="llava",
        file=file,
        line=line,
        base_dir=base_dir,
    )


def from_sample(sample: Sample) -> dict[str, Any]:
    """The LLaVA record of a sample (one ``image`` string, or a list when it has several)."""
    other = sorted({m.type for m in sample.media} - {"image"})
    if other:
        raise DatasetError(sample.file, sample.line, f"sample {sample.id!r}: LLaVA JSON holds images only, not {other}")
    out = columns.passthrough(sample)
    images = [m.path for m in sample.media]
    if images:
        out["image"] = images[0] if len(images) == 1 else images
    out["conversations"] = [{"from": _BACK.get(t.role, t.role), "value": t.content} for t in sample.conversation]
    return out


def dumps(samples: list[Sample]) -> str:
    """A LLaVA JSON file's text (a JSON array)."""
    return jsonfile.dumps_array([from_sample(s) for s in samples])
