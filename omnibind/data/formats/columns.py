"""What LLaMA-Factory and ms-swift share: media in per-modality columns, turns as role/content lists.

Both keep a sample's media as path lists per modality (``images``, ``videos``, ``audios``), matched
in order to the ``<image>`` / ``<video>`` / ``<audio>`` placeholders of the text, while omnibind keeps
one ordered ``media`` list. Reading walks the user turns' placeholders and takes the next path of
that placeholder's modality; a count that disagrees becomes a ``Sample.notes`` entry naming the
column (``2 <image> placeholder(s) but 1 path(s) in 'images'``), reported by ``omnibind data check``.

omnibind's other modalities use the same rule with columns ``depths``, ``thermals``, ``imus`` and
``points``: an omnibind extension the two trainers ignore (they pass unknown columns through).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omnibind.data.formats.sample import PLACEHOLDER_RE, DatasetError, Sample, parse_sample
from omnibind.messages import MEDIA_MODALITIES

NATIVE_COLUMNS: dict[str, str] = {"image": "images", "video": "videos", "audio": "audios"}
"""Media columns LLaMA-Factory and ms-swift read themselves."""
COLUMNS: dict[str, str] = {m: NATIVE_COLUMNS.get(m, m if m == "points" else m + "s") for m in MEDIA_MODALITIES}
"""Every modality's column (the non-native ones are an omnibind extension)."""


def _path_of(entry: Any, column: str, i: int, bad: Callable[[str], DatasetError]) -> str:
    """A column entry: a path string, or ms-swift's ``{"path": ...}`` mapping."""
    if isinstance(entry, dict):
        entry = entry.get("path")
    if not isinstance(entry, str) or not entry.strip():
        raise bad(f"'{column}'[{i}] must be a path (a non-empty string or {{'path': ...}})")
    return entry


def column_lists(obj: dict[str, Any], bad: Callable[[str], DatasetError], names: dict[str, str]) -> dict[str, list]:
    """Modality → its paths, from the record's media columns (``names``: modality → column name)."""
    out: dict[str, list[str]] = {}
    for modality, column in names.items():
        value = obj.get(column)
        if value is None:
            continue
        if isinstance(value, str):  # a single path where a list is expected: accepted, as both tools do
            value = [value]
        if not isinstance(value, list):
            raise bad(f"'{column}' must be a list of paths, got {type(value).__name__}")
        out[modality] = [_path_of(v, column, i, bad) for i, v in enumerate(value)]
    return out


def media_in_placeholder_order(
    turns: Sequence[dict[str, str]], lists: dict[str, list[str]], names: dict[str, str]
) -> tuple[list[dict[str, str]], list[str]]:
    """omnibind's ordered media list and the count problems (one note per disagreeing column)."""
    wanted = [m for t in turns if t["role"] == "user" for m in PLACEHOLDER_RE.findall(t["content"])]
    queues = {m: list(paths) for m, paths in lists.items()}
    media = [{"type": m, "path": queues[m].pop(0)} for m in wanted if queues.get(m)]
    for m, rest in queues.items():  # paths no placeholder asked for: kept, so the counts stay visible
        media.extend({"type": m, "path": p} for p in rest)
    notes = []
    for m in MEDIA_MODALITIES:
        n_ph, n_paths = wanted.count(m), len(lists.get(m, []))
        if n_ph != n_paths:
            col = names.get(m, COLUMNS[m])
            notes.append(f"{n_ph} <{m}> placeholder(s) but {n_paths} path(s) in '{col}'")
    return media, notes


def turns_from_list(
    raw: Any,
    key: str,
    role_key: str,
    content_key: str,
    roles: dict[str, str],
    bad: Callable[[str], DatasetError],
) -> list[dict[str, str]]:
    """``[{role_key: r, content_key: text}, ...]`` → omnibind turns (roles mapped, unknown ones kept
    as they are so that ``check`` names them)."""
    if not isinstance(raw, list) or not raw:
        raise bad(f"'{key}' must be a non-empty list of {{{role_key!r}, {content_key!r}}} turns")
    turns = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise bad(f"'{key}'[{i}] must be an object with {role_key!r} and {content_key!r}")
        content = t.get(content_key)
        if not isinstance(content, str):
            kind = type(content).__name__
            raise bad(f"'{key}'[{i}].{content_key} must be a string with placeholders, got {kind}")
        role = t.get(role_key)
        turns.append({"role": roles.get(str(role), str(role)), "content": content})
    return turns


def alpaca_turns(obj: dict[str, Any], bad: Callable[[str], DatasetError], cols: dict[str, str]) -> list[dict[str, str]]:
    """Alpaca layout: ``history`` pairs, then ``instruction`` + newline + ``input`` → ``output``."""
    turns: list[dict[str, str]] = []
    history = obj.get(cols["history"]) or []
    if not isinstance(history, list):
        raise bad(f"'{cols['history']}' must be a list of [instruction, response] pairs")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise bad(f"'{cols['history']}'[{i}] must be a pair of strings")
        turns += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    prompt = obj.get(cols["prompt"])
    if not isinstance(prompt, str):
        raise bad(f"'{cols['prompt']}' must be a string")
    query = obj.get(cols["query"]) or ""
    turns.append({"role": "user", "content": f"{prompt}\n{query}" if query else prompt})
    response = obj.get(cols["response"])
    if isinstance(response, str):
        turns.append({"role": "assistant", "content": response})
    return turns


def build_sample(
    obj: dict[str, Any],
    turns: list[dict[str, str]],
    *,
    consumed: set[str],
    system: Any,
    names: dict[str, str],
    default_id: str,
    source: str | None,
    file: Path | None,
    line: int | None,
    base_dir: Path | None,
) -> Sample:
    """The ``Sample`` of one foreign record: system turn first, media in placeholder order, every
    key the format does not use kept in ``extra`` (so a round trip through the format is exact)."""

    def bad(problem: str) -> DatasetError:
        return DatasetError(file, line, problem)

    if system is not None:
        if not isinstance(system, str):
            raise bad("'system' must be a string")
        if system and not (turns and turns[0]["role"] == "system"):
            turns = [{"role": "system", "content": system}, *turns]
    lists = column_lists(obj, bad, names)
    media, notes = media_in_placeholder_order(turns, lists, names)
    used = consumed | set(names.values())
    rest = {k: v for k, v in obj.items() if k not in used}
    record = {"id": rest.pop("id", default_id), "media": media, "conversation": turns, **rest}
    if source is not None:
        record.setdefault("source", source)
    sample = parse_sample(record, file=file, line=line, base_dir=base_dir)
    sample.notes = notes
    return sample


def to_columns(sample: Sample, names: dict[str, str]) -> dict[str, list[str]]:
    """A sample's media as per-modality path lists (the reverse of ``media_in_placeholder_order``)."""
    out: dict[str, list[str]] = {}
    for m in sample.media:
        out.setdefault(names.get(m.type, COLUMNS[m.type]), []).append(m.path)
    return out


def passthrough(sample: Sample) -> dict[str, Any]:
    """Fields a foreign writer keeps beside its own: id, source, split and the sample's extra keys."""
    d: dict[str, Any] = {"id": sample.id}
    if sample.source is not None:
        d["source"] = sample.source
    if sample.split is not None:
        d["split"] = sample.split
    d.update(sample.extra)
    return d
