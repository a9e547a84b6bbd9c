"""Issue 24: verdicts that say when the design cannot decide, the segmentation floor in claims and tables,
small-sample intervals (with the coverage simulation that picks the threshold), power, P(a > b)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from gbench.core import stats
from gbench.core.observations import FLOOR_SEGMENTER, FLOOR_TRAIN_SET, make_observations
from gbench.core.records import records_from_dicts
from gbench.reports.claims import Claim, check_claim, check_claims
from gbench.reports.tables import pivot

SEG = ("dq", "sq", "pq", "aji")


def seg_obs(model: str, train_set: str, values: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    rows = [{"name": f"t{i:02d}", **{m: float(v[i]) for m, v in values.items()}} for i in range(n)]
    return make_observations("segmentation", model, rows, train_set=train_set, profile="smoke", seed=seed,
                             dataset="d", split="test", test_set="h")


def records_of(obs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, ts, seed), g in obs.groupby(["model", "train_set", "seed"]):
        for m in SEG:
            rows.append({"kind": "segmentation", "model": model, "train_set": ts, "profile": "smoke",
                         "seed": int(seed), "dataset": "d", "split": "test", "metric": m,
                         "value": float(g[m].mean()), "n": len(g)})
    return records_from_dicts(rows)


def planted(n: int, effect: float, seed: int = 0, noise: float = 0.01) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two segmentation experiments on ``n`` tiles; ``a`` better by ``effect`` on every metric."""
    rng = np.random.default_rng(seed)
    base = {m: rng.uniform(0.5, 0.7, n) for m in SEG}
    a = seg_obs("unet", "R+S3k", {m: v + effect + rng.normal(0, noise, n) for m, v in base.items()})
    b = seg_obs("unet", "R", base)
    return a, b


SUP = Claim("x", "U-Net R+S (3k) beats R", "", "", "segmentation", ("unet", "R+S3k"), ("unet", "R"), SEG)


# ------------------------------------------------------------------------------ coverage (threshold)

def test_bootstrap_undercovers_below_the_threshold_and_the_t_interval_holds() -> None:
    """The simulation behind T_INTERVAL_BELOW: normal paired differences, 95% nominal.

    Measured (2000 draws each, seed 0): percentile bootstrap 0.79 / 0.86 / 0.87 / 0.90 at n = 4 / 6 /
    8 / 12 and 0.93 at 20; the t-interval 0.94-0.96 at every n.
    """
    rng = np.random.default_rng(0)
    sims, boots, true = 2000, 400, 0.3
    coverage = {}
    for n in (4, 6, 8, 12, stats.T_INTERVAL_BELOW):
        x = rng.normal(true, 1.0, size=(sims, n))
        idx = rng.integers(0, n, size=(sims, boots, n))
        means = np.take_along_axis(np.broadcast_to(x[:, None, :], (sims, boots, n)), idx, axis=2).mean(-1)
        lo, hi = np.quantile(means, [0.025, 0.975], axis=1)
        half = sps.t.ppf(0.975, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
        coverage[n] = (np.mean((lo <= true) & (true <= hi)), np.mean(np.abs(x.mean(axis=1) - true) <= half))
    print("coverage (bootstrap, t):", {n: (round(b, 3), round(t, 3)) for n, (b, t) in coverage.items()})
    for n in (4, 6, 8, 12):
        boot, t = coverage[n]
        assert boot < 0.915, (n, boot)  # undercovers: 2000 draws, se ~0.006
        assert 0.935 <= t <= 0.965, (n, t)  # the t-interval holds its nominal 95%
    assert coverage[4][0] < coverage[12][0] < coverage[stats.T_INTERVAL_BELOW][0]
    assert coverage[stats.T_INTERVAL_BELOW][0] >= 0.915  # from here on the bootstrap is close enough


def test_estimate_and_difference_use_the_t_interval_on_few_units() -> None:
    a, b = planted(6, 0.05)
    est = stats.estimate(a, "pq")
    per_unit = a["pq"].to_numpy()
    half = sps.t.ppf(0.975, 5) * per_unit.std(ddof=1) / math.sqrt(6)
    assert "t-interval on 6 per-unit values" in est.method
    assert est.ci_low == pytest.approx(per_unit.mean() - half, abs=1e-12)
    d = stats.paired_difference(a, b, "pq")
    diffs = a["pq"].to_numpy() - b["pq"].to_numpy()
    half = sps.t.ppf(0.975, 5) * diffs.std(ddof=1) / math.sqrt(6)
    assert "t-interval on 6 per-unit paired differences" in d.method
    assert (d.ci_low, d.ci_high) == pytest.approx((diffs.mean() - half, diffs.mean() + half), abs=1e-12)
    assert d.n_units == 6 and d.unit_sd == pytest.approx(diffs.std(ddof=1))


# -------------------------------------------------------------------------------- undecidable

def test_smallest_p() -> None:
    assert stats.smallest_p(5) == 0.0625  # CPM-15's 5 test tiles: no claim can be supported there
    assert stats.smallest_p(4, one_sided=True, n_tests=4) == 0.25
    assert stats.smallest_p(10, n_tests=4) == pytest.approx(8 / 1024)  # exact: 2**10 <= 2000 resamples
    assert stats.smallest_p(12, n_tests=4) == pytest.approx(8 / 2001)  # randomized: 2 (1 + 0) / (B + 1)
    a, b = planted(5, 0.2)  # an effect no one could miss
    (d,) = stats.compare_experiments(a, b, ["pq"])
    assert d.p == pytest.approx(0.0625) and d.min_p_adjusted == pytest.approx(0.0625)
    assert stats.metric_verdict(d) == "undecidable"


def test_four_unit_design_is_undecidable_both_ways() -> None:
    a, b = planted(4, 0.2)
    obs = pd.concat([a, b], ignore_index=True)
    r = check_claim(SUP, records_of(obs), observations=obs, reference=None)
    assert r.verdict == "undecidable"
    assert r.status == "undecidable: 4 test units (smallest possible p = 0.5, Holm over 4 metrics)"
    assert "undecidable: 4 test units" in r.evidence()
    # the other way round (would be contradicted) and non-inferiority: undecidable too
    rev = Claim("y", "R beats R+S (3k)", "", "", "segmentation", ("unet", "R"), ("unet", "R+S3k"), SEG)
    assert check_claim(rev, records_of(obs), observations=obs, reference=None).verdict == "undecidable"
    ni = Claim("z", "R not worse", "", "", "segmentation", ("unet", "R"), ("unet", "R+S3k"), SEG,
               test="non-inferiority", margin=0.05)
    assert check_claim(ni, records_of(obs), observations=obs, reference=None).verdict == "undecidable"


def test_twelve_unit_design_with_a_planted_effect_is_supported() -> None:
    a, b = planted(12, 0.05)
    obs = pd.concat([a, b], ignore_index=True)
    r = check_claim(SUP, records_of(obs), observations=obs, reference=None)
    assert r.verdict == "supported", r.evidence()
    assert all(d.min_p_adjusted == pytest.approx(8 / 2001) for d in r.differences)
    # no effect: not significant (not undecidable), with a rough sample size for 80% power
    a0, b0 = planted(12, 0.002, seed=3)
    obs0 = pd.concat([a0, b0], ignore_index=True)
    r0 = check_claim(SUP, records_of(obs0), observations=obs0, reference=None)
    assert r0.verdict == "not significant" and r0.units_needed > 12
    assert "test units for 80% power (normal approximation" in r0.evidence()


def test_units_for_power_matches_a_simulation() -> None:
    """The normal-approximation n detects the effect at about 80% (t-test, one metric)."""
    d = stats.Difference("pq", "mean", 0.6, 0.55, 0.05, 0.0, 0.1, 0.5, 0.5, "x", "x", 10, 1, None, 10, 0.1)
    n = int(stats.units_for_power(d, 0.05, 1))
    assert n == math.ceil(((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * 0.1 / 0.05) ** 2)  # 32
    rng = np.random.default_rng(0)
    x = rng.normal(0.05, 0.1, size=(4000, n))
    power = np.mean(sps.ttest_1samp(x, 0.0, axis=1).pvalue < 0.05)
    assert 0.74 <= power <= 0.84, power
    assert math.isinf(stats.units_for_power(stats.Difference("pq", "mean", 0, 0, 0.0, 0, 0, 1, 1, "", "", 4, 1, None,
                                                             4, 0.1)))


# ------------------------------------------------------------------------------------ the floor

def _floor_scope(cell_pq: float, floor_pq: float, n: int = 24, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.5, n)
    floor = seg_obs(FLOOR_SEGMENTER, FLOOR_TRAIN_SET, {m: base + floor_pq - 0.4 for m in SEG})
    frames = [floor]
    for ts in ("R", "S3k", "R+S3k", "S10k", "R+S10k"):
        frames.append(seg_obs("unet", ts, {m: np.clip(base + cell_pq - 0.4 + rng.normal(0, 0.01, n), 0, 1)
                                           for m in SEG}))
    return pd.concat(frames, ignore_index=True)


def test_cells_below_the_floor_make_their_claims_untested() -> None:
    obs = _floor_scope(cell_pq=0.001, floor_pq=0.4)  # the smoke reproduce: every U-Net cell learned nothing
    results = check_claims(records_of(obs), observations=obs, reference=None)
    seg = [r for r in results if r.claim.kind == "segmentation"]
    assert {r.claim.a[0] for r in seg} == {"unet"}  # the floor is no architecture with claims of its own
    assert seg and all(r.verdict == "untested" and r.reason.startswith("below the floor (U-Net") for r in seg)
    assert not any(r.verdict == "supported" for r in seg)
    noninf = next(r for r in seg if r.claim.id == "unet:S10k~R+S10k")
    assert noninf.status == "untested: below the floor (U-Net S (10k), U-Net R+S (10k))"
    # cells well above the floor are tested as before (24 units: decidable)
    obs2 = _floor_scope(cell_pq=0.7, floor_pq=0.4)
    res2 = check_claims(records_of(obs2), observations=obs2, reference=None)
    assert not any(r.reason.startswith("below the floor") for r in res2)


def test_one_cell_planted_below_the_floor() -> None:
    obs = _floor_scope(cell_pq=0.7, floor_pq=0.4)
    low = obs["train_set"] == "S3k"
    for m in SEG:
        obs.loc[low, m] = obs.loc[low, m] - 0.45  # S3k below the floor
    results = {r.claim.id: r for r in check_claims(records_of(obs), observations=obs, reference=None)}
    assert results["unet:S3k~R"].status == "untested: below the floor (U-Net S (3k))"
    assert results["unet:S10k>S3k"].status == "untested: below the floor (U-Net S (3k))"
    assert not results["unet:R+S3k>R"].reason.startswith("below the floor")
    # Table 2 marks the S3k row's PQ with a dagger and a footnote; the floor row is shown
    table = pivot(records_of(obs), observations=obs)
    assert (("unet", "S3k"), "pq") in table.below_floor and (("unet", "R"), "pq") not in table.below_floor
    assert (FLOOR_SEGMENTER, FLOOR_TRAIN_SET) in table.rows
    assert any(n.startswith("† PQ does not significantly beat the floor segmenter (HED watershed") for n in table.notes)


# ------------------------------------------------------------------------ probability of improvement

def test_probability_of_improvement_is_rliables_definition() -> None:
    rng = np.random.default_rng(0)
    n, seeds = 10, 3
    va = rng.uniform(0.4, 0.8, (seeds, n))
    vb = rng.uniform(0.4, 0.8, (seeds, n))
    a = pd.concat([seg_obs("unet", "R+S3k", {m: va[s] for m in SEG}, seed=s) for s in range(seeds)])
    b = pd.concat([seg_obs("unet", "R", {m: vb[s] for m in SEG}, seed=s) for s in range(seeds)])
    pi = stats.probability_of_improvement([(a, b)], "pq", n_resamples=500)
    # by hand: per unit (task), the Mann-Whitney share of seed pairs, averaged over units
    expected = np.mean([np.mean([[1.0 if x > y else 0.5 if x == y else 0.0 for y in vb[:, u]] for x in va[:, u]])
                        for u in range(n)])
    assert pi.value == pytest.approx(expected, abs=1e-12)
    assert pi.ci_low <= pi.value <= pi.ci_high and pi.seeds_a == pi.seeds_b == seeds
    assert stats.probability_of_improvement([(a, b)], "pq", n_resamples=500) == pi  # seeded
    # two strata (data sets): the mean of the per-stratum probabilities
    both = stats.probability_of_improvement([(a, b), (b, a)], "pq", n_resamples=500)
    assert both.value == pytest.approx(0.5, abs=1e-12) and both.strata == 2
    # with several seeds the claims report it
    obs = pd.concat([a, b], ignore_index=True)
    r = check_claim(SUP, records_of(obs), observations=obs, reference=None, n_resamples=500)
    assert len(r.improvements) == 4 and "P(a>b)" in r.evidence()
