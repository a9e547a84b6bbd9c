"""Compare two record tables cell by cell: did any metric get worse than its baseline?

A *cell* is one record: every experiment key (seed included) and the metric. Two tables
must hold the same cells, the same ``n`` per cell and the same key columns; anything else is
a :class:`TableMismatchError` (a ``ValueError``: exit code 2 on the command line), because
numbers of different experiments cannot be compared.

A cell *regressed* when it moved in the worse direction of its metric by more than its
tolerance, ``max(abs, rel * |baseline|)``; it *improved* when it moved the other way by more
than the tolerance (listed, not an error). Metrics of unknown direction count any change beyond
the tolerance as a regression.

NaN is never a pass. A cell whose run is recorded as failed (``status`` ``failed``) is compared
as failed, whatever its value: ok -> failed regressed, failed -> ok improved, failed in both is
unchanged. Otherwise a NaN in the baseline is an error (:class:`InvalidBaselineError`: a
baseline must hold numbers; ``--update`` refuses a table with NaN in an ok cell), and a NaN or
infinite value in the new table regressed. A tolerance for a metric that is in neither table
nor in the metric registry (:data:`gbench.core.metric_specs.METRICS`) is refused (a typo would silently loosen nothing).

Deterministic CPU runs make exact comparison possible; the default tolerance (abs 1e-6)
covers BLAS differences between machines.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.markup import escape
from rich.table import Table

from gbench.core.errors import DataError
from gbench.core.metric_specs import direction, metric_label, metric_names
from gbench.core.records import key_columns, load_records, save_records

__all__ = ["Tolerance", "TableMismatchError", "InvalidBaselineError", "RegressionReport", "compare_tables", "regress",
           "parse_tolerances", "update_baseline", "DEFAULT_ABS", "DEFAULT_REL"]

DEFAULT_ABS = 1e-6
DEFAULT_REL = 0.0


class TableMismatchError(ValueError):
    """The two tables do not describe the same experiments (one line, names what differs)."""


class InvalidBaselineError(ValueError):
    """The baseline holds a value that cannot be compared against (NaN or inf in an ok cell)."""


@dataclass(frozen=True)
class Tolerance:
    """Per-metric tolerance: a change is within tolerance when ``|Δ| <= max(abs, rel * |baseline|)``.

    Attributes:
        abs: Default absolute tolerance.
        rel: Default relative tolerance.
        per_metric_abs, per_metric_rel: Overrides by metric name.
    """

    abs: float = DEFAULT_ABS
    rel: float = DEFAULT_REL
    per_metric_abs: Mapping[str, float] = field(default_factory=dict)
    per_metric_rel: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, v in [("abs", self.abs), ("rel", self.rel), *self.per_metric_abs.items(),
                        *self.per_metric_rel.items()]:
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"tolerance {name}={v!r} must be a finite number >= 0")

    def allowed(self, metric: str, baseline: float) -> float:
        """The allowed change of one cell."""
        a = self.per_metric_abs.get(metric, self.abs)
        r = self.per_metric_rel.get(metric, self.rel)
        return max(a, r * abs(baseline)) if math.isfinite(baseline) else a


def parse_tolerances(absolute: Sequence[str] = (), relative: Sequence[str] = ()) -> Tolerance:
    """Build a :class:`Tolerance` from command-line specs ``VALUE`` (all metrics) or ``METRIC=VALUE``.

    Example:
        >>> parse_tolerances(["1e-4", "pq=0.01"], ["aji=0.02"]).allowed("pq", 0.5)
        0.01

    Raises:
        ValueError: a spec is not ``VALUE`` or ``METRIC=VALUE`` with a number >= 0.
    """
    defaults = {"abs": DEFAULT_ABS, "rel": DEFAULT_REL}
    per: dict[str, dict[str, float]] = {"abs": {}, "rel": {}}
    for which, specs in (("abs", absolute), ("rel", relative)):
        for spec in specs:
            name, _, text = spec.rpartition("=")
            try:
                value = float(text)
            except ValueError:
                opt = "--tolerance" if which == "abs" else "--rel-tolerance"
                raise ValueError(f"{opt} {spec!r}: expected VALUE or METRIC=VALUE (e.g. 1e-6 or pq=0.01)") from None
            if name:
                per[which][name.strip().lower()] = value
            else:
                defaults[which] = value
    return Tolerance(defaults["abs"], defaults["rel"], per["abs"], per["rel"])


@dataclass(frozen=True)
class RegressionReport:
    """Cell-by-cell comparison.

    Attributes:
        cells: DataFrame with the key columns, ``metric, baseline, new, delta, allowed,
            direction, status`` (``worse`` | ``better`` | ``same``), one row per cell.
        keys: The key columns.
    """

    cells: pd.DataFrame
    keys: tuple[str, ...]

    @property
    def regressions(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] == "worse"]

    @property
    def improvements(self) -> pd.DataFrame:
        return self.cells[self.cells["status"] == "better"]

    @property
    def ok(self) -> bool:
        """No cell got worse."""
        return self.regressions.empty

    def summary(self) -> str:
        """``N cells: a worse, b better, c unchanged``."""
        c = self.cells["status"].value_counts()
        return (f"{len(self.cells)} cells: {int(c.get('worse', 0))} worse, {int(c.get('better', 0))} better, "
                f"{int(c.get('same', 0))} unchanged within tolerance")

    def to_markdown(self, which: str = "worse", precision: int = 6) -> str:
        """The cells of one status (``worse``/``better``/``all``) as a Markdown table."""
        sub = self.cells if which == "all" else self.cells[self.cells["status"] == which]
        shown = [k for k in self.keys if sub[k].nunique() > 1] or list(self.keys[:2])
        frame = sub[shown + ["metric", "baseline", "new", "delta", "allowed", "status"]].copy()
        frame["metric"] = frame["metric"].map(metric_label)
        return frame.to_markdown(index=False, floatfmt=f".{precision}g")

    def to_rich(self, which: str = "worse", precision: int = 6) -> object:
        """A rich table of the cells of one status."""

        sub = self.cells if which == "all" else self.cells[self.cells["status"] == which]
        shown = [k for k in self.keys if sub[k].nunique() > 1] or list(self.keys[:2])
        title = {"worse": "Cells that got worse", "better": "Cells that improved"}.get(which, "All cells")
        t = Table(title=title)
        for c in shown + ["metric", "baseline", "new", "Δ", "allowed"]:
            t.add_column(c, justify="left" if c in shown or c == "metric" else "right")
        colour = {"worse": "red", "better": "green", "same": "white"}
        for r in sub.itertuples(index=False):
            d = r._asdict()
            t.add_row(*[escape(str(d[k])) for k in shown], escape(metric_label(r.metric)),
                      f"{r.baseline:.{precision}g}", f"{r.new:.{precision}g}",
                      f"[{colour[r.status]}]{r.delta:+.{precision}g}[/]", f"{r.allowed:.{precision}g}")
        return t


def _cell_label(row: Mapping[str, object], keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys) + f", metric={row['metric']}"


def compare_tables(baseline: pd.DataFrame, new: pd.DataFrame, tolerance: Tolerance | None = None) -> RegressionReport:
    """Compare two record tables cell by cell.

    Args:
        baseline: Baseline records.
        new: New records.
        tolerance: Per-metric tolerances (default: abs 1e-6, rel 0).

    Returns:
        The :class:`RegressionReport`.

    Raises:
        TableMismatchError: different key columns, metrics, cells or ``n``.
    """
    tolerance = tolerance or Tolerance()
    known = set(metric_names()) | set(baseline["metric"]) | set(new["metric"])
    unknown = sorted((set(tolerance.per_metric_abs) | set(tolerance.per_metric_rel)) - known)
    if unknown:
        raise ValueError(f"tolerance for unknown metric(s) {', '.join(unknown)} "
                         f"(metrics: {', '.join(sorted(set(baseline['metric']) | set(new['metric'])))})")
    bad = _not_finite_ok(baseline)
    if len(bad):
        raise InvalidBaselineError(f"the baseline has {len(bad)} cell(s) with a value that is not a finite number "
                                   f"in a run recorded as ok, e.g. {_cell_label(bad.iloc[0], key_columns(baseline))}"
                                   f" = {bad.iloc[0]['value']}")
    kb, kn = key_columns(baseline), key_columns(new)
    if kb != kn:
        only_b = [c for c in kb if c not in kn]
        only_n = [c for c in kn if c not in kb]
        raise TableMismatchError("tables have different key columns: "
                                 + "; ".join(p for p in (f"only the baseline has {', '.join(only_b)}" if only_b else "",
                                                         f"only the new table has {', '.join(only_n)}" if only_n else "",
                                                         "order differs" if not (only_b or only_n) else "") if p))
    keys = list(kb)
    mb, mn = set(baseline["metric"]), set(new["metric"])
    if mb != mn:
        parts = []
        if mb - mn:
            parts.append(f"only the baseline has metric(s) {', '.join(sorted(mb - mn))}")
        if mn - mb:
            parts.append(f"only the new table has metric(s) {', '.join(sorted(mn - mb))}")
        raise TableMismatchError("tables have different metrics: " + "; ".join(parts))
    on = keys + ["metric"]
    merged = _with_status(baseline)[on + ["value", "n", "status"]].merge(
        _with_status(new)[on + ["value", "n", "status"]], on=on, how="outer", suffixes=("_b", "_n"), indicator=True,
        sort=False)
    for side, label in (("left_only", "the new table lacks"), ("right_only", "the baseline lacks")):
        miss = merged[merged["_merge"] == side]
        if len(miss):
            raise TableMismatchError(f"tables hold different cells: {label} {len(miss)} cell(s), e.g. "
                                     f"{_cell_label(miss.iloc[0], keys)}")
    diff_n = merged[merged["n_b"] != merged["n_n"]]
    if len(diff_n):
        r = diff_n.iloc[0]
        raise TableMismatchError(f"{len(diff_n)} cell(s) were computed over different numbers of images, e.g. "
                                 f"{_cell_label(r, keys)}: n {int(r['n_b'])} in the baseline, {int(r['n_n'])} new")
    rows = []
    for r in merged.itertuples(index=False):
        d = r._asdict()
        b, v, metric = float(d["value_b"]), float(d["value_n"]), d["metric"]
        allowed = tolerance.allowed(metric, b)
        better = direction(metric, "unknown")
        delta = v - b
        failed_b, failed_n = d["status_b"] == "failed", d["status_n"] == "failed"
        if failed_b or failed_n:  # compared as failed runs, whatever the values
            status = "same" if failed_b and failed_n else ("worse" if failed_n else "better")
        elif not math.isfinite(v):
            status = "worse"  # the new run gave no number: never a pass
        elif abs(delta) <= allowed:
            status = "same"
        elif better == "unknown":
            status = "worse"
        else:
            improved = delta > 0 if better == "higher" else delta < 0
            status = "better" if improved else "worse"
        rows.append({**{k: d[k] for k in keys}, "metric": metric, "baseline": b, "new": v, "delta": delta,
                     "allowed": allowed, "direction": better, "status": status})
    cells = pd.DataFrame(rows, columns=keys + ["metric", "baseline", "new", "delta", "allowed", "direction", "status"])
    return RegressionReport(cells, tuple(keys))


def _with_status(df: pd.DataFrame) -> pd.DataFrame:
    if "status" in df.columns:
        return df.assign(status=df["status"].fillna("ok").replace("", "ok"))
    return df.assign(status="ok")


def _not_finite_ok(df: pd.DataFrame) -> pd.DataFrame:
    """Rows recorded as ok whose value is NaN or infinite."""
    d = _with_status(df)
    values = pd.to_numeric(d["value"], errors="coerce").astype("float64")
    return d[(d["status"] != "failed") & ~values.map(math.isfinite)]


def regress(baseline_path: str | Path, new_path: str | Path, tolerance: Tolerance | None = None,
            profile: str | None = None, seed: int | None = None) -> RegressionReport:
    """Load two record files (optionally keep one profile / seed) and compare them.

    Raises:
        DataError: a file is missing or unreadable, or the baseline holds NaN in an ok cell
            (named by its path).
        TableMismatchError: the tables hold different experiments.
    """

    base = _filter(load_records(baseline_path), profile, seed, baseline_path)
    new = _filter(load_records(new_path), profile, seed, new_path)
    try:
        return compare_tables(base, new, tolerance)
    except InvalidBaselineError as exc:
        raise DataError(baseline_path, str(exc)) from None


def _filter(df: pd.DataFrame, profile: str | None, seed: int | None, path: str | Path) -> pd.DataFrame:
    if profile is not None:
        df = df[df["profile"] == profile]
    if seed is not None:
        df = df[df["seed"] == seed]
    if df.empty:
        raise DataError(path, "no records" + (f" of profile {profile!r}" if profile is not None else "")
                        + (f" with seed {seed}" if seed is not None else ""))
    return df.reset_index(drop=True)


def update_baseline(new_path: str | Path, baseline_path: str | Path) -> Path:
    """Rewrite the baseline (CSV and manifest, atomically) with the new table's records.

    Raises:
        DataError: the new table has a NaN or infinite value in a cell recorded as ok (a
            baseline must hold numbers; a failed run is recorded with ``status`` ``failed``).
    """

    new = load_records(new_path)
    bad = _not_finite_ok(new)
    if len(bad):
        what = "every value is" if len(bad) == len(new) else f"{len(bad)} of {len(new)} values are"
        raise DataError(new_path, f"{what} not a finite number (e.g. {_cell_label(bad.iloc[0], key_columns(new))}); "
                                  "refusing to make it the baseline")
    return save_records(new, baseline_path, extra_manifest={"updated_from": str(Path(new_path))})
