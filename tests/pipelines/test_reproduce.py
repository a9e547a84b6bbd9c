"""``gbench reproduce``: a reduced smoke pipeline end to end, its stage cache, and the CI
regression check of its records against the committed baseline ``reports/baselines/smoke.csv``.

Set ``GBENCH_UPDATE_BASELINE=1`` to rewrite the baseline from this run (then review the diff).
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from gbench.core.records import load_records, save_records
from gbench.pipelines.reproduce import reproduce_sharp_gan
from gbench.reports.regress import compare_tables, parse_tolerances

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "reports" / "baselines" / "smoke.csv"
#: The CI smoke pipeline: every stage kind once, at the smallest sizes.
SMOKE_CI: dict[str, Any] = dict(data="synthetic-he", profile="smoke", seed=0, generators=("sharp-gan",),
                                archs=("unet",), train_sets=("R", "S3k"), gen_steps=2, progress=False)

pytestmark = pytest.mark.slow


def _run(out: Path, **kw: Any) -> Any:
    return reproduce_sharp_gan(out=out, console=Console(file=io.StringIO(), width=120), **{**SMOKE_CI, **kw})


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _run(tmp_path_factory.mktemp("reproduce"))


def test_pipeline_writes_records_and_report(first_run: Any) -> None:
    recs = first_run.records
    q = recs[recs["kind"] == "quality"]
    s = recs[recs["kind"] == "segmentation"]
    assert set(q["model"]) == {"sharp-gan"} and set(q["metric"]) == {"ssim", "fsim", "gmsd", "nrmse"}
    assert set(s["train_set"]) == {"R", "S3k", "none"} and {"dq", "sq", "pq", "aji"} <= set(s["metric"])
    assert set(s.loc[s["train_set"] == "none", "model"]) == {"hed-watershed"}  # the floor segmenter (issue 24)
    assert ((q["value"] > 0) & (q["value"] < 1)).all()
    out = first_run.out
    assert (out / "report" / "report.html").is_file() and (out / "report" / "manifest.json").is_file()
    from PIL import Image

    with Image.open(out / "report" / "figures" / "samples.png") as im:  # input map, real, sharp-gan
        assert im.size[0] > im.size[1] * 0.9
    names = [st["stage"] for st in first_run.stages]
    assert names == ["train-sharp-gan", "quality-sharp-gan", "synthesize", "segment-unet-R-seed0",
                     "segment-unet-S3k-seed0", "segment-floor"]
    # issue 24: Table 2 has the floor row; no segmentation claim of models that did not learn is supported
    assert "HED watershed (floor)" in (out / "report" / "tables" / "segmentation.md").read_text()
    claims = pd.read_csv(out / "report" / "claims.csv")
    seg_claims = claims[claims["id"].str.startswith("unet:") & ~claims["verdict"].str.startswith("untested: no records")]
    assert len(seg_claims) and seg_claims["verdict"].str.startswith(("untested: below the floor",
                                                                     "untested: failed run")).all()
    assert not any(st["skipped"] for st in first_run.stages)
    manifest = pd.read_csv(next((out / "stages" / "synthesize").glob("*/S/manifest.csv")))
    assert len(manifest) == 12  # the smoke profile's S10k: S3k reads the first 6 of the same set
    # observations beside the records: every stage on the one test set, crops grouped by tile
    from gbench.core.observations import load_observations

    obs = load_observations(out / "records.csv", required=True)
    assert obs["test_set"].nunique() == 1 and (recs["test_set"] == obs["test_set"].iloc[0]).all()
    q_obs = obs[obs["kind"] == "quality"]
    assert (q_obs["unit"] == q_obs["image"].str.split("@").str[0]).all()
    assert set(obs["data_seed"]) == {"0"} and set(recs["data_seed"]) == {"0"}
    assert recs["ci_method"].str.contains("bootstrap|t-interval").all()  # t-intervals below 20 test units


def test_rerun_skips_done_stages_and_reruns_changed_ones(first_run: Any) -> None:
    again = _run(first_run.out)
    assert all(st["skipped"] for st in again.stages)
    pd.testing.assert_frame_equal(again.records[["model", "train_set", "metric", "value"]],
                                  first_run.records[["model", "train_set", "metric", "value"]])
    other_seed = _run(first_run.out, seeds=(1,))
    ran = {st["stage"] for st in other_seed.stages if not st["skipped"]}
    assert ran == {"segment-unet-R-seed1", "segment-unet-S3k-seed1"}  # generator, quality, synthesis cached


def test_killed_stage_is_not_marked_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gbench.pipelines.reproduce as rp

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed")

    monkeypatch.setattr(rp, "generator_quality", boom)
    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path, train_sets=())
    monkeypatch.undo()
    res = _run(tmp_path, train_sets=())
    assert [(st["stage"], st["skipped"]) for st in res.stages] == [("train-sharp-gan", True),
                                                                  ("quality-sharp-gan", False)]


def test_matches_committed_smoke_baseline(first_run: Any, tmp_path: Path) -> None:
    """CI regression check: same seed, same numbers (tolerance for BLAS differences between machines)."""
    # the first run's own records: later tests rerun the pipeline into the same folder (seed 1)
    new = save_records(first_run.records, tmp_path / "first_run.csv")
    if os.environ.get("GBENCH_UPDATE_BASELINE"):
        save_records(load_records(new), BASELINE)
    if not BASELINE.is_file():
        pytest.fail(f"{BASELINE} is missing: run with GBENCH_UPDATE_BASELINE=1 to create it")
    report = compare_tables(load_records(BASELINE), load_records(new), parse_tolerances(["1e-3"]))
    worse = report.cells[report.cells["status"] != "same"]
    assert worse.empty, f"smoke results moved beyond 1e-3:\n{worse.to_string()}"
    from tests.cli.test_cli import run_cli

    mp = pytest.MonkeyPatch()
    try:
        assert run_cli(mp, "regress", str(BASELINE), str(new), "--tolerance", "1e-3") == 0
        planted = load_records(new)
        planted.loc[planted["metric"] == "pq", "value"] -= 0.5
        save_records(planted, tmp_path / "planted.csv")
        assert run_cli(mp, "regress", str(BASELINE), str(tmp_path / "planted.csv"), "--tolerance", "1e-3") == 1
    finally:
        mp.undo()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_executors_give_the_sequential_records(first_run: Any, tmp_path: Path, executor: str) -> None:
    """The smoke pipeline with independent stages at once (spawned children, or Ray tasks on a
    local 2-CPU instance) writes the records of the sequential run, value for value."""
    if executor == "ray":
        pytest.importorskip("ray")
    res = _run(tmp_path / executor, executor=executor, jobs=2)
    cols = ["kind", "model", "train_set", "seed", "aggregation", "metric", "value", "ci_low", "ci_high", "n",
            "status", "test_set"]
    pd.testing.assert_frame_equal(res.records[cols].reset_index(drop=True),
                                  first_run.records[cols].reset_index(drop=True))
    # the same stages, each in its own content-keyed folder (keys hold the input folders' paths,
    # so they differ from the first run's, which lives in another folder)
    assert sorted(st["stage"] for st in res.stages) == sorted(st["stage"] for st in first_run.stages)
    assert len({st["path"] for st in res.stages}) == len(res.stages)
    # and a sequential rerun finds every stage the executor ran done
    again = _run(tmp_path / executor)
    assert all(st["skipped"] for st in again.stages)
