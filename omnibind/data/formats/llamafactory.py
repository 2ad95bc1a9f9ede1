"""LLaMA-Factory's dataset files as is (hiyouga/LLaMA-Factory ``data/README.md``).

Three layouts, JSON array or JSON Lines, with media in the ``images`` / ``videos`` / ``audios``
columns matched in order to ``<image>`` / ``<video>`` / ``<audio>`` in the text:

* **sharegpt**: ``{"conversations": [{"from": "human", "value": "<image>..."}, {"from": "gpt", ...}],
  "system": "...", "images": ["a.jpg"]}`` (``human``/``gpt``/``system`` tags);
* **openai** (sharegpt with role/content tags): ``{"messages": [{"role": "user", "content": ...}], ...}``;
* **alpaca**: ``{"instruction", "input", "output", "system", "history": [[q, a], ...], "images"}``
  (the user turn is ``instruction\\ninput``).

A ``dataset_info.json`` beside the file whose entry's ``file_name`` is this file supplies the
``formatting``, renamed ``columns`` and ``tags`` (``role_tag``, ``user_tag``...), as LLaMA-Factory
reads them. Media paths are relative to LLaMA-Factory's ``media_dir`` (``--media-folder`` here;
default: the file's folder). Writing produces the sharegpt layout as a JSON array.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.data.formats import columns, jsonfile
from omnibind.data.formats.sample import DatasetError, Record, Sample

NAME = "llamafactory"
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}


@dataclass
class Spec:
    """How to read one LLaMA-Factory dataset: its ``dataset_info.json`` entry, or the defaults."""

    formatting: str | None = None  # None: sniffed per record (sharegpt / openai / alpaca)
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    named: bool = False  # True when a dataset_info.json entry names the file

    def col(self, name: str, default: str) -> str:
        return self.columns.get(name, default)


def find_spec(path: Path) -> Spec:
    """The ``dataset_info.json`` entry naming this file (same folder), else the default spec."""
    info = path.parent / "dataset_info.json"
    if not info.is_file():
        return Spec()
    try:
        entries = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(info, None, f"cannot read dataset_info.json: {e}") from None
    for entry in entries.values() if isinstance(entries, dict) else []:
        if isinstance(entry, dict) and entry.get("file_name") == path.name:
            cols, tags = dict(entry.get("columns") or {}), dict(entry.get("tags") or {})
            return Spec(entry.get("formatting"), cols, tags, named=True)
    return Spec()


def iter_records(path: str | Path, media_folder: str | Path | None = None) -> Iterator[Record]:
    """Every record of a LLaMA-Factory file (see the module docstring)."""
    spec = find_spec(Path(path))
    yield from jsonfile.iter_records(path, media_folder, lambda obj, **kw: to_sample(obj, spec, **kw))


def to_sample(
    obj: Any,
    spec: Spec | None = None,
    *,
    file: Path | None = None,
    line: int | None = None,
    base_dir: Path | None = None,
    index: int = 0,
) -> Sample:
    """One LLaMA-Factory record as a ``Sample``."""
    spec = spec or Spec()

    def bad(problem: str) -> DatasetError:
        return DatasetError(file, line, problem)

    if not isinstance(obj, dict):
        raise bad(f"a LLaMA-Factory sample must be an object, got {type(obj).__name__}")
    names = {m: spec.col(col, col) for m, col in columns.COLUMNS.items()}
    system_col = spec.col("system", "system")
    msg_col = spec.columns.get("messages") or ("messages" if "messages" in obj else "conversations")
    formatting = spec.formatting or ("sharegpt" if msg_col in obj else "alpaca")
    if formatting == "alpaca":
        cols = {k: spec.col(k, v) for k, v in ALPACA_COLUMNS.items()}
        turns = columns.alpaca_turns(obj, bad, cols)
        consumed = set(cols.values())
    elif formatting == "sharegpt":
        turns = _sharegpt_turns(obj, msg_col, spec, bad)
        consumed = {msg_col}
    else:
        raise bad(f"unknown formatting {formatting!r}; expected alpaca or sharegpt")
    return columns.build_sample(
        obj,
        turns,
        consumed=consumed | {system_col},
        system=obj.get(system_col),
        names=names,
        default_id=f"{Path(file).stem if file else 'llamafactory'}-{index}",
        source=None,
        file=file,
        line=line,
        base_dir=base_dir,
    )


def _sharegpt_turns(obj: dict[str, Any], msg_col: str, spec: Spec, bad: Any) -> list[dict[str, str]]:
    raw = obj.get(msg_col)
    openai = isinstance(raw, list) and bool(raw) and isinstance(raw[0], dict) and "role" in raw[0]
    role_key = spec.tags.get("role_tag", "role" if openai else "from")
    content_key = spec.tags.get("content_tag", "content" if openai else "value")
    roles = {
        spec.tags.get("user_tag", "user" if openai else "human"): "user",
        spec.tags.get("assistant_tag", "assistant" if openai else "gpt"): "assistant",
        spec.tags.get("system_tag", "system"): "system",
    }
    return columns.turns_from_list(raw, msg_col, role_key, content_key, roles, bad)


def from_sample(sample: Sample) -> dict[str, Any]:
    """The sharegpt record of a sample: system turn → ``system``, media → per-modality columns."""
    turns = list(sample.conversation)
    out = columns.passthrough(sample)
    if turns and turns[0].role == "system":
        out["system"] = turns.pop(0).content
    back = {"user": "human", "assistant": "gpt", "system": "system"}
    out["conversations"] = [{"from": back.get(t.role, t.role), "value": t.content} for t in turns]
    out.update(columns.to_columns(sample, columns.COLUMNS))
    return out


def dumps(samples: list[Sample]) -> str:
    """A LLaMA-Factory sharegpt file's text (JSON array); register it with ``dataset_info_entry``."""
    return jsonfile.dumps_array([from_sample(s) for s in samples])


def dataset_info_entry(file_name: str, samples: list[Sample]) -> dict[str, Any]:
    """The ``dataset_info.json`` entry LLaMA-Factory needs for a file written by ``dumps``."""
    used = {columns.COLUMNS[m.type] for s in samples for m in s.media}
    cols = {"messages": "conversations", "system": "system"}
    cols.update({c: c for c in sorted(used)})
    return {"file_name": file_name, "formatting": "sharegpt", "columns": cols}
