"""``omnibind data ...``: check, build, inspect and enrich training datasets.

Only typer and the standard library are imported at module level (``omnibind --help`` stays
instant); each command imports what it needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    name="data",
    help="Datasets: check files, build training sets from packaged data, stats, experts, generated Q&A.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(err: Exception, code: int = 2) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def check(
    file: Path = typer.Argument(..., help="Dataset file: omnibind JSONL, LLaVA JSON, LLaMA-Factory or ms-swift."),
    image_folder: Path | None = typer.Option(
        None, "--media-folder", "--image-folder", help="Folder the media paths are relative to (default: the file's)."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="omnibind | llava | llamafactory | swift (default: detected)."
    ),
    decode: bool = typer.Option(True, help="Decode every medium (--no-decode: only check that files exist)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    max_show: int = typer.Option(0, help="Print at most this many issues (0 = all)."),
) -> None:
    """Report every problem with its line number; exit 1 when there are errors."""
    from omnibind.data.check import check_dataset
    from omnibind.errors import OmnibindError

    try:
        report = check_dataset(file, image_folder=image_folder, fmt=fmt, decode=decode)
    except OmnibindError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        shown = report.issues if max_show <= 0 else report.issues[:max_show]
        for issue in shown:
            typer.secho(str(issue), fg=typer.colors.RED if issue.level == "error" else typer.colors.YELLOW)
        if len(shown) < len(report.issues):
            typer.echo(f"... {len(report.issues) - len(shown)} more issues not shown")
        mods = ", ".join(f"{k} {v}" for k, v in sorted(report.modality_counts.items())) or "none"
        typer.echo(
            f"{file}: {report.samples} samples, {report.media} media ({mods}): "
            f"{len(report.errors)} errors, {len(report.warnings)} warnings"
        )
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def build(
    sources: list[str] = typer.Argument(..., help="Sources to build, or 'all'. See `omnibind data sources`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (JSONL files + media/)."),
    limit: int | None = typer.Option(None, help="Items per split (default: each source's own)."),
    seed: int = typer.Option(0, help="Seed for template choices (splits never depend on it)."),
    splits: str = typer.Option("train,val,test", help="Which split files to write."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List every skipped item."),
) -> None:
    """Build training (and held-out) sets from packaged data: <out>/<source>.<split>.jsonl."""
    from omnibind.data.builders import BUILDERS, UNSET
    from omnibind.data.builders import build as run_build
    from omnibind.errors import OmnibindError

    names = list(BUILDERS) if sources == ["all"] else sources
    unknown = [s for s in names if s not in BUILDERS]
    if unknown:
        _fail(ValueError(f"unknown sources {unknown}; known: {', '.join(BUILDERS)}"))
    for name in names:
        try:
            result = run_build(name, out, limit=UNSET if limit is None else limit, seed=seed, splits=splits.split(","))
        except (OmnibindError, ValueError) as e:
            _fail(e)
        counts = ", ".join(f"{s}: {result.items[s]} items / {result.samples[s]} samples" for s in result.files)
        typer.echo(f"{name}: {counts}")
        shown = result.skipped if verbose else result.skipped[:3]
        for line in shown:
            typer.secho(f"  skipped {line}", fg=typer.colors.YELLOW)
        if len(shown) < len(result.skipped):
            typer.secho(f"  ... {len(result.skipped) - len(shown)} more skipped (--verbose lists all)", fg="yellow")


@app.command()
def sources() -> None:
    """List the data builders and their default item limits."""
    from omnibind.data.builders import BUILDERS, builder

    for name, (_, _, default) in BUILDERS.items():
        doc = (builder(name).__doc__ or "").strip().splitlines()[0]
        typer.echo(f"{name:16s} limit {default if default is not None else 'all':>5}  {doc}")


@app.command()
def stats(
    file: Path = typer.Argument(..., help="Dataset file (any format `omnibind data check` reads)."),
    image_folder: Path | None = typer.Option(None, "--media-folder", "--image-folder", help="Media folder."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Counts per split, source, task and modality; turns and answer lengths."""
    from omnibind.data.format import read_dataset
    from omnibind.data.stats import dataset_stats
    from omnibind.errors import OmnibindError

    try:
        s = dataset_stats(read_dataset(file, image_folder=image_folder))
    except OmnibindError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    for key, value in s.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        typer.echo(f"{key:22s} {value}")


@app.command()
def convert(
    file: Path = typer.Argument(..., help="Input dataset (format detected; see --from)."),
    out_arg: Path | None = typer.Argument(None, metavar="OUT", help="Output file."),
    to: str = typer.Option("omnibind", "--to", help="omnibind | llamafactory | swift | llava."),
    src: str | None = typer.Option(None, "--from", help="Input format (default: detected from its first record)."),
    out_opt: Path | None = typer.Option(None, "--out", "-o", help="Output file (same as OUT)."),
    image_folder: Path | None = typer.Option(
        None, "--media-folder", "--image-folder", help="Folder the input's relative media paths are relative to."
    ),
) -> None:
    """Convert between dataset formats: `omnibind data convert data.json out.jsonl --to swift`.

    Media paths stay valid: relative paths are rewritten relative to the output's folder. Media
    options and expert fields (labels, transcripts) exist only in omnibind's format and are dropped,
    with a note, when writing another one.
    """
    from omnibind.data.format import DatasetError, dumps, placeholder_problems, read_dataset
    from omnibind.data.formats import get, llamafactory
    from omnibind.errors import OmnibindError

    out = out_arg or out_opt
    if out is None:
        _fail(ValueError("name the output file (OUT or --out)"))
        return
    try:
        target = get(to).NAME
        samples = read_dataset(file, image_folder=image_folder, fmt=src)
        for s in samples:  # a media list out of step with the text would be converted wrongly
            problems = placeholder_problems(s)
            if problems:
                raise DatasetError(s.file, s.line, f"sample {s.id!r}: {problems[0]} (see `omnibind data check`)")
        _rebase(samples, out)
        text = dumps(samples, target)
    except OmnibindError as e:
        _fail(e)
        return
    from omnibind.atomic import atomic_write_text

    atomic_write_text(out, text)
    dropped = sum(bool(m.options or m.extra) for s in samples for m in s.media)
    if target != "omnibind" and dropped:
        note = f"note: {dropped} media item(s) had options or expert fields; {target} cannot hold them"
        typer.secho(note, fg="yellow")
    typer.echo(f"wrote {len(samples)} samples to {out} ({target})")
    if target == "llamafactory":
        entry = {out.stem: llamafactory.dataset_info_entry(out.name, samples)}
        typer.echo("its dataset_info.json entry (LLaMA-Factory's data folder):\n" + json.dumps(entry, indent=2))


@app.command()
def experts(
    file: Path = typer.Argument(..., help="Dataset JSONL."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL with expert fields added."),
    labels: bool = typer.Option(True, help="Top-k ImageNet labels of image media (EfficientNet-Lite0)."),
    transcripts: bool = typer.Option(True, help="Whisper tiny.en transcripts of audio media."),
    k: int = typer.Option(3, help="How many labels."),
) -> None:
    """Add modality-expert text (image labels, speech transcripts) to each medium; optional at training."""
    from omnibind.data.experts import add_experts
    from omnibind.data.format import read_dataset, write_jsonl
    from omnibind.errors import OmnibindError

    try:
        samples = read_dataset(file)
        counts = add_experts(samples, labels=labels, transcripts=transcripts, k=k)
    except OmnibindError as e:
        _fail(e)
    _rebase(samples, out)
    write_jsonl(out, samples)
    done = f"{counts['images']} images labelled, {counts['audio']} transcribed"
    typer.echo(f"wrote {len(samples)} samples to {out} ({done})")


def _rebase(samples: list, out: Path) -> None:
    """Keep media paths valid when the output JSONL lives in another folder."""
    import os

    target = out.resolve().parent
    for s in samples:
        for m in s.media:
            if not Path(m.path).is_absolute() and s.base_dir is not None and s.base_dir != target:
                m.path = os.path.relpath(m.resolve(s.base_dir), target)


@app.command("generate-qa")
def generate_qa(
    file: Path = typer.Argument(..., help="Dataset JSONL with caption samples (e.g. tuxpaint.train.jsonl)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL of kept generated samples."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model for text generation; default: embedded."),
    limit: int | None = typer.Option(None, help="At most this many caption samples."),
    threshold: float = typer.Option(0.5, help="Keep when similarity(answer, re-answer) >= this."),
    similarity: str = typer.Option("f1", help="f1 (token F1) | minilm (sentence-embedding cosine)."),
    report: Path | None = typer.Option(None, help="Also write every round trip (kept or not) as JSONL."),
) -> None:
    """LLM question–answer generation with X-InstructBLIP's round-trip consistency filter."""
    from dataclasses import asdict

    from omnibind.data import qa_gen
    from omnibind.data.format import read_dataset, write_jsonl

    samples = [s for s in read_dataset(file) if s.extra.get("task", "caption") == "caption" and s.extra.get("caption")]
    samples = samples[:limit] if limit else samples
    _rebase(samples, out)
    sim = qa_gen.MiniLMSimilarity() if similarity == "minilm" else qa_gen.token_f1
    kept, results = qa_gen.qa_samples(
        [s.to_dict() for s in samples], qa_gen.model_chat_fn(model), similarity=sim, threshold=threshold
    )
    write_jsonl(out, kept)
    if report:
        write_jsonl(report, [asdict(r) for r in results])
    typer.echo(f"kept {len(kept)} of {len(results)} generated question-answer pairs -> {out}")


@app.command()
def textgen(
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL of text-only samples."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model; default: embedded."),
    max_new_tokens: int = typer.Option(64),
) -> None:
    """Self-distilled text-only chat: the LLM answers the seed instructions (kept when complete)."""
    from omnibind.data import qa_gen
    from omnibind.data.format import write_jsonl

    samples = qa_gen.text_chat_samples(qa_gen.model_chat_fn(model, max_new_tokens=max_new_tokens))
    write_jsonl(out, samples)
    typer.echo(f"wrote {len(samples)} text-only samples to {out}")


@app.command()
def features(
    file: Path = typer.Argument(..., help="Dataset JSONL."),
    cache: Path = typer.Option(..., "--cache", help="Feature cache folder."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model whose encoders to use; default: embedded."),
    batch_size: int = typer.Option(16),
) -> None:
    """Encode every medium once into the feature cache (reused by training across epochs and stages)."""
    import omnibind
    from omnibind.data.feature_cache import FeatureCache
    from omnibind.data.features import dataset_features
    from omnibind.data.format import read_dataset
    from omnibind.errors import OmnibindError

    try:
        samples = read_dataset(file)
        core = omnibind.load(model).core
        fc = FeatureCache(cache)
        counts = dataset_features(samples, core.encoders, fc, limits=core.limits, batch_size=batch_size)
    except OmnibindError as e:
        _fail(e)
    typer.echo(", ".join(f"{m}: {n} media" for m, n in counts.items()) or "no media")
