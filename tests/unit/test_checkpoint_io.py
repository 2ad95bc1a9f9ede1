"""The one checkpoint reader/writer, LLM source resolution, the shared decode loop and KV-sequence
bookkeeping: each on small fakes (no LLM runs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from omnibind.checkpoint import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    llm_fingerprint,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from omnibind.config import ModelConfig
from omnibind.errors import CheckpointError, ConfigError
from omnibind.hashing import content_hash
from omnibind.llm.backends.base import GenerationOptions
from omnibind.llm.backends.llamacpp_batch import KVSequences
from omnibind.llm.decoding import decode_steps
from omnibind.llm.sources import identity_path, resolve_gguf, resolve_hf_source


class _Core:
    """What ``save_checkpoint`` / ``load_weights`` need from a model."""

    def __init__(self, config: ModelConfig, state: dict[str, torch.Tensor]):
        self.config = config
        self.encoders: dict = {}
        self.state = state
        self.loaded: dict | None = None

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return self.state

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.loaded = state


@pytest.fixture()
def saved(tmp_path: Path, tiny_config_dict: dict) -> tuple[_Core, Path]:
    core = _Core(ModelConfig.from_dict(tiny_config_dict), {"proj.w": torch.arange(6.0).reshape(2, 3)})
    return core, save_checkpoint(core, tmp_path / "ckpt", extra={"training": {"step": 3}})


def test_save_then_read_checkpoint(saved: tuple[_Core, Path]):
    core, folder = saved
    manifest, state = read_checkpoint(folder)
    assert manifest["created"] and manifest["training"] == {"step": 3}
    assert manifest["weights_sha256"] == content_hash(folder / WEIGHTS_FILE)
    assert manifest["num_tensors"] == 1 and manifest["num_parameters"] == 6
    assert manifest["base_llm"]["fingerprint"] == llm_fingerprint(core.config.llm.source) != "unknown"
    assert torch.equal(state["proj.w"], core.state["proj.w"])
    assert not list(folder.parent.glob(".ckpt.*"))  # no temporary or .old folder left behind
    load_weights(core, folder)
    assert core.loaded is not None and set(core.loaded) == {"proj.w"}


def test_read_checkpoint_names_the_bad_file(saved: tuple[_Core, Path]):
    _, folder = saved
    wpath = folder / WEIGHTS_FILE
    raw = bytearray(wpath.read_bytes())
    raw[-1] ^= 0xFF
    wpath.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=re.escape(f"{wpath}: hash does not match")):
        read_checkpoint(folder)
    wpath.write_bytes(b"not safetensors")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["weights_sha256"] = content_hash(wpath)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=re.escape(f"{wpath}: unreadable safetensors")):
        read_checkpoint(folder)
    wpath.unlink()
    with pytest.raises(CheckpointError, match="missing weights file"):
        read_checkpoint(folder, verify=False)
    (folder / MANIFEST_FILE).write_text("{")
    with pytest.raises(CheckpointError, match=re.escape(f"{folder / MANIFEST_FILE}: corrupt manifest")):
        read_checkpoint(folder)


def test_base_llm_mismatch_is_refused(saved: tuple[_Core, Path], tmp_path: Path):
    core, folder = saved
    other = tmp_path / "other-llm"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"x" * 10)
    core.config.llm.source = str(other)
    with pytest.raises(CheckpointError, match="trained on base LLM"):
        load_weights(core, folder)
    load_weights(core, folder, verify_base=False)  # another file of the same weights: allowed


def test_sources(tmp_path: Path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_gguf(str(gguf)) == gguf and resolve_gguf(str(tmp_path)) == gguf
    (tmp_path / "n.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="several .gguf files"):
        resolve_gguf(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="reads .gguf files"):
        resolve_gguf(str(tmp_path / "config.json"))
    with pytest.raises(ConfigError, match="unknown embedded LLM"):
        resolve_hf_source("embedded:nope")
    assert resolve_hf_source("some/hub-id") == "some/hub-id"
    assert identity_path(str(tmp_path / "missing")) is None
    assert llm_fingerprint(str(tmp_path / "missing")) == "unknown"
    assert llm_fingerprint(str(gguf)) != llm_fingerprint(str(tmp_path))


def test_decode_steps_eos_length_and_seed():
    """One row ends on EOS (not yielded), the other runs to max_new_tokens; advance is never called
    after the last step; the same seed samples the same tokens."""
    vocab, eos = 5, {4}
    scripts = [[1, 4, 2], [2, 3, 1]]  # the greedy choice of each row at each step
    calls: list[list[int]] = []

    def logits_at(step: int) -> torch.Tensor:
        out = torch.zeros(2, vocab)
        for b, s in enumerate(scripts):
            out[b, s[min(step, len(s) - 1)]] = 10.0
        return out

    def advance(history: list[list[int]], live: list[int]) -> torch.Tensor:
        calls.append(list(live))
        return logits_at(len(history[live[0]]))

    opts = GenerationOptions(max_new_tokens=3)
    steps = list(decode_steps(logits_at(0), opts, eos, advance))
    assert steps == [[1, 2], [None, 3], [None, 1]]
    assert calls == [[0, 1], [1]]
    sampled = GenerationOptions(max_new_tokens=4, temperature=1.0, seed=7)
    flat = torch.zeros(1, vocab)
    first = list(decode_steps(flat, sampled, set(), lambda h, live: flat))
    assert first == list(decode_steps(flat, sampled, set(), lambda h, live: flat))
    with pytest.raises(StopIteration):  # every row ends at once: nothing to yield
        next(decode_steps(torch.tensor([[0.0, 0, 0, 0, 9]]), opts, eos, advance))


class _FakeLib:
    def __init__(self) -> None:
        self.removed: list[tuple[int, int]] = []

    def llama_memory_seq_rm(self, _mem: object, seq_id: int, p0: int, _p1: int) -> bool:
        self.removed.append((seq_id, p0))
        return True


def test_kv_sequences_claim_reuses_the_longest_prefix_and_evicts_lru():
    lib = _FakeLib()
    seqs = KVSequences(lib, object(), n_seq=2, n_ctx=10)
    chat = torch.arange(12.0).reshape(6, 2)
    seqs.all[1].held = chat[:4].clone()
    ((got, keep),) = seqs.claim([chat], [False])
    assert got.seq_id == 1 and keep == 4 and got.busy
    got.busy = False
    assert seqs.cached_prefix(chat[:3], adapted=False) == 2  # at least one row is always evaluated
    assert seqs.cached_prefix(chat, adapted=True) == 0  # a cache made without the adapter is not reused
    ((other, keep),) = seqs.claim([torch.ones(3, 2)], [True])
    assert other.seq_id == 0 and keep == 0 and other.adapted
    seqs.all[0].held = torch.ones(7, 2)
    seqs.make_room(4, [seqs.all[0]])  # 4 + 7 held > 10 cells: the idle sequence 1 is forgotten
    assert seqs.lengths() == [7, 0] and (1, -1) in lib.removed
