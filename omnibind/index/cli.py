"""``omnibind index build|info`` and ``omnibind search``: media retrieval at the command line.

Only typer and the standard library at import time (``omnibind --help`` stays instant).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="Media indexes for cross-modal search (bind vectors in FAISS).", no_args_is_help=True)

ModelOpt = typer.Option(None, "--model", "-m", help="Checkpoint folder, config file or preset; default: embedded.")
ModalityOpt = typer.Option(
    [], "--modality", help="Only this modality (repeatable): image, audio, video, depth, thermal, imu, points."
)


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _load(model: str | None) -> Any:
    from omnibind.serve.cli import _load as load

    return load(model)


@app.command("build")
def build_cmd(
    folder: Path = typer.Argument(..., help="The media folder to index (searched recursively)."),
    out: Path | None = typer.Option(None, "--out", help="Index folder (default: FOLDER/.omnibind-index)."),
    modality: list[str] = ModalityOpt,
    model: str | None = ModelOpt,
    batch_size: int = typer.Option(16, "--batch-size", help="Files per embedding batch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
) -> None:
    """Embed every media file of FOLDER into a search index; unchanged files (same content hash) are reused."""
    from omnibind.errors import OmnibindError
    from omnibind.index.build import build_index

    def warn(path: Path, why: str) -> None:
        typer.secho(f"skipped {path}: {why}", fg=typer.colors.YELLOW, err=True)

    try:
        report = build_index(
            _load(model), folder, out, modalities=modality or None, batch_size=batch_size, progress=progress,
            on_skip=warn,
        )  # fmt: skip
    except OmnibindError as e:
        _fail(e)
        return
    counts = ", ".join(f"{m} {n}" for m, n in report.index.modalities().items()) or "nothing"
    typer.echo(
        f"indexed {len(report.index)} items ({counts}): {report.embedded} embedded, {report.reused} reused, "
        f"{len(report.skipped)} skipped, {report.ignored} other files ignored → {report.folder}"
    )


@app.command("info")
def info_cmd(index: Path = typer.Argument(..., help="An index folder, or the media folder it was built in.")) -> None:
    """What an index holds (items per modality, its root, the bind space it was built in)."""
    from omnibind.errors import OmnibindError
    from omnibind.index.build import DEFAULT_DIRNAME
    from omnibind.index.store import MediaIndex

    folder = index / DEFAULT_DIRNAME if (index / DEFAULT_DIRNAME).is_dir() else index
    try:
        idx = MediaIndex.load(folder)
    except OmnibindError as e:
        _fail(e)
        return
    body = {"folder": str(folder), "root": str(idx.root), "items": len(idx), "modalities": idx.modalities()}
    typer.echo(json.dumps({**body, "dim": idx.dim, "fingerprint": idx.fingerprint}, indent=2))


def search_command(
    query: str = typer.Argument(..., help="Text, or a media file with --file (its modality from its extension)."),
    index: Path = typer.Option(
        Path("."), "--index", "-i", help="Index folder, or the media folder it was built in (default: .)."
    ),
    k: int = typer.Option(5, "--k", "-k", help="How many results."),
    modality: list[str] = typer.Option([], "--modality", help="Results of this modality only (repeatable)."),
    as_file: bool = typer.Option(False, "--file", "-f", help="QUERY is a media file (image, sound, clip …)."),
    model: str | None = ModelOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the hits as JSON."),
) -> None:
    """Search an index with a query of any modality: `omnibind search "a dog barking" --modality audio`."""
    from omnibind.errors import OmnibindError
    from omnibind.index.build import DEFAULT_DIRNAME
    from omnibind.index.search import query_part, search

    folder = index / DEFAULT_DIRNAME if (index / DEFAULT_DIRNAME).is_dir() else index
    try:
        part = query_part(query, as_path=as_file)
        hits = search(_load(model), folder, part, k=k, modality=modality or None)
    except OmnibindError as e:
        _fail(e)
        return
    if as_json:
        typer.echo(json.dumps([{**h.to_dict(), "file": str(h.file)} for h in hits], indent=2))
        return
    for h in hits:
        typer.echo(f"{h.rank:>3}  {h.score:+.3f}  {h.entry.modality:<7} {h.file}")
