"""Pivot tidy records into result tables: every cell an estimate with its 95% CI, ↑/↓ per metric.

A :class:`ResultTable` holds, for one ``kind`` of result, one row per experiment (the keys that
vary: the generator for image quality, arch x training set for segmentation) and one column
per metric. Every cell has the mean over seeds (the record value), its 95% confidence interval
(recomputed from the per-image observations when given, across seeds; else the record's own
interval for one seed; else none, and the renderers show ± std over seeds with a note), the
seed and test-image counts, and its status: a failed run is shown as ``failed``, never as a
number. In an image-quality table, a generator that does not significantly beat the
``mask-paint`` floor on a metric is marked (paired tests when observations exist; set statistics
such as FID on their bootstrap replicates). In a segmentation table, the floor segmenter
(``hed-watershed``, training set ``none``: no training) is a row of its own, and a trained cell
whose PQ does not significantly beat it (the claims' paired test) is marked with † and a
footnote. The renderers in :mod:`reports.render` only format it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gbench.core import stats
from gbench.core.metric_specs import direction, metric_label, sort_metrics
from gbench.core.observations import FLOOR_SEGMENTER, FLOOR_TRAIN_SET, obs_key_columns
from gbench.core.records import KEY_COLUMNS, key_columns

__all__ = ["ResultTable", "Cell", "FLOOR_MODEL", "SEG_FLOOR_MODEL", "SUMMARY_COLUMNS", "pivot", "pivot_by_kind", "summarize", "arrow",
           "display_name", "DISPLAY_NAMES",
           "DEFAULT_ROWS"]

#: Display names of model and training-set keys (as printed in the Sharp-GAN paper).
DISPLAY_NAMES: dict[str, str] = {
    "gan-binary": "GAN-Binary", "gan-dist": "GAN-DIST", "sharp-gan": "Sharp-GAN", "mi-gan": "MI-GAN",
    "mask-paint": "Mask-paint (floor)", FLOOR_SEGMENTER: "HED watershed (floor)", FLOOR_TRAIN_SET: "none",
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
    d = direction(metric)
    return "↑" if d == "higher" else "↓" if d == "lower" else ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _match_obs(observations: pd.DataFrame | None, group: pd.DataFrame) -> pd.DataFrame | None:
    """The observations of one table cell: every observation key the records share takes the
    cell's (constant) value; the seeds are the cell's seeds. None when a key varies in the cell."""
    if observations is None or len(observations) == 0:
        return None

    sub = observations
    for c in obs_key_columns(observations):
        if c == "seed" or c not in group.columns:
            continue
        vals = set(group[c].astype(str))
        if len(vals) != 1:
            return None
        sub = sub[sub[c].astype(str) == vals.pop()]
    sub = sub[sub["seed"].isin(set(int(s) for s in group["seed"]))]
    return sub if len(sub) else None


def _cell_summary(g: pd.DataFrame, metric: str, observations: pd.DataFrame | None,
                  stat_options: dict[str, Any]) -> dict[str, Any]:
    """mean, std, seeds, n and the interval of one cell (observations, else the record's CI)."""

    v = g["value"].astype("float64")
    out: dict[str, Any] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                           "seeds": int(g["seed"].nunique()), "n": int(g["n"].min()), "ci_low": math.nan,
                           "ci_high": math.nan, "ci_method": "", "ci_source": "", "status": "ok", "failure": ""}
    out["n_images"] = int(g["n_images"].min()) if "n_images" in g.columns else out["n"]
    if "status" in g.columns and (g["status"] == "failed").any():
        bad = g[g["status"] == "failed"]
        out["status"] = "failed"
        out["failure"] = _failure_text(bad)
        return out
    agg = str(g["aggregation"].iloc[0]) if "aggregation" in g.columns else ""
    agg = agg or "mean"
    obs = _match_obs(observations, g)
    if obs is not None and agg in stats.AGGREGATIONS and (agg == "mean" or metric in stats.POOLED_METRICS):
        if (obs["status"] == "failed").any():
            out["status"] = "failed"
            out["failure"] = _failure_text(obs[obs["status"] == "failed"])
            return out
        cols = [metric] if agg == "mean" else list(stats.POOLED_STATS)
        if set(obs["seed"]) == set(g["seed"]) and all(c in obs.columns and obs[c].notna().all() for c in cols):
            try:
                est = stats.estimate(obs, metric, agg, **stat_options)
            except ValueError:
                est = None  # not one experiment, seeds on different images: no interval from these
            if est is not None and abs(est.value - out["mean"]) <= 1e-9 * max(1.0, abs(out["mean"])):
                out.update(ci_low=est.ci_low, ci_high=est.ci_high, ci_method=est.method, n_images=est.n_images,
                           ci_source="observations")
                return out
    if out["seeds"] == 1 and "ci_low" in g.columns and not math.isnan(float(g["ci_low"].iloc[0])):
        r = g.iloc[0]
        out.update(ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]), ci_method=str(r.get("ci_method", "")),
                   ci_source="records")
    return out


def _failure_text(bad: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in bad["seed"]}) if "seed" in bad.columns else []
    why = str(bad["failure"].iloc[0]) if "failure" in bad.columns else ""
    where = ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds)) if seeds else ""
    return ": ".join(x for x in (where, why) if x)


SUMMARY_COLUMNS = ("mean", "std", "seeds", "n", "ci_low", "ci_high", "ci_method", "ci_source", "n_images",
                   "status", "failure")


def summarize(records: pd.DataFrame, rows: Sequence[str] | None = None, observations: pd.DataFrame | None = None,
              **stat_options: Any) -> pd.DataFrame:
    """Per row key and metric: mean, std (ddof=1; NaN for one seed), seed count, min ``n``, and
    the 95% interval of the estimate.

    The interval comes from the per-image ``observations`` when they cover the cell (every seed:
    :func:`gbench.core.stats.estimate`, two-level over seeds and images for several seeds), else from
    the records' own ``ci_low`` / ``ci_high`` (one seed), else it is NaN (``ci_source`` ``""``:
    the renderers fall back to ± std over seeds). A cell with a failed run has ``status``
    ``failed`` and the failed check in ``failure``.

    Args:
        records: Record DataFrame.
        rows: Key columns to group by (default: every key column but ``seed``).
        observations: Per-image observations of the records, or None.
        **stat_options: ``n_resamples``, ``seed``, ``confidence`` of the bootstrap.

    Returns:
        Long DataFrame with columns ``*rows, metric`` and :data:`SUMMARY_COLUMNS`; groups keep the
        order of first appearance in ``records``.
    """
    if rows is None:
        rows = [c for c in key_columns(records) if c != "seed"]
    rows = list(rows)
    missing = [c for c in rows if c not in records.columns]
    if missing:
        raise ValueError(f"records have no column(s) {', '.join(missing)}")
    out = []
    for key, g in records.groupby(rows + ["metric"], sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(rows + ["metric"], key)), **_cell_summary(g, str(key[-1]), observations,
                                                                          stat_options)})
    return pd.DataFrame(out, columns=rows + ["metric", *SUMMARY_COLUMNS])


@dataclass(frozen=True)
class Cell:
    """One table cell: the estimate, its interval, counts, and whether the run failed."""

    mean: float
    std: float
    seeds: int
    ci_low: float
    ci_high: float
    n_images: int
    status: str = "ok"
    failure: str = ""
    below_floor: bool = False

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def has_ci(self) -> bool:
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))


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
        ci_low, ci_high: The 95% interval of each cell (NaN: none; see :func:`summarize`).
        n_images: Test images behind each cell.
        status, failure: ``ok`` / ``failed`` per cell and the failed check.
        below_floor: ``(row, metric)`` pairs that do not significantly beat the floor generator.
        notes: Lines printed under the table (how the intervals were made, fallbacks, failures).
    """

    kind: str
    row_keys: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    metrics: tuple[str, ...]
    mean: pd.DataFrame
    std: pd.DataFrame
    seeds: pd.DataFrame
    context: tuple[tuple[str, str], ...] = ()
    ci_low: pd.DataFrame | None = None
    ci_high: pd.DataFrame | None = None
    n_images: pd.DataFrame | None = None
    status: pd.DataFrame | None = None
    failure: pd.DataFrame | None = None
    below_floor: frozenset[tuple[tuple[str, ...], str]] = frozenset()
    notes: tuple[str, ...] = ()

    def row_label(self, key: str) -> str:
        """Header of a row-key column (``train_set`` -> ``Training``)."""
        return _ROW_LABELS.get(key, key.replace("_", " ").capitalize())

    def header(self, metric: str) -> str:
        """Metric header with its direction arrow, e.g. ``SSIM ↑``."""
        a = arrow(metric)
        return f"{metric_label(metric)} {a}".rstrip()

    def best(self, metric: str, precision: int = 3) -> set[tuple[str, ...]]:
        """Rows holding the best mean of ``metric`` at the displayed precision (ties all win).

        Failed cells never win. Empty when the direction is unknown or the column has no value.
        """
        d = direction(metric)
        col = self.mean[metric]
        if self.status is not None:
            col = col[self.status[metric] != "failed"]
        col = col.dropna()
        if d is None or col.empty:
            return set()
        shown = col.round(precision)
        target = shown.max() if d == "higher" else shown.min()
        return {tuple(ix) if isinstance(ix, tuple) else (ix,) for ix in shown.index[shown == target]}

    def row_seeds(self, row: tuple[str, ...]) -> str:
        """Seed count of a row: ``"3"``, or ``"2-3"`` when metrics differ."""
        return _span(self.seeds.loc[_ix(row)])

    def row_images(self, row: tuple[str, ...]) -> str:
        """Test-image count of a row: ``"32"``, or ``"30-32"`` when metrics differ."""
        if self.n_images is None:
            return ""
        return _span(self.n_images.loc[_ix(row)][self.seeds.loc[_ix(row)] > 0])

    def cell(self, row: tuple[str, ...], metric: str) -> tuple[float, float, int]:
        """(mean, std, seeds) of one cell; mean NaN when absent."""
        ix = _ix(row)
        return (float(self.mean.loc[ix, metric]), float(self.std.loc[ix, metric]), int(self.seeds.loc[ix, metric]))

    def estimate(self, row: tuple[str, ...], metric: str) -> Cell:
        """Everything shown in one cell."""
        ix = _ix(row)
        mean, std, seeds = self.cell(row, metric)

        def get(frame: pd.DataFrame | None, default: Any) -> Any:
            if frame is None:
                return default
            v = frame.loc[ix, metric]
            return default if v is None or (isinstance(v, float) and math.isnan(v)) else v

        return Cell(mean, std, seeds, float(get(self.ci_low, math.nan)), float(get(self.ci_high, math.nan)),
                    int(get(self.n_images, 0)), str(get(self.status, "ok")), str(get(self.failure, "")),
                    (tuple(row), metric) in self.below_floor)

    def title(self) -> str:
        """Caption text: kind and the constant keys."""
        kind = {"quality": "Image quality", "segmentation": "Segmentation",
                "multifocus": "Multi-focus"}.get(self.kind, "Results")
        ctx = ", ".join(f"{_CONTEXT_LABELS.get(k, k)} {display_name(v)}" for k, v in self.context if k != "kind")
        return f"{kind} ({ctx})" if ctx else kind


def _span(values: Any) -> str:
    s = [int(v) for v in values if v == v and v > 0]
    if not s:
        return "0"
    return str(min(s)) if min(s) == max(s) else f"{min(s)}-{max(s)}"


def _ix(row: tuple[str, ...]) -> Any:
    return row if len(row) > 1 else row[0]


#: The floor generator of Table 1 (nuclei and background painted with mean colours, no learning).
FLOOR_MODEL = "mask-paint"
#: The floor segmenter of Table 2 (:mod:`gbench.segmentation.floor`: hematoxylin threshold + watershed, no
#: training): a trained cell that does not significantly beat it on PQ is marked.
SEG_FLOOR_MODEL = FLOOR_SEGMENTER


def _floor_marks(sub: pd.DataFrame, rows: list[str], order: list[tuple[str, ...]], metrics: Sequence[str],
                 observations: pd.DataFrame | None, floor: str, alpha: float,
                 stat_options: dict[str, Any], kind: str = "quality",
                 replicates: pd.DataFrame | None = None) -> tuple[frozenset[tuple[tuple[str, ...], str]], list[str]]:
    """Cells that do not significantly beat the floor row: a quality table's generators against
    ``floor`` on every metric, a segmentation table's trained cells against the floor segmenter on
    PQ (in the row's aggregation). Paired tests when observations exist: per-image metrics on the
    observations, set statistics (FID ...) on their bootstrap replicates (``replicates``) when
    given; by means otherwise (said in the note)."""

    seg = kind == "segmentation"
    floor_keys = {"model": SEG_FLOOR_MODEL, "train_set": FLOOR_TRAIN_SET} if seg else {"model": floor}
    if "model" not in rows or floor_keys["model"] not in set(sub["model"]):
        return frozenset(), []
    test_metrics = [m for m in metrics if m == "pq"] if seg else list(metrics)
    if not test_metrics:
        return frozenset(), []
    marks: set[tuple[tuple[str, ...], str]] = set()
    notes: list[str] = []
    by_means = False
    tested = False
    undecidable = ""
    for row in order:
        d_row = dict(zip(rows, row))
        if d_row["model"] == floor_keys["model"]:
            continue
        floor_row = tuple(floor_keys.get(c, v) for c, v in zip(rows, row))
        sel = lambda r: np.logical_and.reduce([sub[c] == v for c, v in zip(rows, r)])  # noqa: E731
        if floor_row not in order:
            continue
        g_row, g_floor = sub[sel(row)], sub[sel(floor_row)]
        if (g_row["status"] == "failed").any() or (g_floor["status"] == "failed").any():
            continue
        ms = [m for m in test_metrics if m in set(g_row["metric"]) and m in set(g_floor["metric"])]
        if not ms:
            continue
        agg = (str(g_row["aggregation"].iloc[0]) or "mean") if seg and "aggregation" in g_row.columns else "mean"
        oa, ob = _match_obs(observations, g_row), _match_obs(observations, g_floor)
        per_image = [m for m in ms if oa is not None and ob is not None and m in oa.columns and m in ob.columns
                     and oa[m].notna().all() and ob[m].notna().all()] if not seg else (
            ms if oa is not None and ob is not None else [])
        set_stats = [m for m in ms if m not in per_image]
        diffs: list[Any] = []
        if per_image:
            try:
                diffs += stats.compare_experiments(oa, ob, per_image, agg, alpha=alpha, **stat_options)
            except ValueError as exc:
                notes.append(f"{display_name(d_row['model'])} vs the {display_name(floor_keys['model'])} floor not "
                             f"tested: {_one_line(exc)}")
                continue
        paired_sets = _set_diffs(replicates, g_row, g_floor, set_stats) if set_stats else {}
        for d in diffs + list(paired_sets.values()):
            tested = True
            v = stats.metric_verdict(d, alpha)
            if v != "better":
                marks.add((row, d.metric))
            if v == "undecidable":
                undecidable = f"{d.n_units} test units: no row can be shown to beat it (smallest possible p = " \
                              f"{d.min_p_adjusted:.3g})"
        for m in set_stats:
            if m in paired_sets:
                continue
            by_means = True
            a, b = g_row.loc[g_row["metric"] == m, "value"].mean(), g_floor.loc[g_floor["metric"] == m,
                                                                                   "value"].mean()
            better = a > b if direction(m) == "higher" else a < b
            if not better:
                marks.add((row, m))
    how = ([f"paired test, alpha {alpha:g}" if seg else f"paired test, Holm over the row's metrics, alpha {alpha:g}"]
           if tested else [])
    if by_means:
        how.append("by means where there are no per-image data or bootstrap replicates")
    if undecidable:
        how.append(undecidable)
    if marks:
        what = ("PQ does not significantly beat the floor segmenter (HED watershed, no training)"
                if seg else f"does not significantly beat the {floor} floor generator")
        notes.insert(0, f"† {what} ({'; '.join(how)})")
    return frozenset(marks), notes


def _set_diffs(replicates: pd.DataFrame | None, g_row: pd.DataFrame, g_floor: pd.DataFrame,
               metrics: Sequence[str]) -> dict[str, Any]:
    """Paired set-statistic differences row - floor from stored bootstrap replicates (empty when none)."""
    if replicates is None or len(replicates) == 0:
        return {}
    ra, rb = _match_obs(replicates, g_row), _match_obs(replicates, g_floor)
    if ra is None or rb is None:
        return {}
    out = {}
    for m in metrics:
        try:
            a = stats.set_replicates(ra, m, float(g_row.loc[g_row["metric"] == m, "value"].mean()))
            b = stats.set_replicates(rb, m, float(g_floor.loc[g_floor["metric"] == m, "value"].mean()))
            out[m] = stats.set_difference(a, b)
        except ValueError:
            continue
    return out


def _failure_notes(summ: pd.DataFrame, rows: list[str]) -> list[str]:
    """One line per failed check: the rows it caught (rows differing only in aggregation merged)."""
    failed = summ[summ["status"] == "failed"]
    if failed.empty:
        return []
    label_keys = [c for c in rows if c != "aggregation"]
    by_check: dict[str, list[str]] = {}
    for r in failed.itertuples(index=False):
        d = r._asdict()
        where, _, check = str(d["failure"]).partition(": ") if str(d["failure"]).startswith("seed") \
            else ("", "", str(d["failure"]))
        label = " ".join(display_name(str(d[c])) for c in label_keys) + (f" ({where})" if where else "")
        names = by_check.setdefault(check or "failed", [])
        if label not in names:
            names.append(label)
    return [f"failed ({check}): {', '.join(names)} — a run that did not learn, never a number"
            for check, names in by_check.items()]


def _ci_note(summ: pd.DataFrame) -> list[str]:
    notes = []
    ok = summ[summ["status"] != "failed"]
    methods = [m for m in ok.loc[ok["ci_source"] != "", "ci_method"] if m]
    if methods:
        parts = []
        boot = [m for m in methods if "t-interval" not in m]
        if len(boot) < len(methods):
            parts.append(f"fewer than {stats.T_INTERVAL_BELOW} test units: t-interval on the per-unit values "
                         "(a bootstrap over so few units undercovers)")
        if any("two-level" in m for m in boot):
            parts.append("several seeds: two-level bootstrap over seeds, then test images")
        if any("two-level" not in m for m in boot):
            parts.append("one seed: bootstrap over test images (scipy BCa)")
        tail = [m for m in methods if "resamples" in m][:1]
        extra = ""
        if tail:
            found = re.search(r"(\d+) resamples, seed (\d+)", tail[0])
            if found:
                extra = f"; {found.group(1)} resamples, seed {found.group(2)}"
        notes.append("cell: estimate [95% CI] (" + "; ".join(parts) + extra + ")")
    std = ok[(ok["ci_source"] == "") & (ok["seeds"] > 1)]
    if len(std):
        notes.append("± std over seeds where there is no per-image data (no confidence interval)")
    bare = ok[(ok["ci_source"] == "") & (ok["seeds"] == 1)]
    if len(bare):
        notes.append("a bare value: one seed and no per-image data (uncertainty unknown)")
    return notes


def pivot(records: pd.DataFrame, rows: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
          observations: pd.DataFrame | None = None, *, floor: str | None = FLOOR_MODEL, alpha: float = 0.05,
          replicates: pd.DataFrame | None = None, **stat_options: Any) -> ResultTable:
    """Pivot records into a :class:`ResultTable`: per cell the estimate with its 95% CI.

    Args:
        records: Record DataFrame (usually of one ``kind``).
        rows: Row-key columns. Default: the kind's :data:`DEFAULT_ROWS` plus every other key
            column (but ``seed``) that takes more than one value.
        metrics: Metrics to show, in order (default: all, in :func:`sort_metrics` order).
        observations: Per-image observations (intervals recomputed from them across seeds).
        floor: Model name of the floor generator of a quality table (rows that do not beat it
            significantly are marked), or None (no floor marks in any table). A segmentation
            table's floor is the floor segmenter (:data:`SEG_FLOOR_MODEL`, training set ``none``):
            a trained cell whose PQ does not significantly beat it is marked.
        alpha: Level of the floor tests.
        replicates: Bootstrap replicates of set statistics (FID, KID ...;
            :func:`gbench.core.observations.load_replicates`), for their paired floor tests.
        **stat_options: ``n_resamples``, ``seed``, ``confidence``.

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
    if "status" not in sub.columns:
        sub = sub.assign(status="ok", failure="")
    # a key that varies but is not a row would be averaged together: refuse
    hidden = [c for c in keys if c not in rows and sub[c].nunique() > 1]
    if hidden:
        raise ValueError(f"records vary in {', '.join(hidden)}, which is not a row key; "
                         "filter the records or add it to rows")
    summ = summarize(sub, rows, observations, **stat_options)
    order = list(dict.fromkeys(tuple(str(v) for v in r) for r in sub[rows].itertuples(index=False, name=None)))
    index = pd.MultiIndex.from_tuples(order, names=rows) if len(rows) > 1 else pd.Index([r[0] for r in order],
                                                                                        name=rows[0])

    def wide(col: str, numeric: bool = True) -> pd.DataFrame:
        w = summ.pivot_table(index=rows, columns="metric", values=col, aggfunc="first", sort=False, dropna=False)
        w = w.reindex(index=index, columns=list(metrics))
        return w.astype("float64") if numeric else w

    context = tuple((c, str(sub[c].iloc[0])) for c in KEY_COLUMNS if c in keys and c not in rows
                    and sub[c].nunique() == 1 and c != "seed")
    notes = _ci_note(summ)
    notes += _failure_notes(summ, rows)
    marks: frozenset[tuple[tuple[str, ...], str]] = frozenset()
    if kind in ("quality", "segmentation") and floor:
        marks, floor_notes = _floor_marks(sub, rows, order, list(metrics), observations, floor, alpha, stat_options,
                                          kind, replicates)
        notes += floor_notes
    return ResultTable(kind=kind, row_keys=tuple(rows), rows=tuple(order), metrics=tuple(metrics),
                       mean=wide("mean"), std=wide("std"), seeds=wide("seeds").fillna(0.0),
                       context=context, ci_low=wide("ci_low"), ci_high=wide("ci_high"),
                       n_images=wide("n_images").fillna(0.0), status=wide("status", False).fillna("ok"),
                       failure=wide("failure", False).fillna(""), below_floor=marks, notes=tuple(notes))


def pivot_by_kind(records: pd.DataFrame, observations: pd.DataFrame | None = None,
                  **options: Any) -> list[ResultTable]:  # options: floor, alpha, replicates, stat options
    """One table per ``kind`` (quality first, then segmentation, then the rest); ``observations``
    and ``options`` as in :func:`pivot`."""
    order = {"quality": 0, "segmentation": 1, "multifocus": 2}
    kinds = sorted(pd.unique(records["kind"]), key=lambda k: (order.get(k, 9), k))
    return [pivot(records[records["kind"] == k], observations=observations, **options) for k in kinds]
