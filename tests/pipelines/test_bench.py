"""``gbench bench``: the measurement table's structure, the projection as the sum of its parts, the
runtime recorded with training runs (no timed assertions)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gbench.cli import app
from gbench.core.profiles import SMOKE
from gbench.core.runtime import Runtime
from gbench.pipelines.bench import bench
from gbench.generators.train import train_generator


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Tiny shapes on one torch thread (tests/conftest.py)."""


def test_bench_measures_every_model_and_projects_the_reproduce_run() -> None:
    res = bench(SMOKE, steps=1, warmup=1, generators=("mask-paint", "sharp-gan"), archs=("segnet",))
    assert [(m.component, m.name) for m in res.measurements] == [
        ("generator", "mask-paint"), ("generator", "sharp-gan"), ("segmenter", "segnet")]
    for m in res.measurements:
        assert m.steps == 1 and m.train_s_per_step > 0 and m.infer_images_per_s > 0
        assert 0.0 <= m.data_wait_share <= 1.0
        assert m.train_images_per_s == pytest.approx(m.batch_size / m.train_s_per_step)
    assert res.runtime["amp"] == "off" and res.runtime["workers"] == 0 and res.device == "cpu"
    rows = {r.stage: r for r in res.projection}
    train_sets = ("R", "S3k", "R+S3k", "S10k", "R+S10k")
    assert list(rows) == ["train-mask-paint", "train-sharp-gan", "quality-mask-paint", "quality-sharp-gan",
                          "synthesize", *[f"segment-segnet-{t}" for t in train_sets], "segment-segnet-test"]
    # steps and counts from the smoke profile's schedule, seconds from the measurements
    sharp = res.measurements[1]
    assert rows["train-sharp-gan"].units == SMOKE.generator.max_steps
    assert rows["train-sharp-gan"].seconds_per_unit == sharp.train_s_per_step
    assert rows["synthesize"].units == max(c for _, c in SMOKE.synthesis.counts)
    assert rows["synthesize"].seconds_per_unit == pytest.approx(1 / sharp.infer_images_per_s)
    seg = rows["segment-segnet-R+S10k"]
    assert seg.units == SMOKE.segmenter("segnet").max_steps and seg.stages == len(SMOKE.seeds)
    assert rows["segment-segnet-test"].stages == len(train_sets) * len(SMOKE.seeds)
    for r in res.projection:
        assert r.seconds == r.stages * r.units * r.seconds_per_unit and r.seconds > 0
    assert res.projected_s == sum(r.seconds for r in res.projection)
    assert res.to_dict()["provenance"]["runtime"] == res.runtime


def test_bench_command_prints_both_tables_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--steps", "1", "--warmup", "0",
                                      "--workers", "1", "--json", str(out)], prog_name="gbench")
    assert result.exit_code == 0, result.output
    assert "Speed on cpu" in result.output and "Projected: gbench reproduce sharp-gan --profile smoke" in result.output
    assert "total" in result.output
    doc = json.loads(out.read_text())
    assert [m["name"] for m in doc["measurements"]] == ["mask-paint", "gan-binary", "gan-dist", "sharp-gan",
                                                        "segnet", "unet"]
    assert doc["runtime"]["workers"] == 1
    assert math.isclose(doc["projected_s"], sum(r["seconds"] for r in doc["projection"]), rel_tol=1e-12)
    bad = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--amp", "fp32"], prog_name="gbench")
    assert bad.exit_code == 2 and "--amp" in bad.output


def test_training_runs_record_their_runtime(tmp_path: Path) -> None:
    prof = dataclasses.replace(SMOKE, runtime=Runtime(workers=2))
    res = train_generator("sharp-gan", "synthetic-he", tmp_path / "g", profile=prof, steps=2, progress=False,
                          device="cpu")
    run = json.loads(res.run_json.read_text())
    assert run["runtime"] == {"amp": "off", "channels_last": False, "workers": 2, "deterministic": True,
                              "cudnn_benchmark": False}
    assert run["provenance"]["runtime"] == run["runtime"] and run["profile_settings"]["runtime"]["workers"] == 2
    assert 0.0 <= run["data_wait_s"] <= run["fit_time_s"]
