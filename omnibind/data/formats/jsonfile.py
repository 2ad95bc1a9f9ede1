"""Reading a dataset file as raw JSON objects, each with the line it starts on.

Every reader takes its records from here, so a file may be a JSON array (LLaVA, LLaMA-Factory)
or JSON Lines (omnibind, ms-swift) whatever its format, and every error names ``file:line``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omnibind.data.formats.sample import DatasetError

RawRecord = tuple[int, Any, DatasetError | None]
"""(line, decoded object or None, error or None): a bad record carries its error, nothing is dropped."""

_WS = re.compile(r"\s*")


def read_text(path: str | Path) -> str:
    """The file's text; unreadable or non-UTF-8 files raise ``DatasetError`` naming the file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(path, None, "cannot open: no such file") from None
    except UnicodeDecodeError as e:
        raise DatasetError(path, None, f"not UTF-8 text: {e.reason}") from None
    except OSError as e:
        raise DatasetError(path, None, f"cannot open: {e.strerror or e}") from None


def is_json_array(text: str) -> bool:
    """True when the text's first non-blank character opens a JSON array."""
    return text[_WS.match(text, 0).end() : _WS.match(text, 0).end() + 1] == "["


def iter_raw(path: str | Path) -> Iterator[RawRecord]:
    """The file's records: the elements of a top-level JSON array, or the non-blank JSONL lines
    (JSON Lines are streamed, so a large file is never held in memory at once)."""
    path = Path(path)
    if is_json_array(_head(path)):
        yield from _array_elements(read_text(path), path)
    else:
        yield from _jsonl_lines(path)


def _head(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return fh.read(4096)
    except OSError:
        return read_text(path)  # raises the DatasetError naming the file


def _jsonl_lines(path: Path) -> Iterator[RawRecord]:
    with path.open(encoding="utf-8") as fh:
        lineno = 0
        while True:
            try:
                raw = fh.readline()
            except UnicodeDecodeError as e:
                raise DatasetError(path, lineno + 1, f"not UTF-8 text: {e.reason}") from None
            if not raw:
                return
            lineno += 1
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw), None
            except json.JSONDecodeError as e:
                yield lineno, None, DatasetError(path, lineno, f"invalid JSON: {e.msg} (column {e.colno})")


def _array_elements(text: str, path: Path) -> Iterator[RawRecord]:
    """Decode a top-level JSON array element by element, remembering where each starts."""
    dec = json.JSONDecoder()

    def line_at(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    pos = _WS.match(text, _WS.match(text, 0).end() + 1).end()
    if text[pos : pos + 1] == "]":
        return
    while True:
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            yield e.lineno, None, DatasetError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})")
            return
        yield line_at(pos), obj, None
        pos = _WS.match(text, end).end()
        ch = text[pos : pos + 1]
        if ch == "]":
            return
        if ch != ",":
            yield line_at(pos), None, DatasetError(path, line_at(pos), "invalid JSON: expected ',' or ']'")
            return
        pos = _WS.match(text, pos + 1).end()


def first_object(path: str | Path) -> Any:
    """The first decodable record of a file (``None`` when there is none): what format detection reads."""
    for _, obj, err in iter_raw(path):
        return None if err is not None else obj
    return None


def dumps_jsonl(records: list[dict[str, Any]]) -> str:
    """JSON Lines text (UTF-8 kept as is)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def dumps_array(records: list[dict[str, Any]]) -> str:
    """A JSON array, one indented element after another (LLaVA's and LLaMA-Factory's layout)."""
    return json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def iter_records(path: str | Path, media_folder: str | Path | None, parse: Callable[..., Any]) -> Iterator[Any]:
    """Every record of a JSON/JSONL dataset file as a ``Record``: ``parse(obj, file=, line=,
    base_dir=, index=)`` makes its sample, a malformed record or a ``DatasetError`` its error.
    Media paths resolve against ``media_folder`` or the file's folder; ``index`` counts from 1.
    The one loop every format's reader shares."""
    from omnibind.data.formats.sample import Record

    path = Path(path)
    base = Path(media_folder).resolve() if media_folder else path.resolve().parent
    for n, (line, obj, err) in enumerate(iter_raw(path), 1):
        if err is not None:
            yield Record(line, error=err)
            continue
        try:
            yield Record(line, sample=parse(obj, file=path, line=line, base_dir=base, index=n))
        except DatasetError as e:
            yield Record(line, error=e)
