"""LLM-as-judge: templates as data, verdict parsing, position-swap and agreement metrics, and a real
``omnibind serve`` (tiny config) as the judge over a real eval output folder."""

from __future__ import annotations

import json

import pytest

from omnibind.errors import ConfigError
from omnibind.eval.judge import load_template, template_names
from omnibind.eval.judge_metrics import cohen_kappa, pairwise_metrics, single_metrics
from omnibind.eval.judge_report import judge_folder
from omnibind.eval.models import EndpointModel, EvalModel, LocalModel
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import parse_task


def test_packaged_templates_parse_their_own_choices():
    assert {"single", "verdict", "pairwise"} <= set(template_names())
    single = load_template("single")
    assert single.parse("Good answer. Rating: [[7]]") == 7.0
    assert single.parse("Rating: 4") == 4.0 and single.parse("[[11]]") is None and single.parse("no idea") is None
    assert load_template("verdict").parse("[[Yes]]") == 1.0
    pair = load_template("pairwise")
    assert pair.parse("I think [[B]] is better") == "B" and pair.parse("A") == "A"


def test_bad_template_files_are_named(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("kind: single\nprompt: '{answer}'\npatterns: ['(\\d+)']\nchoices: ['x']\n")
    with pytest.raises(ConfigError, match="do not parse"):
        load_template(p)
    p.write_text("kind: triple\nprompt: x\npatterns: ['(x)']\n")
    with pytest.raises(ConfigError, match="kind must be"):
        load_template(p)
    p.write_text("kind: single\nprompt: x\npatterns: ['x']\n")
    with pytest.raises(ConfigError, match="exactly one group"):
        load_template(p)
    with pytest.raises(ConfigError, match="no such judge template"):
        load_template("nope")


def test_position_swap_metrics():
    # an always-"A" judge: every pair inconsistent, first position always chosen
    m = pairwise_metrics([("A", "A")] * 4, "model", "text_only")
    assert m["consistency"] == 0.0 and m["first_position_rate"] == 1.0 and m["position_bias"] == 1.0
    # a consistent judge preferring the model
    m = pairwise_metrics([("A", "B"), ("A", "B"), ("C", "C"), (None, "A")], "model", "text_only",
                         [(True, False), (False, True), (None, None), (True, True)])  # fmt: skip
    assert m["win_model"] == pytest.approx(2 / 3) and m["tie"] == pytest.approx(1 / 3)
    assert (
        m["consistency"] == 1.0 and m["first_position_rate"] == 0.6 and m["unparsed"] == 0.25
    )  # 3 of 5 decisive verdicts
    assert m["agreement"] == {"n": 2, "rate": 0.5, "note": m["agreement"]["note"]}


def test_single_metrics_agreement_and_kappa():
    m = single_metrics([9, 2, 8, None, 3], 6, [True, False, False, True, False])
    assert m["parsed"] == 4 and m["unparsed"] == 0.2 and m["pass_rate"] == 0.5
    assert m["agreement"]["rate"] == 0.75 and m["agreement"]["n"] == 4
    assert m["agreement"]["cohen_kappa"] == pytest.approx(cohen_kappa([1, 0, 1, 0], [1, 0, 0, 0]))
    assert cohen_kappa([True, True], [True, True]) is None


class _Biased(EvalModel):
    """A scripted judge with a known bias (always the first answer): the measurement must show it."""

    name = "always-first"
    fingerprint = "scripted-always-first"

    def generate(self, conversations, max_new_tokens):
        return ["[[A]]" if "[Answer A]" in c[-1].text else "Rating: [[8]]" for c in conversations]


@pytest.fixture()
def run_folder(tmp_path, tiny_model):
    """A real eval run of a generate task (tiny model + text_only baseline) on real packaged data."""
    from omnibind.eval.report import write_report

    task = parse_task({
        "task": "fmnist_generate", "dataset": {"builder": "fashion_mnist"}, "method": "generate",
        "prompt": "What piece of clothing is this? Answer with one of: {options}.", "extract": "class_name",
        "max_new_tokens": 4, "metric": "classification", "baselines": ["text_only"],
    })  # fmt: skip
    res = Runner(LocalModel(tiny_model), progress=False).run(task, limit=4)
    write_report(tmp_path / "run", [res], {"seed": 0}, plots=False)
    return tmp_path / "run"


def test_scripted_judge_position_bias_is_reported(run_folder):
    body = judge_folder(run_folder, _Biased(), "pairwise")
    m = body["tasks"]["fmnist_generate"]["metrics"]
    assert m["n"] == 4 and m["consistency"] == 0.0 and m["first_position_rate"] == 1.0
    single = judge_folder(run_folder, _Biased(), "single")["tasks"]["fmnist_generate"]["systems"]["model"]
    assert single["mean_score"] == 8.0 and single["agreement"]["n"] == 4
    assert (run_folder / "judge-pairwise.md").is_file()
    lines = (run_folder / "samples" / "fmnist_generate.judge-single.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["model"]["verdict"] == 8.0


def test_omnibind_serve_as_the_judge(run_folder, tiny_model):
    """The judge is a real `omnibind serve` (tiny random model): requests go over the OpenAI wire,
    its replies are read (a random model rarely writes a verdict: counted as unparsed, not fatal)."""
    from omnibind.serve.http import BackgroundServer, create_app
    from omnibind.serve.settings import ServeSettings

    with BackgroundServer(create_app(tiny_model, ServeSettings(max_tokens_limit=64))) as srv:
        judge = EndpointModel(srv.url + "/v1")
        body = judge_folder(run_folder, judge, "pairwise")
    m = body["tasks"]["fmnist_generate"]["metrics"]
    assert m["n"] == 4 and 0.0 <= m["unparsed"] <= 1.0
    recs = [
        json.loads(x)
        for x in (run_folder / "samples" / "fmnist_generate.judge-pairwise.jsonl").read_text().split("\n")
        if x
    ]
    assert len(recs) == 4 and all(isinstance(r["a_first"]["reply"], str) for r in recs)
    assert body["meta"]["judge"]["endpoint"].endswith("/v1")


def test_local_judge_by_rank_always_gives_a_verdict(run_folder, tiny_model):
    body = judge_folder(run_folder, LocalModel(tiny_model), "verdict", method="rank")
    m = body["tasks"]["fmnist_generate"]["systems"]["model"]
    assert m["unparsed"] == 0.0 and m["mean_score"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    with pytest.raises(ConfigError, match="no judged"):
        judge_folder(run_folder, _Biased(), "single", tasks=["nope"])
