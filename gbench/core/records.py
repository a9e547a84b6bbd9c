"""The one tidy result-record format of gbench (one metric value per row).

Every result (image quality, segmentation, later MI-GAN multi-focus) is stored as long-format
rows of a pandas DataFrame with these columns, in this order:

Experiment keys (:data:`KEY_COLUMNS`)
    ``kind``       ``quality`` | ``segmentation`` | ``multifocus``
    ``model``      what was evaluated: the generator for ``quality`` (``gan-binary``,
                   ``gan-dist``, ``sharp-gan``), the segmentation architecture for
                   ``segmentation`` (``unet``, ``segnet``)
    ``train_set``  what the model was trained on: ``R``, ``S3k``, ``R+S3k``, ``S10k``,
                   ``R+S10k`` (segmentation); the real set, ``R``, for a generator
    ``profile``    run profile (``smoke``, ``demo``, ``paper``)
    ``seed``       integer seed of the run
    ``dataset``    evaluation dataset (``cpm17``, ``synthetic-he`` ...)
    ``split``      evaluation split (``test`` ...)
Extra key columns
    Any other column that is neither a value nor a provenance column (``conditioning``,
    ``generator`` for the source of a segmenter's synthetic images ...) is an experiment key
    as well: tables, comparisons and regression checks match rows on it.
Values (:data:`VALUE_COLUMNS`)
    ``metric``     registry key, lowercase: ssim, fsim, gmsd, nrmse, dq, sq, pq, aji,
                   aji_plus, fid, kid, precision, recall, density, coverage (the
                   metric registry, :data:`gbench.core.metric_specs.METRICS`, holds each
                   metric's direction and label; ``higher_is_better``, ``metric_label`` and
                   ``sort_metrics`` are re-exported here)
    ``value``      float64
    ``n``          number of images (or cells) the value was computed over
Estimate (:data:`ESTIMATE_COLUMNS`; optional on input, filled with defaults)
    ``ci_low``, ``ci_high``  the 95% confidence interval of ``value`` (NaN when not computed)
    ``ci_method``  how the interval was obtained (``""`` when not computed; see
                   :mod:`reports.stats`)
    ``n_images``   number of test images (resampling units) behind the value (default ``n``)
    ``n_seeds``    number of training seeds behind the value (default 1)
    ``status``     ``ok`` or ``failed`` (a run that did not learn: never read as a number)
    ``failure``    the check that flagged a failed run (``""`` when ``ok``)
    ``test_set``   hash of the test set the value was computed on (``""`` when unknown);
                   results on different test sets are never compared
Provenance (:data:`PROVENANCE_COLUMNS`)
    ``gbench_version``, ``git_revision``, ``torch_version``, ``device``, ``date`` (UTC,
    ISO 8601), ``conventions`` (a JSON string: the metric module's ``CONVENTIONS`` for the
    metrics of the row, so a number says which protocol made it).

Files: :func:`save_records` writes ``NAME.csv`` (and ``NAME.parquet`` when pyarrow is
installed) beside ``NAME.manifest.json`` (schema version, columns, row count, sha256 of the
CSV, metrics with their directions), all atomically. :func:`load_records` reads them back
and raises :class:`gbench.core.errors.DataError` naming the file and the problem.

This module imports neither torch nor any model code (``reports/`` depends on it).

Example:
    >>> df = make_records("quality", "sharp-gan", {"ssim": 0.75, "gmsd": 0.15}, train_set="R",
    ...                   profile="smoke", seed=0, dataset="synthetic-he", split="test", n=3,
    ...                   provenance={})
    >>> list(df["metric"])
    ['ssim', 'gmsd']
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.util
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd

from gbench import __version__
from gbench.core.errors import DataError
from gbench.core.fileio import atomic_path, write_json
from gbench.core.metric_specs import direction, higher_is_better, metric_label, sort_metrics
from gbench.core.provenance import provenance as _prov

__all__ = [
    "SCHEMA_VERSION",
    "KINDS",
    "KEY_COLUMNS",
    "VALUE_COLUMNS",
    "ESTIMATE_COLUMNS",
    "PROVENANCE_COLUMNS",
    "COLUMNS",
    "higher_is_better",
    "metric_label",
    "sort_metrics",
    "key_columns",
    "scope_columns",
    "provenance_columns",
    "make_records",
    "records_from_dicts",
    "validate_records",
    "save_records",
    "load_records",
    "manifest_path",
]

SCHEMA_VERSION: Final = 1
Kind = Literal["quality", "segmentation", "multifocus"]
KINDS: Final[tuple[str, ...]] = ("quality", "segmentation", "multifocus")

KEY_COLUMNS: Final[tuple[str, ...]] = ("kind", "model", "train_set", "profile", "seed", "dataset", "split")
VALUE_COLUMNS: Final[tuple[str, ...]] = ("metric", "value", "n")
ESTIMATE_COLUMNS: Final[tuple[str, ...]] = (
    "ci_low", "ci_high", "ci_method", "n_images", "n_seeds", "status", "failure", "test_set")
#: Run statuses: ``failed`` marks a run that did not learn (see ``failure`` for the check).
STATUSES: Final[tuple[str, ...]] = ("ok", "failed")
PROVENANCE_COLUMNS: Final[tuple[str, ...]] = (
    "gbench_version", "git_revision", "torch_version", "device", "date", "conventions")
COLUMNS: Final[tuple[str, ...]] = KEY_COLUMNS + VALUE_COLUMNS + ESTIMATE_COLUMNS + PROVENANCE_COLUMNS
#: Columns that may appear in a reference table but are not experiment keys.
_META_COLUMNS: Final[frozenset[str]] = frozenset({"direction", "source", "note"})

def key_columns(df: Any) -> list[str]:
    """The experiment-key columns of a record table: :data:`KEY_COLUMNS` plus any extra column
    that is neither a value, a provenance nor a reference-metadata column."""
    skip = set(VALUE_COLUMNS) | set(ESTIMATE_COLUMNS) | set(PROVENANCE_COLUMNS) | _META_COLUMNS
    extra = [c for c in df.columns if c not in KEY_COLUMNS and c not in skip]
    return [c for c in KEY_COLUMNS if c in df.columns] + extra


def scope_columns(df: Any, exclude: Sequence[str] = ("kind", "model", "train_set", "seed")) -> list[str]:
    """The key columns that set the *scope* of a comparison: every key but ``exclude``
    (by default: dataset, profile, split and any extra key such as ``aggregation``)."""
    return [c for c in key_columns(df) if c not in exclude]


# ------------------------------------------------------------------------------------- building

def _conventions_json(conventions: Mapping[str, Any] | str | None) -> str:
    if conventions is None:
        return "{}"
    if isinstance(conventions, str):
        json.loads(conventions)  # must be valid JSON
        return conventions
    return json.dumps(conventions, sort_keys=True, default=str, separators=(",", ":"))


def provenance_columns(provenance: Mapping[str, Any] | None = None,
                       conventions: Mapping[str, Any] | str | None = None) -> dict[str, str]:
    """The provenance columns from a :func:`gbench.core.provenance.provenance` dictionary.

    Args:
        provenance: ``gbench.core.provenance.provenance(...)`` output; ``None`` calls it (which asks
            torch for the device, so pass the dictionary when torch must not be imported).
            Missing entries become ``""``.
        conventions: The metric conventions the values were computed under (a mapping, e.g.
            ``gbench.metrics.quality.CONVENTIONS``, or a JSON string).

    Returns:
        ``{column: str}`` for every column of :data:`PROVENANCE_COLUMNS`.
    """
    if provenance is None:
        provenance = _prov()
    versions = provenance.get("versions") or {}
    if not versions:
        versions = {"gbench": __version__}
    return {
        "gbench_version": str(versions.get("gbench", "")),
        "git_revision": str(provenance.get("git_revision", "")),
        "torch_version": str(versions.get("torch", "")),
        "device": str(provenance.get("device", "")),
        "date": str(provenance.get("date") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")),
        "conventions": _conventions_json(conventions),
    }


def make_records(kind: Kind, model: str, metrics: Mapping[str, float], *, train_set: str, profile: str,
                 seed: int, dataset: str, split: str, n: int | Mapping[str, int],
                 provenance: Mapping[str, Any] | None = None,
                 conventions: Mapping[str, Any] | str | None = None, **extra_keys: Any) -> Any:
    """Records (one row per metric) of one experiment.

    Args:
        kind: ``quality``, ``segmentation`` or ``multifocus``.
        model: Generator name (quality) or segmentation architecture (segmentation).
        metrics: ``{metric: value}``, metric names as in :data:`gbench.core.metric_specs.METRICS`.
        train_set: Training set name (``R``, ``S3k``, ``R+S3k``, ...).
        profile, seed, dataset, split: The remaining experiment keys.
        n: Number of images each value was computed over (one int, or one per metric).
        provenance: See :func:`provenance_columns`; ``None`` collects it now.
        conventions: Metric conventions (JSON-able mapping or JSON string).
        **extra_keys: Further experiment keys (e.g. ``conditioning="distance-map"``).

    Returns:
        A validated DataFrame in the record format.
    """
    prov = provenance_columns(provenance, conventions)
    rows = []
    for metric, value in metrics.items():
        count = n[metric] if isinstance(n, Mapping) else n
        rows.append({"kind": kind, "model": model, "train_set": train_set, "profile": profile, "seed": seed,
                     "dataset": dataset, "split": split, "metric": metric, "value": value, "n": count,
                     **prov, **extra_keys})
    return records_from_dicts(rows)


def records_from_dicts(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A validated record DataFrame from dictionaries (missing provenance columns become ``""``).

    Raises:
        ValueError: a key or value column is missing, a value is not a number, ``kind`` is
            unknown, or two rows share all keys and the metric.
    """

    rows = [dict(r) for r in rows]
    if not rows:
        return _empty_records()
    for i, row in enumerate(rows):
        missing = [c for c in KEY_COLUMNS + VALUE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"record {i} lacks column(s) {', '.join(missing)}")
        for c in PROVENANCE_COLUMNS:
            row.setdefault(c, "" if c != "conventions" else "{}")
    df = pd.DataFrame(rows)
    return validate_records(_order(df))


def _empty_records() -> Any:
    return validate_records(pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS}))


def _order(df: Any) -> Any:
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[[c for c in COLUMNS if c in df.columns] + extra]


def validate_records(df: Any, path: str | Path | None = None) -> Any:
    """Check and normalize a record DataFrame; return it with canonical dtypes.

    Keys and provenance become strings (``seed`` an integer), ``value`` float64 and ``n``
    an integer. Errors name ``path`` when given (as :class:`gbench.core.errors.DataError`).

    Raises:
        DataError / ValueError: missing columns, bad numbers, unknown ``kind``, duplicates.
    """

    def fail(problem: str) -> None:
        if path is not None:
            raise DataError(path, problem)
        raise ValueError(problem)

    missing = [c for c in KEY_COLUMNS + VALUE_COLUMNS if c not in df.columns]
    if missing:
        fail(f"not a gbench record table: missing column(s) {', '.join(missing)} "
             f"(expected at least {', '.join(KEY_COLUMNS + VALUE_COLUMNS)})")
    df = df.copy().reset_index(drop=True)
    for c in PROVENANCE_COLUMNS:
        if c not in df.columns:
            df[c] = "{}" if c == "conventions" else ""
    for c in key_columns(df) + ["metric"] + list(PROVENANCE_COLUMNS):
        if c == "seed":
            continue
        df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    df = df.astype({c: object for c in df.columns if c not in ("seed", "value", "n")})
    seed = pd.to_numeric(df["seed"], errors="coerce")
    bad = df.index[seed.isna() | (seed != seed.round())]
    if len(bad):
        fail(f"row {_row(bad[0])}: seed {df['seed'].iloc[int(bad[0])]!r} is not an integer")
    value = pd.to_numeric(df["value"], errors="coerce")
    bad = df.index[value.isna() & ~df["value"].map(_is_nan_text)]
    if len(bad):
        fail(f"row {_row(bad[0])}: value {df['value'].iloc[int(bad[0])]!r} of metric "
             f"{df['metric'].iloc[int(bad[0])]!r} is not a number")
    n = pd.to_numeric(df["n"], errors="coerce")
    bad = df.index[n.isna() | (n < 0) | (n != n.round())]
    if len(bad):
        fail(f"row {_row(bad[0])}: n {df['n'].iloc[int(bad[0])]!r} is not a non-negative integer")
    df["seed"] = seed.astype("int64")
    df["value"] = value.astype("float64")
    df["n"] = n.astype("int64")
    df = _estimate_columns(df, fail)
    kinds = sorted(set(df["kind"]) - set(KINDS))
    if kinds:
        fail(f"unknown kind(s) {', '.join(map(repr, kinds))} (known: {', '.join(KINDS)})")
    empty = df.index[df["metric"] == ""]
    if len(empty):
        fail(f"row {_row(empty[0])}: empty metric name")
    for conv in set(df["conventions"]):
        try:
            json.loads(conv or "{}")
        except json.JSONDecodeError:
            fail(f"conventions {conv[:40]!r} is not valid JSON")
    cols = key_columns(df) + ["metric"]
    dup = df.duplicated(cols, keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        fail("two records share the same keys and metric: "
             + ", ".join(f"{c}={first[c]}" for c in cols))
    return df.reset_index(drop=True)


def _estimate_columns(df: Any, fail: Any) -> Any:
    """Fill and check :data:`ESTIMATE_COLUMNS` (defaults: no CI, ``n_images = n``, one seed, ok)."""

    defaults = {"ci_low": math.nan, "ci_high": math.nan, "ci_method": "", "n_images": None, "n_seeds": 1,
                "status": "ok", "failure": "", "test_set": ""}
    for c, d in defaults.items():
        if c not in df.columns:
            df[c] = df["n"] if c == "n_images" else d
    for c in ("ci_low", "ci_high"):
        num = pd.to_numeric(df[c].map(lambda v: math.nan if _is_nan_text(v) else v), errors="coerce")
        bad = df.index[num.isna() & ~df[c].map(_is_nan_text)]
        if len(bad):
            fail(f"row {_row(bad[0])}: {c} {df[c].iloc[int(bad[0])]!r} is not a number")
        df[c] = num.astype("float64")
    for c in ("n_images", "n_seeds"):
        num = pd.to_numeric(df[c], errors="coerce")
        bad = df.index[num.isna() | (num < 0) | (num != num.round())]
        if len(bad):
            fail(f"row {_row(bad[0])}: {c} {df[c].iloc[int(bad[0])]!r} is not a non-negative integer")
        df[c] = num.astype("int64")
    for c in ("ci_method", "status", "failure", "test_set"):
        df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    df.loc[df["status"] == "", "status"] = "ok"
    bad = df.index[~df["status"].isin(STATUSES)]
    if len(bad):
        fail(f"row {_row(bad[0])}: status {df['status'].iloc[int(bad[0])]!r} is not one of {', '.join(STATUSES)}")
    bad = df.index[(df["status"] == "failed") & (df["failure"] == "")]
    if len(bad):
        fail(f"row {_row(bad[0])}: a failed run must say which check failed (column failure)")
    lo, hi, v = df["ci_low"], df["ci_high"], df["value"]
    bad = df.index[(lo > hi) | (lo.isna() != hi.isna())]
    if len(bad):
        fail(f"row {_row(bad[0])}: ci_low {lo.iloc[int(bad[0])]} / ci_high {hi.iloc[int(bad[0])]} is not an interval")
    return _order(df)


def _row(index: Any) -> int:
    return int(index) + 2  # 1-based CSV line number counting the header


def _is_nan_text(v: Any) -> bool:
    if isinstance(v, float):
        return math.isnan(v)
    return isinstance(v, str) and v.strip().lower() in ("nan", "")


# ------------------------------------------------------------------------------------------ files

def manifest_path(path: str | Path) -> Path:
    """The manifest written beside a record file: ``NAME.csv`` -> ``NAME.manifest.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".manifest.json")


def _csv_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return path.with_suffix(".csv")
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: record files end in .csv")
    return path


def _has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def save_records(df: Any, path: str | Path, extra_manifest: Mapping[str, Any] | None = None) -> Path:
    """Write records as CSV (plus Parquet when pyarrow is installed) and a JSON manifest.

    Every file is written atomically (temporary file, then rename), the manifest last, so a
    crash never leaves a half-written table and a manifest always describes a complete CSV.

    Args:
        df: Record DataFrame (validated again here).
        path: Target ``NAME.csv``; the manifest goes to ``NAME.manifest.json``.
        extra_manifest: Additional JSON-able entries for the manifest.

    Returns:
        The CSV path.
    """

    df = validate_records(df)
    csv = _csv_path(path)
    text = df.to_csv(index=False, lineterminator="\n", float_format=None)
    with atomic_path(csv) as tmp:
        tmp.write_text(text, encoding="utf-8")
    files = [csv.name]
    if _has_pyarrow():  # a dependency; a bare install without it writes the CSV only
        parquet = csv.with_suffix(".parquet")
        with atomic_path(parquet) as tmp:
            df.to_parquet(tmp, index=False)
        files.append(parquet.name)
    metrics = sort_metrics(df["metric"])
    manifest = {
        "format": "gbench-records",
        "schema_version": SCHEMA_VERSION,
        "files": files,
        "csv_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "rows": int(len(df)),
        "columns": list(df.columns),
        "key_columns": key_columns(df),
        "metrics": {m: direction(m, "unknown") for m in metrics},
        "kinds": sorted(set(df["kind"])),
        "profiles": sorted(set(df["profile"])),
        "seeds": sorted(int(s) for s in set(df["seed"])),
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **dict(extra_manifest or {}),
    }
    write_json(manifest_path(csv), manifest)
    return csv


def load_records(path: str | Path | Sequence[str | Path]) -> Any:
    """Read records written by :func:`save_records` (or by hand in the same columns).

    Args:
        path: A ``.csv`` or ``.parquet`` file, a folder holding ``records.csv`` (or, without
            it, ``records.parquet``), or a list of those (concatenated; the same experiment twice
            is an error).

    Returns:
        The validated record DataFrame.

    Raises:
        DataError: the file is missing, unreadable, or not in the record format (one line,
            naming the file).
    """


    if not isinstance(path, (str, Path)):
        frames = [load_records(p) for p in path]
        if not frames:
            raise ValueError("no record files given")
        try:
            return validate_records(pd.concat(frames, ignore_index=True))
        except ValueError as exc:
            raise ValueError(f"{', '.join(str(p) for p in path)}: {exc}") from None
    path = Path(path)
    if path.is_dir():
        candidates = [path / "records.csv", path / "records.parquet"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise DataError(path, "folder holds no records.csv or records.parquet")
        path = found[0]
    if not path.exists():
        raise DataError(path, "no such file")
    if not path.is_file():
        raise DataError(path, "not a file")
    if path.suffix.lower() == ".parquet":
        try:
            df = pd.read_parquet(path)
        except ImportError as exc:
            raise DataError(path, f"cannot read Parquet ({exc}); read the CSV beside it") from None
        except Exception as exc:  # pyarrow's ArrowInvalid and friends: not a Parquet file
            raise DataError(path, f"unreadable Parquet: {' '.join(str(exc).split())[:200]}") from None
        return validate_records(df, path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(path, f"unreadable CSV: {' '.join(str(exc).split())}") from None
    df = validate_records(df, path)
    _check_manifest(path)
    return df


def _check_manifest(path: Path) -> None:
    mpath = manifest_path(path)
    if path.suffix.lower() != ".csv" or not mpath.is_file():
        return
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        warnings.warn(f"{mpath}: unreadable manifest, ignored", stacklevel=3)
        return
    if not isinstance(manifest, dict):
        warnings.warn(f"{mpath}: not a records manifest (a JSON {type(manifest).__name__}), ignored", stacklevel=3)
        return
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if manifest.get("csv_sha256") not in (None, sha):
        warnings.warn(f"{path}: changed since its manifest was written (sha256 differs from "
                      f"{mpath.name}); rewrite it with save_records", stacklevel=3)
