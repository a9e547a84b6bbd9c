"""What the result producers write (issue 10): the seed split (``data_seed`` draws the built-in
data, ``seed`` trains), the test-set hash, per-image observations beside the records with
confidence intervals that match them, the tile as the resampling unit of the quality protocol,
and failed segmentation cells saved as ``failed``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gbench.core.observations import FLOOR_TRAIN_SET, hash_test_set, load_observations
from gbench.core.profiles import SMOKE
from gbench.core.records import load_records
from gbench.core.stats import aggregate_value
from gbench.data.resolve import resolve_dataset, split_hash
from tests.cli.test_cli import run_cli

TINY_CELL = ["--arch", "segnet", "--train", "R", "--data", "synthetic-he", "--profile", "smoke", "--width", "0.125",
             "--max-steps", "2", "--no-progress"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Tiny networks on one thread (see tests/conftest.py)."""


def _imperfect_predictor(monkeypatch: pytest.MonkeyPatch, data_seed: int = 0) -> None:
    """Replace the segmenter's prediction by the true map of the test tile with every third
    nucleus dropped and the rest shifted by one pixel: per-image scores that vary, independent
    of how (little) a tiny network learned in two steps."""
    import gbench.segmentation.train as train_mod

    truth = {s.image.tobytes(): s.instances for s in resolve_dataset("synthetic-he", "test", SMOKE, data_seed)}

    def predict(module: Any, image: np.ndarray, post: Any) -> np.ndarray:
        inst = truth[np.ascontiguousarray(image).tobytes()].copy()
        inst[inst % 3 == 0] = 0
        return np.roll(inst, 1, axis=1)

    monkeypatch.setattr(train_mod, "predict_instances", predict)


def test_training_seeds_share_the_test_set_and_intervals_match_the_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _imperfect_predictor(monkeypatch)
    out = tmp_path / "grid"
    assert run_cli(monkeypatch, "segment", *TINY_CELL, "--seeds", "0,1", "--out", str(out), "--table") == 0
    text = capsys.readouterr().out
    assert "95% CI" in text and "FAILED" not in text

    # the two training seeds were scored on the same images: one hash, the same names
    obs = load_observations(out / "records.csv", required=True)
    obs = obs[obs["train_set"] != FLOOR_TRAIN_SET]  # the untrained floor is scored beside the cells
    assert sorted(set(obs["seed"])) == [0, 1]
    expected = split_hash("synthetic-he", "test", SMOKE, 0)
    assert set(obs["test_set"]) == {expected}
    names = {s: sorted(g["image"]) for s, g in obs.groupby("seed")}
    assert names[0] == names[1] == sorted(resolve_dataset("synthetic-he", "test", SMOKE, 0).names)
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert set(results["test_set"]) == {expected} and set(results["status"]) == {"ok"}
    assert set(results["data_seed"].astype(int)) == {0}

    # each record is its seed's aggregate of the observations, and its CI brackets it
    recs = load_records(out / "records.csv")
    assert set(recs["data_seed"]) == {"0"} and set(recs["test_set"]) == {expected}
    checked = 0
    for (seed, agg, metric), r in recs.groupby(["seed", "aggregation", "metric"]):
        value = float(r["value"].iloc[0])
        assert aggregate_value(obs[obs["seed"] == seed], metric, agg) == pytest.approx(value, abs=1e-12)
        lo, hi = float(r["ci_low"].iloc[0]), float(r["ci_high"].iloc[0])
        assert lo <= value <= hi and lo < hi, (seed, agg, metric, lo, value, hi)
        assert "t-interval" in r["ci_method"].iloc[0] and int(r["n_images"].iloc[0]) == SMOKE.data.builtin_test
        checked += 1
    assert checked == 2 * 2 * 5
    # pooled is not the mean: the pooled PQ is recomputed from the summed statistics
    pooled = recs[(recs["aggregation"] == "pooled") & (recs["metric"] == "pq") & (recs["seed"] == 0)]["value"].iloc[0]
    assert pooled == pytest.approx((obs[obs["seed"] == 0]["iou_sum"].sum())
                                   / (obs[obs["seed"] == 0][["tp"]].sum().iloc[0]
                                      + 0.5 * obs[obs["seed"] == 0][["fp", "fn"]].sum().sum()))
    # results.csv carries the CIs of the records; the cell folder its own observations
    row = results[results["seed"] == 0].iloc[0]
    pq = recs[(recs["seed"] == 0) & (recs["aggregation"] == "mean") & (recs["metric"] == "pq")].iloc[0]
    assert float(row["pq_mean_ci_low"]) == pytest.approx(pq["ci_low"]) and row["ci_method"]
    cell = out / "segnet" / "R" / "binary" / "seed0"
    assert len(load_observations(cell / "records.csv", required=True)) == SMOKE.data.builtin_test
    table = (out / "table.md").read_text()
    # two seeds pooled per row; 3 test units, so the small-design t-interval, not the bootstrap
    assert "Confidence intervals:" in table and "t-interval on 3 per-unit values (2 seeds averaged" in table


def test_data_seed_changes_the_builtin_test_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gbench.pipelines.segmentation_grid import run_cell

    h0, h1 = split_hash("synthetic-he", "test", SMOKE, 0), split_hash("synthetic-he", "test", SMOKE, 1)
    assert h0 != h1
    # the cache returns what hashing the images from scratch gives
    fresh = resolve_dataset("synthetic-he", "test", SMOKE, 1)
    assert hash_test_set((s.name, s.image, s.instances) for s in fresh) == h1
    assert not np.array_equal(fresh[0].image, resolve_dataset("synthetic-he", "test", SMOKE, 0)[0].image)

    _imperfect_predictor(monkeypatch, data_seed=1)
    row = run_cell(arch="segnet", train="R", data="synthetic-he", profile=SMOKE, seed=0, data_seed=1,
                   out=tmp_path, progress=False, overrides={"model": {"width": 0.125}, "max_steps": 2})
    assert row["test_set"] == h1 and row["data_seed"] == 1 and row["status"] == "ok"
    assert Path(row["run_dir"]).name == "seed0-data1"
    recs = load_records(tmp_path / "records.csv")
    assert set(recs["data_seed"]) == {"1"} and set(recs["test_set"]) == {h1}
    assert set(load_observations(tmp_path / "records.csv")["test_set"]) == {h1}


def test_all_background_prediction_is_a_failed_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import gbench.segmentation.train as train_mod

    monkeypatch.setattr(train_mod, "predict_instances", lambda module, image, post: np.zeros(image.shape[:2], np.int32))
    out = tmp_path / "grid"
    assert run_cli(monkeypatch, "segment", *TINY_CELL, "--out", str(out), "--table") == 0
    text = capsys.readouterr().out
    assert "FAILED: no foreground predicted" in text
    cell = out / "segnet" / "R" / "binary" / "seed0"
    result = json.loads((cell / "result.json").read_text())
    assert result["status"] == "failed" and "no foreground" in result["failure"]
    for recs in (load_records(cell / "records.csv"), load_records(out / "records.csv")):
        recs = recs[recs["train_set"] != FLOOR_TRAIN_SET]  # the floor beside the cell is scored, not trained
        assert set(recs["status"]) == {"failed"} and recs["failure"].str.contains("no foreground").all()
    obs = load_observations(out / "records.csv")
    assert set(obs.loc[obs["train_set"] != FLOOR_TRAIN_SET, "status"]) == {"failed"}
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert list(results["status"]) == ["failed"] and "no foreground" in results["failure"].iloc[0]
    table = (out / "table.md").read_text()
    assert "| SegNet | R | 1 (1 failed) | failed | failed | failed | failed |" in table
    assert "0.000" not in table.split("\n| SegNet")[1].split("|")[4]  # no number where the run failed


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-step ``dummy`` (one convolution: its output follows the map) and a 3-step tiny
    Sharp-GAN (still a flat grey image: a generator that did not learn)."""
    import torch

    from gbench.generators.train import train_generator
    from tests.generators.test_train import TINY, tiles

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    try:
        for name, ov in (("dummy", {}), ("sharp-gan", TINY)):
            res = train_generator(name, "tiles", tmp_path_factory.mktemp("gen") / name, profile="smoke", seed=0,
                                  steps=3, overrides=ov, progress=False, dataset=tiles(2))
            out[name] = Path(res.checkpoint)
    finally:
        torch.set_num_threads(n)
    return out


def test_quality_observations_use_the_tile_as_unit(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    import torch

    from gbench import generators
    from gbench.data.io import write_png
    from gbench.data.patches import grid_crops
    from gbench.pipelines.generator_eval import evaluate_generator
    from gbench.pipelines.quality import quality_results, run_quality
    from tests.generators.test_train import tiles

    ds = tiles(3, 80)  # a 2x2 grid of 64-px crops per tile
    rows = pd.DataFrame(evaluate_generator("dummy", checkpoints["dummy"], ds, profile="smoke", seed=0, progress=False))
    assert len(rows) == 12 and rows["failure"].eq("").all()
    recs, obs = quality_results(rows, "dummy", train_set="R", profile="smoke", seed=0, dataset="tiles",
                                split="test", test_set=str(rows["test_set"].iloc[0]), unit_key="tile", data_seed=0)
    assert sorted(obs["unit"].unique()) == ["t0", "t1", "t2"] and len(obs) == 12
    assert set(obs.loc[obs["image"].str.startswith("t1@"), "unit"]) == {"t1"}
    assert obs["test_set"].iloc[0] == hash_test_set((s.name, s.image, s.instances) for s in ds)
    assert set(recs["status"]) == {"ok"}
    for r in recs.itertuples():
        assert r.value == pytest.approx(rows[r.metric].mean(), abs=1e-12)
        assert r.ci_low <= r.value <= r.ci_high
        assert "t-interval on 3 per-unit values" in r.ci_method and r.n_images == 12  # 3 tiles: t, not bootstrap
    # resampling whole tiles is not treating the 12 crops as independent
    as_crops = quality_results(rows, "dummy", train_set="R", profile="smoke", seed=0, dataset="tiles",
                               split="test", test_set="x", unit_key="name")[0]
    assert "t-interval on 12 per-unit values" in as_crops["ci_method"].iloc[0]
    assert not np.allclose(as_crops["ci_low"], recs["ci_low"])

    # the folder form: crops named <tile>@y<Y>x<X> are grouped by tile as well
    module = generators.load(checkpoints["dummy"], "dummy")
    for s in ds:
        for img, inst, (y, x) in grid_crops(s.image, s.instances, 64):
            with torch.no_grad():
                fake = module.generate(torch.from_numpy(module.condition_map(inst))[None])[0]
            fake8 = (fake.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
            write_png(tmp_path / "fake" / f"{s.name}@y{y}x{x}.png", np.ascontiguousarray(fake8))
            write_png(tmp_path / "real" / f"{s.name}@y{y}x{x}.png", img)
    res = run_quality(tmp_path / "real", tmp_path / "fake", tmp_path / "q", progress=False)
    folder_obs = load_observations(tmp_path / "q" / "records.csv", required=True)
    assert sorted(folder_obs["unit"].unique()) == ["t0", "t1", "t2"]
    folder_recs = load_records(tmp_path / "q" / "records.csv")
    assert set(folder_recs["status"]) == {"ok"} and (folder_recs["ci_low"] <= folder_recs["value"]).all()
    for r in folder_recs.itertuples():  # the same numbers as the generator form
        assert r.value == pytest.approx(recs.set_index("metric").loc[r.metric, "value"], abs=1e-9)
    assert "ci_low" in res.summary.columns and (res.summary["units"] == 3).all()


def test_quality_of_a_flat_grey_generator_is_a_failed_run(tmp_path: Path, checkpoints: dict[str, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--generator", "sharp-gan", "--checkpoint", str(checkpoints["sharp-gan"]),
                   "--generator", "dummy", "--checkpoint", str(checkpoints["dummy"]), "--data", "synthetic-he",
                   "--profile", "smoke", "--out", str(out)) == 0
    recs = load_records(out / "records.csv")
    status = recs.groupby("model")["status"].agg(set).to_dict()
    assert status == {"sharp-gan": {"failed"}, "dummy": {"ok"}}
    assert recs.loc[recs["model"] == "sharp-gan", "failure"].str.contains("near-constant").all()
    obs = load_observations(out / "records.csv", required=True)
    assert set(obs.loc[obs["model"] == "sharp-gan", "status"]) == {"failed"}
    assert set(obs["data_seed"]) == {"0"} and set(obs["test_set"]) == {split_hash("synthetic-he", "test", SMOKE, 0)}
    assert obs["unit"].nunique() == SMOKE.data.builtin_test  # one unit per test tile


def test_multifocus_records_say_what_they_rest_on() -> None:
    from gbench.pipelines.multifocus import quality_multifocus

    kw = dict(profile="smoke", progress=False, limit=3)
    a = quality_multifocus("synthetic-cells:siha", "synthetic-cells:cancer", **kw)["records"]
    b = quality_multifocus("synthetic-cells:siha", "synthetic-cells:cancer", data_seed=1, **kw)["records"]
    n_real = a["n_images"].iloc[0]
    assert n_real >= 2 and (a["n_images"] == n_real).all() and (a["n_seeds"] == 1).all()
    fid = a[a["metric"] == "fid"]
    assert (fid["ci_method"] == "set statistic: no per-image CI").all() and fid["ci_low"].isna().all()
    assert a[a["metric"] == "focus_real"]["ci_method"].eq("").all()
    assert a["test_set"].nunique() == 1 and b["test_set"].nunique() == 1
    assert a["test_set"].iloc[0] != b["test_set"].iloc[0]  # data_seed draws other built-in stacks
    assert set(a["data_seed"]) == {"0"} and set(b["data_seed"]) == {"1"}
