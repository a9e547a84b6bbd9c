"""A fixed, hand-made record set for the report tests (no randomness: golden files depend on it).

Every cell is the paper's value plus symmetric offsets over the seeds, so the mean is the
paper's value and the std is known in closed form:
quality: 3 seeds at (v - d, v, v + d): std = d;  segmentation: 2 seeds at (v - d, v + d): std = d * sqrt(2).
SegNet S (10k) has seed 0 only (mean v - d, no std, 1 seed).
"""
from __future__ import annotations

import pandas as pd

from gbench.core.records import records_from_dicts

QUALITY = {  # Sharp-GAN Table 1
    "gan-binary": {"ssim": 0.577, "fsim": 0.735, "gmsd": 0.178, "nrmse": 0.306},
    "gan-dist": {"ssim": 0.681, "fsim": 0.763, "gmsd": 0.163, "nrmse": 0.259},
    "sharp-gan": {"ssim": 0.756, "fsim": 0.793, "gmsd": 0.147, "nrmse": 0.230},
}
QUALITY_D = {"gan-binary": 0.004, "gan-dist": 0.010, "sharp-gan": 0.002}
SEGMENTATION = {  # Sharp-GAN Table 2
    ("segnet", "R"): (0.765, 0.759, 0.584, 0.588),
    ("segnet", "S3k"): (0.686, 0.757, 0.523, 0.510),
    ("segnet", "R+S3k"): (0.780, 0.769, 0.602, 0.608),
    ("segnet", "S10k"): (0.732, 0.759, 0.557, 0.545),
    ("segnet", "R+S10k"): (0.806, 0.772, 0.608, 0.623),
    ("unet", "R"): (0.825, 0.795, 0.658, 0.670),
    ("unet", "S3k"): (0.755, 0.738, 0.562, 0.593),
    ("unet", "R+S3k"): (0.837, 0.800, 0.671, 0.675),
    ("unet", "S10k"): (0.804, 0.788, 0.634, 0.616),
    ("unet", "R+S10k"): (0.841, 0.797, 0.669, 0.677),
}
SEG_METRICS = ("dq", "sq", "pq", "aji")
SEG_D = 0.005
PROV = {"gbench_version": "0.1.0", "git_revision": "abc123", "torch_version": "2.14.1", "device": "cpu:x86_64",
        "date": "2026-01-01T00:00:00+00:00", "conventions": "{}"}


def _row(kind: str, model: str, train_set: str, seed: int, metric: str, value: float, n: int = 8) -> dict:
    return {"kind": kind, "model": model, "train_set": train_set, "profile": "smoke", "seed": seed,
            "dataset": "synthetic-he", "split": "test", "metric": metric, "value": value, "n": n, **PROV}


def quality_rows(values: dict[str, dict[str, float]] = QUALITY) -> list[dict]:
    rows = []
    for model, metrics in values.items():
        d = QUALITY_D.get(model, 0.0)
        for seed, off in enumerate((-d, 0.0, d)):
            rows += [_row("quality", model, "R", seed, m, v + off) for m, v in metrics.items()]
    return rows


def segmentation_rows(values: dict[tuple[str, str], tuple[float, ...]] = SEGMENTATION) -> list[dict]:
    rows = []
    for (arch, train_set), vals in values.items():
        offsets = (-SEG_D,) if (arch, train_set) == ("segnet", "S10k") else (-SEG_D, SEG_D)
        for seed, off in enumerate(offsets):
            rows += [_row("segmentation", arch, train_set, seed, m, v + off) for m, v in zip(SEG_METRICS, vals)]
    return rows


def fixed_records() -> pd.DataFrame:
    """Quality and segmentation records (all provenance fixed)."""
    return records_from_dicts(quality_rows() + segmentation_rows())
