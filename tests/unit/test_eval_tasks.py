"""Task registry, suites, sample selection and the held-out datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnibind.errors import ConfigError, RegistryError
from omnibind.eval import datasets as D
from omnibind.eval.tasks import TaskRegistry, parse_task, registry, suite_tasks, suites

MINIMAL = "task: {name}\ndataset: {{builder: fashion_mnist}}\nmethod: rank\nmetric: classification\n"


def test_bundled_tasks_load_and_suites_resolve() -> None:
    reg = registry()
    names = reg.names()
    for family in ("fmnist_bind", "fmnist_rank", "fmnist_generate", "mme_easyvqa", "pope_adversarial", "discrn"):
        assert family in names
    quick = suite_tasks("quick")
    assert set(quick) <= set(names) and len(quick) >= 15
    results = suite_tasks("results")
    assert set(results) == {n for n in names if "results" in reg.get(n).tags} and len(results) == 20
    official = suite_tasks("official")
    assert set(official) == {n for n in names if "official" in reg.get(n).tags} and len(official) == 4
    # the results tasks need built data, the official ones the user's copies (--data-dir)
    assert set(suite_tasks("full")) == set(names) - set(results) - set(official)
    assert {"quick", "full", "results"} <= set(suites())
    assert suites()["results"]["report"] == "omnibind.eval.results:tables"
    with pytest.raises(RegistryError):
        suite_tasks("nope")


def test_registry_refuses_duplicate_task_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL.format(name="dup"))
    (tmp_path / "b.yaml").write_text(MINIMAL.format(name="dup"))
    reg = TaskRegistry("eval task")
    with pytest.raises(RegistryError, match="already registered"):
        reg.add_folder(tmp_path)
    # an extra folder may not shadow a bundled task either
    (tmp_path / "b.yaml").write_text(MINIMAL.format(name="fmnist_rank"))
    (tmp_path / "a.yaml").unlink()
    with pytest.raises(RegistryError):
        registry([tmp_path])


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": "red"}, "unknown keys"),
        ({"method": "vote"}, "method must be"),
        ({"baselines": ["oracle"]}, "unknown baselines"),
        ({"method": "bind"}, "templates"),
        ({"method": "generate"}, "extract"),
        ({"metric": "no_such_hook"}, "cannot resolve hook"),
        ({"dataset": 3}, "dataset"),
    ],
)
def test_parse_task_rejects_bad_files(patch: dict, message: str) -> None:
    base = {"task": "t", "dataset": {"builder": "fashion_mnist"}, "method": "rank", "metric": "classification"}
    with pytest.raises(ConfigError, match=message):
        parse_task({**base, **patch}, "t.yaml")


def test_parse_task_hook_by_dotted_path() -> None:
    t = parse_task(
        {
            "task": "t",
            "dataset": "fashion_mnist",
            "method": "generate",
            "metric": "omnibind.eval.tasks.hooks:choice",
            "extract": "omnibind.eval.tasks.hooks:position",
        }
    )
    assert t.hook(t.extract)("the second", D.Sample("s", "i", "x", [], "second", meta={}), t) == "second"


def _samples(n_per: dict[str, int], group_size: int = 1) -> list[D.Sample]:
    out = []
    for cls, n in n_per.items():
        for i in range(n):
            out.append(
                D.Sample(f"{cls}{i}", f"{cls}{i}", "x", [], cls, list(n_per), meta={"group": f"{cls}{i // group_size}"})
            )
    return out


def test_select_is_stratified_deterministic_and_keeps_groups() -> None:
    s = _samples({"a": 50, "b": 5, "c": 5})
    pick = D.select(s, 9, seed=1)
    assert [x.target for x in pick].count("b") == 3 and len(pick) == 9
    assert [x.id for x in pick] == [x.id for x in D.select(s, 9, seed=1)]
    assert [x.id for x in pick] != [x.id for x in D.select(s, 9, seed=2)]
    grouped = D.select(_samples({"a": 10, "b": 10}, group_size=2), 5, seed=0)
    groups = {x.group for x in grouped}
    assert all(sum(x.group == g for x in grouped) == 2 for g in groups)
    assert D.select(s, None) == s


def test_stamp_names() -> None:
    assert D.stamp_name("A baby sheep (a lamb).") == "baby sheep"
    assert D.stamp_name("“School Crossing”.") == "school crossing"
    assert D.stamp_name("Hard candy—yum!") == "hard candy"
    assert D.stamp_name("An apple. It is red.") == "apple"


needs_tuxpaint = pytest.mark.skipif(not D.STAMPS_DIR.is_dir(), reason="tuxpaint-stamps-default not installed")


@needs_tuxpaint
def test_split_files_match_the_rule() -> None:
    """splits/*.json (what training excludes) must equal the rule's current output."""
    for source, body in D.held_out_lists().items():
        on_disk = json.loads((D.SPLITS_DIR / f"{source}.json").read_text())
        assert on_disk["test"] == body["test"], (
            f"regenerate with python -m omnibind.eval.datasets --write-splits ({source})"
        )


@needs_tuxpaint
def test_tuxpaint_sets_use_only_held_out_items() -> None:
    from omnibind.data.splits import split_of

    for builder in ("tuxpaint_categories", "tuxpaint_captions"):
        for s in D.build(builder):
            assert split_of("tuxpaint", s.item) == "test"
    sounds = D.build("tuxpaint_sounds")
    assert sounds and all(split_of("tuxpaint-sounds", s.item) == "test" for s in sounds)
    assert all(s.target in s.options for s in sounds)


@needs_tuxpaint
def test_pope_settings_share_images_and_balance_answers() -> None:
    sets = {k: D.build("pope", setting=k, images=6) for k in D.POPE_SETTINGS}
    for samples in sets.values():
        assert sum(s.target == "yes" for s in samples) == sum(s.target == "no" for s in samples) == 18
        for s in samples:  # a "no" object is never in the picture, a "yes" one always is
            assert (s.vars["object"] in s.meta["objects"]) == (s.target == "yes")
    yes = [[s.id for s in v if s.target == "yes"] for v in sets.values()]
    assert yes[0] == yes[1] == yes[2]
    # popular negatives are the set's most frequent objects: fewer distinct ones than random
    distinct = {k: len({s.vars["object"] for s in v if s.target == "no"}) for k, v in sets.items()}
    assert distinct["popular"] < distinct["random"]


@needs_tuxpaint
def test_discrn_positions_are_balanced() -> None:
    samples = D.build("discrn", per_pair=10)
    assert len(samples) == 30
    assert sum(s.target == "first" for s in samples) == 15
    for s in samples:
        assert len(s.media) == 2 and s.media[0].modality != s.media[1].modality


def test_fashion_mnist_test_split_reader(tmp_path: Path) -> None:
    import gzip
    import struct

    import numpy as np

    imgs = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 28, 28) + imgs.tobytes())
    )
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([9, 0]))
    )
    out = D.fashion_mnist(str(tmp_path))
    assert [s.target for s in out] == ["ankle boot", "T-shirt"]
    assert np.array_equal(out[1].media[0].source, imgs[1])
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 5)))
    from omnibind.errors import InputError

    with pytest.raises(InputError, match="truncated"):
        D.fashion_mnist(str(tmp_path))
