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


def observations_for(records: pd.DataFrame, n_images: int = 16, image_sd: float = 0.04, noise_sd: float = 0.004,
                     seed: int = 0, test_set: str = "fixture") -> pd.DataFrame:
    """Per-image observations whose per-image means equal the records' values exactly.

    Every experiment is scored on the same ``n_images`` images: a shared per-image effect
    (``image_sd``, the same for every experiment: the images are paired) plus independent noise
    (``noise_sd``), centred so the mean over images is the record value. Only ``mean``
    aggregation (and quality) records are used: no pooled statistics.
    """
    import numpy as np

    from gbench.core.observations import make_observations, obs_key_columns

    rng = np.random.default_rng(seed)
    recs = records
    if "aggregation" in recs.columns:
        recs = recs[recs["aggregation"].isin(["", "mean"])]
    metrics = sorted(set(recs["metric"]))
    effect = {m: rng.normal(0.0, image_sd, n_images) for m in metrics}
    names = [f"img{i:02d}" for i in range(n_images)]
    keys = [c for c in ("kind", "model", "train_set", "profile", "seed", "dataset", "split") if c in recs.columns]
    extra = [c for c in recs.columns if c in ("target", "data_seed", "conditioning", "generator")]
    frames = []
    for key, g in recs.groupby(keys + extra, sort=False):
        k = dict(zip(keys + extra, key))
        rows = [{"name": n} for n in names]
        for r in g.itertuples(index=False):
            v = effect[r.metric] + rng.normal(0.0, noise_sd, n_images)
            v = v - v.mean() + r.value
            for row, x in zip(rows, v):
                row[r.metric] = float(x)
        frames.append(make_observations(k.pop("kind"), k.pop("model"), rows, train_set=k.pop("train_set"),
                                        profile=k.pop("profile"), seed=int(k.pop("seed")), dataset=k.pop("dataset"),
                                        split=k.pop("split"), test_set=test_set, **k))
    out = pd.concat(frames, ignore_index=True)
    assert obs_key_columns(out)[:7] == ["kind", "model", "train_set", "profile", "seed", "dataset", "split"]
    return out
