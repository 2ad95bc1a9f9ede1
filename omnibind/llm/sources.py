"""What an ``llm.source`` string means: the one place that maps a source to files on disk.

A source is ``embedded:<name>`` (the packaged SmolLM2), a local Hugging Face folder, a ``.gguf``
file, a folder holding one GGUF, or a hub id (local cache only). Each backend asks here for what
it runs (``resolve_hf_source`` for transformers, ``resolve_gguf`` for llama.cpp), checkpoints ask for the
files that identify the base weights (``identity_path``), and the GGUF writers ask where a GGUF's
vocabulary comes from (``tokenizer_source``).
"""

from __future__ import annotations

from pathlib import Path

from omnibind.errors import ConfigError
from omnibind.llm.embedded import (
    EMBEDDED_LLM,
    check_embedded_source,
    embedded_f16_gguf,
    embedded_gguf_path,
    embedded_hf_dir,
)

EMBEDDED_PREFIX = "embedded:"


def is_embedded(source: str) -> bool:
    """Whether ``source`` names a packaged LLM (``embedded:...``)."""
    return source.startswith(EMBEDDED_PREFIX)


def resolve_hf_source(source: str) -> Path | str:
    """What transformers loads: ``embedded:…`` → the cached safetensors copy (both embedded names
    hold the same weights); an existing path → itself; else a hub id (local cache only)."""
    if is_embedded(source):
        check_embedded_source(source)
        return embedded_hf_dir()
    p = Path(source).expanduser()
    if p.exists():
        return p
    return source


def resolve_gguf(source: str) -> Path:
    """What llama.cpp loads: ``embedded:smollm2-135m`` → an f16 GGUF of the packaged model's weights
    (the ones transformers runs; built once); ``embedded:smollm2-135m-q4_1`` → the packaged 4-bit
    GGUF itself; a ``.gguf`` file → itself; a folder with one GGUF → it."""
    if is_embedded(source):
        return embedded_f16_gguf() if check_embedded_source(source) == EMBEDDED_LLM else embedded_gguf_path()
    p = Path(source).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".gguf":
            raise ConfigError(f"{p}: the llamacpp backend reads .gguf files (export one with `omnibind export gguf`)")
        return p
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        what = "no .gguf file" if not found else f"several .gguf files ({', '.join(f.name for f in found)})"
        raise ConfigError(f"{p}: {what}; point llm.source at the GGUF file")
    raise ConfigError(f"{source}: no such GGUF file or folder (the llamacpp backend loads local GGUF files only)")


def identity_path(source: str) -> Path | None:
    """The file or folder whose weight files identify the base LLM (checkpoint fingerprints), or
    None when there is none on disk. Both embedded names are one base: the shipped GGUF; nothing
    is built to answer (fingerprinting must stay cheap)."""
    if is_embedded(source):
        return embedded_gguf_path()
    p = Path(source).expanduser()
    return p if p.exists() else None


def weight_files(path: Path) -> list[Path]:
    """The weight files of an ``identity_path``: the file itself, or a folder's safetensors/GGUF files."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".gguf"))


def tokenizer_source(source: str, pre: str) -> tuple[Path | None, Path | None, str]:
    """Where a GGUF's vocabulary comes from, as ``(base GGUF, tokenizer.json folder, pre-tokenizer)``:
    the base GGUF when there is one (copied verbatim), else the HF folder's ``tokenizer.json`` with
    ``pre`` (``auto``: detected with llama.cpp, see ``gguf_io.guess_tokenizer_pre``)."""
    if is_embedded(source) and pre == "auto":
        return embedded_gguf_path(), None, "auto"
    folder = Path(resolve_hf_source(source))
    if not folder.is_dir():
        raise ConfigError(f"export: LLM source {source!r} is not a local folder with tokenizer.json")
    if pre == "auto":
        from omnibind.llm.gguf_io import guess_tokenizer_pre

        pre = guess_tokenizer_pre(folder)
    return None, folder, pre
