"""``omnibind export``: write a trained model in another engine's format (``gguf`` for llama.cpp).

Only typer and the standard library at import time, so ``omnibind --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

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
    from omnibind.errors import OmnibindError
    from omnibind.llm.export_gguf import export_gguf

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
