"""Several CPU processes (gloo) train what one process trains: the bind stage's global negatives (the
InfoNCE logits span every process's rows) and FSDP2 (sharded LLM, gathered checkpoints, resume
across a change of process count). TINY random configs; every test here starts processes, so all
are marked slow (about 50 s together on 2 idle cores). The DDP instruct test is
tests/unit/test_train.py::test_two_gloo_processes_match_one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.train_data import run_cfg as _run
from tests.train_data import stage_cfg as _cfg

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _launch(accelerate_config: str, args: list[str]) -> subprocess.CompletedProcess:
    """``accelerate launch --config_file configs/accelerate/<file> ARGS`` from the repository root."""
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cfg = ROOT / "configs" / "accelerate" / accelerate_config
    cmd = [str(accelerate), "launch", "--config_file", str(cfg), "--main_process_port", "0", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from omnibind.checkpoint import read_checkpoint

    return read_checkpoint(folder)[1]  # verified against its manifest


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=2e-3, atol=2e-4, msg=k)
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _history(out: Path) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["history"]


# --------------------------------------------------------------------------- global negatives
def _contrastive_problem() -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Parameter, torch.Tensor, torch.Tensor]:
    """Two linear heads, a temperature and 7 pairs (an odd count: the processes' shares differ)."""
    g = torch.Generator().manual_seed(0)
    head_a, head_b = torch.nn.Linear(6, 4), torch.nn.Linear(5, 4)
    with torch.no_grad():
        for p in [*head_a.parameters(), *head_b.parameters()]:
            p.copy_(torch.randn(p.shape, generator=g))
    scale = torch.nn.Parameter(torch.tensor(2.0))
    return head_a, head_b, scale, torch.randn(7, 6, generator=g), torch.randn(7, 5, generator=g)


KEYS_A = [f"a{i}" for i in range(7)]
KEYS_B = ["c0", "c1", "c2", "c0", "c3", "c1", "c4"]  # repeated captions: positives of each other


def _loss_and_grads(rows: list[int], gather: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from omnibind.train.losses import contrastive_loss

    head_a, head_b, scale, xa, xb = _contrastive_problem()
    za = torch.nn.functional.normalize(head_a(xa[rows]), dim=-1)
    zb = torch.nn.functional.normalize(head_b(xb[rows]), dim=-1)
    loss = contrastive_loss(za, zb, [KEYS_A[i] for i in rows], [KEYS_B[i] for i in rows], scale, gather=gather)
    loss.backward()
    named = {
        **{f"a.{n}": p for n, p in head_a.named_parameters()},
        **{f"b.{n}": p for n, p in head_b.named_parameters()},
    }
    return loss.detach(), {**{n: p.grad for n, p in named.items()}, "scale": scale.grad}


def _contrastive_worker(rank: int, world: int, init: str, out: str) -> None:
    """One of ``world`` processes: its share of the 7 pairs, the loss, DDP's averaging of gradients."""
    import torch.distributed as dist
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    rows = list(range(7))[rank::world]
    result = {}
    for gather in (True, False):
        loss, grads = _loss_and_grads(rows, gather)
        for g in grads.values():
            dist.all_reduce(g)
            g /= world
        result |= {f"{gather}.loss": loss.reshape(1), **{f"{gather}.{n}": g for n, g in grads.items()}}
    if rank == 0:
        save_file({k: v.contiguous() for k, v in result.items()}, out)
    dist.destroy_process_group()


def test_global_negatives_two_processes_equal_one_with_the_whole_batch(tmp_path):
    """Two gloo processes with 4 and 3 pairs give the loss and (DDP-averaged) gradients of one process
    with all 7; without the gather (each process alone) they do not."""
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    out = tmp_path / "ranks.safetensors"
    mp.spawn(_contrastive_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = load_file(str(out))
    want_loss, want = _loss_and_grads(list(range(7)), gather=True)  # one process: no gather happens
    torch.testing.assert_close(got["True.loss"][0], want_loss, rtol=1e-5, atol=1e-6)
    for n, g in want.items():
        torch.testing.assert_close(got[f"True.{n}"], g, rtol=1e-5, atol=1e-6, msg=n)
    assert abs(float(got["False.loss"][0]) - float(want_loss)) > 1e-3  # local negatives only: another loss


def test_bind_stage_two_processes_match_one_with_global_negatives(model_file, dataset, tmp_path):
    """The bind stage under DDP (configs/accelerate/ddp-cpu-2.yaml, 2 processes with 4 pairs each)
    trains the same heads, temperature and IMU encoder as one process with the batch of 8."""
    bind = {"pairs": [["image", "imu"], ["imu", "text"]]}
    recipe = {"train": ["bind_heads", "logit_scale", "encoders"]}
    opt = {"lr": 3e-2, "batch_size": 8, "max_steps": 6, "eval_every": 3, "save_every": 0}
    one = _run(_cfg(model_file, dataset, tmp_path / "one", stage="bind", bind=bind, recipe=recipe, optim=opt))
    cfg = _cfg(model_file, dataset, tmp_path / "two", stage="bind", bind=bind, recipe=recipe, optim=opt)
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(cfg))
    proc = _launch("ddp-cpu-2.yaml", ["-m", "omnibind.train.cli", str(tmp_path / "two.yaml"), "--no-progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _weights(one.last / "model"), _weights(tmp_path / "two" / "last" / "model")
    print("bind, 2 processes: largest weight difference", _assert_same_weights(a, b))
    assert "bind.logit_scale" in a and float((a["bind.logit_scale"] - 0).abs()) > 0
    ref, got = one.history, _history(tmp_path / "two")
    assert [h["loss"] for h in got] == pytest.approx([h["loss"] for h in ref], rel=2e-3)
    assert [h["val_loss"] for h in got if "val_loss" in h] == pytest.approx(
        [h["val_loss"] for h in ref if "val_loss" in h], rel=2e-3
    )


# --------------------------------------------------------------------------- FSDP
FSDP_RECIPE = {
    # LoRA inside the sharded decoder layers, norms both inside them and in the root unit (the final
    # norm), the projector replicated
    "train": ["projectors", "lora", "bias_norm"],
    "lora": {"r": 2, "alpha": 4, "dropout": 0.0},
    "train_bias_norm": True,
}
FSDP_OPTIM = {"max_steps": 6, "eval_every": 3, "save_every": 2, "batch_size": 4, "grad_accum": 2}


def test_fsdp_two_processes_match_one_and_resume_across_process_counts(model_file, dataset, tmp_path):
    """FSDP2 over 2 gloo processes (configs/accelerate/fsdp.yaml) against one plain process, instruct
    stage, 6 steps, validation at 3 and 6, a checkpoint every 2 steps:

    - killed after step 4 under FSDP, resumed in ONE process: the same weights and losses;
    - killed after step 4 in one process, resumed under FSDP on TWO: the same again;
    - the FSDP checkpoints are the single-process format (verified manifest, the same tensor names).
    """
    from omnibind.train.loop import KilledForTestError

    def cfg(name: str) -> dict:
        return _cfg(model_file, dataset, tmp_path / name, stage="instruct", recipe=FSDP_RECIPE, optim=FSDP_OPTIM)

    ref = _run(cfg("ref"))
    want = _weights(ref.last / "model")
    assert any("lora_B" in k for k in want) and any("norm" in k for k in want)

    # 2 → 1: killed under FSDP after the step-4 checkpoint, resumed by a single process
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(cfg("a")))
    proc = _launch("fsdp.yaml", ["-m", "tests.train_driver", str(tmp_path / "a.yaml"), "--stop-after", "4"])
    assert proc.returncode != 0 and "killed: stopped after step 4" in proc.stderr, proc.stderr[-3000:]
    state = json.loads((tmp_path / "a" / "last" / "trainer_state.json").read_text())
    assert state["step"] == 4 and [h.get("val_loss") is not None for h in state["history"]] == [0, 0, 1, 0]
    assert set(_weights(tmp_path / "a" / "last" / "model")) == set(want)
    assert (tmp_path / "a" / "best" / "weights.safetensors").is_file()  # written under FSDP at step 3
    resumed = _run(cfg("a"))
    print("FSDP 2 -> 1: largest weight difference", _assert_same_weights(want, _weights(resumed.last / "model")))
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in ref.history], rel=2e-3)

    # 1 → 2: killed in a single process, resumed under FSDP on two
    with pytest.raises(KilledForTestError):
        _run(cfg("b"), stop_after=4)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg("b")))
    proc = _launch("fsdp.yaml", ["-m", "omnibind.train.cli", str(tmp_path / "b.yaml"), "--no-progress"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stdout and "at step 4 on 2 processes" in proc.stdout
    assert "FSDP2: 2 LlamaDecoderLayer units + the root over 2 processes" in proc.stdout
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["metrics"]["strategy"] == "fsdp" and metrics["metrics"]["processes"] == 2
    print(
        "FSDP 1 -> 2: largest weight difference",
        _assert_same_weights(want, _weights(tmp_path / "b" / "last" / "model")),
    )
    ref_rows, got = ref.history, metrics["history"]
    assert [h["loss"] for h in got] == pytest.approx([h["loss"] for h in ref_rows], rel=2e-3)
    assert [h["val_loss"] for h in got if "val_loss" in h] == pytest.approx(
        [h["val_loss"] for h in ref_rows if "val_loss" in h], rel=2e-3
    )
