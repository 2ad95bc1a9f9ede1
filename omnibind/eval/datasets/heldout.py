"""The held-out files of the data builders (``<data>/<source>.test.jsonl``, written by ``omnibind
data build``) as evaluation samples: the ``results`` suite (docs/RESULTS.md) reads only these, which
no training stage ever reads.

``heldout_jsonl`` applies ``--limit`` itself (the ``results`` tasks set ``select: dataset``): it
takes the first ``limit`` matching samples in file order, and a closed answer set (``options:
labels``) is the sorted labels of the samples taken, so a limited run is a prefix of the full one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnibind.data.format import read_dataset
from omnibind.errors import InputError
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.messages import TextPart

KINDS = ("label", "yesno")


def read_split(data: str | Path, source: str, split: str = "test") -> list[Any]:
    """The samples of ``<data>/<source>.<split>.jsonl`` (``[]`` when the builder did not write it)."""
    p = Path(data) / f"{source}.{split}.jsonl"
    return read_dataset(p) if p.is_file() else []


@DATASETS.register("heldout_jsonl")
def heldout_jsonl(
    source: str,
    data: str = "runs/embedded/data",
    kind: str = "label",
    suffix: str = "#caption",
    options: str | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """One evaluation sample per matching test sample of a builder's source.

    ``kind: label``: samples whose id ends in ``suffix``; the target is the sample's ``label``, the
    input its first medium; ``options: labels`` makes the sorted labels the closed answer set.
    ``kind: yesno``: samples whose answer is "yes" or "no"; the inputs and the question text
    (``{question}``) come from the sample's first user turn.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rows = read_split(data, source)
    if kind == "label":
        rows = [s for s in rows if s.id.endswith(suffix)]
    else:
        rows = [s for s in rows if s.extra.get("answer") in ("yes", "no")]
    rows = rows[:limit] if limit else rows
    if kind == "yesno":
        return [_yes_no(source, s) for s in rows]
    labels = sorted({s.extra["label"] for s in rows}) if options == "labels" else None
    out = []
    for s in rows:
        media = s.to_messages()[0].media[0]
        out.append(
            Sample(
                s.id,
                s.id.removesuffix(suffix),
                source,
                [media],
                s.extra["label"],
                labels,
                meta={"caption": s.extra.get("caption", "")},
            )
        )
    return out


def _yes_no(source: str, s: Any) -> Sample:
    user = s.to_messages()[0]
    texts = [p.text for p in user.content if isinstance(p, TextPart)]
    if len(texts) != 1 or not isinstance(user.content[-1], TextPart):
        raise InputError(s.id, "a yes/no sample must be its media followed by one question")
    return Sample(
        s.id,
        s.id.split("#", 1)[0],
        source,
        list(user.media),
        s.extra["answer"],
        ["yes", "no"],
        vars={"question": texts[0]},
    )
