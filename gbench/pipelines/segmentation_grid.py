"""The Sharp-GAN Table 2 protocol: one cell (arch x training set x seed) and the grid over them.

A cell trains a segmenter on a training set (``R``, ``S3k``, ``R+S3k``, ...), scores the real
test split of ``data`` (whole tiles, mirror padded to a multiple of 32) with DQ, SQ, PQ, AJI and
AJI+, and writes into its folder ``<out>/<arch>/<train set>/<target>/seed<k>/`` (``seed<k>-data<d>``
for a data seed ``d`` other than 0):

* ``result.json``: everything about the cell (config, sizes, post-processing parameters,
  per-image-mean *and* pooled aggregates, validation history, times, provenance, metric
  conventions);
* ``per_image.csv``: scores and statistics of every test tile;
* ``records.csv``: tidy records (``gbench.core.records``; extra keys ``target``, ``data_seed``
  and ``aggregation`` = ``mean`` | ``pooled``) with their 95% confidence intervals
  (:func:`gbench.core.stats.attach_intervals`), the test-set hash, ``status`` and ``failure``;
* ``observations.csv``: the per-image observations behind them (:mod:`gbench.core.observations`):
  scores and pooled sufficient statistics of every test tile, for intervals and paired tests;
* ``checkpoints/best.pt`` (the weights scored), ``history.csv``.

and (:func:`write_cell_summary`, in the process that runs the grid, whichever executor ran the
cell) appends one row (:data:`RESULT_COLUMNS`) to ``<out>/results.csv`` under a file lock, written
atomically, and upserts its records and observations into ``<out>/records.csv`` and
``<out>/observations.csv`` (under the same lock). With ``resume`` a cell whose ``result.json``
exists is read back instead of re-run, and an interrupted one continues from its checkpoint.

Seeds: ``seed`` is the training seed (initialisation, order, augmentation); ``data_seed`` draws a
built-in dataset (which tiles exist). Cells with different training seeds are therefore scored on
the same test images, and carry the same ``test_set`` hash.

Failed cells: a segmenter that predicts no foreground on the test split (or one component per
image) is flagged by :func:`gbench.metrics.failures.segmentation_failure`; its cell is still saved, with
``status = failed`` and the check in ``failure`` (records, observations, ``result.json``,
``results.csv``): it is a result, "failed", never a number to tabulate.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gbench import segmentation
from gbench.core.errors import DataError
from gbench.core.fileio import write_json, write_text
from gbench.core.metric_specs import metric_names
from gbench.core.observations import load_observations, make_observations, obs_key_columns, save_observations
from gbench.core.profiles import Profile
from gbench.core.provenance import provenance
from gbench.core.records import key_columns, load_records, make_records, save_records
from gbench.core.stats import attach_intervals, estimate
from gbench.data.resolve import resolve_dataset, split_hash
from gbench.data.types import Dataset
from gbench.engine import dist_info
from gbench.metrics.failures import segmentation_failure
from gbench.metrics.instance import CONVENTIONS
from gbench.pipelines.executor import Task, make_executor
from gbench.segmentation.sets import PAPER_SETS, TrainSetSpec, parse_train_spec, resolve_part
from gbench.segmentation.train import config_from_profile, evaluate, train_segmenter

__all__ = ["RESULT_COLUMNS", "METRICS", "EVAL_MODE", "resolve_training_set", "run_cell", "compute_cell",
           "write_cell_summary", "CellResult", "run_grid",
           "append_results", "cell_dir", "table_frame", "ARCH_ORDER"]

#: Metrics in the table (Sharp-GAN Table 2 columns: the registry's instance metrics the paper reports).
METRICS: tuple[str, ...] = metric_names("instance", paper=True)
#: How the test split is scored.
EVAL_MODE = "whole tiles, mirror padded to a multiple of 32, one forward pass each"
ARCH_ORDER: tuple[str, ...] = ("segnet", "unet")
_SCORES = metric_names("instance")
_AGGS = ("mean", "pooled")

#: Columns of ``results.csv`` (one row per cell). ``*_mean``: mean of per-image scores;
#: ``*_pooled``: from statistics summed over the test tiles; ``<m>_<agg>_ci_low/high``: their 95%
#: confidence interval over the test images (``ci_method`` says how); ``test_set``: hash of the
#: test split; ``status`` / ``failure``: ``failed`` and the check that caught a cell that did not learn.
RESULT_COLUMNS: tuple[str, ...] = (
    "run_dir", "arch", "model", "train_set", "train_label", "n_real", "n_synthetic", "n_train", "n_val",
    "profile", "seed", "data_seed", "target", "postprocess", "dataset", "split", "n_test", "test_set", "eval_mode",
    "image_size", "batch_size", "lr", "steps_planned", "steps_done", "best_step", "stopped_early",
    "status", "failure",
    *(f"{m}_mean" for m in _SCORES), *(f"{m}_pooled" for m in _SCORES),
    *(f"{m}_{a}_{b}" for a in _AGGS for m in METRICS for b in ("ci_low", "ci_high")), "ci_method",
    "train_time_s", "eval_time_s", "device", "gbench_version", "torch_version", "smp_version",
    "git_revision", "date",
)


def cell_dir(out: str | Path, arch: str, spec: TrainSetSpec, target: str, seed: int, data_seed: int = 0) -> Path:
    """Folder of one cell: ``<out>/<arch>/<set>/<target>/seed<k>`` (``seed<k>-data<d>`` for data seed d != 0)."""
    return Path(out) / arch / spec.slug() / target / (f"seed{seed}" + (f"-data{data_seed}" if data_seed else ""))


def resolve_training_set(spec: TrainSetSpec, data: str, profile: Profile, data_seed: int = 0,
                         synthetic_dir: str | Path | None = None) -> tuple[list[tuple[Dataset, list[int]]], list[dict[str, Any]]]:
    """The images of every part of ``spec``: (dataset, indices) pairs and a description per part.

    ``data_seed`` draws a built-in real dataset (never the training seed)."""

    parts: list[tuple[Dataset, list[int]]] = []
    info: list[dict[str, Any]] = []
    for p in spec.parts:
        if p.kind == "real":
            ds = resolve_dataset(data, "train", profile, data_seed)
            parts.append((ds, list(range(len(ds)))))
            info.append({"part": "R", "kind": "real", "source": f"{ds.name} [train]", "images": len(ds)})
        else:
            r = resolve_part(p, profile, synthetic_dir)
            parts.append((r.dataset, list(r.indices)))
            info.append({"part": p.token, "kind": "synthetic", "source": r.source, "images": r.size,
                         "paper_count": p.count})
    return parts, info


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_results(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Append rows to a results CSV: read, append, write atomically, under an exclusive lock.

    Raises:
        DataError: an existing file whose header is not :data:`RESULT_COLUMNS`.
    """


    path = Path(path)
    new = pd.DataFrame([{c: r.get(c, "") for c in RESULT_COLUMNS} for r in rows], columns=list(RESULT_COLUMNS))
    with _locked(path):
        if path.is_file() and path.stat().st_size > 0:
            old = pd.read_csv(path, dtype=str, keep_default_na=False)
            if tuple(old.columns) != RESULT_COLUMNS:
                raise DataError(path, "is not a gbench segment results file (unexpected columns); use another --out")
            text = path.read_text(encoding="utf-8")
            if not text.endswith("\n"):
                text += "\n"
            text += new.to_csv(index=False, header=False)
        else:
            text = new.to_csv(index=False)
        write_text(path, text)
    return path


def _replace_rows(old: Any, new: Any, keys: list[str]) -> Any:
    """``old`` without the rows whose ``keys`` match a row of ``new``, then ``new``."""

    if set(keys) <= set(old.columns):
        probe = new[keys].drop_duplicates().astype(str)
        merged = old[keys].astype(str).merge(probe, on=keys, how="left", indicator=True)
        old = old[(merged["_merge"] == "left_only").to_numpy()]
    return pd.concat([old, new], ignore_index=True)


def _upsert_records(path: Path, records: Any, observations: Any = None) -> None:
    """Replace this cell's rows in ``path`` (records) and in the observation file beside it, under
    one lock (the records file's), each written atomically."""

    with _locked(path):
        if path.is_file():
            records = _replace_rows(load_records(path), records, key_columns(records) + ["metric"])
        save_records(records, path)
        if observations is not None:
            old = load_observations(path)
            if old is not None:
                observations = _replace_rows(old, observations, obs_key_columns(observations))
            save_observations(observations, path)


def _interval_columns(records: Any) -> dict[str, Any]:
    """``results.csv`` CI columns from a cell's records (``<m>_<agg>_ci_low/high``, ``ci_method``)."""
    out: dict[str, Any] = {}
    methods = []
    for r in records.to_dict("records"):
        if r["metric"] in METRICS:
            for b in ("ci_low", "ci_high"):
                v = r[b]
                out[f"{r['metric']}_{r['aggregation']}_{b}"] = "" if v != v else v
            if r["ci_method"]:
                methods.append(r["ci_method"])
    out["ci_method"] = "; ".join(dict.fromkeys(methods))
    return out


@dataclass(frozen=True)
class CellResult:
    """What :func:`compute_cell` made: the ``results.csv`` row, the cell's records and observations
    (None for a cell read back with ``resume``, whose summary rows were written when it ran, and on a
    non-zero rank under torchrun, whose row is empty)."""

    row: dict[str, Any]
    records: Any = None
    observations: Any = None


def run_cell(*, arch: str, train: str, data: str, profile: Profile, seed: int, out: str | Path,
             target: str = "binary", synthetic_dir: str | Path | None = None, resume: bool = False,
             progress: bool = True, device: str | None = None, overrides: dict[str, Any] | None = None,
             write_summary: bool = True, data_seed: int = 0) -> dict[str, Any]:
    """Train and score one cell; returns its ``results.csv`` row (also stored in ``result.json``).

    :func:`compute_cell`, then (``write_summary``) :func:`write_cell_summary`; the arguments are
    :func:`compute_cell`'s.
    """
    res = compute_cell(arch=arch, train=train, data=data, profile=profile, seed=seed, out=out, target=target,
                       synthetic_dir=synthetic_dir, resume=resume, progress=progress, device=device,
                       overrides=overrides, data_seed=data_seed)
    if write_summary:
        write_cell_summary(out, res)
    return res.row


def write_cell_summary(out: str | Path, res: CellResult) -> None:
    """Append a freshly computed cell's row to ``<out>/results.csv`` and upsert its records and
    observations into ``<out>/records.csv`` / ``observations.csv``, under their file locks (nothing for a
    cell read back with ``resume``)."""
    if res.records is None:
        return
    append_results(Path(out) / "results.csv", [res.row])
    _upsert_records(Path(out) / "records.csv", res.records, res.observations)


def compute_cell(*, arch: str, train: str, data: str, profile: Profile, seed: int, out: str | Path,
                 target: str = "binary", synthetic_dir: str | Path | None = None, resume: bool = False,
                 progress: bool = True, device: str | None = None, overrides: dict[str, Any] | None = None,
                 data_seed: int = 0) -> CellResult:
    """Train and score one cell, writing its folder; the grid's summary files are left to
    :func:`write_cell_summary` (so the process that runs a cell need not be the one that writes them).

    Args:
        arch: ``unet`` or ``segnet`` (any registered segmenter).
        train: training-set spec (``R``, ``S3k``, ``R+S10k``, ...).
        data: the real dataset (name or folder): its train split is ``R``, its test split is scored.
        profile: the run profile (its ``segmenters`` section for ``arch``: crop, batch, lr, schedule,
            model sizes; its synthetic counts and built-in data sizes).
        seed: training seed of the cell (initialisation, order, augmentation).
        out: grid folder (``results.csv``, ``records.csv`` and ``observations.csv`` live here).
        target: ``binary`` | ``contour`` | ``distance``.
        synthetic_dir: where synthetic sets are found (default ``runs/synth``).
        resume: reuse a finished cell, continue an interrupted one.
        progress: progress bars.
        device: None picks CUDA when available.
        overrides: :class:`segmentation.train.SegmentConfig` fields to replace.
        data_seed: seed of a built-in dataset (which train and test tiles exist); the same for
            every cell of one table.
    """


    prof = profile
    spec = parse_train_spec(train)
    cfg = config_from_profile(prof, arch, target, **dict(overrides or {}))
    folder = cell_dir(out, arch, spec, target, seed, data_seed)
    result_path = folder / "result.json"
    if resume and result_path.is_file():
        return CellResult(dict(json.loads(result_path.read_text())["row"]))

    parts, part_info = resolve_training_set(spec, data, prof, data_seed, synthetic_dir)
    test = resolve_dataset(data, "test", prof, data_seed)
    label = spec.label(prof)
    outcome = train_segmenter(cfg, parts, seed=seed, out_dir=folder, resume=resume, progress=progress,
                              device=device, description=f"{arch} {label} seed {seed}", runtime=prof.runtime)

    if not dist_info().is_main:
        return CellResult({})  # under torchrun rank 0 scores and writes
    t0 = time.perf_counter()
    scores = evaluate(outcome.module, test, cfg.postprocess, progress=progress)
    eval_time = time.perf_counter() - t0
    test_set = split_hash(data, "test", prof, data_seed, dataset=test)
    failure = segmentation_failure(scores["per_image"])
    status = "failed" if failure else "ok"

    prov = provenance(profile=prof.name, seed=seed, data_seed=data_seed, segmenter=arch, train_set=spec.text,
                      runtime=outcome.runtime)
    versions = prov["versions"]
    post = cfg.postprocess.params(target)
    n_real = sum(p["images"] for p in part_info if p["kind"] == "real")
    keys = dict(train_set=spec.text, profile=prof.name, seed=seed, dataset=test.name, split="test")
    obs = make_observations("segmentation", arch, scores["per_image"], **keys, test_set=test_set, status=status,
                            failure=failure, target=target, data_seed=data_seed)
    recs = pd.concat([
        make_records("segmentation", arch, {m: scores[agg][m] for m in _SCORES}, **keys, n=len(test),
                     provenance=prov, conventions=CONVENTIONS, target=target, aggregation=agg, data_seed=data_seed)
        for agg in _AGGS], ignore_index=True)
    recs["test_set"] = test_set
    recs["status"] = status
    recs["failure"] = failure
    recs = attach_intervals(recs, obs)
    row: dict[str, Any] = {
        "run_dir": str(folder), "arch": arch, "model": json.dumps(cfg.model_options, sort_keys=True),
        "train_set": spec.text, "train_label": label, "n_real": n_real,
        "n_synthetic": sum(p["images"] for p in part_info if p["kind"] == "synthetic"),
        "n_train": outcome.n_train, "n_val": outcome.n_val, "profile": prof.name, "seed": seed,
        "data_seed": data_seed, "target": target,
        "postprocess": json.dumps(post, sort_keys=True), "dataset": test.name, "split": "test", "n_test": len(test),
        "test_set": test_set, "eval_mode": EVAL_MODE, "image_size": cfg.image_size, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "steps_planned": outcome.steps_planned, "steps_done": outcome.steps_done,
        "best_step": "" if outcome.best_step is None else outcome.best_step, "stopped_early": outcome.stopped_early,
        "status": status, "failure": failure,
        **{f"{m}_mean": scores["mean"][m] for m in _SCORES}, **{f"{m}_pooled": scores["pooled"][m] for m in _SCORES},
        **_interval_columns(recs),
        "train_time_s": round(outcome.train_time_s, 3), "eval_time_s": round(eval_time, 3), "device": outcome.device,
        "gbench_version": versions.get("gbench", ""), "torch_version": versions.get("torch", ""),
        "smp_version": versions.get("segmentation-models-pytorch", ""), "git_revision": prov["git_revision"],
        "date": prov["date"],
    }
    record = {
        "row": row, "status": status, "failure": failure, "config": cfg.to_dict(), "train_parts": part_info,
        "postprocess": post,
        "test": {"dataset": test.name, "split": "test", "images": len(test), "eval_mode": EVAL_MODE,
                 "data_seed": data_seed, "test_set": test_set, "names": [str(n) for n in obs["image"]]},
        "metrics": {"mean": scores["mean"], "pooled": scores["pooled"],
                    "note": "mean: average of per-image scores; pooled: scores from statistics summed over tiles"},
        "intervals": recs[["metric", "aggregation", "value", "ci_low", "ci_high", "ci_method", "n_images",
                           "n_seeds"]].to_dict("records"),
        "training": {"steps_planned": outcome.steps_planned, "steps_done": outcome.steps_done,
                     "best_step": outcome.best_step, "stopped_early": outcome.stopped_early,
                     "monitor": cfg.monitor, "validations": outcome.validations, "val_images": outcome.n_val,
                     "val_crops": outcome.n_val_crops, "time_s": outcome.train_time_s},
        "conventions": CONVENTIONS, "provenance": prov,
    }
    per_image = pd.DataFrame(scores["per_image"])
    write_text(folder / "per_image.csv", per_image.to_csv(index=False))
    save_records(recs, folder / "records.csv")
    save_observations(obs, folder / "records.csv")
    write_json(result_path, record)
    return CellResult(row, recs, obs)


def run_grid(*, archs: Sequence[str], trains: Sequence[str], seeds: Sequence[int], data: str,
             profile: Profile, out: str | Path, target: str = "binary",
             synthetic_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
             device: str | None = None, overrides: dict[str, Any] | None = None,
             model_overrides: Mapping[str, dict[str, Any]] | None = None,
             on_cell: Callable[[dict[str, Any]], None] | None = None, data_seed: int = 0,
             executor: str = "sequential", jobs: int | None = None, address: str | None = None
             ) -> list[dict[str, Any]]:
    """Run every cell of archs x training sets x seeds; returns the rows in grid order (seed outermost,
    then arch, then training set).

    ``seeds`` are training seeds; every cell is trained and tested on the data drawn from the one
    ``data_seed``, so all cells share their test images. Every spec is parsed and every synthetic
    folder located before the first cell trains, so a typo fails at once.

    The cells are independent: ``executor`` (:mod:`gbench.pipelines.executor`: ``sequential``,
    ``local`` with ``jobs``, one cell per visible GPU, or ``ray`` at ``address``) decides where and how
    many run at once, never what they compute. Each cell writes its own folder; this process writes
    the grid's summary files (``results.csv``, ``records.csv``, ``observations.csv``) as each cell
    ends, so their rows follow completion order (grid order when sequential). Progress bars are shown
    only when sequential; ``on_cell(row)`` is called as each cell ends.

    Args:
        overrides: :class:`segmentation.train.SegmentConfig` fields for every cell.
        model_overrides: per architecture, model options (``{"unet": {"encoder": ...}}``).

    Raises:
        ValueError: an executor other than ``sequential`` under torchrun (DDP runs one cell on many
            processes; an executor runs many cells at once), or a pinned ``cuda:N`` device with the
            ``local`` executor (which gives each cell a GPU of its own).
    """

    prof = profile
    for a in archs:
        segmentation.SEGMENTERS.get(a)
        segmentation.profile_section(prof, a)  # a profile without a section for ``a`` fails before the first cell
    specs = [parse_train_spec(t) for t in trains]
    for s in specs:
        for p in s.synthetic:
            resolve_part(p, prof, synthetic_dir)
    sequential = executor == "sequential"
    if not sequential and dist_info().world_size > 1:
        raise ValueError(f"--executor {executor} cannot run under torchrun: DDP trains one cell on many processes")
    if executor == "local" and device is not None and ":" in device:
        raise ValueError(f"--device {device} with --executor local: leave --device unset, each cell gets a GPU "
                         "of its own")
    tasks: list[Task] = []
    for seed in seeds:
        for a in archs:
            cell_over = dict(overrides or {})
            if model_overrides and model_overrides.get(a):
                cell_over["model"] = dict(model_overrides[a])
            for s in specs:
                fn = functools.partial(compute_cell, arch=a, train=s.text, data=data, profile=prof, seed=seed,
                                       out=out, target=target, synthetic_dir=synthetic_dir, resume=resume,
                                       progress=progress and sequential, device=device, overrides=cell_over,
                                       data_seed=data_seed)
                tasks.append(Task(f"{a} {s.text} seed {seed}", fn))
    rows: dict[str, dict[str, Any]] = {}

    def done(name: str, res: CellResult) -> None:
        write_cell_summary(out, res)
        if not res.row:
            return  # a non-zero rank under torchrun
        rows[name] = res.row
        if on_cell is not None:
            on_cell(res.row)

    make_executor(executor, jobs=jobs, address=address, on_done=done).run(tasks)
    return [rows[t.name] for t in tasks if t.name in rows]


def _order_key(arch: str, train: str) -> tuple[int, str, int, str]:
    a = ARCH_ORDER.index(arch) if arch in ARCH_ORDER else len(ARCH_ORDER)
    t = PAPER_SETS.index(train) if train in PAPER_SETS else len(PAPER_SETS)
    return (a, arch, t, train)


def table_frame(rows: Sequence[dict[str, Any]], reference: Any = None, aggregation: str = "mean",
                observations: Any = None) -> Any:
    """The Table 2 layout: one row per (arch, training set), DQ, SQ, PQ, AJI over seeds.

    Failed cells (``status`` failed) are never averaged in: a row whose seeds all failed shows
    ``status`` ``failed`` (its values NaN), one with some failed seeds is computed from the others
    and counts them in ``failed_seeds``.

    Args:
        rows: ``results.csv`` rows (dicts) of one profile, dataset, target and data seed.
        reference: the paper's values as a DataFrame with ``model, train_set, metric, value``
            (``reports/reference/sharp_gan_table2.csv``), or None.
        aggregation: ``mean`` (per-image mean) or ``pooled``.
        observations: the cells' observation table (``<out>/observations.csv``), or None; with
            it each value gets its 95% confidence interval (:func:`gbench.core.stats.estimate`: test
            images resampled and, with several seeds, the seeds too).

    Returns:
        DataFrame with columns ``arch, train_set, train_label, seeds, failed_seeds, status,
        failure`` and, per metric, ``<m>`` (mean over seeds), ``<m>_std`` (sample std, NaN for
        one seed), ``<m>_ci_low``, ``<m>_ci_high`` (NaN without observations) and ``<m>_paper``
        (NaN when the paper has no such cell); ``ci_method``.
    """

    if aggregation not in ("mean", "pooled"):
        raise ValueError(f"aggregation must be 'mean' or 'pooled', got {aggregation!r}")
    df = pd.DataFrame(list(rows))
    if df.empty:
        raise ValueError("no results to tabulate")
    for c, d in (("status", "ok"), ("failure", ""), ("data_seed", 0)):
        if c not in df.columns:
            df[c] = d
    df["status"] = df["status"].fillna("ok").replace("", "ok")
    df["failure"] = df["failure"].fillna("")
    ref: dict[tuple[str, str, str], float] = {}
    if reference is not None:
        for r in reference.itertuples():
            ref[(str(r.model), str(r.train_set), str(r.metric))] = float(r.value)
    out = []
    for (arch, train), g in df.groupby(["arch", "train_set"], sort=False):
        ok = g[g["status"] == "ok"]
        failures = list(dict.fromkeys(str(f) for f in g.loc[g["status"] != "ok", "failure"] if str(f)))
        entry: dict[str, Any] = {"arch": arch, "train_set": train, "train_label": g["train_label"].iloc[0],
                                 "seeds": int(g["seed"].nunique()), "failed_seeds": int((g["status"] != "ok").sum()),
                                 "status": "ok" if len(ok) else "failed", "failure": "; ".join(failures),
                                 "ci_method": ""}
        cell_obs = _cell_observations(observations, arch, train, ok) if len(ok) else None
        for m in METRICS:
            vals = ok[f"{m}_{aggregation}"].astype(float).to_numpy()
            entry[m] = float(np.mean(vals)) if len(vals) else math.nan
            entry[f"{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
            entry[f"{m}_ci_low"] = entry[f"{m}_ci_high"] = math.nan
            if cell_obs is not None:
                est = estimate(cell_obs, m, aggregation)
                entry[f"{m}_ci_low"], entry[f"{m}_ci_high"] = est.ci_low, est.ci_high
                entry["ci_method"] = est.method
            entry[f"{m}_paper"] = ref.get((arch, train, m), math.nan)
        out.append(entry)
    out.sort(key=lambda e: _order_key(e["arch"], e["train_set"]))
    return pd.DataFrame(out)


def _cell_observations(observations: Any, arch: str, train: str, ok: Any) -> Any:
    """The observations of one table row's ok cells (matched on arch, training set, seed, target,
    profile, data seed), or None when they are not all there."""
    if observations is None or len(observations) == 0:
        return None
    o = observations
    sel = (o["kind"] == "segmentation") & (o["model"] == arch) & (o["train_set"] == train)
    for col in ("target", "profile", "data_seed"):
        if col in o.columns and col in ok.columns:
            sel &= o[col].astype(str).isin({str(v) for v in ok[col]})
    sel &= o["seed"].astype(int).isin({int(v) for v in ok["seed"]})
    found = o[sel]
    if set(found["seed"].astype(int)) != {int(v) for v in ok["seed"]}:
        return None
    return found.reset_index(drop=True)
