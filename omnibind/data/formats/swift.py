"""ms-swift's dataset files as is (modelscope/ms-swift docs, "Custom Dataset").

The standard layout, one JSON object per line (a JSON array is read too)::

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "<image>What is it?"},
                  {"role": "assistant", "content": "A cat."}],
     "images": ["cat.jpg"], "videos": [...], "audios": [...]}

and the other layouts its ``AutoPreprocessor`` accepts: sharegpt ``{"system", "conversation":
[{"human": q, "assistant": a}]}``, alpaca ``{"system", "instruction", "input", "output"}`` and
query-response ``{"system", "query", "response", "history": [[q, a], ...]}``. Media entries are
paths or ``{"path": ...}`` objects, relative to the file's folder (``--media-folder`` to change).
Writing produces the standard ``messages`` layout as JSON Lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omnibind.data.formats import columns, jsonfile
from omnibind.data.formats.sample import DatasetError, Record, Sample

NAME = "swift"
ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
ALPACA = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}
QUERY_RESPONSE = {"prompt": "query", "query": "", "response": "response", "history": "history"}


def iter_records(path: str | Path, media_folder: str | Path | None = None) -> Iterator[Record]:
    """Every record of an ms-swift file (see the module docstring)."""
    yield from jsonfile.iter_records(path, media_folder, to_sample)


def to_sample(
    obj: Any, *, file: Path | None = None, line: int | None = None, base_dir: Path | None = None, index: int = 0
) -> Sample:
    """One ms-swift record as a ``Sample`` (the layout is recognised by its keys)."""

    def bad(problem: str) -> DatasetError:
        return DatasetError(file, line, problem)

    if not isinstance(obj, dict):
        raise bad(f"an ms-swift sample must be an object, got {type(obj).__name__}")
    if "messages" in obj:
        turns = columns.turns_from_list(obj["messages"], "messages", "role", "content", ROLES, bad)
        consumed = {"messages"}
    elif "conversation" in obj:
        turns = _pairs(obj["conversation"], bad)
        consumed = {"conversation"}
    elif "instruction" in obj:
        turns = columns.alpaca_turns(obj, bad, ALPACA)
        consumed = set(ALPACA.values())
    elif "query" in obj:
        turns = columns.alpaca_turns(obj, bad, QUERY_RESPONSE)
        consumed = {"query", "response", "history"}
    else:
        raise bad("no 'messages', 'conversation', 'instruction' or 'query' key: not an ms-swift sample")
    return columns.build_sample(
        obj,
        turns,
        consumed=consumed | {"system"},
        system=obj.get("system"),
        names=columns.COLUMNS,
        default_id=f"{Path(file).stem if file else 'swift'}-{index}",
        source=None,
        file=file,
        line=line,
        base_dir=base_dir,
    )


def _pairs(raw: Any, bad: Any) -> list[dict[str, str]]:
    """ms-swift's sharegpt turns: ``[{"human": q, "assistant": a}, ...]``."""
    if not isinstance(raw, list) or not raw:
        raise bad("'conversation' must be a non-empty list of {'human', 'assistant'} pairs")
    turns = []
    for i, pair in enumerate(raw):
        if not isinstance(pair, dict) or not isinstance(pair.get("human"), str):
            raise bad(f"'conversation'[{i}] needs a string 'human'")
        turns.append({"role": "user", "content": pair["human"]})
        if isinstance(pair.get("assistant"), str):
            turns.append({"role": "assistant", "content": pair["assistant"]})
    return turns


def from_sample(sample: Sample) -> dict[str, Any]:
    """The standard ``messages`` record of a sample, media in per-modality columns."""
    out = columns.passthrough(sample)
    out["messages"] = [{"role": t.role, "content": t.content} for t in sample.conversation]
    out.update(columns.to_columns(sample, columns.COLUMNS))
    return out


def dumps(samples: list[Sample]) -> str:
    """An ms-swift file's text (JSON Lines)."""
    return jsonfile.dumps_jsonl([from_sample(s) for s in samples])
