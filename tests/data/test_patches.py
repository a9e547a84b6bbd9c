"""Cropping and augmentation apply the same transform to image and instance map."""
from __future__ import annotations

import numpy as np
import pytest

from gbench.data.patches import DIHEDRAL, augment, grid_crops, grid_positions, pad_to, random_crop
from tests.conftest import random_disks


def coded(shape: tuple[int, int] = (40, 56)) -> tuple[np.ndarray, np.ndarray]:
    """An image whose channels encode row, column and instance id, so any misalignment shows."""
    inst = random_disks(shape, 10, seed=3)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    image = np.stack([yy, xx, inst], axis=-1).astype(np.uint8)
    return image, inst


def test_random_crop_aligned_and_deterministic() -> None:
    image, inst = coded()
    a = random_crop(image, inst, 32, np.random.default_rng(5))
    b = random_crop(image, inst, 32, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    img, lab = a
    assert img.shape == (32, 32, 3) and lab.shape == (32, 32)
    np.testing.assert_array_equal(img[:, :, 2], lab)
    y0, x0 = int(img[0, 0, 0]), int(img[0, 0, 1])
    np.testing.assert_array_equal(lab, inst[y0:y0 + 32, x0:x0 + 32])
    positions = {tuple(random_crop(image, inst, 32, np.random.default_rng(s))[0][0, 0, :2]) for s in range(30)}
    assert len(positions) > 5  # really random


def test_grid_crops_cover_every_pixel() -> None:
    image, inst = coded((70, 50))
    seen = np.zeros((70, 50), dtype=int)
    crops = list(grid_crops(image, inst, 32))
    assert [c[2] for c in crops] == [(y, x) for y in (0, 32, 38) for x in (0, 18)]
    for img, lab, (y, x) in crops:
        np.testing.assert_array_equal(lab, inst[y:y + 32, x:x + 32])
        np.testing.assert_array_equal(img, image[y:y + 32, x:x + 32])
        seen[y:y + 32, x:x + 32] += 1
    assert seen.min() >= 1
    assert grid_positions(64, 32, 16) == [0, 16, 32]
    with pytest.raises(ValueError, match="stride"):
        list(grid_crops(image, inst, 32, stride=0))


def test_pad_small_tile_mirrors_with_new_ids() -> None:
    inst = np.zeros((10, 12), dtype=np.int32)
    inst[2:5, 3:6] = 4
    image = np.zeros((10, 12, 3), dtype=np.uint8)
    image[inst > 0] = 200
    img, lab = pad_to(image, inst, 32)  # needs two padding steps (10 -> 20 -> 32)
    assert img.shape == (32, 32, 3) and lab.shape == (32, 32)
    np.testing.assert_array_equal(img[:, :, 0] == 200, lab > 0)  # labels follow the mirrored pixels
    from scipy import ndimage

    ids = np.unique(lab[lab > 0])
    assert len(ids) == 9  # the original and 8 mirrored copies (3x3 tiling after two steps)
    for i in ids:  # each id covers exactly one connected 3x3 copy
        assert ndimage.label(lab == i)[1] == 1 and (lab == i).sum() == 9


def test_augment_all_eight_elements_distinct_and_aligned() -> None:
    image, inst = coded((32, 32))
    outs = []
    for el in DIHEDRAL:
        img, lab = augment(image, inst, element=el)
        np.testing.assert_array_equal(img[:, :, 2], lab)
        outs.append(lab.tobytes())
    assert len(set(outs)) == 8
    img, lab = augment(image, inst, element=(1, False))
    np.testing.assert_array_equal(lab, np.rot90(inst))
    rng_out = {augment(image, inst, np.random.default_rng(s))[1].tobytes() for s in range(40)}
    assert len(rng_out) == 8
    with pytest.raises(ValueError):
        augment(image, inst)
