"""What ``gbench quality`` reports beside the paired metrics: distribution metrics, stain
statistics and the paired metrics under other libraries' conventions.

One :class:`Diagnostics` object sees every (real, synthetic) pair as it is read or generated
(``observe``), keeps only what it needs (features, stain histograms, per-pair convention values;
images are batched by size and dropped), and at the end gives:

- distribution records (:func:`distribution_records`): FID, KID, precision, recall, density,
  coverage of the synthetic set against the real one on the chosen extractor
  (:mod:`gbench.metrics.distribution`); set statistics, so ``ci_method`` says there is no
  per-image interval, and ``conventions`` records the extractor, its weights' sha256, the resize
  rule and the sample counts;
- stain distances (:mod:`gbench.metrics.stain`) and their histograms (for the figure);
- the conventions table (:mod:`gbench.metrics.conventions`).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.table import Table

from gbench.core.fileio import write_text
from gbench.core.metric_specs import metric_label, metric_names, metric_spec
from gbench.core.records import make_records, validate_records
from gbench.data.io import LABEL_SUFFIXES
from gbench.metrics.conventions import catalogue, conventions_table, score_conventions
from gbench.metrics.distribution import CI_METHOD, DISTRIBUTION_METRICS, DistributionAccumulator
from gbench.metrics.stain import StainHistograms, stain_distances
from gbench.reports.figures import stain_histograms

__all__ = ["Diagnostics", "distribution_records", "replicate_frame", "label_files", "write_diagnostics", "distribution_table",
           "stain_table", "conventions_rich"]


def label_files(*folders: str | Path) -> dict[str, Path]:
    """Nucleus label files by image name, from ``labels/`` or ``masks/`` beside ``images/`` in any of
    ``folders`` (the first folder that has a name wins). Empty when none has labels."""
    out: dict[str, Path] = {}
    for folder in folders:
        for sub in ("labels", "masks"):
            d = Path(folder) / sub
            if not d.is_dir():
                continue
            for p in sorted(d.iterdir()):
                if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES and not p.name.startswith("."):
                    out.setdefault(p.stem, p)
    return out


@dataclass
class Diagnostics:
    """Collects pairs for the distribution metrics (``extractor``), stain statistics (``stain``) and
    conventions (``conventions``). Any of the three may be off.

    Args:
        extractor: a :class:`gbench.metrics.features.FeatureExtractor`, or None for no distribution metrics.
        stain: collect stain histograms.
        conventions: score every pair under every convention of ``metrics``.
        metrics: the paired metrics (for the conventions).
        batch_size: images per feature / convention batch.
        kid_subsets, kid_subset_size, k_pr, k_dc, seed: see :func:`gbench.metrics.distribution.distribution_metrics`.
    """

    extractor: Any = None
    stain: bool = False
    conventions: bool = False
    metrics: Sequence[str] = metric_names("quality")
    batch_size: int = 16
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    k_pr: int = 3
    k_dc: int = 5
    seed: int = 0
    _acc: Any = None
    _hist: Any = None
    _pending: dict[tuple[int, ...], list[tuple[str, np.ndarray, np.ndarray]]] = field(
        default_factory=lambda: defaultdict(list))
    _conv_values: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    _conv_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.extractor is not None:
            self._acc = DistributionAccumulator(self.extractor, k_pr=self.k_pr, k_dc=self.k_dc,
                                                kid_subsets=self.kid_subsets, kid_subset_size=self.kid_subset_size,
                                                seed=self.seed)
        if self.stain:
            self._hist = StainHistograms()
        if self.conventions:
            self._entries = [c for c in catalogue() if c.metric in self.metrics]

    @property
    def active(self) -> bool:
        return self._acc is not None or self._hist is not None or self.conventions

    def observe(self, names: Sequence[str], real: np.ndarray, fake: np.ndarray, labels: np.ndarray | None = None) -> None:
        """A batch of pairs: uint8 ``(N, H, W, 3)`` real and synthetic, optional instance maps ``(N, H, W)``."""
        real, fake = np.asarray(real), np.asarray(fake)
        if self._hist is not None:
            self._hist.update(real, True, labels)
            self._hist.update(fake, False, labels)
        if self._acc is None and not self.conventions:
            return
        group = self._pending[real.shape[1:]]
        group.extend(zip(names, real, fake))
        if len(group) >= self.batch_size:
            self._flush(real.shape[1:])

    def _flush(self, shape: tuple[int, ...]) -> None:
        group = self._pending.pop(shape, [])
        if not group:
            return
        names = [n for n, _, _ in group]
        real = np.stack([r for _, r, _ in group])
        fake = np.stack([f for _, _, f in group])
        if self._acc is not None:
            self._acc.update(real, real=True)
            self._acc.update(fake, real=False)
        if self.conventions:
            values = score_conventions(torch.from_numpy(fake).permute(0, 3, 1, 2),
                                       torch.from_numpy(real).permute(0, 3, 1, 2), conventions=self._entries)
            for k, v in values.items():
                self._conv_values[k].append(v.numpy())
            self._conv_names.extend(names)

    def finish(self) -> dict[str, Any]:
        """``{"distribution": DistributionResult | None, "stain": DataFrame | None, "stain_hist": ...,
        "conventions": DataFrame | None, "conventions_per_pair": DataFrame | None}``."""

        for shape in list(self._pending):
            self._flush(shape)
        out: dict[str, Any] = {"distribution": None, "stain": None, "stain_hist": None, "conventions": None,
                               "conventions_per_pair": None}
        if self._acc is not None:
            out["distribution"] = self._acc.compute()
        if self._hist is not None:
            out["stain"] = stain_distances(self._hist)
            out["stain_hist"] = self._hist
        if self.conventions and self._conv_names:
            per_pair = {k: np.concatenate(v) for k, v in self._conv_values.items()}
            out["conventions"] = conventions_table(per_pair, self._entries)
            out["conventions_per_pair"] = pd.DataFrame(
                {"name": self._conv_names, **{f"{m}:{k}": v for (m, k), v in per_pair.items()}})
        return out


def distribution_records(result: Any, model: str, *, train_set: str, profile: str, seed: int, dataset: str,
                         split: str, test_set: str, provenance: Any, failure: str = "", **extra_keys: Any) -> Any:
    """Records of a :class:`gbench.metrics.distribution.DistributionResult` (``kid_std`` stays in the
    conventions; ``n`` = synthetic samples, ``n_images`` = real samples)."""

    values = {m: v for m, v in result.values.items() if m in DISTRIBUTION_METRICS}
    conv = {**result.conventions, "kid_std": result.values.get("kid_std")}
    recs = make_records("quality", model, values, train_set=train_set, profile=profile, seed=seed, dataset=dataset,
                        split=split, n=result.n_fake, provenance=provenance if provenance is not None else {},
                        conventions=conv, **extra_keys)
    recs["ci_method"] = CI_METHOD
    boot = getattr(result, "bootstrap", None)
    if boot is not None:  # the seeded bootstrap over images of both sets (gbench.metrics.distribution_ci)
        recs["ci_method"] = boot.method
        recs["ci_low"] = [boot.intervals.get(m, (float("nan"),) * 2)[0] for m in recs["metric"]]
        recs["ci_high"] = [boot.intervals.get(m, (float("nan"),) * 2)[1] for m in recs["metric"]]
    recs["n_images"] = result.n_real
    recs["test_set"] = test_set
    recs["status"] = "failed" if failure else "ok"
    recs["failure"] = failure
    return validate_records(recs)


def replicate_frame(result: Any, model: str, *, train_set: str, profile: str, seed: int, dataset: str, split: str,
                    **extra_keys: Any) -> Any:
    """The replicate table (:func:`gbench.core.observations.save_replicates`) of a distribution result's
    set-statistic bootstrap, with the experiment keys of its records; None without a bootstrap."""
    boot = getattr(result, "bootstrap", None)
    if boot is None:
        return None
    keys = {"kind": "quality", "model": model, "train_set": train_set, "profile": profile, "seed": int(seed),
            "dataset": dataset, "split": split, **extra_keys}
    return pd.DataFrame([{**keys, **row} for row in boot.frame_rows()])


def distribution_table(result: Any, title: str) -> Any:
    """A rich table of a distribution result (value, direction, sample counts)."""


    c = result.conventions
    t = Table(title=title, caption=f"{c.get('extractor')} {c.get('weights') or ''} ({c.get('num_features')}-d); "
                                   f"{result.n_real} real, {result.n_fake} synthetic; {c.get('ci_method')}"
                                   + (f"\n{result.note}" if result.note else ""))
    for col in ("metric", "value", "better"):
        t.add_column(col, justify="right" if col == "value" else "left")
    for m in DISTRIBUTION_METRICS:
        if m in result.values:
            v = f"{result.values[m]:.4g}" + (f" ± {result.values['kid_std']:.2g}" if m == "kid"
                                             and result.values.get("kid_std") else "")
            boot = getattr(result, "bootstrap", None)
            if boot is not None and m in boot.intervals:
                v += f" [{boot.intervals[m][0]:.4g}, {boot.intervals[m][1]:.4g}]"
            spec = metric_spec(m)
            t.add_row(f"{metric_label(m)} {'↑' if spec.higher_is_better else '↓'}", v, spec.direction)
    return t


def stain_table(stain: Any, title: str) -> Any:
    """A rich table of the stain distances."""

    t = Table(title=title, caption="Wasserstein-1 of the optical densities (rgb2hed), real vs synthetic; 0 = same")
    for col in ("channel", "region", "W1 ↓", "mean real", "mean synthetic"):
        t.add_column(col, justify="left" if col in ("channel", "region") else "right")
    for r in stain.to_dict("records"):
        t.add_row(r["channel"], r["region"], f"{r['w1']:.4f}", f"{r['mean_real']:.4f}", f"{r['mean_synthetic']:.4f}")
    return t


def conventions_rich(table: Any, title: str) -> Any:
    """A rich table of :func:`gbench.metrics.conventions.conventions_table` (side by side per metric)."""

    t = Table(title=title, caption="* gbench's default; delta = mean minus the default's mean")
    for col in ("metric", "convention", "matches", "mean", "std", "delta"):
        t.add_column(col, justify="right" if col in ("mean", "std", "delta") else "left")
    for r in table.to_dict("records"):
        t.add_row(r["metric"].upper(), r["convention"] + (" *" if r["default"] else ""), r["matches"],
                  f"{r['mean']:.4f}", f"{r['std']:.4f}", f"{r['delta']:+.4f}")
    return t


def write_diagnostics(found: dict[str, Any], out: str | Path, prefix: str = "") -> list[Path]:
    """Write ``stain.csv`` + ``figures/stain.png``, ``conventions.csv`` + ``conventions_per_pair.csv``
    under ``out`` (file names prefixed by ``prefix``). Returns the paths."""

    out = Path(out)
    files: list[Path] = []
    if found.get("stain") is not None:
        files.append(write_text(out / f"{prefix}stain.csv", found["stain"].to_csv(index=False, float_format="%.10g")))
        files.append(stain_histograms(found["stain_hist"], out / "figures" / f"{prefix}stain.png",
                                      distances=found["stain"]))
    if found.get("conventions") is not None:
        files.append(write_text(out / f"{prefix}conventions.csv",
                                found["conventions"].to_csv(index=False, float_format="%.10g")))
        files.append(write_text(out / f"{prefix}conventions_per_pair.csv",
                                found["conventions_per_pair"].to_csv(index=False, float_format="%.10g")))
    return files
