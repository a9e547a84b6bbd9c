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
* ``checkpoints/best.pt`` (the weights scored; the only checkpoint a finished cell keeps, or
  ``last.pt`` where nothing was validated), ``history.csv``.

* ``cell.json``: the cell's identity (:func:`cell_identity`), written before it trains.

``result.json`` is written last: a cell is *done* when its ``result.json``, ``records.csv`` and
``observations.csv`` are there. The per-cell files are the source of truth; the grid's summary files
``<out>/results.csv`` (one row per done cell, :data:`RESULT_COLUMNS`), ``<out>/records.csv`` and
``<out>/observations.csv`` are rebuilt from them (:func:`rebuild_summaries`, under a file lock,
each written atomically) as each cell ends and at the end of every run, ``--resume`` included. A
grid killed at any moment and resumed therefore ends with the files of an uninterrupted run, and
deleted summary files come back.

What ``resume`` checks: the folder's ``grid.json`` (data by content, profile, the effective
training and post-processing options of each architecture) must match this run's, and each cell's
``cell.json`` (the same plus architecture, training set with its synthetic images by content,
target, seed and data seed) must match the cell this run would make; otherwise the whole run is
refused before anything trains, naming what changed (use another ``--out``, or ``--overwrite``). A
done cell is then read back instead of re-run, and an interrupted one continues from its
checkpoint. New seeds, architectures or training sets may be added to a resumed folder.

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
from gbench.segmentation.train import config_from_profile, evaluate, finish_checkpoints, train_segmenter

__all__ = ["RESULT_COLUMNS", "METRICS", "EVAL_MODE", "resolve_training_set", "run_cell", "compute_cell", "run_floor",
           "write_cell_summary", "CellResult", "run_grid", "rebuild_summaries", "cell_identity", "grid_identity",
           "check_identity", "cell_done",
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


def _scored_tables(model: str, scores: dict[str, Any], keys: dict[str, Any], *, n: int, provenance: Any,
                   conventions: dict[str, Any], test_set: str, status: str, failure: str, target: str,
                   data_seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records, observations) of one scored segmenter (a trained cell or the floor): the per-image
    observations, one record per aggregation with the run's status, and their intervals."""
    obs = make_observations("segmentation", model, scores["per_image"], **keys, test_set=test_set, status=status,
                            failure=failure, target=target, data_seed=data_seed)
    recs = pd.concat([
        make_records("segmentation", model, {m: scores[agg][m] for m in _SCORES}, **keys, n=n,
                     provenance=provenance, conventions=conventions, target=target, aggregation=agg,
                     data_seed=data_seed)
        for agg in _AGGS], ignore_index=True)
    recs["test_set"] = test_set
    recs["status"] = status
    recs["failure"] = failure
    return attach_intervals(recs, obs), obs


GRID_FILE = "grid.json"
CELL_FILE = "cell.json"
_DONE_FILES = ("result.json", "records.csv", "observations.csv")


def _data_identity(data: str, prof: Profile, data_seed: int, train: bool) -> dict[str, Any]:
    """``--data`` by content: the hashes of its test (and train) split."""
    return {"name": str(data), "data_seed": int(data_seed),
            "test": split_hash(data, "test", prof, data_seed),
            **({"train": split_hash(data, "train", prof, data_seed)} if train else {})}


@functools.lru_cache(maxsize=64)
def _synthetic_hash(folder: str, count: int, stamp: tuple[tuple[str, int, int], ...]) -> str:
    from gbench.core.observations import hash_test_set
    from gbench.data.loaders import load_folder

    ds = load_folder(folder, split="all", name=folder)
    return hash_test_set((s.name, s.image, s.instances) for s in ds[:count])


def _synthetic_identity(spec: TrainSetSpec, prof: Profile, synthetic_dir: Any) -> list[dict[str, Any]]:
    out = []
    for part in spec.synthetic:
        r = resolve_part(part, prof, synthetic_dir)
        folder = Path(r.source)
        stamp = tuple((str(q.relative_to(folder)), q.stat().st_size, q.stat().st_mtime_ns)
                      for q in sorted(folder.rglob("*")) if q.is_file())
        out.append({"part": part.token, "images": r.size, "content": _synthetic_hash(str(folder), r.size, stamp)})
    return out


def grid_identity(*, data: str, profile: Profile, configs: Mapping[str, Any], data_seed: int = 0) -> dict[str, Any]:
    """What every cell of a grid folder shares: ``--data`` by content, the profile and, per
    architecture, the effective training and post-processing options (``SegmentConfig.to_dict()``)."""
    return {"data": _data_identity(data, profile, data_seed, train=True), "profile": profile.name,
            "options": {a: json.loads(json.dumps(c, default=str)) for a, c in configs.items()}}


def cell_identity(*, arch: str, spec: TrainSetSpec, data: str, profile: Profile, seed: int, target: str,
                  config: Any, data_seed: int = 0, synthetic_dir: Any = None) -> dict[str, Any]:
    """Everything a cell's numbers depend on: ``--data`` by content (test split, and train split when
    the set holds ``R``), the synthetic images of each part by content, profile, every training and
    post-processing option (``SegmentConfig.to_dict()``: threshold, min-area, ...), architecture,
    training set, target, training seed and data seed. Not the device or the runtime."""
    return {"arch": arch, "train_set": spec.text, "target": target, "seed": int(seed), "data_seed": int(data_seed),
            "profile": profile.name, "data": _data_identity(data, profile, data_seed, train=spec.has_real),
            "synthetic": _synthetic_identity(spec, profile, synthetic_dir),
            "options": json.loads(json.dumps(config.to_dict(), default=str))}


_WHAT = {"data": "--data (its images, by content)", "profile": "--profile", "synthetic": "synthetic set (its images)",
         "seed": "seed", "data_seed": "--data-seed", "target": "--target", "arch": "--arch", "train_set": "--train"}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two identity documents, in words (options by name, old -> new)."""
    diff = []
    for k in dict.fromkeys([*old, *new]):
        if old.get(k) == new.get(k):
            continue
        if k == "options":
            a, b = _flat(old.get(k) or {}), _flat(new.get(k) or {})
            changed = [f"{o} {a.get(o)!r} -> {b.get(o)!r}" for o in dict.fromkeys([*a, *b]) if a.get(o) != b.get(o)]
            diff.append("options (" + ", ".join(changed) + ")")
        elif k == "data" and isinstance(old.get(k), Mapping) and isinstance(new.get(k), Mapping):
            o, n = old[k], new[k]
            same_name = o.get("name") == n.get("name")
            diff.append(_WHAT[k] + ("" if same_name else f" ({o.get('name')!r} -> {n.get('name')!r})"))
        else:
            diff.append(_WHAT.get(k, k) + ("" if k in ("synthetic",) else f" ({old.get(k)!r} -> {new.get(k)!r})"))
    return diff


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        "delete it to recompute, or use --overwrite") from None
    if not isinstance(doc, dict):
        raise DataError(path, "not a gbench JSON document (not an object); delete it to recompute")
    return doc


def check_identity(folder: Path, file: str, identity: Mapping[str, Any], what: str) -> None:
    """Refuse (one-line DataError) when ``folder/file`` records another identity than ``identity``.

    A folder holding results but no identity file (an older gbench) is refused too."""
    path = folder / file
    if not path.is_file():
        if file == CELL_FILE and (folder / "result.json").is_file():
            raise DataError(folder, f"--resume: {what} has results but no {CELL_FILE} (made by an older gbench), "
                            "so what it was made with cannot be checked; use another --out, or --overwrite")
        return
    old = _read_json(path)
    if old != json.loads(json.dumps(identity)):
        _refuse(folder, what, old, identity)


def _refuse(folder: Path, what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    diff = _differences(old, new)
    raise DataError(folder, f"--resume: {what} was made with a different {', '.join(diff) or 'setup'}; "
                    "use another --out, or --overwrite to start again")


def cell_done(folder: Path) -> bool:
    """A cell is done when its ``result.json`` (written last), ``records.csv`` and ``observations.csv`` exist."""
    return all((folder / f).is_file() for f in _DONE_FILES)


def _result_folders(out: Path, order: Sequence[Path] = ()) -> list[Path]:
    """Done result folders under ``out`` (cells ``<arch>/<set>/<target>/<seed>``, and the floor's
    ``floor/<target>/<data>``): those in ``order`` first, in that order, then the others by path."""
    found = {p.parent for pat in ("*/*/*/*/result.json", "floor/*/*/result.json") for p in out.glob(pat)}
    found = {f for f in found if cell_done(f)}
    first = [Path(f) for f in order if Path(f) in found]
    return first + sorted(found - set(first))


def rebuild_summaries(out: str | Path, order: Sequence[Path] = ()) -> int:
    """Rebuild ``<out>/results.csv``, ``records.csv`` and ``observations.csv`` from the done cells'
    own files (``result.json`` row, ``records.csv``, ``observations.csv``), under the grid's lock, each
    file written atomically. ``order``: cell folders to list first (the grid order); the others
    follow by path. Returns the number of rows in ``results.csv``.

    Raises:
        DataError: a cell file that cannot be read (named, with what is wrong).
    """
    out = Path(out)
    folders = _result_folders(out, order)
    if not folders:
        return 0
    rows, recs, obs = [], [], []
    with _locked(out / "results.csv"):
        for f in folders:
            doc = _read_json(f / "result.json")
            row = doc.get("row")
            if not isinstance(row, Mapping):
                raise DataError(f / "result.json", "has no 'row' entry (not a gbench cell result); delete it to recompute")
            if "run_dir" in row:  # a trained cell (the floor has records but no results.csv row)
                rows.append({c: "" if row.get(c) is None else row.get(c, "") for c in RESULT_COLUMNS})
            recs.append(load_records(f / "records.csv"))
            cell_obs = load_observations(f / "records.csv", required=True)
            obs.append(cell_obs)
        if rows:
            write_text(out / "results.csv", pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).to_csv(index=False))
        save_records(pd.concat(recs, ignore_index=True), out / "records.csv")
        save_observations(pd.concat(obs, ignore_index=True), out / "records.csv")
    return len(rows)


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


def write_cell_summary(out: str | Path, res: CellResult, order: Sequence[Path] = ()) -> None:
    """After a freshly computed cell: rebuild ``<out>/results.csv``, ``records.csv`` and
    ``observations.csv`` from the done cells' files (:func:`rebuild_summaries`; nothing for a cell
    read back with ``resume`` or a non-zero rank)."""
    if res.records is None:
        return
    rebuild_summaries(out, order)


def compute_cell(*, arch: str, train: str, data: str, profile: Profile, seed: int, out: str | Path,
                 target: str = "binary", synthetic_dir: str | Path | None = None, resume: bool = False,
                 progress: bool = True, device: str | None = None, overrides: dict[str, Any] | None = None,
                 data_seed: int = 0, identity: Mapping[str, Any] | None = None) -> CellResult:
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
        identity: the cell's :func:`cell_identity` (computed here when None).

    Raises:
        DataError: with ``resume``, a cell folder made with another identity (named; see the
            module docstring), or unreadable cell files.
    """


    prof = profile
    spec = parse_train_spec(train)
    cfg = config_from_profile(prof, arch, target, **dict(overrides or {}))
    folder = cell_dir(out, arch, spec, target, seed, data_seed)
    result_path = folder / "result.json"
    if identity is None:
        identity = cell_identity(arch=arch, spec=spec, data=data, profile=prof, seed=seed, target=target, config=cfg,
                                 data_seed=data_seed, synthetic_dir=synthetic_dir)
    what = f"cell {arch} {spec.text} {target} seed {seed}"
    if resume:
        check_identity(folder, CELL_FILE, identity, what)
        if cell_done(folder):
            row = _read_json(result_path).get("row")
            if not isinstance(row, Mapping):
                raise DataError(result_path, "has no 'row' entry (not a gbench cell result); delete it to recompute")
            return CellResult(dict(row))
    if dist_info().is_main:
        write_json(folder / CELL_FILE, identity)

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
    recs, obs = _scored_tables(arch, scores, keys, n=len(test), provenance=prov, conventions=CONVENTIONS,
                               test_set=test_set, status=status, failure=failure, target=target,
                               data_seed=data_seed)
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
    finish_checkpoints(folder)  # finished: one checkpoint, the weights scored
    return CellResult(row, recs, obs)


def run_floor(*, data: str, profile: Profile, out: str | Path | None = None, target: str = "binary",
              data_seed: int = 0, write_summary: bool = True) -> CellResult:
    """Score the segmentation floor (:mod:`gbench.segmentation.floor`: no training) on the test split
    of ``data``, the same images every cell of the grid is scored on.

    Its records and observations carry the keys of a cell (model ``hed-watershed``, training set
    ``none``, seed 0, ``target`` and ``data_seed`` of the grid), so tables and claims pair every
    trained cell with it. With ``out`` they are written to ``<out>/floor/<target>/data<d>/`` and
    (``write_summary``) upserted into ``<out>/records.csv`` / ``observations.csv``; the returned
    row has the ``results.csv`` layout (for :func:`table_frame`) but is never appended to it.
    Costs seconds (about 0.1 s per tile).
    """
    from gbench.segmentation.floor import FLOOR_METHOD, FLOOR_MODEL, FLOOR_TRAIN_SET, score_floor

    prof = profile
    test = resolve_dataset(data, "test", prof, data_seed)
    t0 = time.perf_counter()
    scores = score_floor(test)
    eval_time = time.perf_counter() - t0
    test_set = split_hash(data, "test", prof, data_seed, dataset=test)
    failure = segmentation_failure(scores["per_image"])
    status = "failed" if failure else "ok"
    keys = dict(train_set=FLOOR_TRAIN_SET, profile=prof.name, seed=0, dataset=test.name, split="test")
    prov = provenance(profile=prof.name, seed=0, data_seed=data_seed, segmenter=FLOOR_MODEL)
    conv = {**CONVENTIONS, "floor": FLOOR_METHOD, "floor_config": scores["config"]}
    recs, obs = _scored_tables(FLOOR_MODEL, scores, keys, n=len(test), provenance=prov, conventions=conv,
                               test_set=test_set, status=status, failure=failure, target=target,
                               data_seed=data_seed)
    row: dict[str, Any] = {
        "arch": FLOOR_MODEL, "train_set": FLOOR_TRAIN_SET, "train_label": "(floor)", "n_real": 0, "n_synthetic": 0,
        "n_train": 0, "profile": prof.name, "seed": 0, "data_seed": data_seed, "target": target,
        "dataset": test.name, "split": "test", "n_test": len(test), "test_set": test_set, "status": status,
        "failure": failure, **{f"{m}_mean": scores["mean"][m] for m in _SCORES},
        **{f"{m}_pooled": scores["pooled"][m] for m in _SCORES}, **_interval_columns(recs),
        "eval_time_s": round(eval_time, 3), "postprocess": FLOOR_METHOD,
    }
    if out is not None:
        folder = Path(out) / "floor" / target / f"data{data_seed}"
        write_text(folder / "per_image.csv", pd.DataFrame(scores["per_image"]).to_csv(index=False))
        save_records(recs, folder / "records.csv")
        save_observations(obs, folder / "records.csv")
        write_json(folder / "result.json", {"row": row, "config": scores["config"], "method": FLOOR_METHOD,
                                            "metrics": {"mean": scores["mean"], "pooled": scores["pooled"]},
                                            "provenance": prov})
        if write_summary:
            _upsert_records(Path(out) / "records.csv", recs, obs)
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
    cell_over = {}
    for a in archs:
        cell_over[a] = dict(overrides or {})
        if model_overrides and model_overrides.get(a):
            cell_over[a]["model"] = dict(model_overrides[a])
    configs = {a: config_from_profile(prof, a, target, **cell_over[a]) for a in archs}
    main = dist_info().is_main
    grid_id = grid_identity(data=data, profile=prof, configs={a: c.to_dict() for a, c in configs.items()},
                            data_seed=data_seed)
    if resume and (Path(out) / GRID_FILE).is_file():  # options of archs this run does not train are not compared
        old = _read_json(Path(out) / GRID_FILE)
        shared = {a for a in archs if a in (old.get("options") or {})}
        mine = {**grid_id, "options": {a: o for a, o in grid_id["options"].items() if a in shared}}
        theirs = {**old, "options": {a: o for a, o in (old.get("options") or {}).items() if a in shared}}
        if theirs != mine:
            _refuse(Path(out), "the grid in this folder", theirs, mine)
        grid_id = {**grid_id, "options": {**(old.get("options") or {}), **grid_id["options"]}}
    order: list[Path] = []
    for seed in seeds:
        for a in archs:
            for s in specs:
                ident = cell_identity(arch=a, spec=s, data=data, profile=prof, seed=seed, target=target,
                                      config=configs[a], data_seed=data_seed, synthetic_dir=synthetic_dir)
                folder = cell_dir(out, a, s, target, seed, data_seed)
                if resume:  # every cell checked before the first one trains: the whole run is refused
                    check_identity(folder, CELL_FILE, ident, f"cell {a} {s.text} {target} seed {seed}")
                order.append(folder)
                fn = functools.partial(compute_cell, arch=a, train=s.text, data=data, profile=prof, seed=seed,
                                       out=out, target=target, synthetic_dir=synthetic_dir, resume=resume,
                                       progress=progress and sequential, device=device, overrides=cell_over[a],
                                       data_seed=data_seed, identity=ident)
                tasks.append(Task(f"{a} {s.text} seed {seed}", fn))
    if main:
        write_json(Path(out) / GRID_FILE, grid_id)
    rows: dict[str, dict[str, Any]] = {}

    def done(name: str, res: CellResult) -> None:
        write_cell_summary(out, res, order)
        if not res.row:
            return  # a non-zero rank under torchrun
        rows[name] = res.row
        if on_cell is not None:
            on_cell(res.row)

    make_executor(executor, jobs=jobs, address=address, on_done=done).run(tasks)
    if main:
        rebuild_summaries(out, order)  # also after a resume that recomputed nothing (deleted summaries)
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
        (NaN when the paper has no such cell); ``ci_method``; ``below_floor`` (a trained row whose PQ
        does not significantly beat the floor segmenter's row, when ``rows`` hold one: see
        :func:`run_floor`) and ``floor_test`` (how that was tested).
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
    _mark_below_floor(out, df, observations, aggregation)
    return pd.DataFrame(out)


def _mark_below_floor(entries: list[dict[str, Any]], df: Any, observations: Any, aggregation: str,
                      alpha: float = 0.05) -> None:
    """``below_floor`` of every trained row: its PQ does not significantly beat the floor segmenter's
    (paired sign-flip test on the test images, :func:`gbench.core.stats.metric_verdict`; by means
    without observations). ``floor_test`` says how."""
    from gbench.core.observations import FLOOR_SEGMENTER, FLOOR_TRAIN_SET
    from gbench.core.stats import compare_experiments, metric_verdict

    for e in entries:
        e["below_floor"], e["floor_test"] = False, ""
    floor = [e for e in entries if e["arch"] == FLOOR_SEGMENTER and e["train_set"] == FLOOR_TRAIN_SET]
    if not floor or floor[0]["status"] != "ok":
        return
    f = floor[0]
    f_obs = _cell_observations(observations, FLOOR_SEGMENTER, FLOOR_TRAIN_SET, df[(df["arch"] == FLOOR_SEGMENTER)])
    for e in entries:
        if e is f or e["status"] != "ok":
            continue
        ok = df[(df["arch"] == e["arch"]) & (df["train_set"] == e["train_set"]) & (df["status"] == "ok")]
        e_obs = _cell_observations(observations, e["arch"], e["train_set"], ok)
        if e_obs is not None and f_obs is not None:
            try:
                (d,) = compare_experiments(e_obs, f_obs, ["pq"], aggregation, alpha=alpha)
                e["below_floor"] = metric_verdict(d, alpha) != "better"
                e["floor_test"] = f"paired sign-flip test on PQ, alpha {alpha:g}"
                continue
            except ValueError:
                pass
        e["below_floor"] = not e["pq"] > f["pq"]
        e["floor_test"] = "by means (no per-image data)"


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
