"""Our results beside the paper's: the reference tables shipped in ``reports/reference/``.

Reference tables are CSV files with the columns ``kind, model, train_set, dataset, split,
metric, value, direction, source`` holding a paper's exact published values
(``sharp_gan_table1.csv``: Sharp-GAN Table 1, image quality; ``sharp_gan_table2.csv``:
Sharp-GAN Table 2, segmentation). :func:`compare` matches our estimate (mean over seeds, with
its 95% CI when per-image observations or record intervals exist) to the paper's value on
``kind, model, train_set, metric``.

A difference ``ours - paper`` is only computed where the data and protocol match the paper's
(:func:`comparable`: dataset ``cpm15+cpm17``, the test split, the ``paper`` profile); anywhere
else ours and the paper's values are shown side by side, without a difference, with a one-line
reason. A failed run is shown as ``failed``.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from gbench.core.errors import DataError
from gbench.core.metric_specs import direction, metric_label, sort_metrics
from gbench.core.records import records_from_dicts, scope_columns
from gbench.reports.tables import ResultTable, arrow, display_name, pivot, summarize

__all__ = ["REFERENCE_DIR", "REFERENCES", "load_reference", "reference_records", "reference_table", "compare",
           "comparison_markdown", "comparison_html", "MATCH_KEYS", "PAPER_DATASETS", "comparable"]

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
#: Reference names and their files; ``sharp-gan`` is both tables.
REFERENCES: dict[str, tuple[str, ...]] = {
    "sharp-gan-table1": ("sharp_gan_table1.csv",),
    "sharp-gan-table2": ("sharp_gan_table2.csv",),
    "sharp-gan": ("sharp_gan_table1.csv", "sharp_gan_table2.csv"),
}
MATCH_KEYS = ("kind", "model", "train_set", "metric")
#: Names of the paper's data set (CPM-15 and CPM-17 together, the union of both loaders' splits).
PAPER_DATASETS = ("cpm15+cpm17", "cpm15+17")


def comparable(dataset: str, split: str, profile: str) -> tuple[bool, str]:
    """Whether our results can be differenced with the Sharp-GAN paper's, and why not.

    Only results on the paper's data (``cpm15+cpm17``), test split, under the ``paper`` profile
    (the paper's image size, schedule and training sets) are: anything else measures something
    else, and a difference would read as a reproduction error.
    """
    why = []
    if dataset not in PAPER_DATASETS:
        why.append(f"dataset {dataset or '?'} (the paper: cpm15+cpm17)")
    if split != "test":
        why.append(f"split {split or '?'} (the paper: test)")
    if profile != "paper":
        why.append(f"{profile or '?'} profile (the paper's protocol: paper profile)")
    if not why:
        return True, ""
    return False, "not comparable with the paper: " + "; ".join(why) + " — side by side, no difference"
_REF_COLUMNS = ("kind", "model", "train_set", "dataset", "split", "metric", "value", "direction", "source")


def load_reference(name: str = "sharp-gan") -> pd.DataFrame:
    """A paper's reference table (or a CSV path in the same columns).

    Raises:
        KeyError: unknown reference name (the known ones are listed).
        DataError: the file lacks columns, has non-numeric values, or a direction that
            disagrees with the metric registry (:data:`gbench.core.metric_specs.METRICS`).
    """
    if name in REFERENCES:
        paths = [REFERENCE_DIR / f for f in REFERENCES[name]]
    elif name.endswith(".csv"):
        paths = [Path(name)]
    else:
        raise KeyError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)} (or a .csv path)")
    frames = []
    for p in paths:
        if not p.is_file():
            raise DataError(p, "no such file")
        try:
            df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8")
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(p, f"not a readable CSV reference table ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:120]})") from None
        missing = [c for c in _REF_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(p, f"reference table lacks column(s) {', '.join(missing)}")
        values = pd.to_numeric(df["value"], errors="coerce")
        if values.isna().any():
            raise DataError(p, f"value {df['value'][values.isna()].iloc[0]!r} is not a number")
        df["value"] = values.astype("float64")
        for m, d in zip(df["metric"], df["direction"]):
            if direction(m, d) != d:
                raise DataError(p, f"metric {m} has direction {d!r}, expected {direction(m)!r}")
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def reference_records(name: str = "sharp-gan") -> pd.DataFrame:
    """The reference table as records (profile ``paper``, seed 0, ``n`` 0 = not stated), so it
    can be pivoted, rendered and checked for claims like our own results."""
    ref = load_reference(name)
    rows = [{"kind": r.kind, "model": r.model, "train_set": r.train_set, "profile": "paper", "seed": 0,
             "dataset": r.dataset, "split": r.split, "metric": r.metric, "value": r.value, "n": 0}
            for r in ref.itertuples(index=False)]
    return records_from_dicts(rows)


def compare(ours: pd.DataFrame, reference: pd.DataFrame | str = "sharp-gan", observations: pd.DataFrame | None = None,
            **stat_options: object) -> pd.DataFrame:
    """Our estimate beside the paper's value, with the difference where the two are comparable.

    Args:
        ours: Our records.
        reference: A reference table (from :func:`load_reference`) or its name.
        observations: Per-image observations of ``ours`` (for the CIs), or None.
        **stat_options: ``n_resamples``, ``seed`` of the bootstrap.

    Returns:
        One row per (kind, model, train_set, metric) present in both and per *scope* of ours
        (dataset, profile, split and extra keys such as ``aggregation``: see
        :func:`gbench.core.records.scope_columns`), scope by scope, in the reference's order
        inside, with ``ours, ours_std, seeds, ours_ci_low, ours_ci_high, status, paper,
        diff (= ours - paper; NaN when not comparable or failed), better_direction, ours_better``
        (True when ours is at least as good as the paper's in the metric's direction; None
        without a difference), ``comparable``, ``reason`` (why not), the scope columns,
        ``paper_dataset``, ``source``.

    Raises:
        ValueError: no records.
    """
    ref = load_reference(reference) if isinstance(reference, str) else reference
    if ours.empty:
        raise ValueError("no records to compare")

    group = ["kind", "model", "train_set", "metric"]
    scope = scope_columns(ours)
    cols = ["kind", "model", "train_set", "metric", "ours", "ours_std", "seeds", "ours_ci_low", "ours_ci_high",
            "status", "paper", "diff", "better_direction", "ours_better", "comparable", "reason", *scope,
            "paper_dataset", "source"]
    paper = ref.rename(columns={"value": "paper", "dataset": "paper_dataset", "split": "paper_split",
                                "direction": "better_direction"})
    wanted = ours.merge(paper[group].drop_duplicates(), on=group, how="inner")
    if wanted.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    agg = summarize(wanted, group[:3] + scope, observations, **stat_options).rename(
        columns={"mean": "ours", "std": "ours_std", "ci_low": "ours_ci_low", "ci_high": "ours_ci_high"})
    merged = paper.merge(agg, on=group, how="inner")
    checks = [comparable(str(r.get("dataset", "")), str(r.get("split", "")), str(r.get("profile", "")))
              for _, r in merged.iterrows()]
    merged["comparable"] = [c for c, _ in checks]
    merged["reason"] = [why for _, why in checks]
    ok = merged["comparable"] & (merged["status"] != "failed")
    merged["diff"] = (merged["ours"] - merged["paper"]).where(ok)
    higher = merged["better_direction"] == "higher"
    better = (higher & (merged["diff"] >= 0)) | (~higher & (merged["diff"] <= 0))
    merged["ours_better"] = better.astype(object).where(ok, None)
    merged = merged[cols]
    # one block per scope (dataset, profile, split, extra keys), the reference's row order inside
    order = {k: i for i, k in enumerate(dict.fromkeys(tuple(r) for r in merged[scope].itertuples(index=False)))}
    merged["_scope"] = [order[tuple(r)] for r in merged[scope].itertuples(index=False)]
    return merged.sort_values(["_scope"], kind="stable").drop(columns="_scope").reset_index(drop=True)


def _scope_of(cmp: pd.DataFrame) -> list[str]:
    known = {"kind", "model", "train_set", "metric", "ours", "ours_std", "seeds", "ours_ci_low", "ours_ci_high",
             "status", "paper", "diff", "better_direction", "ours_better", "comparable", "reason", "paper_dataset",
             "source"}
    return [c for c in cmp.columns if c not in known]


def _blocks(cmp: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    scope = _scope_of(cmp)
    out = []
    for kind in dict.fromkeys(cmp["kind"]):
        sub = cmp[cmp["kind"] == kind]
        for _, block in (sub.groupby(scope, sort=False) if scope else [((), sub)]):
            out.append((kind, block))
    return out


def _ours_text(r: object, precision: int) -> str:
    if getattr(r, "status", "ok") == "failed":
        return "failed"
    text = f"{r.ours:.{precision}f}"  # type: ignore[attr-defined]
    low, high = getattr(r, "ours_ci_low", math.nan), getattr(r, "ours_ci_high", math.nan)
    if not (math.isnan(low) or math.isnan(high)):
        return text + f" [{low:.{precision}f}, {high:.{precision}f}]"
    if r.seeds > 1 and not math.isnan(r.ours_std):  # type: ignore[attr-defined]
        return text + f" ± {r.ours_std:.{precision}f}"  # type: ignore[attr-defined]
    return text


def _is_comparable(sub: pd.DataFrame) -> bool:
    return bool(sub["comparable"].all()) if "comparable" in sub.columns else True


def _wide(sub: pd.DataFrame, kind: str, precision: int) -> tuple[list[str], list[list[str]], str]:
    keys = ["model", "train_set"] if kind == "segmentation" else ["model"]
    metrics = sort_metrics(sub["metric"])
    together = _is_comparable(sub)
    header = ["Model", "Training"][: len(keys)]
    for m in metrics:
        header += [display_name_metric(m)] if together else [f"{display_name_metric(m)} ours",
                                                              f"{display_name_metric(m)} paper"]
    rows: list[list[str]] = []
    for key, g in sub.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        by_metric = {r.metric: r for r in g.itertuples(index=False)}
        cells = []
        for m in metrics:
            r = by_metric.get(m)
            if r is None:
                cells += ["–"] if together else ["–", "–"]
                continue
            ours = _ours_text(r, precision)
            if not together:
                cells += [ours, f"{r.paper:.{precision}f}"]
            elif math.isnan(r.diff):
                cells.append(f"{ours} / {r.paper:.{precision}f}")
            else:
                d = round(float(r.diff), precision) or 0.0  # never "-0.000"
                cells.append(f"{ours} / {r.paper:.{precision}f} ({d:+.{precision}f})")
        rows.append([display_name(str(k)) for k in key] + cells)
    first = sub.iloc[0]
    scope = _scope_of(sub)
    extra = [f"{c} {first[c]}" for c in scope if c not in ("dataset", "profile", "split") and first[c] != ""]
    where = f"ours on {first.get('dataset', '?')} ({first.get('profile', '?')} profile" \
            + "".join(f", {e}" for e in extra) + ")"
    ctx = f"{where} vs {', '.join(dict.fromkeys(sub['source']))} on {', '.join(dict.fromkeys(sub['paper_dataset']))}"
    return header, rows, ctx


def _legend(sub: pd.DataFrame) -> str:
    """What a cell holds (and why there is no difference)."""
    if _is_comparable(sub):
        return "cell: ours / paper (ours − paper)"
    reasons = [r for r in dict.fromkeys(sub["reason"]) if r]
    return reasons[0] if reasons else "side by side, no difference"


def display_name_metric(metric: str) -> str:
    """``SSIM ↑``-style header."""

    return f"{metric_label(metric)} {arrow(metric)}".rstrip()


def comparison_markdown(cmp: pd.DataFrame, precision: int = 3) -> str:
    """Markdown tables (one per kind and scope): each cell ``ours [95% CI] / paper (ours − paper)`` where
    comparable, else ours and the paper's in two columns with the reason."""
    if cmp.empty:
        return "_No result matches a row of the reference tables._\n"
    parts = []
    for kind, block in _blocks(cmp):
        header, rows, ctx = _wide(block, kind, precision)
        align = ["left"] * (2 if kind == "segmentation" else 1)
        align += ["right"] * (len(header) - len(align))
        md = pd.DataFrame(rows, columns=header).to_markdown(index=False, colalign=align, disable_numparse=True)
        parts.append(f"**{ctx}** — {_legend(block)}\n\n{md}\n")
    return "\n".join(parts)


def comparison_html(cmp: pd.DataFrame, precision: int = 3) -> str:
    """HTML tables (one per kind), as :func:`comparison_markdown`."""

    if cmp.empty:
        return "<p>No result matches a row of the reference tables.</p>\n"
    parts = []
    for kind, block in _blocks(cmp):
        header, rows, ctx = _wide(block, kind, precision)
        parts.append(f"<table>\n<caption>{html.escape(ctx)} — {html.escape(_legend(block))}</caption>\n<tr>")
        parts += [f"<th>{html.escape(h)}</th>" for h in header]
        parts.append("</tr>\n")
        nkeys = 2 if kind == "segmentation" else 1
        for row in rows:
            parts.append("<tr>" + "".join(f"<td class='key'>{html.escape(c)}</td>" for c in row[:nkeys])
                         + "".join(f"<td>{html.escape(c)}</td>" for c in row[nkeys:]) + "</tr>\n")
        parts.append("</table>\n")
    return "".join(parts)


def reference_table(name: str = "sharp-gan", kind: str | None = None) -> ResultTable:
    """The reference rendered as a :class:`ResultTable` (e.g. to print the paper's table)."""
    recs = reference_records(name)
    if kind is not None:
        recs = recs[recs["kind"] == kind]
    return pivot(recs)
