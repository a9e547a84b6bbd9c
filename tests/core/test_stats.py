"""gbench.core.stats: bootstrap CIs, paired tests, Holm, pooled statistics from unit sums."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gbench.core import stats
from gbench.core.observations import POOLED_STATS, make_observations
from gbench.core.records import make_records


def quality_obs(model: str, values, seed: int = 0, test_set: str = "h1", names=None, units=None) -> pd.DataFrame:
    names = names or [f"img{i:03d}" for i in range(len(values))]
    rows = [{"name": n, "ssim": float(v)} for n, v in zip(names, values)]
    if units is not None:
        for r, u in zip(rows, units):
            r["tile"] = u
    return make_observations("quality", model, rows, train_set="R", profile="smoke", seed=seed, dataset="d",
                             split="test", test_set=test_set, unit_key="tile" if units is not None else None)


def random_instances(rng: np.random.Generator, n_images: int, miss: float = 0.3) -> list[dict]:
    from gbench.metrics.instance import instance_metrics

    rows = []
    for i in range(n_images):
        t = np.zeros((40, 40), np.int32)
        p = np.zeros((40, 40), np.int32)
        for k in range(int(rng.integers(0, 6))):
            y, x = rng.integers(0, 34, 2)
            t[y:y + 5, x:x + 5] = k + 1
            if rng.random() > miss:
                dy, dx = rng.integers(0, 3, 2)
                p[y + dy:y + 5, x:x + 5 - dx] = k + 1
        if rng.random() < 0.2:
            p[0:3, 0:3] = 50  # a false positive
        r = instance_metrics(p, t)
        r["name"] = f"img{i:03d}"
        rows.append(r)
    return rows


def seg_obs(model: str, rows: list[dict], seed: int = 0, train_set: str = "R") -> pd.DataFrame:
    return make_observations("segmentation", model, rows, train_set=train_set, profile="smoke", seed=seed,
                             dataset="d", split="test", test_set="hs")


def test_stats_imports_no_torch():
    code = "import sys, gbench.core.stats; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pooled_and_mean_equal_instance_aggregate():
    from gbench.metrics.instance import aggregate

    rows = random_instances(np.random.default_rng(3), 25)
    obs = seg_obs("unet", rows)
    for mode in ("mean", "pooled"):
        ref = aggregate(rows, mode)
        for m in stats.POOLED_METRICS:
            assert stats.aggregate_value(obs, m, mode) == pytest.approx(ref[m], abs=1e-14), (mode, m)
    # vectorized formula on the summed statistics, including the empty conventions
    sums = np.array([[0, 0, 0, 0, 0, 0, 0, 0], [0, 3, 2, 0, 0, 40, 0, 40], [4, 1, 1, 3.2, 70, 100, 72, 100]])
    from gbench.metrics.instance import _scores_from_stats

    got = stats.pooled_scores(sums)
    for i, row in enumerate(sums):
        ref = _scores_from_stats(dict(zip(POOLED_STATS, row)))
        assert {m: float(got[m][i]) for m in ref} == ref


def test_bootstrap_ci_covers_known_mean_at_nominal_rate():
    """200 seeded simulated test sets of 25 skewed per-image scores: the 95% CI covers the true mean."""
    rng = np.random.default_rng(12345)
    a, b = 2.0, 5.0
    true_mean = a / (a + b)
    covered = 0
    for k in range(200):
        obs = quality_obs("g", rng.beta(a, b, 25))
        est = stats.estimate(obs, "ssim", n_resamples=1000, seed=k)
        covered += est.ci_low <= true_mean <= est.ci_high
    rate = covered / 200
    assert 0.90 <= rate <= 0.99, rate


def test_two_level_ci_covers_mean_over_seeds_and_images():
    """Seed effects and image effects crossed: the two-level interval covers the population mean."""
    rng = np.random.default_rng(7)
    covered = 0
    for k in range(100):
        image_effect = rng.normal(0.0, 0.08, 20)
        seeds = [quality_obs("g", 0.6 + image_effect + rng.normal(0, 0.03) + rng.normal(0, 0.01, 20), seed=s)
                 for s in range(4)]
        est = stats.estimate(pd.concat(seeds, ignore_index=True), "ssim", n_resamples=1000, seed=k)
        assert est.n_seeds == 4 and "two-level" in est.method
        covered += est.ci_low <= 0.6 <= est.ci_high
    assert 0.85 <= covered / 100 <= 1.0, covered


def test_estimate_value_is_mean_over_seeds_and_deterministic():
    rng = np.random.default_rng(0)
    per_seed = [rng.uniform(0.3, 0.9, 24) for _ in range(3)]  # 24 units: the bootstrap (T_INTERVAL_BELOW = 20)
    obs = pd.concat([quality_obs("g", v, seed=s) for s, v in enumerate(per_seed)], ignore_index=True)
    est = stats.estimate(obs, "ssim")
    assert est.value == pytest.approx(np.mean([v.mean() for v in per_seed]), abs=1e-14)
    assert est.ci_low < est.value < est.ci_high
    assert est == stats.estimate(obs, "ssim")  # seeded: same numbers
    assert stats.estimate(obs, "ssim", seed=1).ci_low != est.ci_low
    assert "2000 resamples" in est.method and "seed 0" in est.method


def test_units_are_resampled_whole():
    """Crops of one tile share a unit: the interval is that of the tile means (4 units), wider than 16 crops'."""
    rng = np.random.default_rng(1)
    tile_means = rng.normal(0.6, 0.1, 4)
    vals = np.repeat(tile_means, 4) + rng.normal(0, 0.005, 16)
    tiles = np.repeat([f"t{i}" for i in range(4)], 4)
    by_unit = stats.estimate(quality_obs("g", vals, units=tiles), "ssim")
    by_image = stats.estimate(quality_obs("g", vals), "ssim")
    assert "on 4 per-unit values" in by_unit.method and by_unit.n_images == 16  # 4 units: a t-interval
    assert (by_unit.ci_high - by_unit.ci_low) > 1.5 * (by_image.ci_high - by_image.ci_low)


@pytest.mark.parametrize("test", ["permutation", "bootstrap", "wilcoxon"])
def test_paired_test_finds_planted_difference(test):
    rng = np.random.default_rng(2)
    base = rng.uniform(0.4, 0.8, 30)
    a = quality_obs("a", base + 0.03 + rng.normal(0, 0.01, 30))
    b = quality_obs("b", base)
    d = stats.paired_difference(a, b, "ssim", test=test)
    assert d.diff == pytest.approx(0.03, abs=0.006)
    assert d.ci_low > 0 and d.ci_low < d.diff < d.ci_high
    assert d.p < 0.001
    assert stats.metric_verdict(d) == "better"
    rev = stats.paired_difference(b, a, "ssim", test=test)
    assert rev.diff == pytest.approx(-d.diff) and stats.metric_verdict(rev) == "worse"


@pytest.mark.parametrize("test", ["permutation", "bootstrap", "wilcoxon"])
def test_identical_runs_give_no_difference(test):
    rng = np.random.default_rng(3)
    vals = rng.uniform(0.4, 0.8, 20)
    d = stats.paired_difference(quality_obs("a", vals), quality_obs("b", vals), "ssim", test=test)
    assert d.diff == 0.0 and d.ci_low == 0.0 and d.ci_high == 0.0
    assert d.p == 1.0
    assert stats.metric_verdict(d) == "not significant"


def test_pooled_identical_and_planted():
    rng = np.random.default_rng(4)
    rows = random_instances(rng, 30, miss=0.1)
    worse = random_instances(np.random.default_rng(4), 30, miss=0.6)  # same truth, more misses
    same = stats.paired_difference(seg_obs("u", rows), seg_obs("v", rows), "pq", "pooled")
    assert (same.diff, same.ci_low, same.ci_high, same.p) == (0.0, 0.0, 0.0, 1.0)
    d = stats.paired_difference(seg_obs("u", rows), seg_obs("v", worse), "dq", "pooled")
    assert d.diff > 0 and d.ci_low > 0 and d.p < 0.01


def test_permutation_p_matches_full_enumeration_pooled():
    """8 units: scipy's exact sign-flip test on the index trick equals brute force over 2**8 flips."""
    rows_a = random_instances(np.random.default_rng(5), 8, miss=0.2)
    rows_b = random_instances(np.random.default_rng(5), 8, miss=0.5)
    d = stats.paired_difference(seg_obs("u", rows_a), seg_obs("v", rows_b), "pq", "pooled")
    sa = np.array([[r[k] for k in POOLED_STATS] for r in rows_a], float)
    sb = np.array([[r[k] for k in POOLED_STATS] for r in rows_b], float)
    observed = stats.pooled_scores(sa.sum(0), "pq") - stats.pooled_scores(sb.sum(0), "pq")
    null = []
    for flips in itertools.product((False, True), repeat=8):
        f = np.array(flips)[:, None]
        x, y = np.where(f, sb, sa), np.where(f, sa, sb)
        null.append(stats.pooled_scores(x.sum(0), "pq") - stats.pooled_scores(y.sum(0), "pq"))
    null = np.array(null)
    eps = 1e-14 * max(1.0, abs(observed))
    p_brute = min(1.0, 2 * min(np.mean(null >= observed - eps), np.mean(null <= observed + eps)))
    assert "exact" in d.test
    assert d.p == pytest.approx(p_brute, rel=1e-12)


def test_wilcoxon_matches_scipy_on_unit_differences():
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(6)
    a_vals, b_vals = rng.uniform(0.3, 0.9, 15), rng.uniform(0.3, 0.9, 15)
    d = stats.paired_difference(quality_obs("a", a_vals), quality_obs("b", b_vals), "ssim", test="wilcoxon")
    assert d.p == pytest.approx(wilcoxon(a_vals - b_vals).pvalue, rel=1e-12)
    rows = random_instances(rng, 6)
    with pytest.raises(ValueError, match="aggregation 'mean'"):
        stats.paired_difference(seg_obs("u", rows), seg_obs("v", rows), "pq", "pooled", test="wilcoxon")


def test_different_test_sets_are_refused():
    vals = np.linspace(0.4, 0.8, 10)
    with pytest.raises(stats.NotComparable, match="different test sets"):
        stats.paired_difference(quality_obs("a", vals, test_set="aaaa"), quality_obs("b", vals, test_set="bbbb"),
                                "ssim")
    other = [f"other{i}" for i in range(10)]
    with pytest.raises(stats.NotComparable, match="different images"):
        stats.paired_difference(quality_obs("a", vals, test_set=""), quality_obs("b", vals, test_set="", names=other),
                                "ssim")
    mixed = pd.concat([quality_obs("a", vals, seed=0), quality_obs("a", vals, seed=1, names=other)])
    with pytest.raises(stats.NotComparable, match="seeds 0 and 1"):
        stats.estimate(mixed.assign(test_set=""), "ssim")


def test_failed_side_raises():
    vals = np.linspace(0.4, 0.8, 10)
    failed = quality_obs("a", vals).assign(status="failed", failure="constant outputs")
    with pytest.raises(stats.FailedRun, match="constant outputs"):
        stats.paired_difference(failed, quality_obs("b", vals), "ssim")


def test_seed_matching_and_averaging():
    rng = np.random.default_rng(8)
    base = rng.uniform(0.4, 0.8, 12)
    a = pd.concat([quality_obs("a", base + 0.02 + rng.normal(0, 0.01, 12), seed=s) for s in range(3)])
    b = pd.concat([quality_obs("b", base + rng.normal(0, 0.01, 12), seed=s) for s in range(3)])
    matched = stats.paired_difference(a, b, "ssim")
    assert matched.n_seeds == 3 and "3 matched seeds" in matched.method
    assert matched.diff == pytest.approx(stats.aggregate_value(a, "ssim") - stats.aggregate_value(b, "ssim"))
    unmatched = stats.paired_difference(a, b[b["seed"] < 2], "ssim")
    assert unmatched.n_seeds == 2 and "unmatched" in unmatched.method
    assert unmatched.ci_low > 0


def test_non_inferiority_margin():
    rng = np.random.default_rng(9)
    base = rng.uniform(0.4, 0.8, 40)
    slightly_worse = quality_obs("a", base - 0.01 + rng.normal(0, 0.005, 40))
    ref = quality_obs("b", base)
    ok = stats.paired_difference(slightly_worse, ref, "ssim", margin=0.05)
    assert stats.metric_verdict(ok) == "non-inferior" and ok.p < 0.01
    bad = stats.paired_difference(quality_obs("a", base - 0.2 + rng.normal(0, 0.005, 40)), ref, "ssim", margin=0.05)
    assert stats.metric_verdict(bad) == "inferior" and bad.p > 0.5
    # lower-is-better metric: a higher GMSD is worse
    rows = [{"name": f"i{i}", "gmsd": v} for i, v in enumerate(base / 4)]
    rows_worse = [{"name": f"i{i}", "gmsd": v + 0.2} for i, v in enumerate(base / 4)]
    mk = lambda m, r: make_observations("quality", m, r, train_set="R", profile="s", seed=0, dataset="d",  # noqa: E731
                                        split="test")
    d = stats.paired_difference(mk("a", rows_worse), mk("b", rows), "gmsd", margin=0.05)
    assert d.diff > 0 and stats.metric_verdict(d) == "inferior"


def test_holm_worked_example():
    # m = 4: sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(1*0.04, 0.06)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = stats.holm([0.01, math.nan, 0.02])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_compare_experiments_applies_holm():
    rng = np.random.default_rng(10)
    base = rng.uniform(0.4, 0.8, 20)
    rows_a = [{"name": f"i{i}", "ssim": v + 0.02, "fsim": v + 0.001 * rng.normal()} for i, v in enumerate(base)]
    rows_b = [{"name": f"i{i}", "ssim": v, "fsim": v} for i, v in enumerate(base)]
    mk = lambda m, r: make_observations("quality", m, r, train_set="R", profile="s", seed=0, dataset="d",  # noqa: E731
                                        split="test")
    diffs = stats.compare_experiments(mk("a", rows_a), mk("b", rows_b), ["ssim", "fsim"])
    assert [d.p_adjusted for d in diffs] == pytest.approx(stats.holm([d.p for d in diffs]))
    assert diffs[0].p_adjusted >= diffs[0].p


def test_attach_intervals_fills_records():
    rng = np.random.default_rng(11)
    vals = rng.uniform(0.4, 0.8, 16)
    obs = quality_obs("g", vals)
    recs = make_records("quality", "g", {"ssim": float(vals.mean())}, train_set="R", profile="smoke", seed=0,
                        dataset="d", split="test", n=16, provenance={})
    out = stats.attach_intervals(recs, obs)
    row = out.iloc[0]
    est = stats.estimate(obs, "ssim")
    assert (row["ci_low"], row["ci_high"], row["ci_method"]) == (est.ci_low, est.ci_high, est.method)
    assert row["n_images"] == 16 and row["test_set"] == "h1" and row["status"] == "ok"
    failed = stats.attach_intervals(recs, obs.assign(status="failed", failure="no foreground"))
    assert failed.iloc[0]["status"] == "failed" and failed.iloc[0]["failure"] == "no foreground"
    with pytest.warns(UserWarning, match="no interval attached"):
        wrong = stats.attach_intervals(recs.assign(value=0.1), obs)
    assert math.isnan(wrong.iloc[0]["ci_low"])
