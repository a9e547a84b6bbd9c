"""Estimates with confidence intervals and paired comparisons, from per-image observations.

Every statistic here is a function of **per-unit sums** (see :mod:`gbench.core.observations`):
the observations of one experiment are collapsed to resampling units (the ``unit`` column: the
source tile of a crop, else the image itself), so the crops of one tile are resampled or flipped
together and never treated as independent.

* ``mean`` aggregation (every quality metric; ``aggregation=mean`` segmentation records): a unit
  contributes (sum of its per-image scores, its image count); the aggregate is
  ``sum(score sums) / sum(counts)``, i.e. the mean over images.
* ``pooled`` aggregation (DQ, SQ, PQ, AJI, AJI+): a unit contributes the sums of its images'
  :data:`~gbench.core.observations.POOLED_STATS`; the aggregate recomputes the score from the
  summed statistics with exactly the formulas of :func:`gbench.metrics.instance.aggregate`
  (reimplemented here, vectorized, so this module needs no torch).
* Seeds: an experiment's value is the **mean over training seeds** of each seed's data-set
  aggregate, as in the records. All seeds of one experiment must be scored on the same images.

Confidence intervals (:func:`estimate`), 95% by default, ``n_resamples`` (default 2000) drawn
from ``numpy.random.default_rng(seed)`` (default seed 0: the same data give the same interval):

* fewer than :data:`T_INTERVAL_BELOW` units: a t-interval (see "Small designs" below);
* one seed: ``scipy.stats.bootstrap`` over units (BCa; percentile when BCa is undefined, e.g.
  a statistic that does not vary);
* several seeds: a two-level percentile bootstrap, written here because scipy has none: each
  replicate resamples the seeds, then the units, with **one unit draw shared by every seed**
  (all seeds are scored on the same test images, so the test-image uncertainty does not shrink
  with more seeds), and averages the per-seed aggregates of the drawn seeds.

Paired differences (:func:`paired_difference`), ``a - b`` of two experiments on the **same test
images** (same test-set hash and image set, else :class:`NotComparable`):

* CI: paired bootstrap (the same unit draw for both sides; with one seed per side
  ``scipy.stats.bootstrap(paired=True)``, else the two-level bootstrap above, with one seed draw
  for both sides when they have the same seeds and independent seed draws otherwise).
* p-value, ``test=``:
  ``permutation`` (default): sign-flip permutation test, ``scipy.stats.permutation_test(...,
  permutation_type="samples")``: the two sides of a unit are swapped, the statistic is the
  difference of the aggregates recomputed from the unit sums (works for pooled aggregation too);
  exact when ``2**units <= n_resamples``.
  ``bootstrap``: the two-sided paired-bootstrap p, ``2 * min(P*(d <= 0), P*(d >= 0))`` with the
  ``(1 + count) / (1 + B)`` correction, capped at 1.
  ``wilcoxon``: ``scipy.stats.wilcoxon`` on the per-unit differences of the mean score (``mean``
  aggregation only).
  With the same seeds on both sides the permutation and Wilcoxon tests keep the seeds paired
  (unit sums per seed); otherwise each side is averaged over its seeds per unit first.
* Non-inferiority (``margin``): H0 "a is worse than b by at least ``margin``" (in the metric's
  better direction). The p-value is the one-sided bootstrap p ``(1 + #{d* <= -margin}) / (1 + B)``
  of the oriented difference; the verdict comes from the CI (:func:`metric_verdict`).
* :func:`compare_experiments` adjusts the p-values across the metrics of one comparison with
  Holm's step-down method (:func:`holm`).

Small designs (issue 24):

* **Intervals on few units.** Below :data:`T_INTERVAL_BELOW` (20) resampling units, an estimate's
  CI is ``value +- t_{0.975, n-1} sd(u) / sqrt(n)`` over the per-unit values ``u`` (each unit's
  aggregate, averaged over seeds) and a difference's CI the same over the per-unit paired
  differences, centred on the aggregate (instance metrics clipped to their range, [0, 1] and
  [-1, 1]: the true value lies there). Reason, from a seeded simulation of normal paired
  differences (``tests/core/test_verdicts.py``): the 95% percentile bootstrap covers 79% at 4
  units, 85-86% at 6, 87% at 8, 90% at 12, 92% at 20; the t-interval 94-96% throughout. The
  non-inferiority p on few units is the one-sided t-test of the oriented differences against
  ``-margin``.
* **Undecidable.** :func:`smallest_p` is the smallest p the design can reach: ``2 / 2**n``
  two-sided (``1 / 2**n`` one-sided, non-inferiority) for ``n`` paired units, the exact sign-flip
  floor, no lower than ``(1 or 2) / (B + 1)`` for a randomized permutation test; seeds add no
  sign patterns (a flip swaps a unit in every seed). :func:`compare_experiments` stores it Holm-
  adjusted over its ``m`` metrics (``m * p_min``, :attr:`Difference.min_p_adjusted`), and
  :func:`metric_verdict` says ``undecidable`` whenever that is not below alpha, before reading
  the numbers: no verdict, neither "better" nor "worse", can come from such a design.
* **Power.** :func:`units_for_power`: a rough number of units for 80% power on the observed paired
  effect, normal approximation ``n = ((z_{1-a} + z_0.8) sd / effect)^2`` with Holm's worst case
  ``a = alpha / (2m)`` (``alpha / m`` one-sided with a margin, effect + margin).
* **Set statistics** (FID, KID, precision/recall, density/coverage) have no per-image values:
  their CI comes from a seeded bootstrap over the images of both sets
  (:mod:`gbench.metrics.distribution_ci`, replicates stored in ``replicates.csv``); two generators
  scored against the same real set share the real resample of every replicate, so
  :func:`set_difference` is a paired bootstrap of ``a - b`` (percentile CI, bootstrap p; smallest
  p ``2 / (B + 1)``).
* **Probability of improvement** (:func:`probability_of_improvement`, rliable's definition): per
  test unit the share of (seed of a, seed of b) pairs where a's unit score is better (ties 1/2),
  averaged over units, then over strata (data sets); CI by rliable's stratified bootstrap (seeds of
  each side and units within each stratum resampled).

Metric directions come from the metric registry (:func:`gbench.core.metric_specs.higher_is_better`).
numpy, scipy and pandas only: no torch.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import stats

from gbench.core.metric_specs import higher_is_better, metric_names
from gbench.core.observations import POOLED_STATS, obs_key_columns
from gbench.core.records import validate_records

__all__ = ["Estimate", "Difference", "NotComparable", "FailedRun", "AGGREGATIONS", "POOLED_METRICS", "TESTS",
           "DEFAULT_RESAMPLES", "DEFAULT_CONFIDENCE", "aggregate_value", "estimate", "attach_intervals",
           "paired_difference", "compare_experiments", "holm", "metric_verdict", "pooled_scores",
           "oriented", "experiment_label", "T_INTERVAL_BELOW", "DEFAULT_POWER", "smallest_p", "units_for_power",
           "probability_of_improvement", "Improvement", "set_difference", "SetReplicates", "set_replicates"]

AGGREGATIONS: Final[tuple[str, ...]] = ("mean", "pooled")
#: Metrics that have a pooled aggregate (recomputed from :data:`POOLED_STATS`): the instance metrics.
POOLED_METRICS: Final[tuple[str, ...]] = metric_names("instance")
TESTS: Final[tuple[str, ...]] = ("permutation", "bootstrap", "wilcoxon")
DEFAULT_RESAMPLES: Final = 2000
DEFAULT_CONFIDENCE: Final = 0.95
#: Below this many resampling units an interval is a t-interval on the per-unit values (differences),
#: not a bootstrap: in a seeded simulation of normal paired differences (``tests/core/test_verdicts.py``)
#: the 95% percentile bootstrap covers 79% at 4 units, 86% at 6, 87% at 8, 90% at 12, 92% at 16 and
#: 93% at 20; the t-interval 94-96% at every size.
T_INTERVAL_BELOW: Final = 20
#: Power the rough sample size of a not-significant comparison is computed for.
DEFAULT_POWER: Final = 0.8
_BATCH: Final = 500
_I = {k: i for i, k in enumerate(POOLED_STATS)}


class NotComparable(ValueError):
    """Two experiments (or the seeds of one) were not tested on the same images: one-line reason."""


class FailedRun(ValueError):
    """An experiment is marked ``failed``: it has no number to estimate or compare."""


@dataclass(frozen=True)
class Estimate:
    """A data-set aggregate with its confidence interval.

    Attributes:
        value: Mean over seeds of each seed's aggregate (equals the record value).
        ci_low, ci_high: The confidence interval (NaN when fewer than two units).
        method: How the interval was made (method, resamples, units, seeds, rng seed).
        n_images: Test images behind the value; n_seeds: training seeds.
    """

    value: float
    ci_low: float
    ci_high: float
    method: str
    n_images: int
    n_seeds: int


@dataclass(frozen=True)
class Difference:
    """``a - b`` on one metric, paired on the same test images.

    Attributes:
        metric, aggregation: What was compared.
        a, b: The two aggregates (mean over seeds, as in the records); ``diff = a - b``.
        ci_low, ci_high: Paired-bootstrap CI of ``diff``.
        p: p-value of ``test`` (two-sided; one-sided non-inferiority p when ``margin`` is set).
        p_adjusted: Holm-adjusted p across the metrics of one comparison (``p`` alone).
        test: The test that gave ``p``; method: how the CI was made.
        n_images: Shared test images; n_seeds: seed pairs (matched seeds) or the smaller
            side's seed count.
        margin: Non-inferiority margin (absolute, in the metric's units), or None.
        n_units: Resampling units (test tiles) behind the test; for a set statistic the
            smaller set's image count.
        unit_sd: Standard deviation (ddof=1) of the per-unit differences ``a - b`` (seeds
            averaged per unit), for :func:`units_for_power`; NaN for a set statistic.
        min_p: The smallest p the design can reach (:func:`smallest_p`); min_p_adjusted: after
            Holm over the comparison's metrics (``min(1, m * min_p)``).
    """

    metric: str
    aggregation: str
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_adjusted: float
    test: str
    method: str
    n_images: int
    n_seeds: int
    margin: float | None = None
    n_units: int = 0
    unit_sd: float = math.nan
    min_p: float = math.nan
    min_p_adjusted: float = math.nan

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    def oriented(self) -> tuple[float, float, float]:
        """(diff, ci_low, ci_high) turned so that positive means ``a`` is better."""
        return oriented(self.metric, self.diff, self.ci_low, self.ci_high)


def oriented(metric: str, diff: float, low: float, high: float) -> tuple[float, float, float]:
    """A difference and its CI turned so that positive means better (flipped for lower-is-better)."""
    if higher_is_better(metric):
        return diff, low, high
    return -diff, -high, -low


# ----------------------------------------------------------------------------------- statistics

def pooled_scores(sums: Any, metric: str | None = None) -> Any:
    """Instance scores from summed :data:`POOLED_STATS` (last axis, in that order), vectorized.

    The formulas of :func:`gbench.metrics.instance.aggregate` (``pooled``): DQ = TP / (TP + FP/2 +
    FN/2), SQ = IoU sum / TP (0 when TP = 0), PQ = DQ * SQ, all 1 when TP + FP + FN = 0; AJI and
    AJI+ = intersection / union, 1 when the union is 0.

    Returns:
        The array of one metric (``metric``) or a dict of all five.
    """
    s = np.asarray(sums, dtype=np.float64)
    tp, fp, fn, iou = s[..., _I["tp"]], s[..., _I["fp"]], s[..., _I["fn"]], s[..., _I["iou_sum"]]
    empty = (tp + fp + fn) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dq = np.where(empty, 1.0, tp / (tp + fp / 2 + fn / 2))
        sq = np.where(empty, 1.0, np.where(tp > 0, iou / np.where(tp > 0, tp, 1.0), 0.0))

        def ratio(inter: str, union: str) -> Any:
            i, u = s[..., _I[inter]], s[..., _I[union]]
            return np.where(u == 0, 1.0, i / np.where(u == 0, 1.0, u))

        out = {"dq": dq, "sq": sq, "pq": dq * sq, "aji": ratio("aji_inter", "aji_union"),
               "aji_plus": ratio("ajip_inter", "ajip_union")}
    if metric is None:
        return out
    return out[metric]


def _stat_fn(metric: str, aggregation: str) -> Any:
    """f(summed unit statistics, last axis) -> aggregate."""
    if aggregation == "mean":
        return lambda s: s[..., 0] / s[..., 1]
    return lambda s: pooled_scores(s, metric)


def _check(metric: str, aggregation: str) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    if aggregation == "pooled" and metric not in POOLED_METRICS:
        raise ValueError(f"metric {metric!r} has no pooled aggregate (pooled: {', '.join(POOLED_METRICS)}); "
                         "use aggregation='mean'")


def experiment_label(obs: pd.DataFrame) -> str:
    """A short name of the experiment of an observation table (``unet R+S3k``, ``sharp-gan``)."""
    if obs is None or len(obs) == 0:
        return "(no observations)"
    first = obs.iloc[0]
    parts = [str(first.get("model", ""))]
    if first.get("kind") == "segmentation" or str(first.get("train_set", "R")) not in ("R", ""):
        parts.append(str(first.get("train_set", "")))
    return " ".join(p for p in parts if p)


def _one_experiment(obs: pd.DataFrame, what: str = "observations") -> None:
    if obs is None or len(obs) == 0:
        raise ValueError(f"no {what}: nothing to estimate")
    keys = [c for c in obs_key_columns(obs) if c != "seed"]
    varying = [c for c in keys if obs[c].nunique(dropna=False) > 1]
    if varying:
        raise ValueError(f"{what} hold several experiments (they differ in {', '.join(varying)}); "
                         "select one experiment")


@dataclass(frozen=True)
class _Units:
    seeds: tuple[int, ...]
    units: tuple[str, ...]
    sums: np.ndarray  # (seeds, units, K)
    n_images: int
    test_set: str
    images: frozenset[str]
    unit_of: Mapping[str, str]


def _unit_sums(obs: pd.DataFrame, metric: str, aggregation: str, label: str,
               units: Sequence[str] | None = None) -> _Units:
    """Collapse the observations of one experiment to per-seed, per-unit sums."""
    _check(metric, aggregation)
    cols = [metric] if aggregation == "mean" else list(POOLED_STATS)
    missing = [c for c in cols if c not in obs.columns]
    if missing:
        raise ValueError(f"{label}: observations lack column(s) {', '.join(missing)} needed for "
                         f"{aggregation} {metric}")
    bad = obs[cols].isna().any(axis=1)
    if bad.any():
        raise ValueError(f"{label}: image {obs.loc[bad, 'image'].iloc[0]!r} has no {metric} value "
                         f"({'per-image score' if aggregation == 'mean' else 'pooled statistics'} missing)")
    hashes = sorted(set(obs["test_set"]) - {""}) if "test_set" in obs.columns else []
    if len(hashes) > 1:
        raise NotComparable(f"{label}: its seeds were tested on different test sets ({', '.join(hashes)})")
    unit_of = dict(zip(obs["image"], obs["unit"]))
    seeds = tuple(sorted(int(s) for s in set(obs["seed"])))
    by_seed = {s: g for s, g in obs.groupby("seed", sort=True)}
    images = frozenset(obs["image"])
    first = seeds[0]
    first_images = frozenset(by_seed[first]["image"])
    for s, g in by_seed.items():
        other = frozenset(g["image"])
        if other != first_images:
            raise NotComparable(f"{label}: seeds {first} and {s} were tested on different images "
                                f"({len(first_images)} vs {len(other)}, {len(first_images & other)} shared)")
    order = list(units) if units is not None else sorted(set(unit_of.values()))
    index = {u: i for i, u in enumerate(order)}
    k = 2 if aggregation == "mean" else len(POOLED_STATS)
    sums = np.zeros((len(seeds), len(order), k), dtype=np.float64)
    for si, s in enumerate(seeds):
        g = by_seed[s]
        ui = g["unit"].map(index).to_numpy()
        if aggregation == "mean":
            np.add.at(sums[si, :, 0], ui, g[metric].to_numpy(dtype=np.float64))
            np.add.at(sums[si, :, 1], ui, 1.0)
        else:
            for j, c in enumerate(POOLED_STATS):
                np.add.at(sums[si, :, j], ui, g[c].to_numpy(dtype=np.float64))
    return _Units(seeds, tuple(order), sums, len(images), hashes[0] if hashes else "", images, unit_of)


def _value(u: _Units, f: Any) -> float:
    return float(np.mean(f(u.sums.sum(axis=1))))


def aggregate_value(obs: pd.DataFrame, metric: str, aggregation: str = "mean") -> float:
    """The data-set aggregate of one experiment: the mean over seeds of each seed's aggregate.

    ``mean``: mean of the per-image scores; ``pooled``: the score recomputed from the summed
    :data:`POOLED_STATS`. Equals the record value of the experiment.
    """
    _one_experiment(obs)
    u = _unit_sums(obs, metric, aggregation, experiment_label(obs))
    return _value(u, _stat_fn(metric, aggregation))


# ------------------------------------------------------------------------------------ bootstrap

def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _scipy_bootstrap(data: Sequence[np.ndarray], statistic: Any, n_resamples: int, confidence: float,
                     rng: np.random.Generator) -> tuple[float, float, np.ndarray, str]:
    """Paired BCa bootstrap over the unit axis of ``data`` (percentile when BCa is undefined)."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: handled below
        res = stats.bootstrap(tuple(data), statistic, n_resamples=n_resamples, paired=True, vectorized=True,
                              axis=-1, confidence_level=confidence, method="BCa", rng=rng, batch=_BATCH)
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isfinite(low) and math.isfinite(high):
        return low, high, dist, "BCa"
    low, high = _percentile(dist, confidence)
    return low, high, dist, "percentile"


def _percentile(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(dist, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _draws(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Multinomial resampling weights: (size, n) counts of each of n items in a draw of n."""
    if n == 1:
        return np.ones((size, 1))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)


def _two_level(sides: Sequence[np.ndarray], f: Any, shared_seeds: bool, n_resamples: int,
               rng: np.random.Generator) -> list[np.ndarray]:
    """Two-level bootstrap distributions of each side's mean-over-seeds aggregate.

    Every replicate draws the seeds (one draw for all sides when ``shared_seeds``), then the
    units (one draw for all sides and all seeds), and averages the drawn seeds' aggregates.
    """
    n_units = sides[0].shape[1]
    out = [np.empty(n_resamples) for _ in sides]
    for start in range(0, n_resamples, _BATCH):
        b = min(_BATCH, n_resamples - start)
        w = _draws(rng, n_units, b)
        seed_w = None
        for i, m in enumerate(sides):
            if seed_w is None or not shared_seeds:
                seed_w = _draws(rng, m.shape[0], b)
            vals = f(np.einsum("bu,suk->bsk", w, m))  # (b, seeds)
            out[i][start:start + b] = (vals * seed_w).sum(axis=1) / m.shape[0]
    return out


def estimate(obs: pd.DataFrame, metric: str, aggregation: str = "mean", *, confidence: float = DEFAULT_CONFIDENCE,
             n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Estimate:
    """The aggregate of one experiment with its bootstrap confidence interval.

    Args:
        obs: Observations of one experiment (any number of seeds, the same images each).
        metric: Score column (``ssim``, ``pq`` ...).
        aggregation: ``mean`` or ``pooled`` (DQ/SQ/PQ/AJI/AJI+ only).
        confidence: Confidence level of the interval.
        n_resamples: Bootstrap replicates.
        seed: Seed of the resampling rng.

    Raises:
        ValueError: several experiments, missing columns; NotComparable: seeds on different images.
    """
    _one_experiment(obs)
    _resamples(n_resamples)
    u = _unit_sums(obs, metric, aggregation, experiment_label(obs))
    f = _stat_fn(metric, aggregation)
    value = _value(u, f)
    n_units, n_seeds = len(u.units), len(u.seeds)
    if n_units < 2:
        return Estimate(value, math.nan, math.nan, f"no interval: {n_units} resampling unit", u.n_images, n_seeds)
    rng = _rng(seed)
    pct = f"{confidence:.0%}"
    if n_units < T_INTERVAL_BELOW:
        per_unit = f(u.sums).mean(axis=0)  # (units,): each unit's aggregate, averaged over seeds
        low, high = _t_interval(value, per_unit, confidence)
        if metric in POOLED_METRICS:  # DQ ... AJI+ lie in [0, 1]: so does their true value
            low, high = max(low, 0.0), min(high, 1.0)
        method = (f"{pct} t-interval on {n_units} per-unit values ({n_seeds} seed{'s' if n_seeds > 1 else ''} "
                  f"averaged per unit; fewer than {T_INTERVAL_BELOW} units: the bootstrap undercovers)")
        return Estimate(value, low, high, method, u.n_images, n_seeds)
    if n_seeds == 1:
        data = [u.sums[0, :, j] for j in range(u.sums.shape[2])]
        low, high, _, kind = _scipy_bootstrap(data, lambda *a, axis=-1: f(np.stack([x.sum(axis=axis) for x in a], -1)),
                                              n_resamples, confidence, rng)
        method = (f"{pct} bootstrap ({kind}, scipy.stats.bootstrap) over {n_units} units, "
                  f"{n_resamples} resamples, seed {seed}")
    else:
        (dist,) = _two_level([u.sums], f, True, n_resamples, rng)
        low, high = _percentile(dist, confidence)
        method = (f"{pct} two-level bootstrap (percentile; {n_seeds} seeds, then {n_units} units) "
                  f"{n_resamples} resamples, seed {seed}")
    return Estimate(value, low, high, method, u.n_images, n_seeds)


def _t_interval(center: float, values: np.ndarray, confidence: float) -> tuple[float, float]:
    """``center +- t_{(1+c)/2, n-1} * sd(values) / sqrt(n)``: the small-sample interval (see
    :data:`T_INTERVAL_BELOW`); the point when the values do not vary."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    sd = float(np.std(v, ddof=1)) if n > 1 else math.nan
    if not math.isfinite(sd):
        return math.nan, math.nan
    if sd <= 1e-15 * max(1.0, abs(center)):
        return center, center
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return center - half, center + half


def _resamples(n: int) -> None:
    if int(n) != n or n < 100:
        raise ValueError(f"n_resamples must be an integer of at least 100, got {n}")


# ------------------------------------------------------------------------------ records' columns

def attach_intervals(records: pd.DataFrame, observations: pd.DataFrame | None, *,
                     confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES,
                     seed: int = 0, only_missing: bool = False) -> pd.DataFrame:
    """Fill the estimate columns of every record that has observations.

    Each record row (one experiment, one seed, one metric) is matched to the observations on
    the key columns both tables have (the record's ``aggregation`` key picks ``mean`` or
    ``pooled``; records without it, such as quality records, are ``mean``). Filled:
    ``ci_low``, ``ci_high``, ``ci_method``, ``n_images``, ``n_seeds`` (1: a record is one seed),
    ``test_set``, and ``status`` / ``failure`` when the observations mark the run failed.
    Rows without matching observations, or without the metric's columns, are left as they are;
    a row whose value disagrees with its observations is left without an interval (warning).
    ``only_missing`` keeps the rows that already have an interval (``ci_method`` set) as they are.

    Returns:
        A copy of ``records``.
    """

    out = records.copy()
    if observations is None or len(observations) == 0 or len(out) == 0:
        return out
    obs_keys = obs_key_columns(observations)
    common = [c for c in obs_keys if c in out.columns]
    rec_keys = [c for c in common]
    obs = observations.copy()
    for c in common:
        obs[c] = obs[c].astype(str) if c != "seed" else obs[c].astype("int64")
    groups = {k if isinstance(k, tuple) else (k,): g for k, g in obs.groupby(common, sort=False, dropna=False)}
    if "ci_method" not in out.columns:
        out = validate_records(out)
    for c in ("ci_low", "ci_high"):
        out[c] = out[c].astype("float64")
    for c in ("ci_method", "status", "failure", "test_set"):
        out[c] = out[c].astype(object)
    for i, row in out.iterrows():
        if only_missing and str(row["ci_method"]):
            continue
        key = tuple(int(row[c]) if c == "seed" else str(row[c]) for c in rec_keys)
        g = groups.get(key)
        if g is None:
            continue
        rest = [c for c in obs_keys if c not in common and g[c].nunique(dropna=False) > 1]
        if rest:
            raise ValueError(f"records of {row['model']} {row['train_set']} seed {row['seed']} match observations "
                             f"of several experiments (they differ in {', '.join(rest)}, a key the records lack)")
        if (g["status"] == "failed").any():
            out.at[i, "status"] = "failed"
            out.at[i, "failure"] = str(g.loc[g["status"] == "failed", "failure"].iloc[0]) or "failed run"
        agg = str(row.get("aggregation", "") or "mean")
        metric = str(row["metric"])
        if agg not in AGGREGATIONS or (agg == "pooled" and metric not in POOLED_METRICS):
            continue
        needed = [metric] if agg == "mean" else list(POOLED_STATS)
        if any(c not in g.columns or g[c].isna().all() for c in needed):
            continue
        est = estimate(g, metric, agg, confidence=confidence, n_resamples=n_resamples, seed=seed)
        if not _close(est.value, float(row["value"])):
            warnings.warn(f"record {row['model']} {row['train_set']} seed {row['seed']} {metric} = {row['value']!r} "
                          f"but its observations give {est.value!r}: no interval attached", stacklevel=2)
            continue
        out.at[i, "ci_low"], out.at[i, "ci_high"] = est.ci_low, est.ci_high
        out.at[i, "ci_method"] = est.method
        out.at[i, "n_images"], out.at[i, "n_seeds"] = est.n_images, est.n_seeds
        ts = sorted(set(g["test_set"]) - {""})
        if ts:
            out.at[i, "test_set"] = ts[0]
    return validate_records(out)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


# -------------------------------------------------------------------------------- differences

def _check_status(obs: pd.DataFrame, label: str) -> None:
    if "status" in obs.columns and (obs["status"] == "failed").any():
        why = str(obs.loc[obs["status"] == "failed", "failure"].iloc[0]) if "failure" in obs.columns else ""
        raise FailedRun(f"{label} is a failed run" + (f" ({why})" if why else ""))


def _pair(obs_a: pd.DataFrame, obs_b: pd.DataFrame, metric: str, aggregation: str) -> tuple[_Units, _Units]:
    la, lb = experiment_label(obs_a), experiment_label(obs_b)
    if la == lb:
        la, lb = "a", "b"
    for o, lab in ((obs_a, la), (obs_b, lb)):
        _one_experiment(o, f"observations of {lab}")
        _check_status(o, lab)
    ua = _unit_sums(obs_a, metric, aggregation, la)
    if ua.test_set and "test_set" in obs_b.columns:
        hb = sorted(set(obs_b["test_set"]) - {""})
        if hb and hb != [ua.test_set]:
            raise NotComparable(f"{la} and {lb} were tested on different test sets "
                                f"({ua.test_set} vs {', '.join(hb)})")
    images_b = frozenset(obs_b["image"])
    if images_b != ua.images:
        only_a, only_b = len(ua.images - images_b), len(images_b - ua.images)
        raise NotComparable(f"{la} and {lb} were tested on different images ({only_a} only in {la}, "
                            f"{only_b} only in {lb})")
    unit_b = dict(zip(obs_b["image"], obs_b["unit"]))
    clash = [im for im in ua.images if unit_b[im] != ua.unit_of[im]]
    if clash:
        raise NotComparable(f"{la} and {lb} group image {sorted(clash)[0]!r} into different resampling units")
    ub = _unit_sums(obs_b, metric, aggregation, lb, units=ua.units)
    if ub.test_set and ua.test_set and ub.test_set != ua.test_set:
        raise NotComparable(f"{la} and {lb} were tested on different test sets ({ua.test_set} vs {ub.test_set})")
    return ua, ub


def paired_difference(obs_a: pd.DataFrame, obs_b: pd.DataFrame, metric: str, aggregation: str = "mean", *,
                      test: str = "permutation", margin: float | None = None, confidence: float = DEFAULT_CONFIDENCE,
                      n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Difference:
    """``a - b`` on ``metric``, paired on the same test images, with its CI and p-value.

    Args:
        obs_a, obs_b: Observations of the two experiments (each any number of seeds).
        metric: Score column; aggregation: ``mean`` or ``pooled``.
        test: ``permutation`` (sign-flip), ``bootstrap`` or ``wilcoxon`` (mean only); ignored
            for the p-value when ``margin`` is set (one-sided bootstrap non-inferiority p).
        margin: Non-inferiority margin (absolute, >= 0), or None for a two-sided test of no
            difference.
        confidence, n_resamples, seed: Bootstrap settings (the rng is seeded: same data, same
            numbers).

    Raises:
        NotComparable: different test sets, images or resampling units (one-line reason).
        FailedRun: a side is a failed run. ValueError: unknown test, wilcoxon with pooled.
    """

    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    if test == "wilcoxon" and aggregation != "mean" and margin is None:
        raise ValueError("the Wilcoxon test needs per-image scores: use aggregation 'mean' (or the permutation test)")
    if margin is not None and (not math.isfinite(margin) or margin < 0):
        raise ValueError(f"margin must be a non-negative number, got {margin}")
    _resamples(n_resamples)
    ua, ub = _pair(obs_a, obs_b, metric, aggregation)
    f = _stat_fn(metric, aggregation)
    a, b = _value(ua, f), _value(ub, f)
    diff = a - b
    matched = ua.seeds == ub.seeds
    n_units = len(ua.units)
    n_seeds = len(ua.seeds) if matched else min(len(ua.seeds), len(ub.seeds))
    rng = _rng(seed)
    pct = f"{confidence:.0%}"
    seeds_text = (f"{len(ua.seeds)} matched seed{'s' if len(ua.seeds) > 1 else ''}" if matched
                  else f"{len(ua.seeds)} vs {len(ub.seeds)} seeds, unmatched")
    one_sided = margin is not None
    floor = smallest_p(n_units, test="permutation" if one_sided else test, one_sided=one_sided,
                       n_resamples=n_resamples)
    if n_units < 2:
        return Difference(metric, aggregation, a, b, diff, math.nan, math.nan, math.nan, math.nan, test,
                          f"no interval: {n_units} resampling unit", ua.n_images, n_seeds, margin, n_units,
                          math.nan, floor, floor)
    d_units = f(ua.sums).mean(axis=0) - f(ub.sums).mean(axis=0)  # per-unit differences, seeds averaged
    unit_sd = float(np.std(d_units, ddof=1))
    small = n_units < T_INTERVAL_BELOW
    dist: np.ndarray | None = None
    if small:
        low, high = _t_interval(diff, d_units, confidence)
        if metric in POOLED_METRICS:  # a difference of two scores in [0, 1]
            low, high = max(low, -1.0), min(high, 1.0)
        method = (f"{pct} t-interval on {n_units} per-unit paired differences ({seeds_text}, averaged per unit; "
                  f"fewer than {T_INTERVAL_BELOW} units: the bootstrap undercovers)")
        if test == "bootstrap" and margin is None:
            da, db = _two_level([ua.sums, ub.sums], f, matched, n_resamples, rng)
            dist = da - db
    elif len(ua.seeds) == 1 and len(ub.seeds) == 1:
        k = ua.sums.shape[2]
        data = [ua.sums[0, :, j] for j in range(k)] + [ub.sums[0, :, j] for j in range(k)]

        def dstat(*arrs: np.ndarray, axis: int = -1) -> np.ndarray:
            sa = np.stack([x.sum(axis=axis) for x in arrs[:k]], -1)
            sb = np.stack([x.sum(axis=axis) for x in arrs[k:]], -1)
            return f(sa) - f(sb)

        low, high, dist, kind = _scipy_bootstrap(data, dstat, n_resamples, confidence, rng)
        method = (f"{pct} paired bootstrap ({kind}, scipy.stats.bootstrap) over {n_units} units, "
                  f"{n_resamples} resamples, seed {seed}")
    else:
        da, db = _two_level([ua.sums, ub.sums], f, matched, n_resamples, rng)
        dist = da - db
        low, high = _percentile(dist, confidence)
        method = (f"{pct} paired two-level bootstrap (percentile; {seeds_text}, then {n_units} shared units), "
                  f"{n_resamples} resamples, seed {seed}")
    if dist is not None and not small and np.ptp(dist) <= 1e-15 * max(1.0, abs(diff)):
        low = high = diff  # nothing varies: the interval is the point
    if margin is not None:
        sign = 1.0 if higher_is_better(metric) else -1.0
        if small:  # one-sided t-test of the oriented difference against -margin
            se = unit_sd / math.sqrt(n_units)
            shifted = sign * diff + margin
            p = (0.0 if shifted > 0 else 1.0) if se <= 0 else float(stats.t.sf(shifted / se, n_units - 1))
            test_name = f"non-inferiority (one-sided t-test on per-unit differences, margin {margin:g})"
        else:
            assert dist is not None
            p = float((1 + np.sum(sign * dist <= -margin)) / (len(dist) + 1))
            test_name = f"non-inferiority (one-sided bootstrap, margin {margin:g})"
    elif test == "bootstrap":
        assert dist is not None
        n_b = len(dist)
        p = float(min(1.0, 2 * min((1 + np.sum(dist <= 0)) / (n_b + 1), (1 + np.sum(dist >= 0)) / (n_b + 1))))
        test_name = "paired bootstrap"
    elif test == "permutation":
        p = _permutation_p(ua, ub, f, matched, n_resamples, rng)
        exact = 2 ** n_units <= n_resamples
        test_name = f"sign-flip permutation ({'exact' if exact else f'{n_resamples} resamples'})"
    else:
        d = _unit_means(ua, ub, matched)
        if np.all(d == 0):
            p = 1.0
        else:
            p = float(stats.wilcoxon(d).pvalue)
        test_name = "Wilcoxon signed-rank (per-unit differences)"
    return Difference(metric, aggregation, a, b, diff, float(low), float(high), p, p, test_name, method,
                      ua.n_images, n_seeds, margin, n_units, unit_sd, floor, floor)


def smallest_p(n_units: int, *, test: str = "permutation", one_sided: bool = False, n_tests: int = 1,
               n_resamples: int = DEFAULT_RESAMPLES) -> float:
    """The smallest p-value a paired design of ``n_units`` test units can reach, Holm-corrected.

    Rule: the exact sign-flip distribution of ``n`` units has ``2**n`` equally likely sign
    patterns, so no paired test of them can give less than ``1 / 2**n`` one-sided or ``2 / 2**n``
    two-sided (the observed pattern and its mirror). A randomized permutation test
    (``2**n > n_resamples``) cannot go below ``(1 or 2) / (n_resamples + 1)``. Seeds do not add
    sign patterns: every seed is scored on the same test images, and a flip swaps a unit's sides
    in all seeds at once. The same floor is applied to the bootstrap and Wilcoxon tests (their
    smaller p-values on a few units come from intervals that undercover, see
    :data:`T_INTERVAL_BELOW`). Holm over ``n_tests`` metrics multiplies the smallest p by
    ``n_tests``: a claim can only be decided when ``n_tests * p_min < alpha``.

    Example:
        >>> smallest_p(5)  # CPM-15's 5 test tiles, two-sided
        0.0625
        >>> smallest_p(4, one_sided=True, n_tests=4)
        0.25
    """
    if n_units < 1:
        return 1.0
    k = 1.0 if one_sided else 2.0
    p = k / 2.0 ** n_units
    if test == "permutation" and 2 ** n_units > n_resamples:
        p = max(p, k / (n_resamples + 1))
    return float(min(1.0, n_tests * p))


def units_for_power(d: Difference, alpha: float = 0.05, n_tests: int = 1, power: float = DEFAULT_POWER) -> float:
    """A rough number of test units that would detect the observed paired effect at ``power``.

    Method: normal approximation on the paired per-unit differences, ``n = ((z_{1-a} + z_power) *
    sd / effect)^2`` with ``sd`` their standard deviation (:attr:`Difference.unit_sd`) and
    ``effect`` the observed difference (plus the margin, oriented, for non-inferiority). ``a`` is
    Holm's worst case ``alpha / n_tests``, two-sided for superiority (``alpha / (2 n_tests)``),
    one-sided for non-inferiority. Rounded up; at least 2; ``inf`` when the effect is 0 or on the
    wrong side of the margin; NaN without a unit spread. Rough by design: it takes the observed
    effect and spread as the truth.
    """
    if not (0 < power < 1):
        raise ValueError(f"power must lie in (0, 1), got {power}")
    sd = d.unit_sd
    if not math.isfinite(sd) or sd <= 0:
        return math.nan
    diff, _, _ = oriented(d.metric, d.diff, d.ci_low, d.ci_high)
    if d.margin is not None:
        effect, a = diff + d.margin, alpha / n_tests
    else:
        effect, a = abs(diff), alpha / (2 * n_tests)
    if effect <= 0:
        return math.inf
    z = float(stats.norm.ppf(1 - a) + stats.norm.ppf(power))
    return float(max(2, math.ceil((z * sd / effect) ** 2)))


def _per_unit(ua: _Units, ub: _Units, matched: bool) -> tuple[np.ndarray, np.ndarray]:
    """(units, seeds, K) tables of both sides: seeds kept paired, or averaged per unit."""
    if matched:
        return np.moveaxis(ua.sums, 0, 1), np.moveaxis(ub.sums, 0, 1)
    return ua.sums.mean(axis=0)[:, None, :], ub.sums.mean(axis=0)[:, None, :]


def _permutation_p(ua: _Units, ub: _Units, f: Any, matched: bool, n_resamples: int,
                   rng: np.random.Generator) -> float:
    """Sign-flip permutation test of the aggregate difference via scipy.stats.permutation_test.

    The samples are unit indices into one lookup table (a's units, then b's), so a flip swaps
    every statistic of a unit (all seeds, all sums) at once.
    """

    ta, tb = _per_unit(ua, ub, matched)
    table = np.concatenate([ta, tb], axis=0)  # (2U, S, K)
    n = ta.shape[0]

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        sa = table[np.asarray(x, dtype=np.intp)].sum(axis=-3)  # (..., S, K)
        sb = table[np.asarray(y, dtype=np.intp)].sum(axis=-3)
        return (f(sa) - f(sb)).mean(axis=-1)

    res = stats.permutation_test((np.arange(n), np.arange(n) + n), statistic, permutation_type="samples",
                                 vectorized=True, n_resamples=n_resamples, batch=_BATCH, rng=rng)
    return float(min(1.0, res.pvalue))


def _unit_means(ua: _Units, ub: _Units, matched: bool) -> np.ndarray:
    """Per-unit differences of the mean score (mean aggregation), averaged over seeds."""
    ta, tb = _per_unit(ua, ub, matched)
    ma = (ta[..., 0] / ta[..., 1]).mean(axis=1)
    mb = (tb[..., 0] / tb[..., 1]).mean(axis=1)
    return ma - mb


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN and is not counted).

    The i-th smallest of m p-values becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    p = np.asarray(list(pvalues), dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out.tolist()


def compare_experiments(obs_a: pd.DataFrame, obs_b: pd.DataFrame, metrics: Sequence[str], aggregation: str = "mean",
                        *, test: str = "permutation", margin: float | None = None, alpha: float = 0.05,
                        confidence: float = DEFAULT_CONFIDENCE, n_resamples: int = DEFAULT_RESAMPLES,
                        seed: int = 0) -> list[Difference]:
    """:func:`paired_difference` on each metric, p-values Holm-adjusted across the metrics.

    ``alpha`` is not used for the numbers (it is the level :func:`metric_verdict` reads them at);
    it is accepted so callers state it in one place.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    diffs = [paired_difference(obs_a, obs_b, m, aggregation if m in POOLED_METRICS else "mean", test=test,
                               margin=margin, confidence=confidence, n_resamples=n_resamples, seed=seed)
             for m in metrics]
    adjusted = holm([d.p for d in diffs])
    m = len(diffs)
    return [replace(d, p_adjusted=float(q), min_p_adjusted=float(min(1.0, m * d.min_p)))
            for d, q in zip(diffs, adjusted)]


def metric_verdict(d: Difference, alpha: float = 0.05) -> str:
    """One metric's verdict for "a is better than b" (or "a is not worse", with a margin).

    ``undecidable`` first, whatever the numbers: the design cannot reach ``alpha`` (its smallest
    possible p after Holm, :attr:`Difference.min_p_adjusted`, see :func:`smallest_p`, is at least
    ``alpha``), so neither a success nor a failure of the claim can be shown. Then, without a
    margin: ``better`` (Holm p < alpha and the CI excludes 0 on the better side), ``worse`` (the
    same on the worse side), else ``not significant``. With a margin: ``non-inferior`` (the CI's
    worse end lies above -margin), ``inferior`` (the whole CI lies below -margin), else
    ``inconclusive``. ``untested`` when there is no interval.
    """
    if not math.isnan(d.min_p_adjusted) and d.min_p_adjusted >= alpha:
        return "undecidable"
    diff, low, high = d.oriented()
    if math.isnan(low) or math.isnan(high):
        return "untested"
    if d.margin is not None:
        if low > -d.margin:
            return "non-inferior"
        if high < -d.margin:
            return "inferior"
        return "inconclusive"
    significant = not math.isnan(d.p_adjusted) and d.p_adjusted < alpha
    if significant and low > 0:
        return "better"
    if significant and high < 0:
        return "worse"
    return "not significant"


# ------------------------------------------------------------------ probability of improvement

@dataclass(frozen=True)
class Improvement:
    """P(a > b) on one metric (rliable's probability of improvement) with its bootstrap CI.

    Attributes:
        metric, aggregation: What was compared (``a > b`` means better in the metric's direction).
        value: The probability, in [0, 1] (0.5: no tendency).
        ci_low, ci_high: Stratified percentile bootstrap interval.
        method: How it was made; n_units, seeds_a, seeds_b: what it rests on; strata: datasets.
    """

    metric: str
    aggregation: str
    value: float
    ci_low: float
    ci_high: float
    method: str
    n_units: int
    seeds_a: int
    seeds_b: int
    strata: int = 1


def probability_of_improvement(pairs: Sequence[tuple[pd.DataFrame, pd.DataFrame]], metric: str,
                               aggregation: str = "mean", *, confidence: float = DEFAULT_CONFIDENCE,
                               n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Improvement:
    """Probability of improvement P(a > b) over training seeds and test units, with a CI.

    rliable's definition (Agarwal et al. 2021, ``rliable.metrics.probability_of_improvement``): a
    *task* is one test unit; on task ``u`` with ``N`` runs (seeds) of ``a`` and ``K`` of ``b``,
    ``P_u = 1/(N K) sum_i sum_j S(x_ui, y_uj)``, ``S = 1`` when ``a``'s unit score is better, ``1/2``
    on a tie, 0 otherwise (unit score: the unit's aggregate, as in :func:`estimate`); P(a > b) is
    the mean of ``P_u`` over the tasks of a stratum, then over the strata (one per data set: pass
    one ``(obs_a, obs_b)`` pair per data set). CI: rliable's stratified bootstrap, each replicate
    resampling the seeds of each side and the units within each stratum (percentile interval).

    Args:
        pairs: ``(obs_a, obs_b)`` per stratum (data set), each paired on the same test images.
        metric, aggregation: as :func:`paired_difference`.

    Raises:
        NotComparable / FailedRun / ValueError: as :func:`paired_difference`.
    """
    if not pairs:
        raise ValueError("probability_of_improvement needs at least one (a, b) pair of observations")
    _resamples(n_resamples)
    f = _stat_fn(metric, aggregation)
    sign = 1.0 if higher_is_better(metric) else -1.0
    cmps, seeds_a, seeds_b, n_units = [], set(), set(), 0
    for obs_a, obs_b in pairs:
        ua, ub = _pair(obs_a, obs_b, metric, aggregation)
        xa, xb = f(ua.sums).T, f(ub.sums).T  # (units, seeds)
        d = sign * (xa[:, :, None] - xb[:, None, :])
        cmps.append(np.where(d > 0, 1.0, np.where(d == 0, 0.5, 0.0)))  # (U, Sa, Sb)
        seeds_a.add(len(ua.seeds))
        seeds_b.add(len(ub.seeds))
        n_units += len(ua.units)
    if len(seeds_a) > 1 or len(seeds_b) > 1:
        raise ValueError("probability_of_improvement: every stratum needs the same seeds per side")
    na, nb = seeds_a.pop(), seeds_b.pop()
    value = float(np.mean([c.mean() for c in cmps]))
    rng = _rng(seed)
    reps = np.zeros(n_resamples)
    for start in range(0, n_resamples, _BATCH):
        size = min(_BATCH, n_resamples - start)
        wa = _draws(rng, na, size) / na
        wb = _draws(rng, nb, size) / nb
        total = np.zeros(size)
        for c in cmps:
            wu = _draws(rng, c.shape[0], size) / c.shape[0]
            total += np.einsum("bu,bi,uij,bj->b", wu, wa, c, wb)
        reps[start:start + size] = total / len(cmps)
    low, high = _percentile(reps, confidence)
    method = (f"{confidence:.0%} stratified bootstrap (rliable: seeds of each side and units within "
              f"{len(cmps)} stratum{'s' if len(cmps) > 1 else ''} resampled; percentile), {n_resamples} resamples, "
              f"seed {seed}")
    return Improvement(metric, aggregation, value, low, high, method, n_units, na, nb, len(cmps))


# ---------------------------------------------------------------------- set statistics (FID ...)

@dataclass(frozen=True)
class SetReplicates:
    """Bootstrap replicates of one set statistic (FID, KID, ...) of one experiment.

    Attributes:
        metric: The statistic; value: its value on the full sets (the record value).
        replicates: ``(B,)`` values on resampled sets; replicate ``k`` of two experiments scored
            against the same real set used the same real resample when their ``real_draw`` match.
        real_draw: Key of the real resample (real set, its size, the rng seed, B).
        n_real, n_fake: Set sizes.
    """

    metric: str
    value: float
    replicates: np.ndarray
    real_draw: str
    n_real: int
    n_fake: int


def set_replicates(replicates: pd.DataFrame, metric: str, value: float | None = None) -> SetReplicates:
    """The :class:`SetReplicates` of ``metric`` for one experiment's rows of a replicate table
    (:func:`gbench.core.observations.load_replicates`: replicate ``-1`` holds the full-set value,
    ``0..B-1`` the bootstrap replicates); ``value`` overrides the full-set value (the record's).

    Raises:
        ValueError: no replicates of ``metric``, or several experiments / real resamples.
    """
    if metric not in replicates.columns or replicates[metric].isna().all():
        raise ValueError(f"no bootstrap replicates of {metric}")
    draws = set(replicates["real_draw"].astype(str))
    if len(draws) != 1 or replicates["replicate"].duplicated().any():
        raise ValueError(f"{metric}: replicates of several experiments or real resamples")
    full = replicates[replicates["replicate"] < 0]
    if value is None:
        if full.empty:
            raise ValueError(f"{metric}: no full-set value among the replicates")
        value = float(full[metric].iloc[0])
    r = replicates[replicates["replicate"] >= 0].sort_values("replicate")
    return SetReplicates(metric, float(value), r[metric].to_numpy(dtype=np.float64), draws.pop(),
                         int(r["n_real"].iloc[0]) if "n_real" in r.columns else 0,
                         int(r["n_fake"].iloc[0]) if "n_fake" in r.columns else 0)


def set_difference(a: SetReplicates, b: SetReplicates, *, margin: float | None = None,
                   confidence: float = DEFAULT_CONFIDENCE) -> Difference:
    """``a - b`` of a set statistic of two generators scored against the same real set.

    Both bootstraps share the real resample (replicate ``k`` of each used the same real images,
    :func:`gbench.metrics.distribution.bootstrap_set_metrics`), so ``a_k - b_k`` is a paired
    bootstrap replicate of the difference. CI: percentile of ``a_k - b_k``. p: the two-sided
    bootstrap p ``2 * min(P*(d <= 0), P*(d >= 0))`` with the ``(1 + count) / (1 + B)`` correction,
    re-centred on 0 (``d_k - mean(d)`` compared with ``|diff|``, the test of no difference); with a
    margin the one-sided ``(1 + #{oriented d_k <= -margin}) / (1 + B)``. The design's smallest p
    is ``2 / (B + 1)`` (one-sided ``1 / (B + 1)``).

    Raises:
        NotComparable: different metrics, real resamples or replicate counts.
    """
    if a.metric != b.metric:
        raise NotComparable(f"set statistics differ ({a.metric} vs {b.metric})")
    if a.real_draw != b.real_draw or len(a.replicates) != len(b.replicates):
        raise NotComparable(f"{a.metric}: the two sides were not bootstrapped against the same real resample "
                            "(different real sets, sizes, seeds or resample counts)")
    d = np.asarray(a.replicates, dtype=np.float64) - np.asarray(b.replicates, dtype=np.float64)
    diff = a.value - b.value
    n_b = len(d)
    low, high = _percentile(d, confidence)
    if margin is not None:
        sign = 1.0 if higher_is_better(a.metric) else -1.0
        p = float((1 + np.sum(sign * d <= -margin)) / (n_b + 1))
        test = f"non-inferiority (one-sided bootstrap over images, margin {margin:g})"
        floor = 1.0 / (n_b + 1)
    else:
        centred = np.abs(d - d.mean())
        p = float(min(1.0, (1 + np.sum(centred >= abs(diff))) / (n_b + 1)))
        test = "paired bootstrap over images (shared real resample)"
        floor = 2.0 / (n_b + 1)
    method = (f"{confidence:.0%} paired bootstrap over images (percentile; both sets resampled, the real resample "
              f"shared), {n_b} resamples")
    return Difference(a.metric, "set", a.value, b.value, diff, low, high, p, p, test, method, a.n_real,
                      1, margin, min(a.n_real, a.n_fake, b.n_fake), math.nan, floor, floor)
