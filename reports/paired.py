"""``gbench compare``: two experiments, paired on the same test images, metric by metric.

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

from gbench.core.metric_specs import metric_label, sort_metrics
from gbench.core.observations import POOLED_STATS, SCORE_COLUMNS, obs_key_columns
from gbench.core.stats import POOLED_METRICS, metric_verdict
from gbench.reports.tables import arrow

__all__ = ["parse_selection", "select_experiment", "default_metrics", "compare_frame", "comparison_rich"]


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


def compare_frame(diffs: Sequence[Any], alpha: float = 0.05) -> pd.DataFrame:
    """One row per metric: a, b, diff, ci_low, ci_high, p, p_holm, verdict, test, ci_method, images, seeds."""

    return pd.DataFrame([{"metric": d.metric, "aggregation": d.aggregation, "a": d.a, "b": d.b, "diff": d.diff,
                          "ci_low": d.ci_low, "ci_high": d.ci_high, "p": d.p, "p_holm": d.p_adjusted,
                          "verdict": metric_verdict(d, alpha), "test": d.test, "ci_method": d.method,
                          "n_images": d.n_images, "n_seeds": d.n_seeds, "margin": d.margin} for d in diffs])


def _p(p: float) -> str:
    return "–" if p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_rich(diffs: Sequence[Any], label_a: str, label_b: str, alpha: float = 0.05,
                    precision: int = 3) -> Any:
    """A rich table of a paired comparison (verdicts coloured; test and CI method in the caption)."""


    colour = {"better": "green", "non-inferior": "green", "worse": "red", "inferior": "red"}
    d0 = diffs[0]
    caption = (f"p: {d0.test}; Holm over {len(diffs)} metric{'s' if len(diffs) > 1 else ''}, alpha {alpha:g}; "
               f"CI: {d0.method}; {d0.n_images} paired images")
    table = Table(title=escape(f"a = {label_a}   vs   b = {label_b}"), caption=escape(caption),
                  caption_justify="left", box=None, pad_edge=False, header_style="bold underline")
    for name in ("Metric", "a", "b", "a − b", "95% CI", "p", "Holm p", "verdict"):
        table.add_column(name, justify="left" if name in ("Metric", "verdict") else "right",
                         no_wrap=True)
    for d in diffs:
        v = metric_verdict(d, alpha)
        table.add_row(f"{metric_label(d.metric)} {arrow(d.metric)}".rstrip(), f"{d.a:.{precision}f}",
                      f"{d.b:.{precision}f}", f"{d.diff:+.{precision}f}",
                      f"[{d.ci_low:+.{precision}f}, {d.ci_high:+.{precision}f}]", _p(d.p), _p(d.p_adjusted),
                      f"[{colour.get(v, 'yellow')}]{escape(v)}[/]")
    return table
