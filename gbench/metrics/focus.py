"""Focus curves of multi-focus stacks (numpy only, no torch): the sharpness of each plane as the
variance of the Laplacian of its luma. Used by :mod:`gbench.metrics.multifocus` and by the
failed-run checks (:mod:`gbench.metrics.failures`), which stay torch-free.

``focus_curve_l1`` (registered in :data:`gbench.core.metric_specs.METRICS`, lower is better)
compares the mean focus curves of synthetic and real stacks, each normalised to peak 1: the mean
absolute difference per plane (0 for identical curves)."""
from __future__ import annotations

from typing import Final

import numpy as np

__all__ = ["CONVENTIONS", "focus_curve", "focus_curve_l1", "mean_curve_l1", "variance_of_laplacian"]

CONVENTIONS: Final[dict[str, str]] = {
    "focus_curve_l1": "mean over planes of |c_fake - c_real|, c = the mean focus curve (variance of the "
                      "4-neighbour Laplacian of BT.601 luma in [0,1], valid region) normalised to peak 1",
}


def _luma(stacks: np.ndarray) -> np.ndarray:
    x = np.asarray(stacks, dtype=np.float64) / 255.0
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def variance_of_laplacian(gray: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian over the valid region, per image of ``(..., H, W)``."""
    g = np.asarray(gray, dtype=np.float64)
    if g.shape[-1] < 3 or g.shape[-2] < 3:
        raise ValueError(f"images must be at least 3x3 for the Laplacian, got {g.shape[-2:]}")
    lap = (g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:] - 4.0 * g[..., 1:-1, 1:-1])
    return lap.reshape(*lap.shape[:-2], -1).var(axis=-1)


def focus_curve(stacks: np.ndarray) -> np.ndarray:
    """Sharpness per plane: ``(N, P, H, W, 3)`` uint8 -> ``(N, P)`` variance of the Laplacian of the luma."""
    s = np.asarray(stacks)
    if s.ndim != 5 or s.shape[-1] != 3:
        raise ValueError(f"focus_curve needs stacks (N, P, H, W, 3), got shape {s.shape}")
    return variance_of_laplacian(_luma(s))


def mean_curve_l1(fake_curves: np.ndarray, real_curves: np.ndarray) -> float:
    """Mean absolute difference per plane of the mean curves ``(N, P)`` of two sets, each
    normalised to peak 1 (a peak below 1e-12 counts as 1e-12)."""
    mf, mr = np.asarray(fake_curves).mean(0), np.asarray(real_curves).mean(0)
    nmf, nmr = mf / max(mf.max(), 1e-12), mr / max(mr.max(), 1e-12)
    return float(np.abs(nmr - nmf).mean())


def focus_curve_l1(fake: np.ndarray, real: np.ndarray) -> float:
    """``focus_curve_l1`` of synthetic stacks against real ones, both ``(N, P, H, W, 3)`` uint8
    with the same ``P`` (the set sizes may differ); lower is better, 0 for identical curves."""
    cf, cr = focus_curve(fake), focus_curve(real)
    if cf.shape[1] != cr.shape[1]:
        raise ValueError(f"focus_curve_l1 needs stacks with the same number of planes, got {cf.shape[1]} "
                         f"(synthetic) and {cr.shape[1]} (real)")
    return mean_curve_l1(cf, cr)
