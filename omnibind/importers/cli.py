"""``omnibind import ...``: the field's released checkpoints as omnibind models (docs/IMPORT.md)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Import a released checkpoint (LLaVA, PandaGPT, X-InstructBLIP) as an omnibind model.", no_args_is_help=True
)


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


@app.command("llava")
def llava_command(
    path: Path = typer.Argument(..., help="A Hugging Face LlavaForConditionalGeneration folder (llava-hf layout)."),
    out: Path = typer.Argument(..., help="Output folder: an omnibind checkpoint with vision/ and llm/ inside."),
    dtype: str | None = typer.Option(None, "--dtype", help="float32 | float16 | bfloat16; default: the checkpoint's."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
) -> None:
    """Split a LLaVA folder into CLIP tower, per-patch MLP projector and LLM; then omnibind.load(OUT)."""
    from omnibind.errors import OmnibindError
    from omnibind.importers.llava import import_llava

    try:
        dest = import_llava(path, out, dtype=dtype, overwrite=overwrite)
    except OmnibindError as e:
        _fail(e)
    typer.echo(f"imported {path} into {dest}: omnibind chat --model {dest}")


@app.command("pandagpt")
def pandagpt_command(
    delta: Path = typer.Argument(..., help="PandaGPT's delta checkpoint (pytorch_model.pt or .safetensors)."),
    vicuna: Path = typer.Argument(..., help="The Vicuna v0 folder the delta was trained on (HF layout)."),
    imagebind: Path = typer.Argument(..., help="ImageBind-Huge checkpoint (imagebind_huge.pth or .safetensors)."),
    out: Path = typer.Argument(..., help="Output folder: an omnibind checkpoint (refers to VICUNA and IMAGEBIND)."),
    lora_alpha: int = typer.Option(32, "--lora-alpha", help="LoRA alpha (not stored in the delta; PandaGPT's is 32)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | float16 | bfloat16 for Vicuna."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
) -> None:
    """llama_proj + the LoRA on Vicuna as an omnibind model over ImageBind; then omnibind.load(OUT)."""
    from omnibind.errors import OmnibindError
    from omnibind.importers.pandagpt import import_pandagpt

    try:
        dest = import_pandagpt(delta, vicuna, imagebind, out, lora_alpha=lora_alpha, dtype=dtype, overwrite=overwrite)
    except OmnibindError as e:
        _fail(e)
    typer.echo(f"imported {delta} into {dest}: omnibind chat --model {dest}")
