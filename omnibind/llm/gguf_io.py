"""GGUF files: reading what the llama.cpp backend needs and writing what omnibind exports.

Reading: the header walked directly (``read_token_embeddings``: the token table dequantised exactly
as llama.cpp's ``get_rows`` does) and vocabulary-only tokenisation with llama.cpp. Writing, with the
``gguf`` package's ``GGUFWriter``: a transformers Llama model (``write_llama_gguf``), peft LoRA
weights as a llama.cpp adapter (``write_lora_adapter_gguf``), a quantised GGUF re-stored as f16
(``requantize_gguf_as_f16``); ``copy_metadata`` serves both the tokenizer copy and that re-store.
Llama-architecture checkpoints only (SmolLM2, Llama, TinyLlama...): anything else is refused rather than written wrong.

It knows tensors and files, nothing of checkpoints: ``omnibind.export`` builds on it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import ConfigError

log = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "q8_0")
# HF Llama parameter suffix → GGUF tensor name inside block ``blk.{i}``
_BLOCK_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# Token kv copied verbatim from a base GGUF (the embedded model was trained on exactly this vocabulary).
_TOKENIZER_PREFIX = "tokenizer."


# --- reading ---------------------------------------------------------------------------------
def read_token_embeddings(path: Path) -> tuple[np.ndarray, str]:
    """The GGUF's ``token_embd`` table dequantised to float32 (V, H), and the architecture name.

    The header is walked directly (``gguf.GGUFReader`` parses every vocabulary string into numpy
    views, ~5 s for a 49k vocabulary); the tensor is then dequantised by the ``gguf`` package,
    exactly as llama.cpp's ``get_rows`` does."""
    import gguf

    arch, tensors, data_start = _walk_gguf_header(path)
    if "token_embd.weight" not in tensors:
        raise ConfigError(f"{path}: GGUF has no token_embd.weight tensor")
    qtype, dims, offset = tensors["token_embd.weight"]
    qtype = gguf.GGMLQuantizationType(qtype)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    rows, cols = int(np.prod(dims[1:])), int(dims[0])  # GGUF lists the fastest-varying dimension first
    row_bytes = cols // block * type_size
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start + offset, shape=(rows, row_bytes))
    table = gguf.quants.dequantize(np.asarray(raw), qtype)
    return np.require(table.reshape(rows, cols), dtype=np.float32, requirements=["C", "W"]), arch


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type → bytes


def _walk_gguf_header(path: Path) -> tuple[str, dict[str, tuple[int, list[int], int]], int]:
    """(architecture, {tensor: (ggml type, dims, offset in data)}, data section start) of a GGUF v2/v3."""
    with open(path, "rb") as f:
        buf = f.read(min(path.stat().st_size, 64 << 20))  # metadata of any sane GGUF fits well within this
    try:
        if buf[:4] != b"GGUF":
            raise ValueError("not a GGUF file (bad magic)")
        _, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        pos = 24
        arch, alignment = "", 32

        def string(at: int) -> tuple[str, int]:
            (n,) = struct.unpack_from("<Q", buf, at)
            return buf[at + 8 : at + 8 + n].decode("utf-8", errors="replace"), at + 8 + n

        def skip(vtype: int, at: int) -> int:
            if vtype == 8:
                (n,) = struct.unpack_from("<Q", buf, at)
                return at + 8 + n
            if vtype == 9:
                itype, count = struct.unpack_from("<IQ", buf, at)
                at += 12
                if itype in _SCALAR_SIZES:
                    return at + count * _SCALAR_SIZES[itype]
                for _ in range(count):
                    at = skip(itype, at)
                return at
            return at + _SCALAR_SIZES[vtype]

        for _ in range(n_kv):
            key, pos = string(pos)
            (vtype,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            if key == "general.architecture" and vtype == 8:
                arch, pos = string(pos)
            elif key == "general.alignment" and vtype == 4:
                (alignment,) = struct.unpack_from("<I", buf, pos)
                pos += 4
            else:
                pos = skip(vtype, pos)
        tensors = {}
        for _ in range(n_tensors):
            name, pos = string(pos)
            (nd,) = struct.unpack_from("<I", buf, pos)
            dims = list(struct.unpack_from(f"<{nd}Q", buf, pos + 4))
            qtype, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
            pos += 4 + 8 * nd + 12
            tensors[name] = (qtype, dims, offset)
    except (struct.error, KeyError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable GGUF header ({e})") from None
    return arch, tensors, (pos + alignment - 1) // alignment * alignment


def tokenize_vocab_only(path: Path, text: str) -> list[int] | None:
    """Tokenise with llama.cpp from a GGUF's vocabulary alone (None when llama.cpp rejects the file)."""
    from omnibind.llm.backends.llamacpp_batch import llama_lib

    lib = llama_lib()
    params = lib.llama_model_default_params()
    params.vocab_only = True
    model = lib.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        return None
    try:
        vocab = lib.llama_model_get_vocab(model)
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int32 * cap)()
        n = lib.llama_tokenize(vocab, data, len(data), buf, cap, False, True)
        return list(buf[:n]) if n >= 0 else None
    finally:
        lib.llama_model_free(model)


# --- Llama weights → GGUF tensors ------------------------------------------------------------
def _rope_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF stores q/k rows as two halves per head (rotate-half RoPE); llama.cpp's Llama graph rotates
    adjacent pairs. Interleave the halves so both compute the same attention."""
    out_dim, in_dim = w.shape
    head_dim = out_dim // n_head
    return w.reshape(n_head, 2, head_dim // 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)


def llama_tensors(state: dict[str, Any], cfg: Any) -> list[tuple[str, np.ndarray]]:
    """HF Llama ``state_dict`` (tensors) → [(gguf name, float32 array)], strictly (unknown names fail)."""
    n_head = int(cfg.num_attention_heads)
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_head)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    out: list[tuple[str, np.ndarray]] = []
    for name, tensor in state.items():
        arr = tensor.detach().to("cpu").float().numpy()
        if name == "model.embed_tokens.weight":
            out.append(("token_embd.weight", arr))
        elif name == "model.norm.weight":
            out.append(("output_norm.weight", arr))
        elif name == "lm_head.weight":
            if not tied:
                out.append(("output.weight", arr))
        elif name.startswith("model.layers."):
            rest = name[len("model.layers.") :]
            idx, _, suffix = rest.partition(".")
            target = _BLOCK_NAMES.get(suffix)
            if target is None:
                raise ConfigError(f"export: tensor {name!r} has no GGUF Llama equivalent (biases or a non-Llama layer)")
            if suffix == "self_attn.q_proj.weight":
                arr = _rope_permute(arr, n_head)
            elif suffix == "self_attn.k_proj.weight":
                arr = _rope_permute(arr, n_kv)
            out.append((f"blk.{int(idx)}.{target}", arr))
        elif name.endswith("rotary_emb.inv_freq"):
            continue  # derived from rope_theta, not a weight
        else:
            raise ConfigError(f"export: unexpected tensor {name!r} in the LLM state dict")
    return out


def lora_tensors(state: dict[str, Any], *, n_head: int, n_head_kv: int) -> list[tuple[str, np.ndarray]]:
    """peft LoRA weights (``...layers.{i}.self_attn.q_proj.lora_A.default.weight``) → llama.cpp
    adapter tensors ``blk.{i}.attn_q.weight.lora_a`` (r, in) and ``.lora_b`` (out, r).

    q/k outputs are rows of B, so B takes the same RoPE row permutation as the base weights."""
    out: list[tuple[str, np.ndarray]] = []
    for name, tensor in sorted(state.items()):
        if ".lora_A." not in name and ".lora_B." not in name:
            continue
        head, _, tail = name.partition("layers.")
        idx, _, rest = tail.partition(".")
        module, _, ab = rest.partition(".lora_")
        target = _BLOCK_NAMES.get(f"{module}.weight")
        if not head or target is None or not idx.isdigit():
            raise ConfigError(f"export: LoRA tensor {name!r} targets a module llama.cpp adapters cannot map")
        arr = tensor.detach().to("cpu").float().numpy()
        is_b = ab.startswith("B")
        if is_b and module == "self_attn.q_proj":
            arr = _rope_permute(arr, n_head)
        elif is_b and module == "self_attn.k_proj":
            arr = _rope_permute(arr, n_head_kv)
        out.append((f"blk.{int(idx)}.{target}.lora_{'b' if is_b else 'a'}", np.ascontiguousarray(arr)))
    if not out:
        raise ConfigError("export: no LoRA tensors (lora_A/lora_B) in the given weights")
    return out


def write_lora_adapter_gguf(
    state: dict[str, Any], path: Path, *, n_head: int, n_head_kv: int, alpha: float, arch: str = "llama"
) -> int:
    """Write peft LoRA weights as a llama.cpp LoRA adapter GGUF (f32); returns the tensor count.

    llama.cpp scales the adapter by ``alpha / r`` (r read from lora_a), exactly as peft does."""
    import gguf

    tensors = lora_tensors(state, n_head=n_head, n_head_kv=n_head_kv)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(alpha))
    for name, arr in tensors:
        w.add_tensor(name, arr.astype(np.float32), raw_dtype=gguf.GGMLQuantizationType.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return len(tensors)


def _rope_theta(cfg: Any) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    rtype = params.get("rope_type", "default") if isinstance(params, dict) else "default"
    scaling = getattr(cfg, "rope_scaling", None)
    if rtype not in ("default", None) or (
        isinstance(scaling, dict) and scaling.get("rope_type", "default") != "default"
    ):
        raise ConfigError(f"export: RoPE scaling {rtype or scaling!r} is not supported by this exporter")
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    return float(theta if theta is not None else getattr(cfg, "rope_theta", 10000.0))


def _check_llama(cfg: Any) -> None:
    if getattr(cfg, "model_type", "") != "llama":
        raise ConfigError(f"export: only Llama-architecture LLMs are supported, got model_type={cfg.model_type!r}")
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        raise ConfigError("export: Llama variants with attention/MLP biases are not supported")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise ConfigError(f"export: hidden_act {cfg.hidden_act!r} is not Llama's silu")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if head_dim * cfg.num_attention_heads != cfg.hidden_size:
        raise ConfigError("export: head_dim × heads != hidden size is not supported")


# --- tokenizer metadata -------------------------------------------------------------------------
def _copy_tokenizer_kv(writer: Any, base_gguf: Path) -> None:
    """Copy every ``tokenizer.*`` key from a base GGUF (same vocabulary, same pre-tokenizer)."""
    import gguf

    copy_metadata(writer, gguf.GGUFReader(str(base_gguf)), lambda key: key.startswith(_TOKENIZER_PREFIX))


def copy_metadata(writer: Any, reader: Any, keep: Callable[[str], bool]) -> None:
    """Copy the metadata keys of ``reader`` for which ``keep(key)`` holds into ``writer``."""
    import gguf

    for key, field in reader.fields.items():
        if not keep(key):
            continue
        vtype = field.types[0]
        value = field.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_array(key, value)
        else:
            writer.add_key_value(key, value, vtype)


def requantize_gguf_as_f16(src: Path, dest: Path) -> int:
    """Copy a GGUF, storing each quantised tensor as f16 of its dequantised values; returns how many
    tensors were converted. 4- and 8-bit block values (a scale times a small integer, plus an offset)
    round to f16 with a relative error below 2^-11, far below what the 8-bit activation rounding of
    quantised kernels changes."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dest), reader.fields["general.architecture"].contents())
    written_by_writer = ("general.architecture", "general.file_type")
    copy_metadata(writer, reader, lambda key: not key.startswith("GGUF.") and key not in written_by_writer)
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    float_types = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16)
    converted = 0
    for t in reader.tensors:
        if t.tensor_type in float_types:
            writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
            continue
        shape = tuple(int(x) for x in reversed(t.shape))  # GGUF lists dimensions innermost first
        values = gguf.dequantize(t.data, t.tensor_type).reshape(shape)
        writer.add_tensor(
            t.name, np.ascontiguousarray(values, dtype=np.float16), raw_dtype=gguf.GGMLQuantizationType.F16
        )
        converted += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return converted


def _hf_tokenizer_kv(writer: Any, hf_dir: Path, vocab_size: int, pre: str) -> None:
    """Byte-level BPE tokenizer (``tokenizer.json``) → GGUF ``gpt2`` vocabulary metadata."""
    import gguf
    from transformers import AutoTokenizer

    tj_path = hf_dir / "tokenizer.json"
    try:
        tj = json.loads(tj_path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"export: {tj_path}: cannot read the tokenizer ({e})") from e
    model = tj.get("model", {})
    if model.get("type") != "BPE":
        raise ConfigError(f"export: {tj_path}: only byte-level BPE tokenizers are supported, got {model.get('type')!r}")
    tok = AutoTokenizer.from_pretrained(str(hf_dir), local_files_only=True)
    by_id = {i: t for t, i in model["vocab"].items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
        else:  # the embedding matrix is larger than the vocabulary: padding rows
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([int(t) for t in types])
    writer.add_token_merges(merges)
    for attr, add in (
        ("bos_token_id", writer.add_bos_token_id),
        ("eos_token_id", writer.add_eos_token_id),
        ("unk_token_id", writer.add_unk_token_id),
        ("pad_token_id", writer.add_pad_token_id),
    ):
        val = getattr(tok, attr, None)
        if val is not None:
            add(int(val))
    writer.add_add_bos_token(bool(getattr(tok, "add_bos_token", False)))
    writer.add_add_space_prefix(False)
    template = getattr(tok, "chat_template", None)
    if isinstance(template, str) and template:
        writer.add_chat_template(template)


# --- the GGUF file ------------------------------------------------------------------------------
def write_llama_gguf(
    hf_model: Any,
    path: Path,
    *,
    outtype: str = "f16",
    tokenizer_dir: Path | None = None,
    base_gguf: Path | None = None,
    tokenizer_pre: str = "default",
    name: str = "omnibind-llm",
) -> int:
    """Write a transformers Llama model as GGUF; returns the number of tensors.

    Tokenizer metadata comes from ``base_gguf`` when given (verbatim), else from ``tokenizer_dir``.
    ``outtype``: f32, f16 (norms stay f32) or q8_0 (matrices whose rows split into 32-blocks).
    """
    import gguf

    if outtype not in OUTTYPES:
        raise ConfigError(f"export: outtype {outtype!r}; choose one of {OUTTYPES}")
    cfg = hf_model.config
    _check_llama(cfg)
    tensors = llama_tensors(hf_model.state_dict(), cfg)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    vocab = int(cfg.vocab_size)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(int(cfg.max_position_embeddings))
    w.add_embedding_length(int(cfg.hidden_size))
    w.add_block_count(int(cfg.num_hidden_layers))
    w.add_feed_forward_length(int(cfg.intermediate_size))
    w.add_head_count(int(cfg.num_attention_heads))
    w.add_head_count_kv(int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads))
    w.add_rope_freq_base(_rope_theta(cfg))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_rope_dimension_count(int(head_dim))
    w.add_vocab_size(vocab)
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[outtype]
    w.add_file_type(int(file_type))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if base_gguf is not None:
        _copy_tokenizer_kv(w, base_gguf)
    elif tokenizer_dir is not None:
        _hf_tokenizer_kv(w, tokenizer_dir, vocab, tokenizer_pre)
    else:
        raise ConfigError("export: no tokenizer source (a base GGUF or a tokenizer.json folder)")
    for tname, arr in tensors:
        data, qtype = _encode(arr, outtype)
        w.add_tensor(tname, data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return len(tensors)


def _encode(arr: np.ndarray, outtype: str) -> tuple[np.ndarray, Any]:
    """One tensor in the requested type; 1-D tensors (norms) always f32, as llama.cpp expects."""
    import gguf

    if arr.ndim == 1 or outtype == "f32":
        return np.ascontiguousarray(arr, dtype=np.float32), gguf.GGMLQuantizationType.F32
    if outtype == "f16":
        return np.ascontiguousarray(arr, dtype=np.float16), gguf.GGMLQuantizationType.F16
    qtype = gguf.GGMLQuantizationType.Q8_0
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if arr.shape[-1] % block:
        return np.ascontiguousarray(arr, dtype=np.float16), gguf.GGMLQuantizationType.F16
    return gguf.quants.quantize(np.ascontiguousarray(arr, dtype=np.float32), qtype), qtype


# --- pre-tokenizer detection -------------------------------------------------------------------
# llama.cpp's pre-tokenizer names worth trying for byte-level BPE vocabularies, most common first.
PRE_CANDIDATES = ("default", "gpt-2", "smollm", "llama-bpe", "qwen2", "starcoder", "falcon", "refact")
_PROBE = (
    "Hello world! It's 2024: 3.14159 apples, 1,000,000 pears.\n\n  Indented\tcode() {x += 42;}\n"
    "<|im_start|>user\nWhat's this?<|im_end|>\nÉtude café naïve — ünïcödé 東京 😀  end"
)


def guess_tokenizer_pre(hf_dir: Path) -> str:
    """Pick the llama.cpp pre-tokenizer whose splits reproduce the HF tokenizer on a probe text.

    Needs llama-cpp-python (it tries each candidate on a vocabulary-only GGUF); without it,
    ``default`` is used and a warning says so.
    """
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        log.warning("llama-cpp-python is not installed: using the 'default' pre-tokenizer without checking it")
        return "default"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir), local_files_only=True)
    want = list(tok(_PROBE, add_special_tokens=False)["input_ids"])
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRE_CANDIDATES:
            if _tokenize_with_pre(hf_dir, Path(tmp) / f"{pre}.gguf", pre, _PROBE) == want:
                return pre
    raise ConfigError(
        f"export: no llama.cpp pre-tokenizer among {PRE_CANDIDATES} reproduces {hf_dir}'s tokenizer; "
        "pass tokenizer_pre explicitly"
    )


def _tokenize_with_pre(hf_dir: Path, path: Path, pre: str, text: str) -> list[int] | None:
    """Tokenise ``text`` with llama.cpp using a vocabulary-only GGUF built for ``pre``."""
    import gguf

    cfg = json.loads((hf_dir / "config.json").read_text())
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_context_length(16)
    w.add_embedding_length(32)
    w.add_feed_forward_length(32)
    w.add_head_count(1)
    _hf_tokenizer_kv(w, hf_dir, int(cfg["vocab_size"]), pre)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tokenize_vocab_only(path, text)
