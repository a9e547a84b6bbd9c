"""``gbench compare``: two experiments, paired on the same test images, metric by metric.

Verdicts per metric (:func:`gbench.core.stats.metric_verdict`): ``better`` / ``worse`` / ``not
significant`` (or, with a margin, ``non-inferior`` / ``inferior`` / ``inconclusive``), and
``undecidable`` when the design's smallest possible p after Holm (:func:`gbench.core.stats.smallest_p`)
is not below alpha. A not-significant metric gets a rough number of test units for 80% power
(:func:`gbench.core.stats.units_for_power`). Set statistics (FID, KID, precision/recall,
density/coverage) are compared on their stored bootstrap replicates (``replicates.csv``; both
sides bootstrapped against the same real resample: :func:`gbench.core.stats.set_difference`),
in the same Holm family. With several seeds on a side every per-image metric also gets P(a > b)
(:func:`gbench.core.stats.probability_of_improvement`).

Select each side by ``KEY=VALUE`` on the observation keys (``model=unet``, ``train_set=R+S3k``,
``dataset=cpm17``, ``seed=0`` ...); every selection must name exactly one experiment (any seeds).
The comparison is :func:`gbench.core.stats.compare_experiments`: per metric ``a``, ``b``, ``a - b``,
its 95% paired-bootstrap CI, the p-value of the chosen test, the Holm-adjusted p across the
metrics and the metric's verdict (:func:`gbench.core.stats.metric_verdict`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

import math
from dataclasses import replace

from gbench.core import stats
from gbench.core.metric_specs import metric_label, metric_names, sort_metrics
from gbench.core.observations import POOLED_STATS, SCORE_COLUMNS, obs_key_columns
from gbench.core.stats import POOLED_METRICS, metric_verdict
from gbench.reports.tables import arrow

__all__ = ["parse_selection", "select_experiment", "default_metrics", "compare_frame", "comparison_rich",
           "compare_selected", "improvements"]

#: Set statistics: compared on their bootstrap replicates (``replicates.csv``), not per image.
SET_METRICS: tuple[str, ...] = metric_names("distribution")


def parse_selection(items: Sequence[str], option: str) -> dict[str, str]:
    """``["model=unet", "train_set=R,seed=0"]`` -> ``{"model": "unet", "train_set": "R", "seed": "0"}``."""
    out: dict[str, str] = {}
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{option} {part!r}: expected KEY=VALUE (e.g. {option} model=unet)")
            out[key.strip()] = value.strip()
    if not out:
        raise ValueError(f"{option}: select the experiment with KEY=VALUE (e.g. {option} model=unet "
                         f"{option} train_set=R)")
    return out


def select_experiment(obs: pd.DataFrame, selection: dict[str, str], option: str) -> pd.DataFrame:
    """The observations of the one experiment ``selection`` names (all its seeds).

    Raises:
        ValueError: an unknown key, no match, or several experiments (one line, with what differs).
    """
    keys = obs_key_columns(obs)
    unknown = [k for k in selection if k not in keys]
    if unknown:
        raise ValueError(f"{option}: unknown key {unknown[0]!r} (keys: {', '.join(keys)})")
    sub = obs
    for k, v in selection.items():
        sub = sub[sub[k].astype(str) == v]
        if sub.empty:
            have = sorted(set(obs[k].astype(str)))
            text = " ".join(f"{kk}={vv}" for kk, vv in selection.items())
            raise ValueError(f"{option} {text}: no observations match ({k} takes {', '.join(have[:8])}"
                             f"{' ...' if len(have) > 8 else ''})")
    varying = [c for c in keys if c != "seed" and sub[c].nunique() > 1]
    if varying:
        text = " ".join(f"{kk}={vv}" for kk, vv in selection.items())
        c = varying[0]
        values = sorted(set(sub[c].astype(str)))
        raise ValueError(f"{option} {text}: ambiguous, matches {sub.groupby(varying).ngroups} experiments that "
                         f"differ in {', '.join(varying)} ({c}: {', '.join(values[:6])}); add e.g. "
                         f"{option} {c}={values[0]}")
    return sub


def default_metrics(a: pd.DataFrame, b: pd.DataFrame, aggregation: str) -> list[str]:
    """The score metrics both sides have (pooled: those with a pooled aggregate and the pooled sums)."""

    common = [m for m in SCORE_COLUMNS if m in a.columns and m in b.columns and a[m].notna().all()
              and b[m].notna().all()]
    if aggregation == "pooled":
        if not all(c in a.columns and c in b.columns for c in POOLED_STATS):
            raise ValueError("pooled aggregation needs the pooled statistics (tp, fp, fn, ...): these "
                             "observations lack them")
        common = [m for m in POOLED_METRICS]
    if not common:
        raise ValueError("the two experiments share no per-image metric")
    return sort_metrics(common)


def compare_selected(obs_a: pd.DataFrame, obs_b: pd.DataFrame, metrics: Sequence[str], aggregation: str = "mean", *,
                     replicates: pd.DataFrame | None = None, sel_a: dict[str, str] | None = None,
                     sel_b: dict[str, str] | None = None, test: str = "permutation", margin: float | None = None,
                     alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0) -> list[Any]:
    """:func:`gbench.core.stats.compare_experiments` on the per-image metrics and
    :func:`gbench.core.stats.set_difference` on the set statistics (from ``replicates``, the rows
    ``sel_a`` / ``sel_b`` select), Holm-adjusted together across every metric.

    Raises:
        ValueError: a set statistic without replicates of both sides (one line).
    """
    sets = [m for m in metrics if m in SET_METRICS and not (m in obs_a.columns and obs_a[m].notna().all())]
    per_image = [m for m in metrics if m not in sets]
    diffs = list(stats.compare_experiments(obs_a, obs_b, per_image, aggregation, test=test, margin=margin,
                                           alpha=alpha, n_resamples=n_resamples, seed=seed)) if per_image else []
    if sets:
        if replicates is None or sel_a is None or sel_b is None:
            raise ValueError(f"{', '.join(sets)}: set statistics need their bootstrap replicates (replicates.csv "
                             "beside the records, written by gbench quality --extractor)")
        ra, rb = select_experiment(replicates, sel_a, "--a"), select_experiment(replicates, sel_b, "--b")
        for m in sets:
            diffs.append(stats.set_difference(stats.set_replicates(ra, m), stats.set_replicates(rb, m),
                                              margin=margin))
    adjusted = stats.holm([d.p for d in diffs])
    k = len(diffs)
    return [replace(d, p_adjusted=float(q), min_p_adjusted=float(min(1.0, k * d.min_p)))
            for d, q in zip(diffs, adjusted)]


def improvements(obs_a: pd.DataFrame, obs_b: pd.DataFrame, diffs: Sequence[Any], *, n_resamples: int = 2000,
                 seed: int = 0) -> dict[str, Any]:
    """P(a > b) per per-image metric when a side has several seeds (empty otherwise)."""
    if max(obs_a["seed"].nunique(), obs_b["seed"].nunique()) < 2:
        return {}
    out = {}
    for d in diffs:
        if d.aggregation == "set":
            continue
        try:
            out[d.metric] = stats.probability_of_improvement([(obs_a, obs_b)], d.metric, d.aggregation,
                                                             n_resamples=n_resamples, seed=seed)
        except ValueError:
            continue
    return out


def compare_frame(diffs: Sequence[Any], alpha: float = 0.05, improvement: dict[str, Any] | None = None
                  ) -> pd.DataFrame:
    """One row per metric: a, b, diff, ci_low, ci_high, p, p_holm, verdict, test, ci_method, images, seeds,
    units, the design's smallest Holm p, units for 80% power (not significant), P(a > b) and its CI."""

    improvement = improvement or {}
    rows = []
    for d in diffs:
        v = metric_verdict(d, alpha)
        pi = improvement.get(d.metric)
        rows.append({"metric": d.metric, "aggregation": d.aggregation, "a": d.a, "b": d.b, "diff": d.diff,
                     "ci_low": d.ci_low, "ci_high": d.ci_high, "p": d.p, "p_holm": d.p_adjusted,
                     "verdict": v, "test": d.test, "ci_method": d.method,
                     "n_images": d.n_images, "n_seeds": d.n_seeds, "margin": d.margin, "n_units": d.n_units,
                     "min_p_holm": d.min_p_adjusted,
                     "units_for_80pct_power": stats.units_for_power(d, alpha, len(diffs))
                     if v in ("not significant", "inconclusive") else math.nan,
                     "p_improvement": pi.value if pi else math.nan,
                     "p_improvement_ci_low": pi.ci_low if pi else math.nan,
                     "p_improvement_ci_high": pi.ci_high if pi else math.nan})
    return pd.DataFrame(rows)


def _p(p: float) -> str:
    return "–" if p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_rich(diffs: Sequence[Any], label_a: str, label_b: str, alpha: float = 0.05,
                    precision: int = 3, improvement: dict[str, Any] | None = None) -> Any:
    """A rich table of a paired comparison (verdicts coloured; test and CI method in the caption;
    the design's smallest p when undecidable; units for 80% power when not significant; P(a > b)
    with several seeds)."""


    colour = {"better": "green", "non-inferior": "green", "worse": "red", "inferior": "red",
              "undecidable": "magenta"}
    improvement = improvement or {}
    d0 = diffs[0]
    caption = (f"p: {d0.test}; Holm over {len(diffs)} metric{'s' if len(diffs) > 1 else ''}, alpha {alpha:g}; "
               f"CI: {d0.method}; {d0.n_images} paired images")
    verdicts = [metric_verdict(d, alpha) for d in diffs]
    if "undecidable" in verdicts:
        d = diffs[verdicts.index("undecidable")]
        caption += (f"\nundecidable: {d.n_units} test units (smallest possible p = {d.min_p_adjusted:.3g} after "
                    f"Holm, not below alpha {alpha:g}): no result could be significant; more test units decide")
    power = {d.metric: stats.units_for_power(d, alpha, len(diffs)) for d, v in zip(diffs, verdicts)
             if v in ("not significant", "inconclusive")}
    power = {m: n for m, n in power.items() if not math.isnan(n)}
    if power:
        caption += ("\ntest units for 80% power on the observed effect (normal approximation on the per-unit paired "
                    "differences): " + ", ".join(f"{metric_label(m)} "
                                                 + ("more than 10^6" if n > 1e6 else f"~{int(n)}")
                                                 for m, n in power.items()))
    if improvement:
        caption += ("\nP(a>b): " + ", ".join(f"{metric_label(m)} {pi.value:.2f} [{pi.ci_low:.2f}, {pi.ci_high:.2f}]"
                                           for m, pi in improvement.items())
                    + f" ({next(iter(improvement.values())).method})")
    table = Table(title=escape(f"a = {label_a}   vs   b = {label_b}"), caption=escape(caption),
                  caption_justify="left", box=None, pad_edge=False, header_style="bold underline")
    for name in ("Metric", "a", "b", "a − b", "95% CI", "p", "Holm p", "verdict"):
        table.add_column(name, justify="left" if name in ("Metric", "verdict") else "right",
                         no_wrap=True)
    for d, v in zip(diffs, verdicts):
        table.add_row(f"{metric_label(d.metric)} {arrow(d.metric)}".rstrip(), f"{d.a:.{precision}f}",
                      f"{d.b:.{precision}f}", f"{d.diff:+.{precision}f}",
                      f"[{d.ci_low:+.{precision}f}, {d.ci_high:+.{precision}f}]", _p(d.p), _p(d.p_adjusted),
                      f"[{colour.get(v, 'yellow')}]{escape(v)}[/]")
    return table
