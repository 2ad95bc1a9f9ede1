"""The eval harness on the REAL embedded default: a few samples of each method, the real caption experts."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibind.eval import report
from omnibind.eval.cache import OutputCache
from omnibind.eval.models import LocalModel
from omnibind.eval.prompts import Describer
from omnibind.eval.runner import Runner
from omnibind.eval.tasks import registry


@pytest.fixture(scope="module")
def ev():
    import omnibind

    return LocalModel(omnibind.load())


def test_each_method_and_report(ev, tmp_path: Path) -> None:
    reg = registry()
    runner = Runner(ev, cache=OutputCache(tmp_path / "c.sqlite"), batch_size=4, progress=False)
    results = [
        runner.run(reg.get(name), limit) for name, limit in (("imu_bind", 8), ("imu_rank", 2), ("mme_easyvqa", 2))
    ]
    for res in results:
        for sysname, s in res.systems.items():
            assert s.skipped is None, (res.task.name, sysname, s.skipped)
            assert len(s.raw) == len(res.samples)
    mme = results[2].systems
    assert set(mme) == {"model", "chance", "text_only", "caption"}
    assert all(isinstance(r, str) for r in mme["model"].raw)
    paths = report.write_report(tmp_path / "out", results, {"model": ev.info(), "seed": 0, "seconds": 0.0})
    assert "mme_easyvqa" in paths["markdown"].read_text()


def test_caption_expert_names_a_real_photo(ev) -> None:
    """The label baseline's image expert (EfficientNet-Lite0's ImageNet head) recognises a tuxpaint photo."""
    from omnibind.eval.datasets import STAMPS_DIR
    from omnibind.messages import MediaPart

    path = STAMPS_DIR / "animals" / "mammals" / "cats" / "tiger.png"
    if not path.is_file():
        pytest.skip("tuxpaint tiger stamp not installed")
    text = Describer(ev.image_encoder()).describe(MediaPart("image", str(path)))
    assert text.startswith("Detected:") and "tiger" in text.lower()
