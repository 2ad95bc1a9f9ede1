"""``omnibind chat``, ``embed``, ``info`` and ``cache build``: the model at the command line.

Plain functions mounted by the root CLI (``omnibind/cli.py``); heavy imports happen inside them so
``--help`` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

MEDIA_FLAGS = ("image", "audio", "video", "depth", "thermal", "imu", "points")
GENERATION_FLAGS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")
ModelOpt = typer.Option(None, "--model", "-m", help="Checkpoint folder, config file or preset; default: embedded.")
BackendOpt = typer.Option(None, "--backend", help="LLM backend override: transformers | llamacpp.")


TIMINGS_ENV = "OMNIBIND_TIMINGS"  # a file: `omnibind chat` writes its phase times there (bench coldstart)


def _load(model: str | None, backend: str | None = None, *, verbose: bool = False) -> Any:
    _quiet_loading(verbose)
    import omnibind

    _mark("cli")
    import omnibind.api  # the heavy imports, timed on their own

    _mark("imported")
    m = omnibind.load(model, backend=backend)
    _mark("loaded", encoder_seconds=_encoder_seconds(m))
    return m


_MARKS: dict[str, Any] = {}


def _mark(name: str, **extra: Any) -> None:
    """Record a wall-clock phase mark when ``$OMNIBIND_TIMINGS`` names a file (else nothing)."""
    import os
    import time

    if os.environ.get(TIMINGS_ENV):
        _MARKS[name] = time.time()
        _MARKS.update({f"{name}:{k}": v for k, v in extra.items()})


def _encoder_seconds(m: Any) -> float:
    """Seconds spent building encoders so far (lazy ones are built on first use)."""
    return float(getattr(getattr(m.core, "encoders", None), "build_seconds", 0.0))


def _write_marks(m: Any) -> None:
    import os

    path = os.environ.get(TIMINGS_ENV)
    if not path:
        return
    _mark("done", encoder_seconds=_encoder_seconds(m))
    _MARKS["backend"] = m.core.llm.name
    _MARKS["encoders_built"] = sorted(m.core.encoders.built()) if hasattr(m.core.encoders, "built") else []
    Path(path).write_text(json.dumps(_MARKS))


def _quiet_loading(verbose: bool) -> None:
    """Hide the libraries' per-load progress bars ("Loading weights …" for MiniLM and the LLM on every
    warm start: noise before every answer) unless ``-v`` or ``OMNIBIND_VERBOSE=1`` asks for them.

    huggingface_hub reads the variable once, at import, so it is set before anything imports it; a
    value the user set wins. The one long step, the first conversion of the embedded LLM, says so on
    stderr itself (``omnibind.llm.embedded``).
    """
    import os

    if verbose or os.environ.get("OMNIBIND_VERBOSE", "") not in ("", "0"):
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _media_parts(files: dict[str, Any], opts: dict[str, Any] | None = None) -> list[Any]:
    """MediaParts for the files given per modality (``files[modality]``: the ``--image``... lists)."""
    from omnibind.messages import MediaPart

    parts = []
    for modality in MEDIA_FLAGS:
        for f in files.get(modality) or []:
            parts.append(MediaPart(modality, str(f), options=dict((opts or {}).get(modality, {}))))
    return parts


def chat(
    prompt: str | None = typer.Argument(None, help="The question. Omit it for an interactive session."),
    image: list[Path] = typer.Option([], "--image", help="Image file (repeatable)."),
    audio: list[Path] = typer.Option([], "--audio", help="Audio file: wav/flac/ogg/mp3 (repeatable)."),
    video: list[Path] = typer.Option([], "--video", help="Video file with its sound: mp4/avi/mkv/webm (repeatable)."),
    depth: list[Path] = typer.Option([], "--depth", help="Depth map: 16-bit PNG or .npy/.npz (repeatable)."),
    thermal: list[Path] = typer.Option([], "--thermal", help="Thermal image: PNG/TIFF or .npy °C (repeatable)."),
    imu: list[Path] = typer.Option([], "--imu", help="IMU recording T×6: .csv/.npy/.npz (repeatable)."),
    points: list[Path] = typer.Option([], "--points", help="Point cloud or mesh: ply/pcd/xyz/npy/obj/off/stl/glb."),
    imu_rate: float | None = typer.Option(None, help="Sample rate (Hz) of --imu files without a time column."),
    model: str | None = ModelOpt,
    backend: str | None = BackendOpt,
    system: str | None = typer.Option(None, help="System prompt."),
    max_new_tokens: int = typer.Option(128, help="Maximum tokens to generate."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0),
    top_k: int = typer.Option(0),
    repetition_penalty: float = typer.Option(1.0),
    seed: int | None = typer.Option(None),
    stream: bool = typer.Option(True, help="Print tokens as they come."),
    interactive: bool = typer.Option(False, "--interactive", "-i", help="Multi-turn session (also when no prompt)."),
    experts: bool | None = typer.Option(
        None,
        "--experts/--no-experts",
        help="Add modality-expert notes (image labels, speech transcripts); default: the model config's.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the libraries' loading progress bars."),
) -> None:
    """Ask about any mix of inputs: `omnibind chat "What is this?" --image cat.png --audio meow.wav`."""
    flags = dict(locals())  # the command's parameters by name, before any other local exists
    from omnibind.errors import OmnibindError
    from omnibind.messages import Message

    opts = {"imu": {"sample_rate": imu_rate}} if imu_rate else {}
    gen = {k: flags[k] for k in GENERATION_FLAGS}
    if experts is not None:  # unset: the model config decides
        gen["experts"] = experts
    try:
        parts = _media_parts(flags, opts)
        m = _load(model, backend, verbose=verbose)
        history: list[Message] = [Message.system(system)] if system else []
        if prompt is not None and not interactive:
            _answer(m, [*history, Message.user(*parts, prompt)], gen, stream)
            _write_marks(m)
            return
        _repl(m, history, parts, prompt, gen, stream)
    except OmnibindError as e:
        _fail(e)


def _answer(m: Any, conversation: list[Any], gen: dict[str, Any], stream: bool) -> str:
    if not stream:
        reply = m.chat(conversation, **gen)
        typer.echo(reply.text)
        return reply.text
    s = m.stream(conversation, **gen)
    for delta in s:
        if "first_token" not in _MARKS:
            _mark("first_token", encoder_seconds=_encoder_seconds(m))
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return s.reply.text if s.reply else ""


REPL_HELP = (
    "Commands: /image PATH, /audio PATH, /video PATH, /depth PATH, /thermal PATH, /imu PATH, /points PATH "
    "(attach to the next question), /reset (forget the conversation), /history, /help, /quit"
)


def _repl(m: Any, history: list[Any], pending: list[Any], first: str | None, gen: dict[str, Any], stream: bool) -> None:
    from omnibind.errors import OmnibindError
    from omnibind.messages import MediaPart, Message

    base = list(history)
    typer.echo(f"omnibind chat — {m.config.name}. {REPL_HELP}")
    queue = [first] if first else []
    while True:
        if queue:
            line = queue.pop(0)
        else:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                return
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, arg = line[1:].partition(" ")
            if cmd in ("quit", "exit", "q"):
                return
            if cmd == "reset":
                history, pending = list(base), []
                typer.echo("(conversation cleared)")
            elif cmd == "history":
                for msg in history:
                    typer.echo(f"{msg.role}: {msg.text} {' '.join(p.display_name for p in msg.media)}")
            elif cmd in MEDIA_FLAGS and arg:
                path = Path(arg.strip()).expanduser()
                if not path.exists():
                    typer.secho(f"error: {path}: no such file", fg=typer.colors.RED)
                    continue
                pending.append(MediaPart(cmd, str(path)))
                typer.echo(f"(attached {cmd} {path})")
            else:
                typer.echo(REPL_HELP)
            continue
        msg = Message.user(*pending, line)
        try:
            typer.echo("assistant> ", nl=False)
            text = _answer(m, [*history, msg], gen, stream)
        except OmnibindError as e:
            typer.secho(f"error: {e}", fg=typer.colors.RED)
            continue
        history += [msg, Message.assistant(text)]
        pending = []


def embed(
    text: list[str] = typer.Option([], "--text", help="Text input (repeatable)."),
    image: list[Path] = typer.Option([], "--image"),
    audio: list[Path] = typer.Option([], "--audio"),
    video: list[Path] = typer.Option([], "--video"),
    depth: list[Path] = typer.Option([], "--depth"),
    thermal: list[Path] = typer.Option([], "--thermal"),
    imu: list[Path] = typer.Option([], "--imu"),
    points: list[Path] = typer.Option([], "--points"),
    model: str | None = ModelOpt,
    output: Path | None = typer.Option(None, "--out", help="Write vectors to a .npy file."),
    as_json: bool = typer.Option(False, "--json", help="Print vectors as JSON."),
) -> None:
    """Embed inputs of any modality into the shared bind space; prints their cosine similarities."""
    flags = dict(locals())  # the command's parameters by name, before any other local exists
    from omnibind.errors import OmnibindError
    from omnibind.messages import TextPart

    try:
        parts = [TextPart(t) for t in text] + _media_parts(flags)
        if not parts:
            _fail(ValueError("give at least one input (--text, --image, --audio, ...)"))
        vecs = _load(model).embed(parts)
    except OmnibindError as e:
        _fail(e)
        return
    names = [p.text if isinstance(p, TextPart) else p.display_name for p in parts]
    if output:
        import numpy as np

        np.save(output, vecs)
        typer.echo(f"wrote {vecs.shape} to {output}")
    if as_json:
        typer.echo(json.dumps({"inputs": names, "vectors": vecs.tolist()}))
        return
    sims = vecs @ vecs.T
    width = max(len(n) for n in names)
    typer.echo(f"{len(names)} vectors of dim {vecs.shape[1]}; cosine similarity:")
    for i, n in enumerate(names):
        typer.echo(f"{n:<{width}}  " + " ".join(f"{s:+.3f}" for s in sims[i]))


def info(
    model: str | None = ModelOpt, backend: str | None = BackendOpt, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Show the config, encoders, parameter counts, the LLM's weights file and cache paths."""
    from omnibind.errors import OmnibindError

    try:
        data = _load(model, backend).info()
    except OmnibindError as e:
        _fail(e)
        return
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    typer.echo(f"model:      {data['name']} ({data['origin']}, {'trained' if data['trained'] else 'UNTRAINED heads'})")
    llm = data["llm"]
    typer.echo(
        f"llm:        {llm['source']} via {llm['backend']} — {llm['parameters'] / 1e6:.1f}M params, "
        f"{llm['layers']} layers, width {llm['hidden_size']}, template {llm['template']}"
    )
    typer.echo(f"weights:    {llm['weights']}")
    typer.echo(f"injection:  {data['injection']}; bind space dim {data['bind_dim']}")
    for k, v in data["projectors"].items():
        typer.echo(f"projector:  {k}: {v['name']} → {v['num_tokens']} soft tokens")
    for m, e in data["encoders"].items():
        typer.echo(
            f"encoder:    {m:<8} {e['name']:<20} {e['parameters'] / 1e6:6.2f}M params  dim {e['output_dim']}"
            f"{'  (trainable)' if e['trainable'] else ''}"
        )
    typer.echo(f"trainable:  {data['trainable_parameters'] / 1e6:.2f}M parameters in checkpoints")
    typer.echo(f"cache dir:  {data['cache_dir']}")


cache_app = typer.Typer(help="The retrieval cache of image features (ImageBind-LLM's cache-enhanced inference).")


@cache_app.command("build")
def cache_build(
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched for jpg/png/webp)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the cache into."),
    model: str | None = ModelOpt,
    batch_size: int = typer.Option(16),
) -> None:
    """Embed images into a FAISS index; enable it with `cache: {enabled: true, path: OUT}` in a config."""
    from omnibind.bind.cache import build_image_cache
    from omnibind.errors import OmnibindError

    files: list[Path] = []
    for p in images:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        else:
            files.append(p)
    if not files:
        _fail(ValueError("no images found"))
    try:
        cache = build_image_cache(_load(model), files, out, batch_size=batch_size)
    except OmnibindError as e:
        _fail(e)
        return
    typer.echo(f"wrote {len(cache)} image features (dim {cache.dim}) to {out}")
