"""Targets and post-processing: known maps give the expected instances."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.draw import disk

from gbench.metrics.instance import instance_metrics
from gbench.segmentation.postprocess import PostprocessConfig, binary_instances, postprocess
from gbench.segmentation.targets import boundary_distance, contour_classes, get_target


def touching_pair(shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Two overlapping disks split along the perpendicular bisector: touching nuclei 1 and 2,
    plus a separate nucleus 3."""
    inst = np.zeros(shape, dtype=np.int32)
    a, b = (24, 20), (24, 34)
    for k, c in ((1, a), (2, b)):
        rr, cc = disk(c, 10, shape=shape)
        inst[rr, cc] = np.where((cc < 27) == (k == 1), k, inst[rr, cc])
    rr, cc = disk((12, 54), 6, shape=shape)
    inst[rr, cc] = 3
    assert set(np.unique(inst)) == {0, 1, 2, 3}
    return inst


def soften(onehot: np.ndarray, hi: float = 0.85) -> np.ndarray:
    """Confident but not certain probabilities from a one-hot (C, H, W) map."""
    c = onehot.shape[0]
    return onehot * hi + (1 - onehot) * (1 - hi) / (c - 1)


def test_binary_merges_touching_nuclei() -> None:
    inst = touching_pair()
    prob = soften(np.stack([inst == 0, inst > 0]).astype(np.float32))[1:]
    pred = postprocess("binary", prob)
    assert pred.max() == 2  # 1+2 merged, 3 alone
    merged = np.unique(pred[(inst == 1) | (inst == 2)])
    assert len(merged) == 1 and merged[0] > 0  # both touching nuclei carry one predicted id
    m = instance_metrics(pred, inst)
    assert m["fn"] >= 1 and m["tp"] + m["fn"] == 3


@pytest.mark.parametrize("target,config", [
    ("contour", PostprocessConfig()),
    ("distance", PostprocessConfig(markers="threshold", marker_threshold=0.5)),
    ("distance", PostprocessConfig(markers="h-maxima", h=0.3)),
])
def test_contour_and_distance_separate_touching_nuclei(target: str, config: PostprocessConfig) -> None:
    inst = touching_pair()
    if target == "contour":
        cls = contour_classes(inst)
        maps = soften(np.stack([cls == 0, cls == 1, cls == 2]).astype(np.float32))
    else:
        maps = np.stack([soften(np.stack([inst == 0, inst > 0]).astype(np.float32))[1], boundary_distance(inst)])
    pred = postprocess(target, maps, config)
    m = instance_metrics(pred, inst)
    assert pred.max() == 3 and m["tp"] == 3 and m["fp"] == 0 and m["fn"] == 0
    assert m["sq"] > 0.9  # boundary pixels grown back into their nuclei


def test_min_area_and_threshold() -> None:
    prob = np.zeros((20, 20), np.float32)
    prob[2:8, 2:8] = 0.9  # 36 px
    prob[12:14, 12:14] = 0.9  # 4 px
    prob[15:19, 2:6] = 0.45  # below threshold
    assert binary_instances(prob, PostprocessConfig(min_area=10)).max() == 1
    assert binary_instances(prob, PostprocessConfig(min_area=0)).max() == 2
    assert binary_instances(prob, PostprocessConfig(min_area=0, threshold=0.4)).max() == 3
    # diagonal neighbours: one object with 8-connectivity, two with 4
    diag = np.zeros((6, 6), np.float32)
    diag[1:3, 1:3] = diag[3:5, 3:5] = 1.0
    assert binary_instances(diag, PostprocessConfig(min_area=0, connectivity=4)).max() == 2
    assert binary_instances(diag, PostprocessConfig(min_area=0, connectivity=8)).max() == 1


def test_postprocess_errors_and_params() -> None:
    with pytest.raises(ValueError, match=r"needs maps of shape \(3, H, W\)"):
        postprocess("contour", np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="unknown target"):
        postprocess("watershed", np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="threshold"):
        PostprocessConfig(threshold=1.5)
    assert PostprocessConfig().params("binary")["method"] == "connected-components"
    assert "h" in PostprocessConfig(markers="h-maxima").params("distance")
    assert "marker_threshold" in PostprocessConfig().params("contour")


def _literal_boundary_distance(inst: np.ndarray) -> np.ndarray:
    """Distance from each nucleus pixel to the nearest pixel outside its nucleus, where the
    image is surrounded by background; brute force over all pixels, then per-nucleus max = 1."""
    h, w = inst.shape
    pad = np.pad(inst, 1, constant_values=0)
    rr, cc = np.mgrid[0:h + 2, 0:w + 2]
    out = np.zeros(inst.shape)
    for i in range(h):
        for j in range(w):
            k = inst[i, j]
            if k:
                other = pad != k
                out[i, j] = np.sqrt(((rr[other] - (i + 1)) ** 2 + (cc[other] - (j + 1)) ** 2).min())
    for k in np.unique(inst[inst > 0]):
        out[inst == k] /= out[inst == k].max()
    return out


def test_boundary_distance_matches_brute_force() -> None:
    from tests.conftest import random_disks

    inst = random_disks((24, 28), n=6, seed=3, rmin=3, rmax=7)
    inst[0:5, 0:6] = 99  # a nucleus cut by the image border
    np.testing.assert_allclose(boundary_distance(inst), _literal_boundary_distance(inst), atol=1e-6)


def test_contour_classes() -> None:
    inst = touching_pair()
    cls = contour_classes(inst)
    assert set(np.unique(cls)) == {0, 1, 2}
    assert (cls[inst == 0] == 0).all()
    assert cls[24, 26] == 2 and cls[24, 27] == 2  # the shared boundary is boundary on both sides
    assert cls[24, 20] == 1


@pytest.mark.parametrize("name", ["binary", "contour", "distance"])
def test_target_loss_prefers_the_truth(name: str) -> None:
    t = get_target(name)
    inst = touching_pair((32, 64))
    enc = torch.from_numpy(t.encode(inst))[None]
    if name == "contour":
        good = torch.nn.functional.one_hot(enc[:, 0].long(), 3).permute(0, 3, 1, 2).float() * 8 - 4
    else:
        good = torch.logit(enc.clamp(0.02, 0.98))
    bad = -good
    assert good.shape[1] == t.channels
    assert float(t.loss(good, enc)) < float(t.loss(bad, enc))
    maps = t.maps(good)[0].numpy()
    pred = postprocess(name, maps, PostprocessConfig(min_area=0))
    assert instance_metrics(pred, inst)["tp"] >= 2
    with pytest.raises(ValueError, match="output channels"):
        t.loss(torch.zeros(1, t.channels + 1, 32, 64), enc)
