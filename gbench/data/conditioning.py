"""Conditioning maps drawn from an instance map: binary mask, distance map, contour map.

Every function takes an instance map ``(H, W)`` of non-negative integers (0 = background, any
other value = one nucleus; ids need not be contiguous) and is vectorized over all nuclei.
"""
from __future__ import annotations

import numpy as np

from gbench.data.labels import relabel_sequential

__all__ = ["binary_mask", "distance_map", "contour_map", "CONDITIONINGS", "condition"]


def binary_mask(instances: np.ndarray) -> np.ndarray:
    """Foreground mask.

    Args:
        instances: (H, W) integer instance map, 0 = background.

    Returns:
        (H, W) uint8 array of 0 and 1.
    """
    inst = _check(instances)
    return (inst > 0).astype(np.uint8)


def distance_map(instances: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Sharp-GAN nucleus distance map (section 2.2).

    Each nucleus pixel holds the Euclidean distance (in pixels) from the pixel to the centroid
    of the nucleus containing it; the centroid is the mean row and mean column of the nucleus's
    pixels (as in ``skimage.measure.regionprops``). Background is 0.

    With ``normalize=True`` each nucleus is divided by its own maximum, so values lie in [0, 1]
    and every nucleus reaches 1 on its farthest pixel(s). A nucleus whose maximum is 0 (a single
    pixel) is set to 1 so it stays visible in the map; unnormalized it is 0.

    Args:
        instances: (H, W) integer instance map, 0 = background.
        normalize: divide each nucleus by its own maximum.

    Returns:
        (H, W) float32 array.
    """
    inst = _check(instances)
    lab, n = relabel_sequential(inst)
    out = np.zeros(inst.shape, dtype=np.float32)
    if n == 0:
        return out
    flat = lab.ravel()
    fg = np.flatnonzero(flat)
    ids = flat[fg]
    rows, cols = np.divmod(fg, inst.shape[1])
    counts = np.bincount(ids, minlength=n + 1).astype(np.float64)
    counts[0] = 1.0
    cr = np.bincount(ids, weights=rows, minlength=n + 1) / counts
    cc = np.bincount(ids, weights=cols, minlength=n + 1) / counts
    dist = np.hypot(rows - cr[ids], cols - cc[ids])
    if normalize:
        mx = np.zeros(n + 1, dtype=np.float64)
        np.maximum.at(mx, ids, dist)
        m = mx[ids]
        dist = np.divide(dist, m, out=np.ones_like(dist), where=m > 0)
    out.ravel()[fg] = dist
    return out


def contour_map(instances: np.ndarray) -> np.ndarray:
    """Nucleus boundary pixels, including the shared boundary of touching nuclei.

    A nucleus pixel is a contour pixel when one of its 4-connected neighbours carries another
    label (background or another nucleus). Pixels beyond the image border count as the same
    label (a nucleus cut by the crop has no contour along the cut). On a boundary between two
    touching nuclei both sides are marked, so the line is two pixels wide.

    Args:
        instances: (H, W) integer instance map, 0 = background.

    Returns:
        (H, W) uint8 array of 0 and 1.
    """
    inst = _check(instances)
    edge = np.zeros(inst.shape, dtype=bool)
    dv = inst[1:, :] != inst[:-1, :]
    dh = inst[:, 1:] != inst[:, :-1]
    edge[1:, :] |= dv
    edge[:-1, :] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    return (edge & (inst > 0)).astype(np.uint8)


def _check(instances: np.ndarray) -> np.ndarray:
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instance map must be 2-D (H, W), got shape {inst.shape}")
    if not np.issubdtype(inst.dtype, np.integer) and inst.dtype != bool:
        raise ValueError(f"instance map must hold integers, got dtype {inst.dtype}")
    if inst.size and np.issubdtype(inst.dtype, np.signedinteger) and inst.min() < 0:
        raise ValueError("instance map has negative ids")
    return inst


CONDITIONINGS = {
    "binary-mask": lambda inst: binary_mask(inst).astype(np.float32)[None],
    "distance-map": lambda inst: distance_map(inst)[None],
    "contour-map": lambda inst: contour_map(inst).astype(np.float32)[None],
}


def condition(name: str, instances: np.ndarray) -> np.ndarray:
    """Conditioning map by registry name as a (C, H, W) float32 array.

    Names: ``binary-mask``, ``distance-map``, ``contour-map``.
    """
    try:
        fn = CONDITIONINGS[name]
    except KeyError:
        raise KeyError(f"unknown conditioning {name!r} (known: {', '.join(CONDITIONINGS)})") from None
    return fn(instances)
