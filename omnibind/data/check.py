"""Dataset checks: every problem of a dataset file, each with its line number; nothing dropped.

Errors: invalid JSON, malformed samples, unknown roles, bad turn order, empty turns, placeholders
outside user turns or disagreeing with the media list, duplicate ids, missing or undecodable media
(decoded with ``omnibind.modalities.load``), a held-out item marked ``train``.
Warnings: things that train but are probably unintended (no assistant turn at the end...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.data.format import PLACEHOLDER_RE, SPLITS, Sample, iter_records, placeholder_problems
from omnibind.data.splits import RULES, split_of
from omnibind.messages import ROLES


@dataclass
class Issue:
    """One finding: where (file, line), which sample, how bad, what."""

    file: str
    line: int | None
    level: str  # "error" | "warning"
    message: str
    sample_id: str | None = None

    def __str__(self) -> str:
        sid = f" [{self.sample_id}]" if self.sample_id else ""
        return f"{self.file}:{self.line or '-'}: {self.level}: {self.message}{sid}"


@dataclass
class CheckReport:
    """The result of ``check_dataset``: counts and every issue, in file order."""

    file: str
    records: int = 0  # non-blank lines / list elements, parsed or not
    samples: int = 0
    media: int = 0
    issues: list[Issue] = field(default_factory=list)
    modality_counts: Counter = field(default_factory=Counter)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "records": self.records,
            "samples": self.samples,
            "media": self.media,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "modalities": dict(self.modality_counts),
            "issues": [vars(i) for i in self.issues],
        }


def turn_problems(sample: Sample) -> list[tuple[str, str]]:
    """Role, order and emptiness problems of a conversation as (level, message) pairs."""
    out: list[tuple[str, str]] = []
    turns = sample.conversation
    for i, t in enumerate(turns):
        if t.role not in ROLES:
            out.append(("error", f"turn {i + 1}: unknown role {t.role!r}; expected one of {', '.join(ROLES)}"))
            continue
        if t.role == "system" and i != 0:
            out.append(("error", f"turn {i + 1}: a system turn may only come first"))
        if t.role != "user" and PLACEHOLDER_RE.search(t.content):
            out.append(("error", f"turn {i + 1}: placeholder in a {t.role} turn (media go in user turns)"))
        if not t.content.strip():
            out.append(("error", f"turn {i + 1}: empty {t.role} turn"))
    dialog = [t.role for t in turns if t.role in ("user", "assistant")]
    for i, role in enumerate(dialog):
        want = "user" if i % 2 == 0 else "assistant"
        if role != want:
            out.append(("error", f"turns must alternate user/assistant starting with user; turn {i + 1} is {role}"))
            break
    if not dialog:
        out.append(("error", "no user or assistant turn"))
    elif dialog[-1] != "assistant":
        out.append(("warning", "the last turn is not an assistant turn (nothing to learn from it)"))
    return out


def split_problems(sample: Sample) -> list[tuple[str, str]]:
    """A ``split`` value that is unknown, or that contradicts the fixed rule for a known source."""
    if sample.split is None:
        return []
    if sample.split not in SPLITS:
        return [("error", f"unknown split {sample.split!r}; expected one of {', '.join(SPLITS)}")]
    if sample.source in RULES:
        try:
            want = split_of(sample.source, sample.item)
        except ValueError as e:
            return [("error", str(e))]
        if want != sample.split:
            return [("error", f"split {sample.split!r} but split_of({sample.source!r}, {sample.item!r}) is {want!r}")]
    return []


class MediaChecker:
    """Decodes each distinct media file once (``omnibind.modalities.load``) and remembers the verdict."""

    def __init__(self, decode: bool = True, limits: Any = None):
        self.decode = decode
        self.limits = limits
        self._seen: dict[tuple[str, str, str], str | None] = {}

    def problem(self, sample: Sample, i: int) -> str | None:
        item = sample.media[i]
        path = sample.media_path(i)
        key = (item.type, str(path), repr(sorted(item.options.items())))
        if key not in self._seen:
            self._seen[key] = self._check(item.type, path, item.options)
        return self._seen[key]

    def _check(self, modality: str, path: Path, options: dict[str, Any]) -> str | None:
        if not path.exists():
            return f"missing file {path}"
        if not path.is_file():
            return f"not a file: {path}"
        if not self.decode:
            return None
        from omnibind import modalities
        from omnibind.errors import InputError

        try:
            modalities.load(modality, str(path), options=options, limits=self.limits)
        except InputError as e:
            return f"unreadable {modality}: {e.problem}"
        except OSError as e:
            return f"unreadable {modality} {path}: {e}"
        return None


def check_dataset(
    path: str | Path,
    *,
    image_folder: str | Path | None = None,
    fmt: str | None = None,
    decode: bool = True,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    """Check a dataset file (omnibind JSONL, LLaVA JSON, LLaMA-Factory or ms-swift) and report every
    issue with its line and sample id: placeholders are counted against the media of every sample
    (in a foreign format, against the media column of each modality)."""
    report = CheckReport(file=str(path))
    media = MediaChecker(decode=decode)
    first_line: dict[str, int] = {}
    for rec in iter_records(path, image_folder=image_folder, fmt=fmt):
        report.records += 1
        if progress is not None:
            progress(rec.line)
        if rec.error is not None:
            report.issues.append(Issue(str(path), rec.error.line or rec.line, "error", rec.error.problem))
            continue
        s = rec.sample
        report.samples += 1
        report.media += len(s.media)
        report.modality_counts.update(m.type for m in s.media)
        if not s.media:
            report.modality_counts["text-only"] += 1

        def add(level: str, msg: str, s: Sample = s) -> None:
            report.issues.append(Issue(str(path), s.line, level, msg, s.id))

        if s.id in first_line:
            add("error", f"duplicate id {s.id!r} (first at line {first_line[s.id]})")
        else:
            first_line[s.id] = s.line or 0
        for level, msg in turn_problems(s) + split_problems(s):
            add(level, msg)
        for msg in placeholder_problems(s):
            add("error", msg)
        for i in range(len(s.media)):
            problem = media.problem(s, i)
            if problem:
                add("error", f"media[{i}] ({s.media[i].type}): {problem}")
    return report
