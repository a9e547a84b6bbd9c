"""Cropping large tiles to patches and the paper's augmentation (flips, 90-degree rotations).

Every function applies the same geometric transform to the image and its instance map.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gbench.data.labels import relabel_sequential
from gbench.data.types import Sample

__all__ = ["pad_to", "random_crop", "grid_positions", "grid_crops", "augment", "DIHEDRAL"]

#: The 8 elements of the square's symmetry group as (k rotations by 90 degrees, flip left-right).
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))


def pad_to(image: np.ndarray, instances: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad a tile smaller than ``size`` on a side by mirror reflection (numpy ``symmetric``).

    The padding is split evenly between both sides. A mirrored copy of a nucleus is a new
    nucleus: its id is shifted by a multiple of the largest id, so no id covers two separate
    copies. Tiles much smaller than ``size`` are padded in steps (each at most doubling a side).
    """
    while instances.shape[0] < size or instances.shape[1] < size:
        h, w = instances.shape
        th = h if h >= size else min(size, 2 * h)
        tw = w if w >= size else min(size, 2 * w)
        image, instances = _pad_once(image, instances, th, tw)
    return image, instances


def _pad_once(image: np.ndarray, instances: np.ndarray, th: int, tw: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = instances.shape
    pads = (((th - h) // 2, th - h - (th - h) // 2), ((tw - w) // 2, tw - w - (tw - w) // 2))
    img = np.pad(image, (*pads, (0, 0)), mode="symmetric")
    ry = np.zeros(th, dtype=np.int64)
    ry[: pads[0][0]] = 1
    ry[pads[0][0] + h:] = 2
    rx = np.zeros(tw, dtype=np.int64)
    rx[: pads[1][0]] = 1
    rx[pads[1][0] + w:] = 2
    region = ry[:, None] * 3 + rx[None, :]  # 0 = original, 1..8 = mirrored copies
    inst = np.pad(instances.astype(np.int64), pads, mode="symmetric")
    offset = int(instances.max()) if instances.size else 0
    inst = np.where(inst > 0, inst + region * offset, 0)
    if inst.size and inst.max() > np.iinfo(np.int32).max:
        inst, _ = relabel_sequential(inst)
    return img, inst.astype(np.int32)


def random_crop(image: np.ndarray, instances: np.ndarray, size: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A uniformly placed ``size`` x ``size`` crop (tiles smaller than ``size`` are padded first)."""
    image, instances = pad_to(image, instances, size)
    h, w = instances.shape
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return image[y:y + size, x:x + size].copy(), instances[y:y + size, x:x + size].copy()


def grid_positions(length: int, size: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with windows of ``size``; the last one is flush
    with the end (it overlaps its neighbour instead of running past the tile)."""
    if length <= size:
        return [0]
    pos = list(range(0, length - size + 1, stride))
    if pos[-1] != length - size:
        pos.append(length - size)
    return pos


def grid_crops(image: np.ndarray, instances: np.ndarray, size: int,
               stride: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """Crops covering the whole tile on a regular grid: yields (image, instances, (y, x))."""
    stride = size if stride is None else stride
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    image, instances = pad_to(image, instances, size)
    h, w = instances.shape
    for y in grid_positions(h, size, stride):
        for x in grid_positions(w, size, stride):
            yield image[y:y + size, x:x + size].copy(), instances[y:y + size, x:x + size].copy(), (y, x)


def augment(image: np.ndarray, instances: np.ndarray, rng: np.random.Generator | None = None,
            element: tuple[int, bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The paper's augmentation: a random flip and 90-degree rotation, identical for both arrays.

    Args:
        image: (H, W, C) array.
        instances: (H, W) array.
        rng: draws one of the 8 dihedral transforms uniformly (ignored when ``element`` is given).
        element: (k, flip): rotate by k * 90 degrees counter-clockwise, then flip left-right.
    """
    if element is None:
        if rng is None:
            raise ValueError("augment needs rng or element")
        element = DIHEDRAL[int(rng.integers(0, len(DIHEDRAL)))]
    k, flip = element
    img = np.rot90(image, k, axes=(0, 1))
    inst = np.rot90(instances, k, axes=(0, 1))
    if flip:
        img, inst = img[:, ::-1], inst[:, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(inst)


def sample_patches(sample: Sample, size: int, stride: int | None = None) -> list[Sample]:
    """Grid patches of a sample as samples named ``<name>@y<Y>x<X>``."""
    return [Sample(f"{sample.name}@y{y}x{x}", img, inst, {**sample.meta, "parent": sample.name, "offset": (y, x)})
            for img, inst, (y, x) in grid_crops(sample.image, sample.instances, size, stride)]
