"""Intervals for set statistics (issue 24): the bootstrap over images of both sets, paired differences of two
generators against one real set, and the floor test of ``quality --generator --extractor``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbench.core import stats
from gbench.metrics.distribution import distribution_metrics, fid
from gbench.metrics.distribution_ci import bootstrap_set_metrics

ALL = ("fid", "kid", "precision", "recall", "density", "coverage")


def test_full_set_values_equal_the_metrics() -> None:
    """With every weight 1 the resampling formulas are the metrics of gbench.metrics.distribution."""
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 5)), rng.normal(0.3, 1.2, size=(45, 5))  # D < N: covariance route
    boot = bootstrap_set_metrics(fake, real, ALL, n_resamples=20)
    ref = distribution_metrics(fake, real, kid_subset_size=1000)
    for m in ALL:
        assert boot.values[m] == pytest.approx(ref[m], rel=1e-9, abs=1e-12), m
    real, fake = rng.normal(size=(30, 64)), rng.normal(0.1, 1.0, size=(35, 64))  # D > N: Gram route
    boot = bootstrap_set_metrics(fake, real, ["fid"], n_resamples=20)
    assert boot.values["fid"] == pytest.approx(fid(fake, real), rel=1e-6)


def test_fid_interval_covers_the_true_fid() -> None:
    """Seeded simulation: Gaussian features (4-d), true FID in closed form, 95% basic interval.

    Real N(0, I), synthetic N(mu 1, s I): FID = D mu^2 + D (1 - s)^2. 80 draws of 120 images per set,
    100 resamples each: the basic interval covers in about 95% of draws (the percentile interval,
    shifted up by FID's small-sample bias, far less).
    """
    dim, n, mu, s = 4, 120, 0.2, 1.3
    true = dim * mu ** 2 + dim * (1 - s) ** 2
    basic = percentile = 0
    draws = 80
    for k in range(draws):
        rng = np.random.default_rng(k)
        boot = bootstrap_set_metrics(rng.normal(mu, s, (n, dim)), rng.normal(size=(n, dim)), ["fid"],
                                     n_resamples=100, seed=k)
        lo, hi = boot.intervals["fid"]
        basic += lo <= true <= hi
        q = np.quantile(boot.replicates["fid"], [0.025, 0.975])
        percentile += q[0] <= true <= q[1]
    print(f"coverage of the true FID over {draws} draws: basic {basic / draws:.3f}, percentile {percentile / draws:.3f}")
    assert 0.88 <= basic / draws <= 1.0
    assert percentile < basic


def _paired(fake_a: np.ndarray, fake_b: np.ndarray, real: np.ndarray, metric: str = "fid",
            seed: int = 0) -> stats.Difference:
    ba = bootstrap_set_metrics(fake_a, real, [metric], n_resamples=200, seed=seed)
    bb = bootstrap_set_metrics(fake_b, real, [metric], n_resamples=200, seed=seed)
    assert ba.real_draw == bb.real_draw  # the same real resample in every replicate
    to = lambda b: stats.SetReplicates(metric, b.values[metric], b.replicates[metric], b.real_draw,  # noqa: E731
                                       b.n_real, b.n_fake)
    return stats.set_difference(to(ba), to(bb))


def test_identical_generators_give_a_paired_difference_around_zero() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(size=(80, 6))
    same = rng.normal(0.3, 1.0, (80, 6))
    d = _paired(same, same, real)
    assert d.diff == 0 and d.ci_low == d.ci_high == 0.0 and d.p == 1.0
    # two generators of one distribution (different images): the CI holds 0
    d2 = _paired(rng.normal(0.3, 1.0, (80, 6)), rng.normal(0.3, 1.0, (80, 6)), real)
    assert d2.ci_low <= 0 <= d2.ci_high and d2.p > 0.05
    assert stats.metric_verdict(d2) == "not significant"
    # a clearly worse generator: FID higher, CI above 0, significant
    d3 = _paired(rng.normal(0.0, 1.0, (80, 6)), rng.normal(1.0, 1.0, (80, 6)), real)
    assert d3.ci_high < 0 and d3.p < 0.01 and stats.metric_verdict(d3) == "better"  # a has the lower FID


def test_replicates_round_trip_and_compare(tmp_path: Path) -> None:
    from gbench.core.observations import load_replicates, save_replicates

    rng = np.random.default_rng(2)
    real = rng.normal(size=(40, 4))
    frames = []
    for model, shift in (("good", 0.0), ("bad", 1.5)):
        boot = bootstrap_set_metrics(rng.normal(shift, 1, (40, 4)), real, ALL, n_resamples=50)
        frames.append(pd.DataFrame([{"kind": "quality", "model": model, "train_set": "R", "profile": "smoke",
                                     "seed": 0, "dataset": "d", "split": "test", **row} for row in boot.frame_rows()]))
    save_replicates(pd.concat(frames, ignore_index=True), tmp_path / "records.csv")
    reps = load_replicates(tmp_path)
    assert len(reps) == 2 * 51 and set(reps["model"]) == {"good", "bad"}
    a = stats.set_replicates(reps[reps.model == "good"], "fid")
    b = stats.set_replicates(reps[reps.model == "bad"], "fid")
    assert len(a.replicates) == 50 and a.value < b.value
    d = stats.set_difference(a, b)
    assert d.ci_high < 0 and d.min_p == pytest.approx(2 / 51)


def test_floor_test_survives_set_statistics() -> None:
    """A quality table with FID beside the per-image metrics still runs the floor test (it failed with
    "observations lack column(s) fid needed for mean fid" before): per-image metrics on the observations,
    FID on its bootstrap replicates, by means (said in the note) without replicates."""
    from gbench.core.observations import make_observations
    from gbench.core.records import records_from_dicts
    from gbench.reports.tables import pivot

    rng = np.random.default_rng(3)
    n = 24
    real = rng.normal(size=(60, 4))
    obs, rows, reps = [], [], []
    for model, ssim, shift in (("mask-paint", 0.5, 0.0), ("sharp-gan", 0.7, 2.0)):
        v = np.clip(ssim + rng.normal(0, 0.02, n), 0, 1)
        obs.append(make_observations("quality", model, [{"name": f"t{i}", "ssim": v[i]} for i in range(n)],
                                     train_set="R", profile="smoke", seed=0, dataset="d", split="test", test_set="h"))
        boot = bootstrap_set_metrics(rng.normal(shift, 1.0, (60, 4)), real, ["fid"], n_resamples=100)
        rows += [{"kind": "quality", "model": model, "train_set": "R", "profile": "smoke", "seed": 0, "dataset": "d",
                  "split": "test", "metric": "ssim", "value": float(v.mean()), "n": n},
                 {"kind": "quality", "model": model, "train_set": "R", "profile": "smoke", "seed": 0, "dataset": "d",
                  "split": "test", "metric": "fid", "value": boot.values["fid"], "n": 60}]
        reps.append(pd.DataFrame([{"kind": "quality", "model": model, "train_set": "R", "profile": "smoke", "seed": 0,
                                   "dataset": "d", "split": "test", **r} for r in boot.frame_rows()]))
    records = records_from_dicts(rows)
    observations = pd.concat(obs, ignore_index=True)
    replicates = pd.concat(reps, ignore_index=True)
    table = pivot(records, observations=observations, replicates=replicates)
    assert not any("not tested" in n for n in table.notes), table.notes
    # sharp-gan beats the floor on SSIM but has the worse FID: FID marked, SSIM not
    assert (("sharp-gan",), "fid") in table.below_floor and (("sharp-gan",), "ssim") not in table.below_floor
    assert any("paired test" in n for n in table.notes) and not any("by means" in n for n in table.notes)
    no_reps = pivot(records, observations=observations)
    assert (("sharp-gan",), "fid") in no_reps.below_floor and (("sharp-gan",), "ssim") not in no_reps.below_floor
    assert any("by means where there are no per-image data or bootstrap replicates" in n for n in no_reps.notes)


def test_quality_generator_with_extractor_keeps_the_floor_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: ``quality --generator dummy --generator mask-paint --extractor random-conv``."""
    from gbench.data.io import write_png
    from gbench.generators.train import train_generator
    from tests.cli.test_cli import run_cli
    from tests.generators.test_train import tiles

    cks = [train_generator(g, "tiles", tmp_path / g, profile="smoke", seed=0, steps=2, progress=False,
                           dataset=tiles(2)).checkpoint for g in ("dummy", "mask-paint")]
    data = tmp_path / "tiles"
    for split in ("train", "test"):
        for sub in ("images", "labels"):
            (data / split / sub).mkdir(parents=True)
        for s in tiles(2):
            write_png(data / split / "images" / f"{s.name}.png", s.image)
            write_png(data / split / "labels" / f"{s.name}.png", s.instances.astype(np.uint16))
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--generator", "dummy", "--checkpoint", str(cks[0]), "--generator",
                   "mask-paint", "--checkpoint", str(cks[1]), "--data", str(data), "--profile", "smoke", "--out",
                   str(out), "--extractor", "random-conv", "--metric", "ssim", "--metric", "nrmse") == 0
    text = capsys.readouterr().out
    assert "not tested" not in text and "observations lack" not in text
    from gbench.core.observations import load_replicates
    from gbench.core.records import load_records

    reps = load_replicates(out)
    assert reps is not None and set(reps["model"]) == {"dummy", "mask-paint"}
    assert reps.groupby("model")["real_draw"].first().nunique() == 1  # one real resample for both
    recs = load_records(out / "records.csv")
    fid_rows = recs[recs.metric == "fid"]
    assert fid_rows["ci_low"].notna().all() and fid_rows["ci_method"].str.contains("basic bootstrap").all()
    # gbench compare takes the set statistics from replicates.csv
    assert run_cli(monkeypatch, "compare", str(out), "--a", "model=dummy", "--b", "model=mask-paint",
                   "--metric", "fid", "--metric", "ssim") == 0
    assert "FID" in capsys.readouterr().out


def test_a_claim_on_fid_is_tested_on_the_replicates() -> None:
    """Claims accept set statistics: "sharp-gan has a lower FID than gan-dist" from replicates.csv rows."""
    from gbench.core.observations import make_observations
    from gbench.core.records import records_from_dicts
    from gbench.reports.claims import Claim, check_claim

    rng = np.random.default_rng(4)
    real = rng.normal(size=(60, 4))
    rows, obs, reps = [], [], []
    for model, shift in (("sharp-gan", 0.0), ("gan-dist", 1.0)):
        boot = bootstrap_set_metrics(rng.normal(shift, 1.0, (60, 4)), real, ["fid"], n_resamples=200)
        keys = {"kind": "quality", "model": model, "train_set": "R", "profile": "smoke", "seed": 0, "dataset": "d",
                "split": "test"}
        rows.append({**keys, "metric": "fid", "value": boot.values["fid"], "n": 60})
        reps.append(pd.DataFrame([{**keys, **r} for r in boot.frame_rows()]))
        obs.append(make_observations("quality", model, [{"name": f"t{i}", "ssim": 0.5} for i in range(3)],
                                     train_set="R", profile="smoke", seed=0, dataset="d", split="test"))
    claim = Claim("fid", "Sharp-GAN has a lower FID than GAN-DIST", "", "", "quality", ("sharp-gan", "R"),
                  ("gan-dist", "R"), ("fid",))
    r = check_claim(claim, records_from_dicts(rows), observations=pd.concat(obs, ignore_index=True), reference=None,
                    replicates=pd.concat(reps, ignore_index=True))
    assert r.verdict == "supported", r.evidence()
    assert r.differences[0].aggregation == "set" and "FID" in r.evidence()
    no_reps = check_claim(claim, records_from_dicts(rows), observations=pd.concat(obs, ignore_index=True),
                          reference=None)
    assert no_reps.verdict == "untested" and "no bootstrap replicates of fid" in no_reps.reason
