"""Per-image observations: the data behind every record's confidence interval and paired test.

A record (:mod:`gbench.core.records`) holds one aggregate number per metric. Its uncertainty and
any comparison "A beats B" are computed from the per-image values it was aggregated from, kept
as an *observation table* beside the records: one row per (experiment, test image), wide.

Columns
    Experiment keys: the record key columns of the experiment (``kind``, ``model``,
        ``train_set``, ``profile``, ``seed``, ``dataset``, ``split`` and extra keys such as
        ``target`` or ``data_seed``), **without** ``aggregation``: an observation table serves
        both the per-image-mean and the pooled records of a segmentation cell.
    ``image``     the test image (or crop) name; two experiments are paired on it.
    ``unit``      the resampling unit the image belongs to (the source tile of a crop; ``image``
                  when empty). Bootstrap and permutation resample / flip whole units, so the
                  crops of one tile are never treated as independent.
    ``test_set``  hash of the whole test set (see :func:`hash_test_set`).
    ``status``    ``ok`` | ``failed`` and ``failure``: as in the records.
    Metric columns: per-image scores (``ssim``, ``fsim``, ``gmsd``, ``nrmse`` for quality;
        ``dq``, ``sq``, ``pq``, ``aji``, ``aji_plus`` for segmentation) and, for pooled
        aggregation, the per-image sufficient statistics :data:`POOLED_STATS` (``tp``, ``fp``,
        ``fn``, ``iou_sum``, ``aji_inter``, ``aji_union``, ``ajip_inter``, ``ajip_union``).

Files: ``records.csv`` -> ``observations.csv`` in the same folder (``NAME.csv`` ->
``NAME.observations.csv`` for other names), written atomically; :func:`load_observations`
finds the file beside a record file.

This module imports neither torch nor any model code.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd

from gbench.core.errors import DataError
from gbench.core.fileio import atomic_path

K = TypeVar("K")
from gbench.core.metric_specs import metric_names
from gbench.core.records import KEY_COLUMNS

__all__ = ["FLOOR_SEGMENTER", "FLOOR_TRAIN_SET", "REPLICATE_COLUMNS", "replicates_path", "save_replicates",
           "load_replicates", "OBS_KEY_COLUMNS", "POOLED_STATS", "SCORE_COLUMNS", "observations_path", "make_observations",
           "save_observations", "load_observations", "hash_test_set", "obs_key_columns"]

#: Model and training-set keys of the segmentation floor (:mod:`gbench.segmentation.floor`, no training), shared
#: here by the segmentation grid that scores it and the reports that test every trained cell against it.
FLOOR_SEGMENTER: Final = "hed-watershed"
FLOOR_TRAIN_SET: Final = "none"
#: Key columns every observation table has (extra experiment keys may follow).
OBS_KEY_COLUMNS: Final[tuple[str, ...]] = KEY_COLUMNS
#: Per-image sufficient statistics of the pooled instance metrics.
POOLED_STATS: Final[tuple[str, ...]] = ("tp", "fp", "fn", "iou_sum", "aji_inter", "aji_union", "ajip_inter",
                                        "ajip_union")
#: Score columns known to gbench: every registered metric (:data:`gbench.core.metric_specs.METRICS`), per image,
#: or per seed for set metrics (FID, KID, focus_curve_l1 of the MI-GAN transfer); other columns are kept as they are.
SCORE_COLUMNS: Final[tuple[str, ...]] = metric_names()
_OTHER = ("image", "unit", "test_set", "status", "failure")
#: Columns of a replicate table (beside the experiment keys and one column per set statistic): the
#: bootstrap replicate's index, the key of its real resample (shared by every experiment bootstrapped
#: against the same real set, size and seed), the set sizes and how the replicates were made.
REPLICATE_COLUMNS: Final[tuple[str, ...]] = ("replicate", "real_draw", "n_real", "n_fake", "method")
_NON_KEY = frozenset(_OTHER + SCORE_COLUMNS + POOLED_STATS + REPLICATE_COLUMNS
                     + ("n_true", "n_pred", "iou_threshold", "name"))


def _beside(records_path: str | Path, kind: str) -> Path:
    """The ``kind`` table beside a records file: ``X/records.csv`` (or a folder ``X``) ->
    ``X/<kind>.csv``; ``X/NAME.csv`` -> ``X/NAME.<kind>.csv``."""
    p = Path(records_path)
    if p.is_dir():
        return p / f"{kind}.csv"
    if p.name in ("records.csv", "records.parquet"):
        return p.with_name(f"{kind}.csv")
    return p.with_name(f"{p.stem}.{kind}.csv")


def _write_beside(df: Any, path: str | Path, kind: str) -> Path:
    """Write ``df`` atomically as the ``kind`` table: ``path`` itself when it names one
    (``...<kind>.csv``), else the one beside the records file ``path``."""
    target = Path(path)
    if not target.name.endswith(f"{kind}.csv"):
        target = _beside(target, kind)
    with atomic_path(target) as tmp:
        tmp.write_text(df.to_csv(index=False, lineterminator="\n", float_format="%.17g"), encoding="utf-8")
    return target


def observations_path(records_path: str | Path) -> Path:
    """``X/records.csv`` -> ``X/observations.csv``; ``X/NAME.csv`` -> ``X/NAME.observations.csv``."""
    return _beside(records_path, "observations")


def obs_key_columns(df: Any) -> list[str]:
    """The experiment-key columns of an observation table (known keys, then extra keys)."""
    extra = [c for c in df.columns if c not in OBS_KEY_COLUMNS and c not in _NON_KEY]
    return [c for c in OBS_KEY_COLUMNS if c in df.columns] + extra


def hash_test_set(items: Iterable[tuple[str, Any, Any]]) -> str:
    """A short content hash of a test set: sha256 over (name, image bytes, label bytes) in name order.

    Args:
        items: ``(name, image, instances)`` triples (numpy arrays or bytes); the order does not
            matter.

    Returns:
        16 hex digits, the same for the same images and labels, whatever produced them.
    """
    return hash_test_set_lazy(((str(name), (image, inst)) for name, image, inst in items), lambda pair: pair)


def hash_test_set_lazy(keyed: Iterable[tuple[str, K]], load: Callable[[K], tuple[Any, Any]]) -> str:
    """:func:`hash_test_set` of ``(name, *load(key))``, loading one item at a time in name order:
    the same value, with one image in memory instead of the whole set (a folder of files, a
    dataset read sample by sample).

    Args:
        keyed: ``(name, key)`` pairs; ``load(key)`` gives that item's ``(image, instances)``
            (numpy arrays or bytes).
    """
    h = hashlib.sha256()
    for name, key in sorted(keyed, key=lambda t: str(t[0])):
        h.update(str(name).encode("utf-8") + b"\0")
        for arr in load(key):
            if isinstance(arr, (bytes, bytearray)):
                h.update(bytes(arr))
            else:
                a = np.ascontiguousarray(arr)
                h.update(f"{a.dtype.str}{a.shape}".encode())
                h.update(a.tobytes())
    return h.hexdigest()[:16]


def make_observations(kind: str, model: str, per_image: Sequence[Mapping[str, Any]] | Any, *, train_set: str,
                      profile: str, seed: int, dataset: str, split: str, test_set: str = "",
                      status: str = "ok", failure: str = "", image_key: str = "name",
                      unit_key: str | None = None, **extra_keys: Any) -> Any:
    """An observation table for one experiment from its per-image results.

    Args:
        kind, model, train_set, profile, seed, dataset, split: the experiment keys, as in the records.
        per_image: rows (dicts or a DataFrame) holding the image name under ``image_key``, the
            per-image scores and, for segmentation, :data:`POOLED_STATS`.
        test_set: :func:`hash_test_set` of the test set.
        status, failure: ``ok`` or ``failed`` and the failed check.
        unit_key: column naming the resampling unit (e.g. the source tile of a crop); default:
            each image is its own unit.
        **extra_keys: further experiment keys (``target``, ``data_seed`` ...), never ``aggregation``.
    """

    if "aggregation" in extra_keys:
        raise ValueError("observations serve every aggregation: do not pass an aggregation key")
    df = pd.DataFrame(per_image).reset_index(drop=True)
    if df.empty:
        raise ValueError(f"no per-image results for {kind} {model} {train_set}")
    if image_key not in df.columns:
        raise ValueError(f"per-image results lack the image name column {image_key!r}")
    keep = [c for c in df.columns if c in SCORE_COLUMNS or c in POOLED_STATS or c in ("n_true", "n_pred")]
    out = pd.DataFrame({"kind": kind, "model": model, "train_set": train_set, "profile": profile, "seed": int(seed),
                        "dataset": dataset, "split": split, **{k: v for k, v in extra_keys.items()}},
                       index=df.index)
    out["image"] = df[image_key].astype(str)
    out["unit"] = df[unit_key].astype(str) if unit_key else out["image"]
    out["test_set"] = test_set
    out["status"] = status
    out["failure"] = failure
    for c in keep:
        out[c] = pd.to_numeric(df[c], errors="raise").astype("float64")
    return validate_observations(out)


def validate_observations(df: Any, path: str | Path | None = None) -> Any:
    """Check an observation table: key columns present, one row per (experiment, image), numbers."""

    def fail(problem: str) -> None:
        if path is not None:
            raise DataError(path, problem)
        raise ValueError(problem)

    missing = [c for c in (*OBS_KEY_COLUMNS, "image") if c not in df.columns]
    if missing:
        fail(f"not a gbench observation table: missing column(s) {', '.join(missing)}")
    df = df.copy().reset_index(drop=True)
    for c, d in (("unit", None), ("test_set", ""), ("status", "ok"), ("failure", "")):
        if c not in df.columns:
            df[c] = df["image"] if d is None else d
    keys = obs_key_columns(df)
    for c in keys + list(_OTHER):
        if c != "seed":
            df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    df.loc[df["unit"] == "", "unit"] = df.loc[df["unit"] == "", "image"]
    seed = pd.to_numeric(df["seed"], errors="coerce")
    if seed.isna().any():
        fail("seed is not an integer")
    df["seed"] = seed.astype("int64")
    for c in df.columns:
        if c in SCORE_COLUMNS or c in POOLED_STATS or c in ("n_true", "n_pred"):
            num = pd.to_numeric(df[c], errors="coerce")
            bad = num.isna() & ~df[c].map(lambda v: v is None or (isinstance(v, float) and v != v)
                                          or (isinstance(v, str) and v.strip().lower() in ("", "nan")))
            if bad.any():
                fail(f"column {c}: {df[c][bad].iloc[0]!r} is not a number")
            df[c] = num.astype("float64")
    dup = df.duplicated(keys + ["image"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        fail("two observations share the same experiment and image: "
             + ", ".join(f"{c}={first[c]}" for c in keys + ["image"]))
    return df


def save_observations(df: Any, path: str | Path) -> Path:
    """Write an observation table as CSV, atomically. ``path`` may be the records path beside it."""

    return _write_beside(validate_observations(df), path, "observations")


def load_observations(path: str | Path | Sequence[str | Path], required: bool = False) -> Any:
    """Read observation tables: an ``observations.csv``, the record file it sits beside, a run
    folder, or a list of those (concatenated).

    Returns:
        The validated table, or ``None`` when no file is found and ``required`` is False.

    Raises:
        DataError: an unreadable or malformed file (one line naming it), or none found when
            ``required``.
    """


    if not isinstance(path, (str, Path)):
        frames = [f for f in (load_observations(p, required) for p in path) if f is not None]
        if not frames:
            return None
        return validate_observations(pd.concat(frames, ignore_index=True))
    p = Path(path)
    if p.is_dir():
        p = p / "observations.csv"
    elif not p.name.endswith("observations.csv"):
        p = observations_path(p)
    if not p.is_file():
        if required:
            raise DataError(p, "no per-image observation file (needed for confidence intervals and paired tests)")
        return None
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(p, f"unreadable CSV: {' '.join(str(exc).split())}") from None
    return validate_observations(df, p)


# ------------------------------------------------------------------------ set-statistic replicates

def replicates_path(records_path: str | Path) -> Path:
    """``X/records.csv`` -> ``X/replicates.csv``; ``X/NAME.csv`` -> ``X/NAME.replicates.csv``."""
    return _beside(records_path, "replicates")


def save_replicates(df: Any, path: str | Path) -> Path:
    """Write a replicate table (bootstrap replicates of set statistics: FID, KID, ... one row per
    experiment and replicate, see :data:`REPLICATE_COLUMNS`) as CSV beside the records, atomically."""
    missing = [c for c in (*OBS_KEY_COLUMNS, "replicate", "real_draw") if c not in df.columns]
    if missing:
        raise ValueError(f"not a replicate table: missing column(s) {', '.join(missing)}")
    return _write_beside(df, path, "replicates")


def load_replicates(path: str | Path | Sequence[str | Path]) -> Any:
    """Read replicate tables (a ``replicates.csv``, the record file beside it, a run folder, or a
    list of those); None when there is none.

    Raises:
        DataError: an unreadable or malformed file.
    """
    if not isinstance(path, (str, Path)):
        frames = [f for f in (load_replicates(p) for p in path) if f is not None]
        return pd.concat(frames, ignore_index=True) if frames else None
    p = Path(path)
    if p.is_dir():
        p = p / "replicates.csv"
    elif not p.name.endswith("replicates.csv"):
        p = replicates_path(p)
    if not p.is_file():
        return None
    try:
        df = pd.read_csv(p, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(p, f"unreadable CSV: {' '.join(str(exc).split())}") from None
    missing = [c for c in (*OBS_KEY_COLUMNS, "replicate", "real_draw") if c not in df.columns]
    if missing:
        raise DataError(p, f"not a replicate table: missing column(s) {', '.join(missing)}")
    for c in obs_key_columns(df):
        if c != "seed":
            df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    df["seed"] = pd.to_numeric(df["seed"]).astype("int64")
    df["real_draw"] = df["real_draw"].astype(str)
    return df
