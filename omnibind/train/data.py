"""Training samples from dataset files (``omnibind.data.format``): conversations for the language
stages, media/caption pairs for the bind stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnibind.errors import ConfigError
from omnibind.messages import Conversation, MediaPart, TextPart


@dataclass
class TrainSample:
    """One sample as the trainer sees it."""

    id: str
    conversation: Conversation
    media: list[MediaPart] = field(default_factory=list)
    caption: str | None = None
    source: str | None = None
    file: str | None = None
    """The dataset file the sample came from and its line there (reports of bad media cite them)."""
    line: int | None = None

    @property
    def modalities(self) -> set[str]:
        return {m.modality for m in self.media}

    @property
    def where(self) -> str:
        """``file:line`` of the sample (``<sample ID>`` when it did not come from a file)."""
        return f"{self.file}:{self.line}" if self.file is not None else f"<sample {self.id}>"


def _caption(sample: Any, conversation: Conversation) -> str | None:
    """The text a medium pairs with in the bind stage: ``caption`` if the sample has one, else the
    last assistant turn of a single-question caption sample."""
    cap = sample.extra.get("caption") if hasattr(sample, "extra") else None
    if isinstance(cap, str) and cap.strip():
        return cap.strip()
    return None


def with_experts(sample_id: str, share: float) -> bool:
    """Whether a sample is shown with its expert notes: a fixed ``share`` of the samples, chosen by
    a hash of the id (the same samples in every run and every process)."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    from omnibind.data.splits import bucket

    return bucket("experts", sample_id) < share * 100


def to_train_sample(sample: Any, *, experts: bool = False) -> TrainSample:
    """A dataset ``Sample`` as the trainer sees it (its conversation, media parts and caption);
    ``experts=True`` renders the media's stored expert notes after them, as inference does."""
    conv = sample.to_messages(experts=experts)
    media = [p for m in conv for p in m.content if isinstance(p, MediaPart)]
    file = str(sample.file) if getattr(sample, "file", None) is not None else None
    line = getattr(sample, "line", None)
    return TrainSample(sample.id, conv, media, _caption(sample, conv), sample.source, file, line)


def load_samples(
    paths: Sequence[str | Path],
    *,
    modalities: Sequence[str] = (),
    limit: int | None = None,
    text_only: bool = True,
    tasks: Sequence[str] = (),
    experts: float = 0.0,
) -> list[TrainSample]:
    """Read dataset files; keep samples whose media are all in ``modalities`` (empty = any), at most ``limit`` per file.

    ``text_only=False`` drops language-only samples (the alignment stage trains on media only).
    ``tasks`` keeps only samples whose ``task`` field is listed (e.g. ``caption``); empty = all.
    Malformed lines raise ``DatasetError`` naming ``file:line`` — nothing is dropped silently.
    ``experts``: the share of samples rendered with their stored expert notes (``with_experts``).
    """
    from omnibind.data.format import read_dataset

    out: list[TrainSample] = []
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"{p}: no such dataset file")
        rows: list[TrainSample] = []
        for s in read_dataset(p):
            if tasks and s.extra.get("task") not in tasks:
                continue
            ts = to_train_sample(s, experts=with_experts(s.id, experts))
            if modalities and not ts.modalities <= set(modalities):
                continue
            if not ts.media and not text_only:
                continue
            rows.append(ts)
        if limit is not None and len(rows) > limit:
            # per file, and spread out (not the first N lines, which may all be one category)
            step = len(rows) / limit
            rows = [rows[int(i * step)] for i in range(limit)]
        out.extend(rows)
    return out


@dataclass
class Pair:
    """One bind-stage pair: ``a`` and ``b`` are media or caption text; keys detect duplicates."""

    kind: tuple[str, str]
    a: MediaPart | TextPart
    b: MediaPart | TextPart
    key_a: str
    key_b: str


def pairs_of(samples: Sequence[TrainSample], kinds: Sequence[Sequence[str]]) -> dict[tuple[str, str], list[Pair]]:
    """Every pair of the requested kinds found in the samples (media of one sample pair with each
    other and with its caption). Identical (a, b) pairs from several samples of one item count once."""
    from omnibind.train.features import part_key

    out: dict[tuple[str, str], list[Pair]] = {tuple(k): [] for k in kinds}  # type: ignore[misc]
    seen: set[tuple[str, str, str]] = set()
    for s in samples:
        by_mod: dict[str, list[MediaPart | TextPart]] = {}
        for m in s.media:
            by_mod.setdefault(m.modality, []).append(m)
        if s.caption:
            by_mod["text"] = [TextPart(s.caption)]
        for kind in out:
            a_mod, b_mod = kind
            for a in by_mod.get(a_mod, []):
                for b in by_mod.get(b_mod, []):
                    ka, kb = part_key(a) or s.id, part_key(b) or s.id
                    if (kind[0] + kind[1], ka, kb) in seen:
                        continue
                    seen.add((kind[0] + kind[1], ka, kb))
                    out[kind].append(Pair(kind, a, b, ka, kb))  # type: ignore[arg-type]
    return out
