"""Focus curves of multi-focus stacks (numpy only, no torch): the sharpness of each plane as the
variance of the Laplacian of its luma. Used by :mod:`gbench.metrics.multifocus` and by the
failed-run checks (:mod:`gbench.metrics.failures`), which stay torch-free."""
from __future__ import annotations

import numpy as np

__all__ = ["focus_curve", "variance_of_laplacian"]


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
