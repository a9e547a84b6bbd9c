"""``gbench.data.labels.relabel_sequential`` against scikit-image's, on maps of every dtype and id range."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import relabel_sequential as sk_relabel

from gbench.data.labels import relabel_sequential
from gbench.data.masks import synthesize_instance_map


def test_relabel_sequential_preserves_order_and_handles_huge_ids() -> None:
    inst = np.array([[0, 9, 9], [1000000007, 4, 0]], dtype=np.int64)
    lab, n = relabel_sequential(inst)
    assert n == 3
    np.testing.assert_array_equal(lab, [[0, 2, 2], [3, 1, 0]])
    small = np.array([[5, 5], [2, 0]], dtype=np.uint16)
    lab2, n2 = relabel_sequential(small)
    assert n2 == 2 and lab2.tolist() == [[2, 2], [1, 0]]
    full = np.full((3, 3), 4, dtype=np.uint8)  # no background pixel
    lab3, n3 = relabel_sequential(full)
    assert n3 == 1 and (lab3 == 1).all()


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    m = synthesize_instance_map(64, 0, 0)
    out = [m.astype(dt) for dt in (np.uint8, np.uint16, np.int32, np.int64, np.uint64)]
    out.append(np.where(m > 0, m.astype(np.int64) * 1_000_003, 0))           # ids far above the pixel count
    out.append(rng.integers(0, 300, size=(40, 50)).astype(np.int32))          # dense ids, gaps
    out.append(rng.integers(1, 5, size=(7, 9)).astype(np.int16))              # no background
    out.append(np.zeros((8, 8), dtype=np.int32))                              # background only
    out.append(rng.choice([0, 2**40, 2**40 + 7], size=(6, 6)).astype(np.int64))
    return out


@pytest.mark.parametrize("inst", _cases(), ids=lambda a: f"{a.dtype}-{a.shape}-max{int(a.max())}")
def test_equals_skimage_relabel_sequential(inst: np.ndarray) -> None:
    lab, n = relabel_sequential(inst)
    ref = sk_relabel(inst)[0]
    np.testing.assert_array_equal(lab, ref)
    assert n == int(ref.max()) == len(np.unique(inst[inst > 0]))
    assert lab.dtype == np.int32
