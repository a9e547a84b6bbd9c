"""Figures (matplotlib, Agg canvas, no pyplot state): sample grids, metric bars, PQ vs synthetic count.

Every function writes one PNG atomically and returns its path. The pixel size is fixed by
the arguments (``panel`` inches per image or per metric, ``dpi``), never by ``bbox_inches``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from gbench.core.fileio import atomic_path
from gbench.core.metric_specs import metric_label
from gbench.core.profiles import PROFILES
from gbench.core.records import scope_columns
from gbench.metrics.stain import CHANNELS
from gbench.reports.compare import comparable, load_reference
from gbench.reports.tables import arrow, display_name, pivot, summarize

__all__ = ["sample_grid", "metric_bars", "pq_vs_synthetic", "pq_figure", "synthetic_count", "stain_figure",
           "stain_histograms", "grouped_bars_figure", "kind_bars", "paper_values", "TRAIN_SET_ORDER"]


def _new_figure(width_in: float, height_in: float, dpi: int) -> Any:

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: figures are written as .png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _as_panel(arr: Any, what: str) -> tuple[np.ndarray, bool]:
    """(H, W) map or (H, W, 3) float image in [0, 1]; (C, H, W) accepted. Returns (array, is_rgb)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 2, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 2:
        a = a[..., 0]  # two-channel condition: show the first map
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise ValueError(f"{what}: expected an (H, W) map or an (H, W, 3) / (3, H, W) image, got shape {a.shape}")
    if a.ndim == 2:
        return a.astype(np.float64), False
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0, True
    a = a.astype(np.float64)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ValueError(f"{what}: float images must lie in [0, 1] (got {a.min():.3g}..{a.max():.3g}); "
                         "convert [-1, 1] generator output with (x + 1) / 2")
    return a, True


def sample_grid(inputs: Sequence[Any], real: Sequence[Any], generated: Mapping[str, Sequence[Any]],
                path: str | Path, input_label: str = "input map", panel: float = 1.6, dpi: int = 100) -> Path:
    """One row per sample: input map, real image, then each generator's image.

    Args:
        inputs: Condition maps, (H, W) or (C, H, W) (first channel shown, viridis).
        real: Real images, (H, W, 3) uint8 or float in [0, 1] (or (3, H, W)).
        generated: ``{generator name: images}``, each as ``real``, one per sample.
        path: PNG to write.
        input_label: Title of the first column.
        panel: Inches per panel; the PNG is ``panel * dpi`` pixels per panel.
        dpi: Dots per inch.

    Raises:
        ValueError: counts differ, a shape is not an image, or float images leave [0, 1].
    """
    n = len(inputs)
    if n == 0:
        raise ValueError("sample_grid needs at least one sample")
    if len(real) != n:
        raise ValueError(f"sample_grid: {n} input maps but {len(real)} real images")
    for name, imgs in generated.items():
        if len(imgs) != n:
            raise ValueError(f"sample_grid: {n} input maps but {len(imgs)} images from {name!r}")
    columns = [(input_label, list(inputs))] + [("real", list(real))] + \
        [(display_name(k), list(v)) for k, v in generated.items()]
    ncols = len(columns)
    fig = _new_figure(ncols * panel, n * panel, dpi)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.25 / (n * panel) * 1.2,
                        wspace=0.04, hspace=0.04)
    axes = fig.subplots(n, ncols, squeeze=False)
    for c, (title, images) in enumerate(columns):
        for r in range(n):
            ax = axes[r][c]
            img, rgb = _as_panel(images[r], f"{title} #{r}")
            ax.imshow(img, cmap=None if rgb else "viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
    return _save(fig, path, dpi)


def _error_bars(means: np.ndarray, low: np.ndarray, high: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(2, n) asymmetric error bars: the 95% CI where known, else ±1 std (0 when neither)."""
    has_ci = ~(np.isnan(low) | np.isnan(high))
    s = np.nan_to_num(std, nan=0.0)
    below = np.where(has_ci, means - low, s)
    above = np.where(has_ci, high - means, s)
    return np.nan_to_num(np.maximum(np.stack([below, above]), 0.0), nan=0.0)


def metric_bars(records: pd.DataFrame, path: str | Path, metrics: Sequence[str] | None = None,
                panel: tuple[float, float] = (3.0, 3.0), dpi: int = 100, observations: pd.DataFrame | None = None,
                table: Any = None, **stat_options: Any) -> Path:
    """Bar charts of the metrics (one panel each): the estimate with its 95% CI as error bars
    (±1 std over seeds where a cell has no interval); a failed run has no bar, only "failed".

    Args:
        records: Records of one kind (rows as in :func:`reports.tables.pivot`).
        path: PNG to write.
        metrics: Metrics to show (default: all in the records).
        panel: (width, height) inches per metric panel.
        dpi: Dots per inch.
        observations: Per-image observations (for the intervals), or None.
        table: An already pivoted :class:`reports.tables.ResultTable` of ``records`` (saves
            recomputing the intervals).
        **stat_options: ``n_resamples``, ``seed`` of the bootstrap.
    """
    if table is None:
        table = pivot(records, metrics=metrics, observations=observations, **stat_options)
    labels = [" / ".join(display_name(v) for v in row) for row in table.rows]
    k = len(table.metrics)
    fig = _new_figure(panel[0] * k, panel[1], dpi)
    axes = fig.subplots(1, k, squeeze=False)[0]
    x = np.arange(len(labels))
    colors = [f"C{i % 10}" for i in range(len(labels))]
    for ax, m in zip(axes, table.metrics):
        cells = [table.estimate(row, m) for row in table.rows]
        failed = np.array([c.failed for c in cells])
        means = np.array([math.nan if c.failed else c.mean for c in cells], dtype=np.float64)
        err = _error_bars(means, np.array([c.ci_low for c in cells]), np.array([c.ci_high for c in cells]),
                          np.array([c.std for c in cells]))
        ax.bar(x, np.nan_to_num(means, nan=0.0), yerr=err, color=colors, capsize=3)
        for i in np.flatnonzero(failed):
            ax.text(x[i], 0.0, "failed", rotation=90, ha="center", va="bottom", fontsize=7, color="#cf222e")
        ax.set_title(f"{metric_label(m)} {arrow(m)}".rstrip(), fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.35, wspace=0.35)
    return _save(fig, path, dpi)


def synthetic_count(train_set: str, profile: str | None = None) -> int:
    """Synthetic images in a training set: 0 for ``R``; ``S3k``/``R+S3k`` -> the profile's
    ``S3k`` count (3000 under ``paper``); without a known profile, the name (``3k`` -> 3000).

    Raises:
        ValueError: the name holds no synthetic-set part.
    """
    if train_set == "R":
        return 0
    m = re.search(r"S(\d+)([kK]?)$", train_set)
    if not m:
        raise ValueError(f"cannot tell the number of synthetic images of training set {train_set!r}")
    name = f"S{m.group(1)}{m.group(2).lower()}"
    if profile:
        p = PROFILES.get(profile)
        if p is not None and name in dict(p.synthesis.counts):
            return p.synthetic_count(name)
    return int(m.group(1)) * (1000 if m.group(2) else 1)


def pq_figure(records: pd.DataFrame, metric: str = "pq", counts: Mapping[str, int] | None = None,
              size: tuple[float, float] = (5.0, 3.5), dpi: int = 100, observations: pd.DataFrame | None = None,
              **stat_options: Any) -> Any:
    """``metric`` (PQ by default) against the number of synthetic training images, per arch, as a
    Figure (see :func:`pq_vs_synthetic`)."""
    seg = records[(records["kind"] == "segmentation") & (records["metric"] == metric)]
    if seg.empty:
        raise ValueError(f"no segmentation records of metric {metric!r} to plot")
    varying = [c for c in scope_columns(seg) if seg[c].nunique() > 1]
    if varying:
        raise ValueError(f"records vary in {', '.join(varying)}; plot one {varying[0]} at a time")
    profiles = list(dict.fromkeys(seg["profile"]))
    profile = profiles[0] if len(profiles) == 1 else None
    fig = _new_figure(size[0], size[1], dpi)
    ax = fig.add_subplot(1, 1, 1)
    band_kind = set()
    for i, arch in enumerate(dict.fromkeys(seg["model"])):
        sub = seg[seg["model"] == arch]
        summ = summarize(sub, ["train_set"], observations, **stat_options)
        stats = summ[summ["status"] != "failed"].set_index("train_set")
        for real_too, style in ((True, "-"), (False, "--")):
            sets = [t for t in stats.index if (t == "R" or t.startswith("R+")) == real_too]
            if not sets:
                continue
            xs = [counts[t] if counts and t in counts else synthetic_count(t, profile) for t in sets]
            order = np.argsort(xs, kind="stable")
            xs_sorted = np.array([xs[j] for j in order], dtype=np.float64)
            ys = np.array([stats.loc[sets[j], "mean"] for j in order], dtype=np.float64)
            rows = [stats.loc[sets[j]] for j in order]
            lo = np.array([r["ci_low"] for r in rows], dtype=np.float64)
            hi = np.array([r["ci_high"] for r in rows], dtype=np.float64)
            es = _error_bars(ys, lo, hi, np.array([r["std"] for r in rows], dtype=np.float64))
            band_kind.add("95% CI" if not (np.isnan(lo).any() or np.isnan(hi).any()) else "± std")
            label = f"{display_name(arch)}, {'R + S' if real_too else 'S only'}"
            color = f"C{i % 10}"
            ax.plot(xs_sorted, ys, style + "o", color=color, label=label, markersize=4)
            ax.fill_between(xs_sorted, ys - es[0], ys + es[1], color=color, alpha=0.15 if real_too else 0.08, lw=0)
    ax.set_xlabel("synthetic training images")
    ax.set_ylabel(f"{metric_label(metric)} {arrow(metric)}".rstrip())
    ax.legend(fontsize=7, title=f"band: {' / '.join(sorted(band_kind))}", title_fontsize=7)
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.14, right=0.97, top=0.95, bottom=0.15)
    return fig


def pq_vs_synthetic(records: pd.DataFrame, path: str | Path, metric: str = "pq",
                    counts: Mapping[str, int] | None = None, size: tuple[float, float] = (5.0, 3.5),
                    dpi: int = 100, observations: pd.DataFrame | None = None, **stat_options: Any) -> Path:
    """``metric`` (PQ by default) against the number of synthetic training images, per arch.

    Two lines per arch: real + synthetic (R at 0, R+S3k, R+S10k) solid, synthetic only
    (S3k, S10k) dashed; the shaded band is the 95% CI (from ``observations`` or the records;
    ±1 std over seeds where there is none); failed runs are left out of the lines.

    Args:
        records: Segmentation records (one dataset and profile).
        path: PNG to write.
        metric: Metric on the y axis.
        counts: ``{train_set: number of synthetic images}``; default from the records' profile
            (:func:`synthetic_count`).
        size: Figure size in inches.
        dpi: Dots per inch.

    Raises:
        ValueError: no segmentation records of ``metric``.
    """
    return _save(pq_figure(records, metric, counts, size, dpi, observations, **stat_options), path, dpi)


def stain_figure(hist: Any, distances: pd.DataFrame | None = None, panel: tuple[float, float] = (3.0, 2.4),
                 dpi: int = 100) -> Any:
    """The stain histograms as a Figure: one row per channel (hematoxylin, eosin), one column per
    region (nuclei, background, all: those ``hist`` has), real and synthetic densities overlaid,
    the Wasserstein-1 distance in each title.

    Args:
        hist: a :class:`gbench.metrics.stain.StainHistograms`.
        distances: :func:`gbench.metrics.stain.stain_distances` of ``hist`` (for the titles).
    """

    regions = hist.regions()
    x = hist.centres()
    width = x[1] - x[0]
    fig = _new_figure(panel[0] * len(regions), panel[1] * len(CHANNELS), dpi)
    axes = fig.subplots(len(CHANNELS), len(regions), squeeze=False)
    w1 = {} if distances is None else {(r["channel"], r["region"]): r["w1"] for r in distances.to_dict("records")}
    for i, channel in enumerate(CHANNELS):
        for j, region in enumerate(regions):
            ax = axes[i][j]
            top = 0.0
            for side, color in (("real", "C0"), ("synthetic", "C3")):
                counts = hist.counts[(side, channel, region)].astype(np.float64)
                density = counts / max(counts.sum() * width, 1e-300)
                keep = counts > 0
                hi = np.flatnonzero(keep).max() + 1 if keep.any() else len(x)
                ax.plot(x[:hi], density[:hi], color=color, label=side, lw=1.2)
                ax.fill_between(x[:hi], density[:hi], color=color, alpha=0.15, lw=0)
                top = max(top, x[hi - 1])
            ax.set_xlim(0, max(top, 0.05))
            d = w1.get((channel, region))
            ax.set_title(f"{channel}, {region}" + (f" (W1 {d:.3f})" if d is not None and d == d else ""), fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(CHANNELS) - 1:
                ax.set_xlabel("optical density (rgb2hed)", fontsize=7)
            if j == 0:
                ax.set_ylabel("density", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.subplots_adjust(left=0.24 / len(regions), right=0.98, top=0.9, bottom=0.14, wspace=0.3, hspace=0.5)
    return fig


def stain_histograms(hist: Any, path: str | Path, distances: pd.DataFrame | None = None,
                     panel: tuple[float, float] = (3.0, 2.4), dpi: int = 100) -> Path:
    """:func:`stain_figure` written to ``path`` (PNG, atomically)."""
    return _save(stain_figure(hist, distances, panel, dpi), path, dpi)


# ------------------------------------------------------------------------------------ figures people read

#: Training sets in the order the paper lists them; their colours stay fixed across figures.
TRAIN_SET_ORDER: tuple[str, ...] = ("R", "S3k", "R+S3k", "S10k", "R+S10k")
_TRAIN_SET_COLORS = {"R": "#4c72b0", "S3k": "#dd8452", "R+S3k": "#55a868", "S10k": "#c44e52", "R+S10k": "#8172b3"}
_PAPER_STYLE = {"marker": "D", "color": "black", "s": 16, "zorder": 4}


def _hue_order(values: Sequence[str]) -> list[str]:
    known = [t for t in TRAIN_SET_ORDER if t in values]
    return known + [v for v in dict.fromkeys(values) if v not in TRAIN_SET_ORDER]


def _hue_color(value: str, i: int) -> str:
    return _TRAIN_SET_COLORS.get(value, f"C{(i + 5) % 10}")


def paper_values(records: pd.DataFrame, reference: str = "sharp-gan") -> dict[tuple[str, str, str, str], float]:
    """The paper's values ``{(kind, model, train_set, metric): value}`` for records whose data and
    protocol are the paper's (:func:`reports.compare.comparable`); empty otherwise."""

    scopes = records[["dataset", "split", "profile"]].drop_duplicates()
    if scopes.empty or not all(comparable(str(r.dataset), str(r.split), str(r.profile))[0]
                               for r in scopes.itertuples(index=False)):
        return {}
    ref = load_reference(reference)
    return {(str(r.kind), str(r.model), str(r.train_set), str(r.metric)): float(r.value)
            for r in ref.itertuples(index=False)}


def grouped_bars_figure(records: pd.DataFrame, metrics: Sequence[str] | None = None,
                        observations: pd.DataFrame | None = None, table: Any = None, *,
                        group: str = "model", hue: str | None = "train_set", reference: str | None = "sharp-gan",
                        panel: tuple[float, float] = (3.2, 3.0), dpi: int = 100, **stat_options: Any) -> Any:
    """Bars grouped by ``group`` (the architecture or generator), ``hue`` (the training set, in
    :data:`TRAIN_SET_ORDER`, fixed colours) within each group, 95% CI error bars (±1 std over
    seeds where a cell has no interval), the paper's values as black diamonds where ours are
    comparable with them (:func:`paper_values`); one panel per metric, one legend. A failed run
    has no bar, only "failed". Returns the matplotlib Figure.
    """

    if table is None:
        table = pivot(records, metrics=metrics, observations=observations, **stat_options)
    keys = list(table.row_keys)
    gi = keys.index(group) if group in keys else None
    hi = keys.index(hue) if hue is not None and hue in keys else None
    rest = [i for i in range(len(keys)) if i not in (gi, hi)]

    def group_of(row: tuple[str, ...]) -> str:
        parts = ([row[gi]] if gi is not None else []) + [row[i] for i in rest]
        return " / ".join(display_name(p) for p in parts) or "all"

    groups = list(dict.fromkeys(group_of(r) for r in table.rows))
    hues = _hue_order([r[hi] for r in table.rows]) if hi is not None else [""]
    kind = table.kind or (str(records["kind"].iloc[0]) if len(records) else "")
    paper = paper_values(records) if reference else {}
    width = 0.8 / len(hues)
    k = len(table.metrics)
    fig = _new_figure(panel[0] * k, panel[1], dpi)
    axes = fig.subplots(1, k, squeeze=False)[0]
    shown_paper = False
    for ax, m in zip(axes, table.metrics):
        for row in table.rows:
            g = groups.index(group_of(row))
            h = hues.index(row[hi]) if hi is not None else 0
            x = g + (h - (len(hues) - 1) / 2) * width
            cell = table.estimate(row, m)
            color = _hue_color(row[hi], h) if hi is not None else f"C{g % 10}"
            if cell.failed:
                ax.text(x, 0.0, "failed", rotation=90, ha="center", va="bottom", fontsize=6, color="#cf222e")
            else:
                err = _error_bars(np.array([cell.mean]), np.array([cell.ci_low]), np.array([cell.ci_high]),
                                  np.array([cell.std]))
                ax.bar([x], [cell.mean], width=width * 0.92, yerr=err, color=color, capsize=2,
                       error_kw={"elinewidth": 0.8})
            pv = paper.get((kind, row[gi] if gi is not None else "", row[hi] if hi is not None else "R", m))
            if pv is not None:
                ax.scatter([x], [pv], **_PAPER_STYLE)
                shown_paper = True
        ax.set_title(f"{metric_label(m)} {arrow(m)}".rstrip(), fontsize=9)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_xlabel("architecture" if kind == "segmentation" else group.replace("_", " "), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles: list[Any] = []
    if hi is not None:
        handles += [Patch(color=_hue_color(h, i), label=display_name(h)) for i, h in enumerate(hues)]
    if shown_paper:
        handles.append(Line2D([], [], linestyle="", marker="D", color="black", markersize=4, label="paper"))
    ci = any(table.estimate(r, m).has_ci for r in table.rows for m in table.metrics)
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=7, frameon=False,
                   title=f"error bars: {'95% CI' if ci else '± std over seeds'}", title_fontsize=7)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.72 if handles else 0.88, bottom=0.16, wspace=0.35)
    return fig


def kind_bars(records: pd.DataFrame, path: str | Path, table: Any = None, observations: pd.DataFrame | None = None,
              dpi: int = 100, **stat_options: Any) -> Path:
    """The bars of one kind written to ``path``: segmentation grouped by architecture with the
    training sets as hue, quality by generator (:func:`grouped_bars_figure`); other kinds as
    :func:`metric_bars`."""
    kind = table.kind if table is not None else (str(records["kind"].iloc[0]) if records["kind"].nunique() == 1
                                                 else "")
    if kind == "segmentation":
        return _save(grouped_bars_figure(records, observations=observations, table=table, dpi=dpi, **stat_options),
                     path, dpi)
    if kind == "quality":
        fig = grouped_bars_figure(records, observations=observations, table=table, hue=None, dpi=dpi, **stat_options)
        return _save(fig, path, dpi)
    return metric_bars(records, path, observations=observations, table=table, dpi=dpi, **stat_options)
