"""Pivot tidy records into result tables: mean ± std over seeds, the seed count, ↑/↓ per metric.

A :class:`ResultTable` holds, for one ``kind`` of result, one row per experiment (the keys that
vary: the generator for image quality, arch x training set for segmentation) and one column
per metric, with the mean, the sample standard deviation (ddof=1) and the number of seeds of
every cell. The renderers in :mod:`reports.render` only format it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gbench.core.records import KEY_COLUMNS, METRIC_DIRECTIONS, key_columns, metric_label, sort_metrics

__all__ = ["ResultTable", "pivot", "pivot_by_kind", "summarize", "arrow", "display_name", "DISPLAY_NAMES",
           "DEFAULT_ROWS"]

#: Display names of model and training-set keys (as printed in the Sharp-GAN paper).
DISPLAY_NAMES: dict[str, str] = {
    "gan-binary": "GAN-Binary", "gan-dist": "GAN-DIST", "sharp-gan": "Sharp-GAN", "mi-gan": "MI-GAN",
    "unet": "U-Net", "segnet": "SegNet",
    "R": "R", "S3k": "S (3k)", "R+S3k": "R+S (3k)", "S10k": "S (10k)", "R+S10k": "R+S (10k)",
}
#: Row keys shown by default, per kind (keys that vary across the records are added).
DEFAULT_ROWS: dict[str, tuple[str, ...]] = {
    "quality": ("model",), "segmentation": ("model", "train_set"), "multifocus": ("model",)}
_ROW_LABELS = {"model": "Model", "train_set": "Training", "dataset": "Dataset", "profile": "Profile",
               "split": "Split", "kind": "Kind"}


_CONTEXT_LABELS = {"train_set": "training set"}


def display_name(value: str) -> str:
    """Paper-style display name of a key value (unknown values unchanged)."""
    return DISPLAY_NAMES.get(value, value)


def arrow(metric: str) -> str:
    """``↑`` when higher is better, ``↓`` when lower is better, ``""`` when unknown."""
    d = METRIC_DIRECTIONS.get(metric)
    return "↑" if d == "higher" else "↓" if d == "lower" else ""


def summarize(records: pd.DataFrame, rows: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one seed), seed count and min ``n`` per row key and metric.

    Args:
        records: Record DataFrame.
        rows: Key columns to group by (default: every key column but ``seed``).

    Returns:
        Long DataFrame with columns ``*rows, metric, mean, std, seeds, n``; groups keep the
        order of first appearance in ``records``.
    """
    if rows is None:
        rows = [c for c in key_columns(records) if c != "seed"]
    rows = list(rows)
    missing = [c for c in rows if c not in records.columns]
    if missing:
        raise ValueError(f"records have no column(s) {', '.join(missing)}")
    grouped = records.groupby(rows + ["metric"], sort=False, dropna=False)
    out = grouped.agg(mean=("value", "mean"), std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else math.nan),
                      seeds=("seed", "nunique"), n=("n", "min")).reset_index()
    return out


@dataclass(frozen=True)
class ResultTable:
    """One rendered-ready table.

    Attributes:
        kind: The result kind (``quality``, ``segmentation`` ...), or ``""`` when mixed.
        row_keys: Names of the row-key columns (e.g. ``("model", "train_set")``).
        rows: Row keys, one tuple per row, in display order.
        metrics: Metric names, in display order.
        mean, std, seeds: DataFrames indexed by ``rows`` (MultiIndex) with one column per
            metric; ``std`` is NaN for a single seed, ``seeds`` the number of seeds (0 = no value).
        context: Key columns that are constant over the table (shown in captions).
    """

    kind: str
    row_keys: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    metrics: tuple[str, ...]
    mean: pd.DataFrame
    std: pd.DataFrame
    seeds: pd.DataFrame
    context: tuple[tuple[str, str], ...] = ()

    def row_label(self, key: str) -> str:
        """Header of a row-key column (``train_set`` -> ``Training``)."""
        return _ROW_LABELS.get(key, key.replace("_", " ").capitalize())

    def header(self, metric: str) -> str:
        """Metric header with its direction arrow, e.g. ``SSIM ↑``."""
        a = arrow(metric)
        return f"{metric_label(metric)} {a}".rstrip()

    def best(self, metric: str, precision: int = 3) -> set[tuple[str, ...]]:
        """Rows holding the best mean of ``metric`` at the displayed precision (ties all win).

        Empty when the direction is unknown or the column has no value.
        """
        d = METRIC_DIRECTIONS.get(metric)
        col = self.mean[metric].dropna()
        if d is None or col.empty:
            return set()
        shown = col.round(precision)
        target = shown.max() if d == "higher" else shown.min()
        return {tuple(ix) if isinstance(ix, tuple) else (ix,) for ix in shown.index[shown == target]}

    def row_seeds(self, row: tuple[str, ...]) -> str:
        """Seed count of a row: ``"3"``, or ``"2-3"`` when metrics differ."""
        s = [int(v) for v in self.seeds.loc[_ix(row)] if v > 0]
        if not s:
            return "0"
        return str(min(s)) if min(s) == max(s) else f"{min(s)}-{max(s)}"

    def cell(self, row: tuple[str, ...], metric: str) -> tuple[float, float, int]:
        """(mean, std, seeds) of one cell; mean NaN when absent."""
        ix = _ix(row)
        return (float(self.mean.loc[ix, metric]), float(self.std.loc[ix, metric]), int(self.seeds.loc[ix, metric]))

    def title(self) -> str:
        """Caption text: kind and the constant keys."""
        kind = {"quality": "Image quality", "segmentation": "Segmentation",
                "multifocus": "Multi-focus"}.get(self.kind, "Results")
        ctx = ", ".join(f"{_CONTEXT_LABELS.get(k, k)} {display_name(v)}" for k, v in self.context if k != "kind")
        return f"{kind} ({ctx})" if ctx else kind


def _ix(row: tuple[str, ...]) -> Any:
    return row if len(row) > 1 else row[0]


def pivot(records: pd.DataFrame, rows: Sequence[str] | None = None,
          metrics: Sequence[str] | None = None) -> ResultTable:
    """Pivot records into a :class:`ResultTable` (mean ± std over seeds).

    Args:
        records: Record DataFrame (usually of one ``kind``).
        rows: Row-key columns. Default: the kind's :data:`DEFAULT_ROWS` plus every other key
            column (but ``seed``) that takes more than one value.
        metrics: Metrics to show, in order (default: all, in :func:`sort_metrics` order).

    Raises:
        ValueError: no records, or unknown row/metric names.
    """
    if records.empty:
        raise ValueError("no records to tabulate")
    kinds = list(pd.unique(records["kind"]))
    kind = kinds[0] if len(kinds) == 1 else ""
    keys = [c for c in key_columns(records) if c != "seed"]
    if rows is None:
        base = list(DEFAULT_ROWS.get(kind, ("model",)))
        rows = [c for c in keys if c in base or (records[c].nunique() > 1)]
        rows = sorted(rows, key=lambda c: (c not in base, base.index(c) if c in base else keys.index(c)))
    rows = list(rows)
    unknown = [c for c in rows if c not in keys]
    if unknown:
        raise ValueError(f"unknown row key(s) {', '.join(unknown)} (keys: {', '.join(keys)})")
    present = sort_metrics(records["metric"])
    if metrics is None:
        metrics = present
    absent = [m for m in metrics if m not in present]
    if absent:
        raise ValueError(f"no records of metric(s) {', '.join(absent)} (present: {', '.join(present)})")
    sub = records[records["metric"].isin(list(metrics))]
    # a key that varies but is not a row would be averaged together: refuse
    hidden = [c for c in keys if c not in rows and sub[c].nunique() > 1]
    if hidden:
        raise ValueError(f"records vary in {', '.join(hidden)}, which is not a row key; "
                         "filter the records or add it to rows")
    summ = summarize(sub, rows)
    order = list(dict.fromkeys(tuple(str(v) for v in r) for r in sub[rows].itertuples(index=False, name=None)))
    index = pd.MultiIndex.from_tuples(order, names=rows) if len(rows) > 1 else pd.Index([r[0] for r in order],
                                                                                        name=rows[0])

    def wide(col: str) -> pd.DataFrame:
        w = summ.pivot_table(index=rows, columns="metric", values=col, aggfunc="first", sort=False, dropna=False)
        return w.reindex(index=index, columns=list(metrics)).astype("float64")

    context = tuple((c, str(sub[c].iloc[0])) for c in KEY_COLUMNS if c in keys and c not in rows
                    and sub[c].nunique() == 1 and c != "seed")
    return ResultTable(kind=kind, row_keys=tuple(rows), rows=tuple(order), metrics=tuple(metrics),
                       mean=wide("mean"), std=wide("std"), seeds=wide("seeds").fillna(0.0),
                       context=context)


def pivot_by_kind(records: pd.DataFrame) -> list[ResultTable]:
    """One table per ``kind`` (quality first, then segmentation, then the rest)."""
    order = {"quality": 0, "segmentation": 1, "multifocus": 2}
    kinds = sorted(pd.unique(records["kind"]), key=lambda k: (order.get(k, 9), k))
    return [pivot(records[records["kind"] == k]) for k in kinds]
