"""``omnibind bench coldstart``: the parts arithmetic, the report, and one real fresh ``omnibind chat``
process on a tiny model writing its phase marks (no figure is asserted: the bench measures, tests
check the wiring)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from omnibind.bench import coldstart as cs
from omnibind.config import LLAMACPP_MISSING, ModelConfig, default_inference_backend

MARKS = {
    "cli": 100.5,
    "imported": 101.0,
    "loaded": 102.0,
    "loaded:encoder_seconds": 0.25,
    "first_token": 103.0,
    "first_token:encoder_seconds": 0.75,
}


def test_parts_split_encoder_building_out_of_load_and_first_token():
    parts = cs.parts_of(MARKS, start=100.0, end=103.5)
    assert parts == pytest.approx({"imports": 1.0, "load": 0.75, "encoders": 0.75, "first_token": 0.5, "total": 3.5})


def test_report_has_every_case_and_the_lazy_to_eager_ratio():
    cases = {}
    for name, total in (("llamacpp text", 2.0), ("llamacpp text (eager)", 8.0)):
        med = {p: 0.1 for p in cs.PARTS} | {"total": total}
        cases[name] = {"median": med, "encoders_built": 1}
    text = cs.format_report({"repeats": 3, "load_average": [1.0, 1.0, 1.0], "cpus": 2, "cases": cases})
    assert "llamacpp text (eager)" in text and "lazy ÷ eager total = 0.25" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_default_cases_pair_each_case_with_its_eager_twin(tmp_path: Path):
    cases = cs.default_cases(eager=True, transformers=True, image=tmp_path / "x.jpg")
    names = [c.name for c in cases]
    assert names[:4] == ["llamacpp text", "llamacpp image", "transformers text", "transformers image"]
    assert [c.eager for c in cases] == [False] * 4 + [True] * 4


def test_a_fresh_chat_process_writes_its_marks(tiny_llm_dir: Path, tmp_path: Path):
    config = {"name": "tiny-text", "encoders": {}, "projectors": {}, "llm": {"source": str(tiny_llm_dir)}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    case = cs.Case("tiny text", "transformers")
    out = cs.run_once(case, question="Hi", max_new_tokens=2, model=str(path), timeout=240)
    assert set(cs.PARTS) <= set(out)
    assert out["total"] >= out["imports"] + out["load"] > 0


def test_default_backend_is_llamacpp_for_the_embedded_llm_with_a_fallback(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.delenv("OMNIBIND_BACKEND", raising=False)
    cfg = ModelConfig.from_dict({"name": "e", "llm": {"backend": "transformers", "source": "embedded:smollm2-135m"}})
    assert default_inference_backend(cfg) == ("llamacpp", None)
    assert default_inference_backend(cfg, "cuda") == ("transformers", None)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what a failed build of the extra leaves: no module
    assert default_inference_backend(cfg) == ("transformers", LLAMACPP_MISSING)
    monkeypatch.setenv("OMNIBIND_BACKEND", "llamacpp")
    assert default_inference_backend(cfg) == ("llamacpp", None)
    monkeypatch.delenv("OMNIBIND_BACKEND")
    gated = ModelConfig.from_dict({"name": "g", "injection": {"kind": "gated"}})
    other = ModelConfig.from_dict({"name": "o", "llm": {"source": "/some/folder"}})
    assert default_inference_backend(gated)[0] == default_inference_backend(other)[0] == "transformers"
