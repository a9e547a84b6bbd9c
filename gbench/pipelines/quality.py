"""``gbench quality``: score synthetic images against real ones, paired by file name.

Pairs are grouped by image size and scored in batches with the functions of
:mod:`gbench.metrics.quality`; per-image values and a summary (mean, std, n, 95% CI) are written
as CSV, Markdown and JSON (with the metric conventions and the provenance), and as records
(``records.csv``) with the per-image observations behind their confidence intervals
(``observations.csv``), atomically.

Resampling units: the grid crops of one tile are not independent, so a crop named
``<tile>@y<Y>x<X>`` (as :func:`gbench.pipelines.generator_eval.evaluate_generator` names them) belongs to the
unit ``<tile>``; any other image is its own unit. The test-set hash of a folder pair is taken
over the real images' file bytes.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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
from gbench.core.observations import hash_test_set, make_observations, save_observations
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
           "quality_results", "unit_of"]

#: The quality metrics, in table order (the registry, :data:`gbench.core.metric_specs.METRICS`).
METRICS: tuple[str, ...] = metric_names("quality")


def _image_files(folder: Path) -> dict[str, Path]:
    if not folder.exists():
        raise DataError(folder, "folder not found")
    if not folder.is_dir():
        raise DataError(folder, "not a folder")
    base = folder / "images" if (folder / "images").is_dir() else folder
    files: dict[str, Path] = {}
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
    for _, _, fake in pairs:
        img = read_image(fake)
        if imgs and img.shape != imgs[0].shape:
            continue
        imgs.append(img)
        if len(imgs) == limit:
            break
    return output_failure(np.stack(imgs))


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
                kid_subset_size: int = 1000) -> QualityResult:
    """Pair, score, summarize and (with ``out``) write per_image.csv, summary.csv, summary.md,
    summary.json, records.csv and observations.csv.

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
    test_set = hash_test_set((n, r.read_bytes(), b"") for n, r, _ in pairs)
    failure = _folder_failure(pairs)
    prov = collect_provenance(profile=profile, seed=seed)
    records, observations = quality_results(per_image, label or Path(fake_dir).name, train_set="", profile=profile,
                                            seed=seed, dataset=Path(real_dir).name, split="all", test_set=test_set,
                                            metrics=metrics, provenance=prov, failure=failure)
    summary = _with_intervals(summarize_scores(per_image, metrics), records, observations)
    if found is not None and found["distribution"] is not None:

        records = pd.concat([records, distribution_records(
            found["distribution"], label or Path(fake_dir).name, train_set="", profile=profile, seed=seed,
            dataset=Path(real_dir).name, split="all", test_set=test_set, provenance=prov, failure=failure)],
            ignore_index=True)
    files: list[Path] = []
    if out is not None:
        out = Path(out)
        meta = {
            "real": str(real_dir), "fake": str(fake_dir), "label": label, "pairs": len(pairs),
            "test_set": test_set, "status": "failed" if failure else "ok", "failure": failure,
            "ci_method": str(records["ci_method"].iloc[0]),
            "metrics": list(metrics), "conventions": {m: metric_spec(m).protocol() for m in metrics},
            "summary": summary.to_dict(orient="records"),
            "provenance": prov,
        }
        if found is not None:
            if found["distribution"] is not None:
                meta["distribution"] = {"values": found["distribution"].values,
                                        "conventions": found["distribution"].conventions}
            if found["stain"] is not None:
                meta["stain"] = {"distances": found["stain"].to_dict(orient="records"),
                                 "conventions": STAIN_CONVENTIONS}
            if found["conventions"] is not None:
                meta["conventions_side_by_side"] = found["conventions"].to_dict(orient="records")
        md = (f"# Image quality: {label or Path(fake_dir).name} vs {Path(real_dir).name}\n\n"
              f"{len(pairs)} pairs; mean and std (ddof=1) over images, 95% CI ({meta['ci_method']}); "
              f"conventions in summary.json\n\n"
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
