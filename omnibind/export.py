"""Export a trained omnibind model for llama.cpp (``omnibind export gguf``): the LLM as GGUF + the omnibind side.

The output folder is a normal omnibind checkpoint whose config says ``llm.backend = "llamacpp"``
and ``llm.source = <folder>/model.gguf``, so ``omnibind.load(folder)`` runs it on llama.cpp:

    OUT/model.gguf           the language model (Llama architecture), f32 | f16 | q8_0
    OUT/config.json          the composite config, LLM switched to the GGUF
    OUT/weights.safetensors  bind heads, projectors, trainable encoders (no LLM tensors)
    OUT/manifest.json        hashes, the GGUF's fingerprint, encoder fingerprints, export details

The GGUF writing itself is ``omnibind.llm.gguf_io``; this module sits above ``omnibind.api``
(it loads the model to export). Only typer and the standard library load at import time, so
``omnibind --help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from omnibind.errors import BackendUnsupportedError, ConfigError, OmnibindError

GGUF_FILE = "model.gguf"


@dataclass
class ExportResult:
    """Where things went and what was written."""

    folder: Path
    gguf: Path
    outtype: str
    tensors: int
    gguf_bytes: int


def export_gguf(
    model: str | Path | None,
    out_dir: str | Path,
    *,
    outtype: str = "f16",
    tokenizer_pre: str = "auto",
    overwrite: bool = False,
) -> ExportResult:
    """Export ``model`` (anything ``omnibind.load`` accepts; None = embedded default) to ``out_dir``.

    The folder is built in a temporary sibling and swapped into place (``atomic_dir``), so a failed
    export leaves no half-written checkpoint and an overwritten one stays until the new one is in.
    """
    from omnibind.api import load
    from omnibind.atomic import atomic_dir
    from omnibind.checkpoint import llm_fingerprint, write_checkpoint
    from omnibind.llm.gguf_io import OUTTYPES, write_llama_gguf
    from omnibind.llm.sources import tokenizer_source

    dest = Path(out_dir).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise ConfigError(f"{dest}: output folder exists and is not empty (pass overwrite=True / --overwrite)")
    if outtype not in OUTTYPES:
        raise ConfigError(f"export: outtype {outtype!r}; choose one of {OUTTYPES}")
    core = load(model, backend="transformers").core
    if core.config.injection.kind == "gated":
        raise BackendUnsupportedError(
            "export: this model uses the gated every-layer injection (ImageBind-LLM), which llama.cpp cannot run"
        )
    # llm.lora_media_only: merging would change text-only answers too, so such a model keeps its
    # adapter unmerged (llama.cpp applies it per sequence; see omnibind.loader.build_with_adapter)
    keep_adapter = core.config.llm.lora is not None and bool(getattr(core.config.llm, "lora_media_only", False))
    full_state = core.trainable_state_dict()
    hf = _base_hf_model(core) if keep_adapter else _merged_hf_model(core)
    base_gguf, tok_dir, pre = tokenizer_source(core.config.llm.source, tokenizer_pre)
    with atomic_dir(dest) as tmp:
        n = write_llama_gguf(
            hf,
            tmp / GGUF_FILE,
            outtype=outtype,
            tokenizer_dir=tok_dir,
            base_gguf=base_gguf,
            tokenizer_pre=pre,
            name=core.config.name,
        )
        cfg = _exported_config(core.config, dest / GGUF_FILE, keep_adapter=keep_adapter)
        state = {k: v for k, v in full_state.items() if keep_adapter or not k.startswith("llm.")}
        details = {
            "from": str(model) if model is not None else "embedded default",
            "format": "gguf",
            "outtype": outtype,
            "lora_merged": core.config.llm.lora is not None and not keep_adapter,
            "lora_adapter_kept": keep_adapter,
            "tokenizer": "copied from base GGUF" if base_gguf is not None else f"tokenizer.json (pre={pre})",
        }
        write_checkpoint(
            tmp,
            cfg,
            state,
            core.encoders,
            base_fingerprint=llm_fingerprint(str(tmp / GGUF_FILE)),
            extra={"export": details},
        )
    gguf_path = dest / GGUF_FILE
    return ExportResult(dest, gguf_path, outtype, n, gguf_path.stat().st_size)


def _merged_hf_model(core: Any) -> Any:
    """The backend's HF model with LoRA adapters merged into the base weights."""
    model = core.llm.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
        core.llm.model = model
    return model


def _base_hf_model(core: Any) -> Any:
    """The backend's HF model with its LoRA adapters removed, unmerged (they are exported apart)."""
    model = core.llm.model
    if hasattr(model, "unload"):
        model = model.unload()
        core.llm.model = model
    return model


def _exported_config(config: Any, gguf_path: Path, *, keep_adapter: bool = False) -> Any:
    """The same model with its LLM switched to the GGUF on llama.cpp (LoRA merged unless kept as an adapter)."""
    from omnibind.config import ModelConfig

    cfg = ModelConfig.from_dict(config.to_dict())
    cfg.llm.backend = "llamacpp"
    cfg.llm.source = str(gguf_path)
    if not keep_adapter:
        cfg.llm.lora = None
    cfg.llm.train_bias_norm = False
    return cfg


# --- ``omnibind export`` ---------------------------------------------------------------------------
app = typer.Typer(help="Export a trained model for another inference engine.", no_args_is_help=True)


@app.command("gguf")
def gguf_command(
    model_dir: str = typer.Argument(
        ..., help="Checkpoint folder, config file or preset to export; 'default' = the embedded default."
    ),
    out_dir: Path = typer.Argument(..., help="Output folder (a checkpoint loadable with backend llamacpp)."),
    outtype: str = typer.Option("f16", "--outtype", help="GGUF weight type: f32 | f16 | q8_0."),
    tokenizer_pre: str = typer.Option(
        "auto", "--tokenizer-pre", help="llama.cpp pre-tokenizer name; auto = copy from the base GGUF or detect."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
) -> None:
    """Write the LLM (LoRA merged) as GGUF plus the omnibind side (config, weights, manifest).

    Then: ``omnibind.load(OUT_DIR)`` runs on llama.cpp (``llm.backend = "llamacpp"``). A LoRA with
    ``llm.lora_media_only`` stays a separate adapter (merging would change text-only answers).
    """
    source = None if model_dir == "default" else model_dir
    try:
        result = export_gguf(source, out_dir, outtype=outtype, tokenizer_pre=tokenizer_pre, overwrite=overwrite)
    except OmnibindError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"wrote {result.gguf} ({result.tensors} tensors, {result.outtype}, {result.gguf_bytes / 1e6:.1f} MB) "
        f"and the omnibind side in {result.folder}"
    )
