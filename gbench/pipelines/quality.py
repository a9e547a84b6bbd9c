"""``gbench quality``: score synthetic images against real ones, paired by file name.

Pairs are grouped by image size and scored in batches with the functions of
:mod:`gbench.metrics.quality`; per-image values and a summary (mean, std, n, 95% CI) are written
as CSV, Markdown and JSON (with the metric conventions and the provenance), and as records
(``records.csv``) with the per-image observations behind their confidence intervals
(``observations.csv``), atomically.

Three routes:

``run_quality(real_dir, fake_dir)`` (``--real DIR --fake DIR``)
    Pairs by file stem; every image needs a partner. The test-set hash is taken over the real
    images' names and file bytes.
``run_quality_data(data, fake_dir)`` (``--data D --fake DIR --label NAME``)
    Scores a folder of images drawn from ``gbench maps export`` (:mod:`gbench.pipelines.maps`)
    as a Table 1 row: the crops, their order and batches, the 8-bit scoring, the record keys
    (``train_set`` ``R``, ``split``, ``dataset``, ``data_seed``), the resampling units (the
    tile) and the test-set hash are those of ``quality --generator``
    (:func:`gbench.pipelines.generator_eval.generator_quality`), so the same images give the same
    numbers and ``gbench compare``, claims and the floor test pair a folder row with a built-in
    generator's row.
``run_unpaired(real, fake_dir)`` (``--real D_OR_DIR --fake DIR --unpaired --extractor NAME``)
    Distribution metrics (FID, KID, precision/recall, density/coverage) and stain statistics of
    two sets of any sizes; nothing is paired. ``real`` is a folder of images (flat or
    ``images/``) or a dataset name / layout, whose split is cut into the Table 1 crops.

Which metrics need pairs: SSIM, FSIM, GMSD, NRMSE (and ``--conventions``) compare an image with
its own real partner and need pairs; FID, KID, precision, recall, density, coverage and the stain
statistics compare two distributions and do not.

Resampling units (``units``): the grid crops of one tile are not independent. ``tile`` (the
default) puts an image named ``<tile>@y<Y>x<X>`` (as ``maps export`` and
:func:`gbench.pipelines.generator_eval.evaluate_generator` name crops) into the unit ``<tile>``,
the part of the name before the first ``@``; an image without ``@`` is its own unit. ``image``
makes every image its own unit. A CSV file with columns ``name,unit`` (one row per image, the name
being the file stem) sets them explicitly.

Memory: every route streams. Images are read as they are scored (a batch at a time); what is
kept per image is its metric values (and, with ``--extractor``, its feature vector); the
test-set hash is computed incrementally in name order.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress
from rich.table import Table

from gbench.core.errors import DataError
from gbench.core.fileio import write_json, write_text
from gbench.core.metric_specs import metric_names, metric_spec
from gbench.core.observations import hash_test_set_lazy, make_observations, save_observations
from gbench.core.provenance import provenance as collect_provenance
from gbench.core.records import make_records, save_records
from gbench.core.stats import attach_intervals
from gbench.data.io import IMAGE_SUFFIXES, read_image, read_label
from gbench.metrics.failures import output_failure
from gbench.metrics.features import build_extractor
from gbench.metrics.quality import quality_metrics
from gbench.metrics.stain import CONVENTIONS as STAIN_CONVENTIONS
from gbench.pipelines.diagnostics import Diagnostics, distribution_records, label_files, write_diagnostics

__all__ = ["find_pairs", "score_pairs", "summarize_scores", "run_quality", "QualityResult", "METRICS",
           "quality_results", "unit_of", "run_quality_data", "run_unpaired", "UnpairedResult", "resolve_units",
           "PAIRED_METRICS_NOTE"]

#: What ``--help`` says about pairs.
PAIRED_METRICS_NOTE = ("SSIM, FSIM, GMSD and NRMSE (and --conventions) need pairs (a synthetic image per real "
                       "image, same file stem); FID, KID, precision/recall, density/coverage and --stain do not "
                       "(--unpaired).")

#: The quality metrics, in table order (the registry, :data:`gbench.core.metric_specs.METRICS`).
METRICS: tuple[str, ...] = metric_names("quality")


def _image_files(folder: Path) -> dict[str, Path]:
    if not folder.exists():
        raise DataError(folder, "folder not found")
    if not folder.is_dir():
        raise DataError(folder, "not a folder")
    base = folder / "images" if (folder / "images").is_dir() else folder
    files: dict[str, Path] = {}
    nested = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")
                    and any(q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()))
    if nested:  # images one level down would be silently left out
        raise DataError(nested[0], f"images in a sub-folder of {base} (only the folder's own images are scored; "
                        "move them up or pass the sub-folder)")
    for p in sorted(base.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            if p.stem in files:
                raise DataError(p, f"two images share the name {p.stem!r}")
            files[p.stem] = p
    if not files:
        raise DataError(base, "no images found")
    return files


def find_pairs(real_dir: str | Path, fake_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, real path, fake path) for every name present in both folders.

    A folder may hold the images directly or in an ``images/`` sub-folder (the ``folder``
    dataset layout). Every image needs a partner of the same name (extension aside).

    Raises:
        DataError: a folder is missing or empty, or an image has no partner (the names are listed).
    """
    real = _image_files(Path(real_dir))
    fake = _image_files(Path(fake_dir))
    only_real = sorted(set(real) - set(fake))
    only_fake = sorted(set(fake) - set(real))
    if only_real or only_fake:
        parts = []
        if only_real:
            parts.append(f"{len(only_real)} real image(s) without a synthetic partner: {_names(only_real)}")
        if only_fake:
            parts.append(f"{len(only_fake)} synthetic image(s) without a real partner: {_names(only_fake)}")
        raise DataError(Path(fake_dir) if only_real else Path(real_dir), "; ".join(parts))
    return [(n, real[n], fake[n]) for n in sorted(real)]


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def score_pairs(pairs: Sequence[tuple[str, Path, Path]], metrics: Sequence[str] = METRICS,
                batch_size: int = 16, progress: bool = True, observe: Any = None,
                labels: dict[str, Path] | None = None) -> Any:
    """Per-image metric values as a pandas DataFrame (columns ``name`` and one per metric).

    Images are read as uint8 (data range 255), grouped by size and scored in batches.
    ``observe(names, real, fake, labels)`` (e.g. :meth:`gbench.pipelines.diagnostics.Diagnostics.observe`)
    sees every pair once, with its nucleus labels from ``labels`` (name -> label file) when given.
    """


    groups: dict[tuple[int, int], list[tuple[str, np.ndarray, np.ndarray]]] = defaultdict(list)
    rows: dict[str, dict[str, float]] = {}

    def flush(items: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        fake = torch.from_numpy(np.stack([f for _, _, f in items])).permute(0, 3, 1, 2)
        real = torch.from_numpy(np.stack([r for _, r, _ in items])).permute(0, 3, 1, 2)
        values = quality_metrics(fake, real, metrics)
        for i, (name, _, _) in enumerate(items):
            rows[name] = {m: float(values[m][i]) for m in metrics}


    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring pairs", total=len(pairs))
        for name, real_path, fake_path in pairs:
            real = read_image(real_path)
            fake = read_image(fake_path)
            if "nrmse" in metrics and not real.any():
                raise DataError(real_path, "real image is all black: NRMSE (divided by the real image's norm) is "
                                           "undefined; remove the pair or leave nrmse out (--metric ssim --metric fsim "
                                           "--metric gmsd)")
            if real.shape != fake.shape:
                raise DataError(fake_path, f"size {fake.shape[1]}x{fake.shape[0]} differs from its real partner "
                                f"{real_path.name} ({real.shape[1]}x{real.shape[0]})")
            if observe is not None:
                lab = None
                lab_path = labels.get(name) if labels else None
                if lab_path is not None:
                    lab = read_label(lab_path)
                    if lab.shape != real.shape[:2]:
                        raise DataError(lab_path, f"label map {lab.shape[1]}x{lab.shape[0]} does not match its "
                                        f"image {real_path.name} ({real.shape[1]}x{real.shape[0]})")
                    lab = lab[None]
                observe([name], real[None], fake[None], lab)
            group = groups[real.shape[:2]]
            group.append((name, real, fake))
            if len(group) >= batch_size:
                flush(group)
                bar.advance(task, len(group))
                group.clear()
        for group in groups.values():
            if group:
                flush(group)
                bar.advance(task, len(group))
    return pd.DataFrame([{"name": n, **rows[n]} for n, _, _ in pairs])


def summarize_scores(per_image: Any, metrics: Sequence[str] = METRICS) -> Any:
    """mean, std (ddof=1; 0 for a single image), n and the better direction per metric."""


    out = []
    for m in metrics:
        v = per_image[m].to_numpy(dtype=np.float64)
        out.append({"metric": m, "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "n": int(len(v)), "better": metric_spec(m).direction})
    return pd.DataFrame(out)


def unit_of(name: str) -> str:
    """The resampling unit of an image name: ``tile@y0x64`` -> ``tile``; other names are their own unit."""
    return str(name).split("@", 1)[0]


def quality_results(per_image: Any, model: str, *, train_set: str, profile: str, seed: int, dataset: str,
                    split: str, test_set: str, metrics: Sequence[str] = METRICS, provenance: Any = None,
                    failure: str = "", unit_key: str | None = None, **extra_keys: Any) -> tuple[Any, Any]:
    """Records (with 95% confidence intervals) and observations of one quality experiment.

    Args:
        per_image: one row per scored image / crop with ``name`` and the metric columns.
        model, train_set, profile, seed, dataset, split: the experiment keys.
        test_set: hash of the test set (:func:`gbench.data.resolve.split_hash`).
        metrics: the metrics to record (each value is the mean over the images).
        provenance: :func:`gbench.core.provenance.provenance` output.
        failure: the failed check of the generator (``""`` when ok): ``status`` becomes ``failed``.
        unit_key: column naming the resampling unit (``tile`` for grid crops); default: the
            unit is :func:`unit_of` the name.
        **extra_keys: further experiment keys (``data_seed`` ...).

    Returns:
        ``(records, observations)``.
    """


    df = pd.DataFrame(per_image).reset_index(drop=True)
    if unit_key is None:
        df["_unit"] = df["name"].map(unit_of)
        unit_key = "_unit"
    status = "failed" if failure else "ok"
    keys = dict(train_set=train_set, profile=profile, seed=seed, dataset=dataset, split=split)
    obs = make_observations("quality", model, df[list(dict.fromkeys(["name", unit_key, *metrics]))], **keys,
                            test_set=test_set,
                            status=status, failure=failure, unit_key=unit_key, **extra_keys)
    recs = make_records("quality", model, {m: float(df[m].astype(float).mean()) for m in metrics}, **keys,
                        n=len(df), provenance=provenance if provenance is not None else {},
                        conventions={m: metric_spec(m).protocol() for m in metrics}, **extra_keys)
    recs["test_set"] = test_set
    recs["status"] = status
    recs["failure"] = failure
    return attach_intervals(recs, obs), obs


def _with_intervals(summary: Any, records: Any, observations: Any) -> Any:
    """The summary table with each metric's ``ci_low``, ``ci_high`` and ``units`` (resampling units)."""
    by = records.set_index("metric")
    out = summary.copy()
    out["ci_low"] = [float(by.loc[m, "ci_low"]) for m in out["metric"]]
    out["ci_high"] = [float(by.loc[m, "ci_high"]) for m in out["metric"]]
    out["units"] = int(observations["unit"].nunique())
    return out


def _folder_failure(pairs: Sequence[tuple[str, Path, Path]], limit: int = 16) -> str:
    """:func:`gbench.metrics.failures.output_failure` on the first synthetic images of the first size."""

    imgs: list[np.ndarray] = []
    reals: list[np.ndarray] = []
    for _, real, fake in pairs:
        img = read_image(fake)
        if imgs and img.shape != imgs[0].shape:
            continue
        imgs.append(img)
        reals.append(read_image(real))
        if len(imgs) == limit:
            break
    same = all(r.shape == imgs[0].shape for r in reals)  # a flat real set makes flat outputs faithful
    return output_failure(np.stack(imgs), reference=np.stack(reals) if same else None)


@dataclass
class QualityResult:
    per_image: Any
    summary: Any
    files: list[Path]
    records: Any = None
    observations: Any = None
    diagnostics: Any = None  # Diagnostics.finish(): distribution, stain, conventions (when asked)


def run_quality(real_dir: str | Path, fake_dir: str | Path, out: str | Path | None, metrics: Sequence[str] = METRICS,
                profile: str = "demo", seed: int = 0, batch_size: int = 16, progress: bool = True,
                label: str | None = None, extractor: Any = None, weights: str | Path | None = None,
                stain: bool = False, conventions: bool = False, kid_subsets: int = 100,
                kid_subset_size: int = 1000, units: str | Path = "tile") -> QualityResult:
    """Pair, score, summarize and (with ``out``) write per_image.csv, summary.csv, summary.md,
    summary.json, records.csv and observations.csv.

    ``units``: ``tile``, ``image`` or a ``name,unit`` CSV file (:func:`resolve_units`).

    The records' keys: ``model`` = ``label`` (default: the synthetic folder's name), ``dataset`` =
    the real folder's name, ``split`` ``all``, ``train_set`` empty (unknown for a folder pair).

    Beside the paired metrics (:mod:`gbench.pipelines.diagnostics`): ``extractor`` (a
    :func:`gbench.metrics.features.build_extractor` spec, with ``weights``, or an extractor) adds
    FID, KID, precision, recall, density and coverage records; ``stain`` writes ``stain.csv`` and
    ``figures/stain.png`` (inside / outside nuclei when ``labels/`` or ``masks/`` are beside the
    images); ``conventions`` writes ``conventions.csv`` (every pair under every convention).
    """

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown quality metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    unit_map = _units_file(units)
    pairs = find_pairs(real_dir, fake_dir)
    diag = None
    if extractor is not None or stain or conventions:
        ext = build_extractor(extractor, weights, seed=seed) if isinstance(extractor, str) else extractor
        if ext is not None and len(pairs) < 6:
            raise DataError(Path(fake_dir), f"{len(pairs)} pairs: the distribution metrics need at least 6 images "
                                            "per side (density/coverage use the 5 nearest neighbours)")
        diag = Diagnostics(ext, stain=stain, conventions=conventions, metrics=metrics, batch_size=batch_size,
                           kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    labels = None
    if stain:
        labels = label_files(real_dir, fake_dir)
    per_image = score_pairs(pairs, metrics, batch_size=batch_size, progress=progress,
                            observe=diag.observe if diag is not None else None, labels=labels)
    found = diag.finish() if diag is not None else None
    test_set = _file_hash((n, r) for n, r, _ in pairs)
    failure = _folder_failure(pairs)
    prov = collect_provenance(profile=profile, seed=seed)
    per_image, unit_key = resolve_units(per_image, units, unit_map)
    records, observations = quality_results(per_image, label or Path(fake_dir).name, train_set="", profile=profile,
                                            seed=seed, dataset=Path(real_dir).name, split="all", test_set=test_set,
                                            metrics=metrics, provenance=prov, failure=failure, unit_key=unit_key)
    per_image = per_image.drop(columns=["_unit"], errors="ignore")
    summary = _with_intervals(summarize_scores(per_image, metrics), records, observations)
    if found is not None and found["distribution"] is not None:

        records = pd.concat([records, distribution_records(
            found["distribution"], label or Path(fake_dir).name, train_set="", profile=profile, seed=seed,
            dataset=Path(real_dir).name, split="all", test_set=test_set, provenance=prov, failure=failure)],
            ignore_index=True)
    files: list[Path] = []
    if out is not None:
        meta = {"real": str(real_dir), "fake": str(fake_dir), "label": label, "pairs": len(pairs),
                "units": str(units)}
        files = _write_outputs(Path(out), meta, per_image, summary, records, observations, found, test_set, failure,
                               metrics, prov, f"{label or Path(fake_dir).name} vs {Path(real_dir).name}",
                               f"{len(pairs)} pairs")
    return QualityResult(per_image, summary, files, records, observations, found)


def summary_table(summary: Any, title: str) -> Any:
    """A rich table of a summary DataFrame."""

    t = Table(title=title)
    ci = "ci_low" in summary.columns
    for col in ("metric", "mean", *(["95% CI"] if ci else []), "std", "n", "better"):
        t.add_column(col, justify="left" if col in ("metric", "better") else "right")
    for r in summary.to_dict("records"):
        arrow = "↑" if r["better"] == "higher" else "↓"
        interval = []
        if ci:
            interval = ["-" if r["ci_low"] != r["ci_low"] else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"]
        t.add_row(f"{r['metric'].upper()} {arrow}", f"{r['mean']:.4f}", *interval, f"{r['std']:.4f}", f"{r['n']}",
                  r["better"])
    return t


# ------------------------------------------------------------------------------------------ shared helpers


def _write_outputs(out: Path, meta: dict[str, Any], per_image: Any, summary: Any, records: Any, observations: Any,
                   found: dict[str, Any] | None, test_set: str, failure: str, metrics: Sequence[str], prov: Any,
                   title: str, count: str) -> list[Path]:
    """per_image.csv, summary.csv/.md/.json, records.csv, observations.csv and the diagnostics' files."""
    meta = {**meta, "test_set": test_set, "status": "failed" if failure else "ok", "failure": failure,
            "ci_method": str(records["ci_method"].iloc[0]),
            "metrics": list(metrics), "conventions": {m: metric_spec(m).protocol() for m in metrics},
            "summary": summary.to_dict(orient="records"), "provenance": prov}
    if found is not None:
        if found["distribution"] is not None:
            meta["distribution"] = {"values": found["distribution"].values,
                                    "conventions": found["distribution"].conventions}
        if found["stain"] is not None:
            meta["stain"] = {"distances": found["stain"].to_dict(orient="records"), "conventions": STAIN_CONVENTIONS}
        if found["conventions"] is not None:
            meta["conventions_side_by_side"] = found["conventions"].to_dict(orient="records")
    md = (f"# Image quality: {title}\n\n"
          f"{count}; mean and std (ddof=1) over images, 95% CI ({meta['ci_method']}); conventions in summary.json\n\n"
          + (f"**Failed run: {failure}**\n\n" if failure else "")
          + summary.to_markdown(index=False, floatfmt=".4f") + "\n")
    files = [
        write_text(out / "per_image.csv", per_image.to_csv(index=False, float_format="%.10g")),
        write_text(out / "summary.csv", summary.to_csv(index=False, float_format="%.10g")),
        write_text(out / "summary.md", md),
        write_json(out / "summary.json", meta),
        save_records(records, out / "records.csv"),
        save_observations(observations, out / "records.csv"),
    ]
    if found is not None:
        files += write_diagnostics(found, out)
    return files


def _file_hash(items: Iterable[tuple[str, Path]]) -> str:
    """:func:`gbench.core.observations.hash_test_set` of ``(name, file bytes, b"")``, one file at a time
    (``hash_test_set`` sorts its items first and so holds every file at once)."""
    return hash_test_set_lazy(items, lambda path: (path.read_bytes(), b""))


def _units_file(units: str | Path) -> dict[str, str] | None:
    """The ``name -> unit`` map of a units CSV, or None for ``tile`` / ``image``.

    Raises:
        ValueError: another word. DataError: a missing or malformed file.
    """
    text = str(units)
    if text in ("tile", "image"):
        return None
    path = Path(text)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"--units must be tile, image or a CSV file (name,unit), got {text!r}")
    if not path.is_file():
        raise DataError(path, "--units: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # any parser failure: one line naming the file
        raise DataError(path, f"--units: cannot read CSV ({type(exc).__name__}: {exc})") from None
    if not {"name", "unit"} <= set(df.columns):
        raise DataError(path, f"--units: needs the columns name,unit (has {', '.join(df.columns)})")
    dup = df["name"][df["name"].duplicated()]
    if len(dup):
        raise DataError(path, f"--units: image {dup.iloc[0]!r} listed twice")
    empty = df["name"][df["unit"].str.strip() == ""]
    if len(empty):
        raise DataError(path, f"--units: image {empty.iloc[0]!r} has an empty unit")
    return dict(zip(df["name"], df["unit"]))


def resolve_units(per_image: Any, units: str | Path, unit_map: dict[str, str] | None = None) -> tuple[Any, str]:
    """``per_image`` with a ``_unit`` column and its name, for :func:`quality_results`.

    Args:
        per_image: rows with ``name``.
        units: ``tile`` (the part of the name before the first ``@``: :func:`unit_of`), ``image``
            (every image its own unit) or a CSV file with columns ``name,unit``.
        unit_map: the CSV's map when already read (:func:`_units_file`).

    Raises:
        DataError: an image the CSV does not list.
    """
    df = pd.DataFrame(per_image).reset_index(drop=True)
    if str(units) == "image":
        df["_unit"] = df["name"].astype(str)
    elif str(units) == "tile":
        df["_unit"] = df["name"].map(unit_of)
    else:
        m = unit_map if unit_map is not None else _units_file(units)
        assert m is not None
        missing = [n for n in df["name"].astype(str) if n not in m]
        if missing:
            raise DataError(Path(str(units)), f"--units: {len(missing)} image(s) not listed: {_names(missing)}")
        df["_unit"] = df["name"].astype(str).map(m)
    return df, "_unit"


# ------------------------------------------------------------------------------------------ --data --fake


def _check_folder_names(fake_dir: Path, crops: Sequence[str], fakes: dict[str, Path], what: str) -> None:
    """Every crop has an image of its name in the folder and the folder nothing else."""
    have = set(fakes)
    missing = [n for n in crops if n not in have]
    extra = sorted(have - set(crops))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the {len(crops)} test crops of {what} have no image here: "
                         f"{_names(missing)}")
        if extra:
            parts.append(f"{len(extra)} image(s) are not test crops of {what}: {_names(extra)}")
        raise DataError(fake_dir, "; ".join(parts) + " (write the maps with gbench maps export --data D "
                                                     "--profile P --split S, one image per crop, same file stem)")


def run_quality_data(data: str | Any, fake_dir: str | Path, out: str | Path | None, *, label: str | None = None,
                     metrics: Sequence[str] = METRICS, profile: Any = "demo", seed: int = 0, data_seed: int = 0,
                     split: str = "test", batch_size: int = 16, progress: bool = True, units: str | Path = "tile",
                     extractor: Any = None, weights: str | Path | None = None, stain: bool = False,
                     conventions: bool = False, kid_subsets: int = 100, kid_subset_size: int = 1000) -> QualityResult:
    """Score a folder of images drawn from ``gbench maps export`` as a Table 1 row (module docstring).

    Args:
        data: the dataset the maps were exported from (name, folder or a loaded ``Dataset``).
        fake_dir: one image per test crop, named ``<tile>@y<Y>x<X>`` (flat or under ``images/``).
        out: folder for per_image.csv, summary.*, records.csv, observations.csv (None: nothing written).
        label: the row's ``model`` (default: the folder's name).
        metrics, profile, seed, data_seed, split, batch_size: as ``gbench quality --generator``
            (same batch size, same numbers; ``seed`` is recorded).
        units: ``tile`` (default, as the in-process route), ``image`` or a ``name,unit`` CSV.
        extractor, weights, stain, conventions, kid_subsets, kid_subset_size: the diagnostics, as
            :func:`run_quality`.

    Raises:
        DataError: a crop without an image, an image that is not a crop, a size mismatch, unreadable files.
    """
    from gbench.core.profiles import as_profile
    from gbench.pipelines.maps import table1_crops

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown quality metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    unit_map = _units_file(units)
    prof = as_profile(profile)
    fake_dir = Path(fake_dir)
    fakes = _image_files(fake_dir)
    tc = table1_crops(data, prof, split, data_seed)
    names = tc.names()
    _check_folder_names(fake_dir, names, fakes, f"{tc.name} ({split}, profile {prof.name}, "
                                                f"{tc.size}-px crops)")
    diag = None
    if extractor is not None or stain or conventions:
        ext = build_extractor(extractor, weights, seed=seed) if isinstance(extractor, str) else extractor
        if ext is not None and len(names) < 6:
            raise DataError(fake_dir, f"{len(names)} crops: the distribution metrics need at least 6 images per side "
                                      "(density/coverage use the 5 nearest neighbours)")
        diag = Diagnostics(ext, stain=stain, conventions=conventions, metrics=metrics, batch_size=batch_size,
                           kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    rows: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]] = []
    checked: list[np.ndarray] = []

    def flush() -> None:  # as generator_eval.evaluate_generator's flush, on images read from disk
        if not pending:
            return
        fake8 = torch.from_numpy(np.stack([f for _, _, f, _ in pending])).permute(0, 3, 1, 2).contiguous()
        real8 = torch.from_numpy(np.stack([r for _, r, _, _ in pending])).permute(0, 3, 1, 2).contiguous()
        values = quality_metrics(fake8, real8, tuple(metrics))
        if diag is not None:
            diag.observe([rec["name"] for rec, _, _, _ in pending], real8.permute(0, 2, 3, 1).numpy(),
                         fake8.permute(0, 2, 3, 1).contiguous().numpy(), np.stack([i for _, _, _, i in pending]))
        for i, (rec, _, _, _) in enumerate(pending):
            rows.append({**rec, **{m: float(values[m][i]) for m in metrics}})
        pending.clear()

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"quality {label or fake_dir.name}", total=len(names))
        for c in tc.crops():
            path = fakes[c.name]
            fake = read_image(path)
            if fake.shape != c.image.shape:
                raise DataError(path, f"size {fake.shape[1]}x{fake.shape[0]} differs from its test crop "
                                      f"({c.image.shape[1]}x{c.image.shape[0]})")
            if len(checked) < 16:
                checked.append(fake)
            pending.append(({"name": c.name, "tile": c.tile, "y": c.y, "x": c.x, "size": tc.size}, c.image, fake,
                            c.instances))
            if len(pending) >= batch_size:
                flush()
            bar.advance(task)
        flush()
    per_image = pd.DataFrame(rows)
    failure = output_failure(np.stack(checked).astype(np.float32) / 255.0)
    found = diag.finish() if diag is not None else None
    prov = collect_provenance(profile=prof.name, seed=seed, data_seed=data_seed)
    model = label or fake_dir.name
    keys: dict[str, Any] = dict(train_set="R", profile=prof.name, seed=seed, dataset=tc.name, split=split,
                                test_set=tc.test_set, provenance=prov, failure=failure)
    per_image, unit_key = resolve_units(per_image, units, unit_map)
    if str(units) == "tile":
        per_image["_unit"] = per_image["tile"]  # the in-process route's unit column (a tile name may hold '@')
    records, observations = quality_results(per_image, model, metrics=metrics, unit_key=unit_key,
                                            data_seed=data_seed, **keys)
    per_image = per_image.drop(columns=["_unit"])
    summary = _with_intervals(summarize_scores(per_image, metrics), records, observations)
    if found is not None and found["distribution"] is not None:
        records = pd.concat([records, distribution_records(found["distribution"], model, data_seed=data_seed,
                                                           **keys)], ignore_index=True)
    files: list[Path] = []
    if out is not None:
        meta = {"data": str(data), "dataset": tc.name, "split": split, "profile": prof.name, "data_seed": data_seed,
                "crop_size": tc.size, "fake": str(fake_dir), "label": label, "crops": len(per_image),
                "units": str(units)}
        files = _write_outputs(Path(out), meta, per_image, summary, records, observations, found, tc.test_set,
                               failure, metrics, prov, f"{model} on {tc.name} ({split})",
                               f"{len(per_image)} test crops of {tc.size} px")
    return QualityResult(per_image, summary, files, records, observations, found)


# ------------------------------------------------------------------------------------------ --unpaired


@dataclass
class UnpairedResult:
    """What :func:`run_unpaired` found: distribution records, the real and synthetic counts, the
    diagnostics (:meth:`gbench.pipelines.diagnostics.Diagnostics.finish` form) and the files written."""

    records: Any
    n_real: int
    n_fake: int
    diagnostics: dict[str, Any]
    files: list[Path]
    test_set: str


def _has_images(folder: Path) -> bool:
    base = folder / "images" if (folder / "images").is_dir() else folder
    return folder.is_dir() and any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                                   for p in base.iterdir())


def _folder_stream(folder: Path) -> tuple[Iterator[tuple[str, np.ndarray, np.ndarray | None]], int, str, bool]:
    """(stream of (name, image, labels or None), count, test-set hash, every image labelled)."""
    files = _image_files(folder)
    labels = label_files(folder)
    labelled = bool(labels) and all(n in labels for n in files)

    def stream() -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        for n in sorted(files):
            img = read_image(files[n])
            lab = None
            if labelled:
                lab = read_label(labels[n])
                if lab.shape != img.shape[:2]:
                    raise DataError(labels[n], f"label map {lab.shape[1]}x{lab.shape[0]} does not match its "
                                               f"image ({img.shape[1]}x{img.shape[0]})")
            yield n, img, lab

    return stream(), len(files), _file_hash(files.items()), labelled


def run_unpaired(real: str | Path, fake_dir: str | Path, out: str | Path | None, *, extractor: Any = None,
                 weights: str | Path | None = None, stain: bool = False, label: str | None = None,
                 profile: Any = "demo", seed: int = 0, data_seed: int = 0, split: str = "test",
                 batch_size: int = 16, progress: bool = True, kid_subsets: int = 100,
                 kid_subset_size: int = 1000) -> UnpairedResult:
    """Distribution metrics and stain statistics of two image sets of any sizes (nothing is paired).

    Args:
        real: a folder of images (flat, or ``images/`` with optional ``labels/`` for the stain
            regions), or a dataset name / layout (:func:`gbench.data.resolve.resolve_dataset`),
            whose ``split`` is cut into the Table 1 crops (:func:`gbench.pipelines.maps.table1_crops`,
            the profile's crop size; their instance maps give the stain regions).
        fake_dir: a folder of synthetic images (flat or ``images/``; ``labels/`` or ``masks/`` beside).
        out: folder for records.csv, summary.json and the stain files (None: nothing written).
        extractor: a :func:`gbench.metrics.features.build_extractor` spec (with ``weights``) or an
            extractor; None computes no distribution metrics (then ``stain`` must be on).
        stain: stain statistics (hematoxylin / eosin, inside and outside nuclei when both sides are labelled).
        label: the records' ``model`` (default: the synthetic folder's name).
        profile, seed, data_seed, split: the dataset route's crops; recorded.
        batch_size: images per feature batch.
        kid_subsets, kid_subset_size: KID's subsets.

    Records: ``dataset`` = the dataset or folder name, ``split`` (``all`` for a folder),
    ``test_set`` = the hash of the real set (for a dataset the Table 1 hash), ``n`` = synthetic
    images, ``n_images`` = real images, ``ci_method`` = set statistic.

    Raises:
        ValueError: neither an extractor nor ``stain``. DataError: fewer than 6 images on a side
        (with an extractor), unreadable files, a missing folder or dataset.
    """
    from gbench.core.profiles import as_profile
    from gbench.metrics.distribution import DistributionAccumulator
    from gbench.metrics.stain import StainHistograms, stain_distances
    from gbench.pipelines.maps import table1_crops

    if extractor is None and not stain:
        raise ValueError("--unpaired needs --extractor (FID, KID, precision/recall, density/coverage) and/or --stain")
    prof = as_profile(profile)
    fake_dir = Path(fake_dir)
    fake_stream, n_fake, _, fake_labelled = _folder_stream(fake_dir)
    real_path = Path(str(real)).expanduser()
    if real_path.is_dir() and _has_images(real_path):
        real_stream, n_real, test_set, _ = _folder_stream(real_path)
        real_name, real_split = real_path.name, "all"
    else:
        tc = table1_crops(str(real), prof, split, data_seed)
        n_real, test_set, real_name, real_split = len(tc.names()), tc.test_set, tc.name, split
        real_stream = ((c.name, c.image, c.instances) for c in tc.crops())
    ext = build_extractor(extractor, weights, seed=seed) if isinstance(extractor, str) else extractor
    if ext is not None and min(n_real, n_fake) < 6:
        raise DataError(fake_dir if n_fake < 6 else real_path,
                        f"{n_real} real and {n_fake} synthetic images: the distribution metrics need at least 6 per "
                        "side (density/coverage use the 5 nearest neighbours)")
    acc = None
    if ext is not None:
        acc = DistributionAccumulator(ext, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
    hist = StainHistograms() if stain else None
    checked: list[np.ndarray] = []

    def consume(stream: Iterator[tuple[str, np.ndarray, np.ndarray | None]], is_real: bool, bar: Any,
                task: Any) -> None:
        groups: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray | None]]] = defaultdict(list)

        def flush(shape: tuple[int, ...]) -> None:
            items = groups.pop(shape, [])
            if not items:
                return
            imgs = np.stack([i for i, _ in items])
            if acc is not None:
                acc.update(imgs, real=is_real)
            if hist is not None:
                labs = [lab for _, lab in items]
                hist.update(imgs, is_real, None if any(lab is None for lab in labs) else np.stack(labs))
            bar.advance(task, len(items))

        for _, img, lab in stream:
            if not is_real and len(checked) < 16 and (not checked or img.shape == checked[0].shape):
                checked.append(img)
            groups[img.shape].append((img, lab))
            if len(groups[img.shape]) >= batch_size:
                flush(img.shape)
        for shape in list(groups):
            flush(shape)

    with Progress(disable=not progress, transient=True) as bar:
        consume(real_stream, True, bar, bar.add_task("real images", total=n_real))
        consume(fake_stream, False, bar, bar.add_task("synthetic images", total=n_fake))
    found: dict[str, Any] = {"distribution": None, "stain": None, "stain_hist": None, "conventions": None,
                             "conventions_per_pair": None}
    if acc is not None:
        found["distribution"] = acc.compute()
    if hist is not None:
        found["stain"] = stain_distances(hist)
        found["stain_hist"] = hist
    failure = output_failure(np.stack(checked).astype(np.float32) / 255.0)
    prov = collect_provenance(profile=prof.name, seed=seed, data_seed=data_seed)
    model = label or fake_dir.name
    records = pd.DataFrame()
    if found["distribution"] is not None:
        records = distribution_records(found["distribution"], model, train_set="", profile=prof.name, seed=seed,
                                       dataset=real_name, split=real_split, test_set=test_set, provenance=prov,
                                       failure=failure)
    files: list[Path] = []
    if out is not None:
        out = Path(out)
        meta: dict[str, Any] = {"real": str(real), "fake": str(fake_dir), "label": label, "unpaired": True,
                                "n_real": n_real, "n_fake": n_fake, "dataset": real_name, "split": real_split,
                                "test_set": test_set, "status": "failed" if failure else "ok", "failure": failure,
                                "provenance": prov}
        if found["distribution"] is not None:
            meta["distribution"] = {"values": found["distribution"].values,
                                    "conventions": found["distribution"].conventions}
            files.append(save_records(records, out / "records.csv"))
        if found["stain"] is not None:
            meta["stain"] = {"distances": found["stain"].to_dict(orient="records"), "conventions": STAIN_CONVENTIONS}
        files.append(write_json(out / "summary.json", meta))
        files += write_diagnostics(found, out)
    return UnpairedResult(records, n_real, n_fake, found, files, test_set)
