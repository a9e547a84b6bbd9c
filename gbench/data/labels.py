"""Fast relabelling of instance maps with arbitrary non-negative integer ids."""
from __future__ import annotations

import numpy as np

__all__ = ["relabel_sequential"]

# Above this many ids per pixel the lookup-table path would allocate too much: fall back to a sort.
_LUT_FACTOR = 4


def relabel_sequential(instances: np.ndarray) -> tuple[np.ndarray, int]:
    """Map the ids of an instance map to 1..n in increasing order of the original id.

    Uses a lookup table built from ``np.bincount`` (linear time) when the largest id is at most
    a few times the number of pixels, and ``np.unique(return_inverse=True)`` otherwise.

    Args:
        instances: (H, W) non-negative integer array, 0 = background.

    Returns:
        (labels, n): int32 (or int64 when n does not fit) array of the same shape with ids
        1..n (0 stays 0), and the number of nuclei n.
    """
    inst = np.asarray(instances)
    if inst.dtype == bool:
        inst = inst.astype(np.uint8)
    if inst.size == 0:
        return np.zeros(inst.shape, dtype=np.int32), 0
    mx = int(inst.max())
    if mx == 0:
        return np.zeros(inst.shape, dtype=np.int32), 0
    if mx <= _LUT_FACTOR * inst.size + 1024:
        flat = inst.ravel()
        if flat.dtype.kind == "u" or flat.dtype.itemsize > 8:
            flat = flat.astype(np.int64)
        present = np.bincount(flat, minlength=mx + 1) > 0
        present[0] = False
        n = int(present.sum())
        lut = np.zeros(mx + 1, dtype=np.int32 if n < 2**31 - 1 else np.int64)
        lut[present] = np.arange(1, n + 1, dtype=lut.dtype)
        return lut[flat].reshape(inst.shape), n
    uniq, inv = np.unique(inst, return_inverse=True)
    offset = 1 if uniq[0] != 0 else 0
    lab = (inv.reshape(inst.shape) + offset).astype(np.int64)
    n = len(uniq) - (1 - offset)
    return lab.astype(np.int32) if n < 2**31 - 1 else lab, n
