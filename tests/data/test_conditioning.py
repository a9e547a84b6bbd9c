"""Conditioning maps against hand-made cases and scikit-image's regionprops."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from gbench.data.conditioning import binary_mask, condition, contour_map, distance_map
from tests.conftest import ATOL_F32, random_disks


def two_touching_squares() -> np.ndarray:
    inst = np.zeros((5, 8), dtype=np.int32)
    inst[1:4, 1:4] = 1
    inst[1:4, 4:7] = 2
    return inst


def test_binary_mask_values_and_dtype() -> None:
    inst = two_touching_squares()
    m = binary_mask(inst)
    assert m.dtype == np.uint8
    assert m.sum() == 18 and set(np.unique(m)) == {0, 1}


def test_contour_two_touching_squares_keeps_shared_boundary() -> None:
    c = contour_map(two_touching_squares())
    expected = np.zeros((5, 8), dtype=np.uint8)
    expected[1:4, 1:4] = 1
    expected[1:4, 4:7] = 1
    expected[2, 2] = 0  # the only interior pixels of the two 3x3 squares
    expected[2, 5] = 0
    np.testing.assert_array_equal(c, expected)
    # the binary mask alone loses the shared boundary: contour of the merged blob misses it
    merged = contour_map(binary_mask(two_touching_squares()).astype(np.int32))
    assert merged[2, 3] == 0 and merged[2, 4] == 0
    assert c[2, 3] == 1 and c[2, 4] == 1


def test_contour_border_of_image_is_not_a_contour() -> None:
    inst = np.ones((4, 4), dtype=np.int32)
    assert contour_map(inst).sum() == 0
    inst[0, 0] = 2
    c = contour_map(inst)
    assert c[0, 0] == 1 and c[0, 1] == 1 and c[1, 0] == 1 and c[1, 1] == 0


def test_distance_map_square_exact_values() -> None:
    inst = two_touching_squares()
    d = distance_map(inst, normalize=False)
    # centroid of square 1 is (2, 2): corners at sqrt(2), edge midpoints at 1, centre 0
    assert d[2, 2] == 0.0
    assert d[1, 2] == pytest.approx(1.0)
    assert d[1, 1] == pytest.approx(np.sqrt(2), abs=1e-6)
    dn = distance_map(inst)
    assert dn[1, 1] == pytest.approx(1.0) and dn[1, 2] == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert dn.dtype == np.float32
    assert dn[0].sum() == 0 and dn[:, 0].sum() == 0  # background stays 0


def test_distance_map_ring_centroid_outside_nucleus() -> None:
    yy, xx = np.mgrid[0:21, 0:21]
    r = np.hypot(yy - 10, xx - 10)
    inst = ((r >= 5) & (r <= 8)).astype(np.int32) * 7
    d = distance_map(inst, normalize=False)
    np.testing.assert_allclose(d[inst > 0], r[inst > 0], atol=ATOL_F32)
    assert d[10, 10] == 0.0  # the centroid is a background pixel
    dn = distance_map(inst)
    assert dn.max() == pytest.approx(1.0) and dn[inst > 0].min() == pytest.approx(5 / r[inst > 0].max(), abs=1e-6)


def test_distance_map_single_pixel_and_empty() -> None:
    inst = np.zeros((5, 5), dtype=np.int32)
    assert distance_map(inst).sum() == 0 and contour_map(inst).sum() == 0
    inst[2, 2] = 3
    assert distance_map(inst)[2, 2] == 1.0  # documented: a one-pixel nucleus is set to 1
    assert distance_map(inst, normalize=False)[2, 2] == 0.0
    assert contour_map(inst)[2, 2] == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_map_matches_regionprops_centroids(seed: int) -> None:
    inst = random_disks((96, 80), n=15, seed=seed) * 13 + 5  # non-contiguous ids, no background
    inst[inst == 5] = 0
    d = distance_map(inst, normalize=False)
    dn = distance_map(inst)
    for rp in regionprops(inst):
        rr, cc = rp.coords[:, 0], rp.coords[:, 1]
        cy, cx = rp.centroid
        ref = np.hypot(rr - cy, cc - cx)
        np.testing.assert_allclose(d[rr, cc], ref, atol=ATOL_F32)
        if ref.max() > 0:
            np.testing.assert_allclose(dn[rr, cc], ref / ref.max(), atol=ATOL_F32)


def test_condition_shapes_and_errors() -> None:
    inst = two_touching_squares()
    for name in ("binary-mask", "distance-map", "contour-map"):
        c = condition(name, inst)
        assert c.shape == (1, 5, 8) and c.dtype == np.float32
    with pytest.raises(KeyError, match="unknown conditioning"):
        condition("distance", inst)
    with pytest.raises(ValueError, match="integers"):
        distance_map(inst.astype(np.float32))
    with pytest.raises(ValueError, match="negative"):
        contour_map(-inst)
    with pytest.raises(ValueError, match="2-D"):
        binary_mask(inst[None])
