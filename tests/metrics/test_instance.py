"""Tests of gbench.metrics.instance: DQ/SQ/PQ, AJI, AJI+ and aggregation."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from skimage.draw import disk

from gbench.metrics import instance as inst_mod
from gbench.metrics.instance import (
    CONVENTIONS,
    aggregate,
    aji,
    aji_plus,
    dq_sq_pq,
    instance_metrics,
)

TOL = 1e-12
SCORES = ("dq", "sq", "pq", "aji", "aji_plus")
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def close(a: float, b: float | Fraction) -> bool:
    return abs(float(a) - float(b)) <= TOL


def assert_scores(res: dict, **expected: Fraction | float) -> None:
    for key, value in expected.items():
        got = res[key]
        assert close(got, value), f"{key}: got {got!r}, expected {value} = {float(value)!r}"


# --------------------------------------------------------------------------------------------
# Literal reference implementation: per-nucleus-pair loops following the papers' definitions.
# --------------------------------------------------------------------------------------------
def reference_metrics(true: np.ndarray, pred: np.ndarray, thr: float = 0.5) -> dict[str, float]:
    true = np.asarray(true)
    pred = np.asarray(pred)
    t_ids = [int(i) for i in np.unique(true) if i != 0]
    p_ids = [int(j) for j in np.unique(pred) if j != 0]
    t_masks = [true == i for i in t_ids]
    p_masks = [pred == j for j in p_ids]
    t_area = [int(m.sum()) for m in t_masks]
    p_area = [int(m.sum()) for m in p_masks]
    nt, npr = len(t_ids), len(p_ids)
    inter = np.zeros((nt, npr), dtype=np.int64)
    union = np.zeros((nt, npr), dtype=np.int64)
    iou = np.zeros((nt, npr))
    for a in range(nt):
        for b in range(npr):
            inter[a, b] = int(np.logical_and(t_masks[a], p_masks[b]).sum())
            union[a, b] = int(np.logical_or(t_masks[a], p_masks[b]).sum())
            iou[a, b] = inter[a, b] / union[a, b]

    # PQ (Kirillov et al.): IoU > thr; optimal one-to-one assignment below 0.5.
    if thr >= 0.5:
        pairs = [(a, b) for a in range(nt) for b in range(npr) if iou[a, b] > thr]
    else:
        w = np.where(iou > thr, iou, 0.0)
        rows, cols = linear_sum_assignment(w, maximize=True) if w.size else ([], [])
        pairs = [(a, b) for a, b in zip(rows, cols) if iou[a, b] > thr]
    tp = len(pairs)
    fp, fn = npr - tp, nt - tp
    if tp + fp + fn == 0:
        dq = sq = pq = 1.0
    else:
        dq = tp / (tp + fp / 2 + fn / 2)
        iou_sum = 0.0
        for a, b in pairs:
            iou_sum += iou[a, b]
        sq = iou_sum / tp if tp else 0.0
        pq = dq * sq

    # AJI (Kumar et al., MoNuSeg code): best IoU per true nucleus, first (smallest id) on ties.
    c_sum, u_sum = 0, 0
    used = set()
    for a in range(nt):
        best, best_b = 0.0, None
        for b in range(npr):
            if inter[a, b] > 0 and iou[a, b] > best:
                best, best_b = iou[a, b], b
        if best_b is None:
            u_sum += t_area[a]
        else:
            c_sum += int(inter[a, best_b])
            u_sum += int(union[a, best_b])
            used.add(best_b)
    for b in range(npr):
        if b not in used:
            u_sum += p_area[b]
    aji_v = 1.0 if u_sum == 0 else c_sum / u_sum

    # AJI+ (HoVer-Net get_fast_aji_plus, no epsilon): assignment on the full IoU matrix.
    c_sum, u_sum = 0, 0
    matched_t, matched_p = set(), set()
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        for a, b in zip(rows, cols):
            if iou[a, b] > 0:
                c_sum += int(inter[a, b])
                u_sum += int(union[a, b])
                matched_t.add(a)
                matched_p.add(b)
    u_sum += sum(t_area[a] for a in range(nt) if a not in matched_t)
    u_sum += sum(p_area[b] for b in range(npr) if b not in matched_p)
    ajip_v = 1.0 if u_sum == 0 else c_sum / u_sum
    return {
        "dq": dq, "sq": sq, "pq": pq, "aji": aji_v, "aji_plus": ajip_v, "tp": tp, "fp": fp, "fn": fn
    }


def random_map(rng: np.random.Generator, shape=(64, 64), n_max: int = 18) -> np.ndarray:
    m = np.zeros(shape, dtype=np.int32)
    for k in range(1, int(rng.integers(1, n_max + 1)) + 1):
        center = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        rr, cc = disk(center, rng.uniform(1.0, 9.0), shape=shape)
        m[rr, cc] = k  # overlapping disks: later ones cover earlier ones
    return m


def perturb(true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted, with merges, drops, false positives and new ids."""
    pred = np.roll(true, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    ids = np.unique(pred)
    ids = ids[ids > 0]
    lut = np.arange(int(true.max()) + 1, dtype=np.int64)
    for i in ids:
        u = rng.random()
        if u < 0.15:
            lut[i] = 0  # missed
        elif u < 0.35 and len(ids) > 1:
            lut[i] = int(rng.choice(ids))  # merged into another nucleus
    pred = lut[pred]
    extra = random_map(rng, true.shape, n_max=4)
    pred = np.where((extra > 0) & (rng.random() < 0.5), extra + int(true.max()) + 1, pred)
    # Arbitrary, non-contiguous, shuffled ids.
    ids = np.unique(pred)
    new = rng.choice(10**6, size=ids.size, replace=False) + 1
    lut = np.zeros(int(pred.max()) + 1, dtype=np.int64)
    lut[ids] = new
    lut[0] = 0
    return lut[pred]


def assert_matches_reference(true: np.ndarray, pred: np.ndarray, thr: float = 0.5) -> None:
    got = instance_metrics(pred, true, iou_threshold=thr)
    ref = reference_metrics(true, pred, thr)
    for key in SCORES:
        assert abs(got[key] - ref[key]) <= TOL, (key, thr, got[key], ref[key])
    assert (got["tp"], got["fp"], got["fn"]) == (ref["tp"], ref["fp"], ref["fn"])


# --------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------
def merge_case() -> tuple[np.ndarray, np.ndarray]:
    """Two touching nuclei (areas 6 and 2) merged into one prediction (area 8)."""
    true = np.array([[1, 1, 1, 2, 0], [1, 1, 1, 2, 0], [0, 0, 0, 0, 0]])
    pred = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [0, 0, 0, 0, 0]])
    return true, pred


def test_merge_of_touching_nuclei() -> None:
    true, pred = merge_case()
    res = instance_metrics(pred, true)
    # IoU(A, P) = 6/8 > 0.5 matches; B (IoU 2/8) is a false negative.
    assert (res["tp"], res["fp"], res["fn"]) == (1, 0, 1)
    assert_scores(res, dq=Fraction(2, 3), sq=Fraction(3, 4), pq=Fraction(1, 2))
    # AJI: both A and B take P, so P enters U twice: C = 6 + 2, U = 8 + 8.
    assert (res["aji_inter"], res["aji_union"]) == (8, 16)
    assert_scores(res, aji=Fraction(1, 2))
    # AJI+: P goes to A only; B is unmatched: C = 6, U = 8 + 2.
    assert (res["ajip_inter"], res["ajip_union"]) == (6, 10)
    assert_scores(res, aji_plus=Fraction(3, 5))
    assert res["aji"] != res["aji_plus"]


def test_merge_at_exactly_half_is_not_a_match() -> None:
    # Two nuclei of area 4 merged: IoU = 4/8 = 0.5 exactly, which is not > 0.5.
    true = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    pred = np.ones((2, 4), dtype=np.int64)
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (0, 1, 2)
    assert_scores(res, dq=0, sq=0, pq=0, aji=Fraction(8, 16), aji_plus=Fraction(4, 12))
    # Below 0.5 the match is not unique: one-to-one, so one TP and one FN.
    res = instance_metrics(pred, true, iou_threshold=0.3)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 0, 1)
    assert_scores(res, dq=Fraction(2, 3), sq=Fraction(1, 2), pq=Fraction(1, 3))


def test_split_nucleus() -> None:
    true = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    pred = np.array([[0, 0, 0, 0, 0], [4, 4, 4, 9, 0], [4, 4, 4, 9, 0]])
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 1, 0)
    assert_scores(res, dq=Fraction(2, 3), sq=Fraction(3, 4), pq=Fraction(1, 2))
    # The unused fragment (area 2) enters U: 6 / (8 + 2).
    assert_scores(res, aji=Fraction(3, 5), aji_plus=Fraction(3, 5))


def test_missed_nucleus() -> None:
    true = np.array([[1, 1, 0, 0], [1, 1, 0, 2], [0, 0, 2, 2]])
    pred = np.array([[3, 3, 0, 0], [3, 3, 0, 0], [0, 0, 0, 0]])
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 0, 1)
    assert_scores(res, dq=Fraction(2, 3), sq=1, pq=Fraction(2, 3))
    assert_scores(res, aji=Fraction(4, 7), aji_plus=Fraction(4, 7))


def test_false_positive() -> None:
    true = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    pred = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 5, 5]])
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 1, 0)
    assert_scores(res, dq=Fraction(2, 3), sq=1, pq=Fraction(2, 3))
    assert_scores(res, aji=Fraction(4, 6), aji_plus=Fraction(4, 6))


@pytest.mark.parametrize("shape", [(5, 7), (0, 0), (0, 4)])
def test_both_maps_empty(shape) -> None:
    z = np.zeros(shape, dtype=np.int32)
    res = instance_metrics(z, z)
    assert all(res[k] == 1.0 for k in SCORES)
    assert (res["tp"], res["fp"], res["fn"], res["n_true"], res["n_pred"]) == (0, 0, 0, 0, 0)
    assert dq_sq_pq(z, z) == (1.0, 1.0, 1.0)
    assert aji(z, z) == 1.0 and aji_plus(z, z) == 1.0


def test_one_map_empty() -> None:
    z = np.zeros((4, 4), dtype=np.int32)
    m = z.copy()
    m[1:3, 1:3] = 7
    for true, pred in ((m, z), (z, m)):
        res = instance_metrics(pred, true)
        assert all(res[k] == 0.0 for k in SCORES), res
        assert res["aji_union"] == 4 and res["ajip_union"] == 4
    assert instance_metrics(z, m)["fn"] == 1 and instance_metrics(m, z)["fp"] == 1


def test_non_contiguous_ids_match_contiguous() -> None:
    true, pred = merge_case()
    t2 = np.where(true == 1, 1000003, np.where(true == 2, 7, 0)).astype(np.int64)
    p2 = np.where(pred == 1, 2**40, 0).astype(np.int64)
    a, b = instance_metrics(pred, true), instance_metrics(p2, t2)
    assert a == b
    rng = np.random.default_rng(11)
    t = random_map(rng)
    p = perturb(t, rng)
    lut = rng.choice(2**31 - 1, size=int(t.max()) + 1, replace=False) + 1
    lut[0] = 0
    assert instance_metrics(p, lut[t]) == instance_metrics(p, t)


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.uint64]
)
def test_integer_dtypes(dtype) -> None:
    true, pred = merge_case()
    expected = instance_metrics(pred.astype(np.int64), true.astype(np.int64))
    got = instance_metrics(pred.astype(dtype), true.astype(dtype))
    assert got == expected
    assert_scores(got, pq=Fraction(1, 2), aji_plus=Fraction(3, 5))
    tt = torch.from_numpy(true.astype(np.int64))
    assert instance_metrics(torch.from_numpy(pred.astype(np.int64)), tt) == expected


def test_bool_maps() -> None:
    true = np.zeros((4, 4), dtype=bool)
    true[0:2, 0:4] = True  # area 8
    pred = np.zeros((4, 4), dtype=bool)
    pred[0:2, 1:4] = True  # area 6, inside the true nucleus
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 0, 0)
    assert_scores(res, dq=1, sq=Fraction(6, 8), pq=Fraction(3, 4), aji=Fraction(3, 4))
    assert instance_metrics(torch.from_numpy(pred), torch.from_numpy(true)) == res


def test_no_background_pixel() -> None:
    true = np.array([[1, 1], [2, 2]], dtype=np.uint8)
    res = instance_metrics(true, true)
    assert all(res[k] == 1.0 for k in SCORES)
    pred = np.full((2, 2), 3, dtype=np.uint8)
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (0, 1, 2)
    assert_scores(res, dq=0, sq=0, pq=0, aji=Fraction(4, 8), aji_plus=Fraction(2, 6))


def test_single_pixel_nuclei() -> None:
    true = np.zeros((4, 4), dtype=np.int32)
    pred = np.zeros((4, 4), dtype=np.int32)
    true[0, 0], true[2, 2] = 1, 2
    pred[0, 0], pred[2, 3] = 5, 9
    res = instance_metrics(pred, true)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 1, 1)
    assert_scores(res, dq=Fraction(1, 2), sq=1, pq=Fraction(1, 2))
    assert_scores(res, aji=Fraction(1, 3), aji_plus=Fraction(1, 3))


def test_perfect_match_is_exactly_one() -> None:
    rng = np.random.default_rng(3)
    true = random_map(rng, (128, 128), n_max=40)
    perm = rng.permutation(int(true.max()) + 1) + 100
    perm[0] = 0
    pred = perm[true]
    res = instance_metrics(pred, true)
    for key in SCORES:
        assert res[key] == 1.0, key  # exactly, not 0.999999
    assert dq_sq_pq(pred, true) == (1.0, 1.0, 1.0)
    assert aji(pred, true) == 1.0 and aji_plus(pred, true) == 1.0


def test_aji_tie_goes_to_smallest_original_pred_id() -> None:
    # T (area 6) overlaps a (inside T, area 2: IoU 2/6) and b (3 px inside T, 3 outside:
    # IoU 3/9). Equal IoU 1/3, different intersections and unions.
    true = np.zeros((3, 7), dtype=np.int64)
    true[0, 0:6] = 1
    a_px = (np.array([0, 0]), np.array([0, 1]))
    b_px = (np.array([0, 0, 0, 1, 1, 1]), np.array([2, 3, 4, 2, 3, 4]))

    def pred_with(a_id: int, b_id: int) -> np.ndarray:
        pred = np.zeros_like(true)
        pred[a_px] = a_id
        pred[b_px] = b_id
        return pred

    # a chosen: C = 2, U = 6 + 6 (unused b) -> 1/6; b chosen: C = 3, U = 9 + 2 (unused a) -> 3/11.
    assert close(aji(pred_with(3, 8), true), Fraction(1, 6))
    assert close(aji(pred_with(8, 3), true), Fraction(3, 11))
    # Smallest ORIGINAL id, also with non-contiguous ids and in any dtype.
    assert close(aji(pred_with(1000, 7), true), Fraction(3, 11))
    assert close(aji(pred_with(7, 1000), true), Fraction(1, 6))
    assert close(aji(pred_with(7, 1000).astype(np.uint16), true.astype(np.uint16)), Fraction(1, 6))


def test_non_contiguous_memory_and_transpose() -> None:
    rng = np.random.default_rng(9)
    true = random_map(rng, (48, 80))
    pred = perturb(true, rng)
    res = instance_metrics(pred, true, iou_threshold=0.3)
    # Transposing both maps changes the pixel order (and the runs) but not the metrics.
    assert instance_metrics(pred.T, true.T, iou_threshold=0.3) == res
    tt, tp = torch.from_numpy(true).t(), torch.from_numpy(pred).t()
    assert not tt.is_contiguous()
    assert instance_metrics(tp, tt, iou_threshold=0.3) == res
    assert instance_metrics(pred[::2, ::3], true[::2, ::3]) == instance_metrics(
        np.ascontiguousarray(pred[::2, ::3]), np.ascontiguousarray(true[::2, ::3])
    )


def test_functions_agree_with_instance_metrics() -> None:
    rng = np.random.default_rng(5)
    true = random_map(rng)
    pred = perturb(true, rng)
    for thr in (0.5, 0.2):
        res = instance_metrics(pred, true, iou_threshold=thr)
        assert dq_sq_pq(pred, true, iou_threshold=thr) == (res["dq"], res["sq"], res["pq"])
    assert aji(pred, true) == res["aji"]
    assert aji_plus(pred, true) == res["aji_plus"]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "true, pred, match",
    [
        (np.zeros((3, 3), int), np.zeros((3, 4), int), "same shape"),
        (np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int), "2-D"),
        (np.zeros(9, int), np.zeros(9, int), "2-D"),
        (np.zeros((3, 3), np.float32), np.zeros((3, 3), int), "integer or bool dtype"),
        (np.zeros((3, 3), int), np.zeros((3, 3), np.float64), "integer or bool dtype"),
        (np.array([[0, -1], [1, 1]]), np.zeros((2, 2), int), "negative"),
        (torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.int64), "integer or bool dtype"),
    ],
)
def test_invalid_inputs(true, pred, match) -> None:
    for fn in (instance_metrics, dq_sq_pq, aji, aji_plus):
        with pytest.raises(ValueError, match=match):
            fn(pred, true)


@pytest.mark.parametrize("thr", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_invalid_threshold(thr) -> None:
    z = np.zeros((3, 3), int)
    with pytest.raises(ValueError, match="iou_threshold"):
        instance_metrics(z, z, iou_threshold=thr)


def test_conventions_documented() -> None:
    for key in ("match_rule", "no_epsilon", "aji_tie_rule", "empty_maps", "aggregation"):
        assert isinstance(CONVENTIONS[key], str) and CONVENTIONS[key]
    assert "1e-6" not in CONVENTIONS["no_epsilon"]
    assert inst_mod.__doc__ and "Empty maps" in inst_mod.__doc__


# --------------------------------------------------------------------------------------------
# Against the literal reference on random maps, on every internal path
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(30))
def test_random_maps_match_reference(seed) -> None:
    rng = np.random.default_rng(seed)
    true = random_map(rng)
    pred = perturb(true, rng) if seed % 3 else random_map(rng)
    for thr in (0.5, 0.75, 0.3, 0.0):
        assert_matches_reference(true, pred, thr)


@pytest.mark.parametrize("path", ["relabel_dense", "sparse"])
def test_random_maps_match_reference_other_paths(path, monkeypatch) -> None:
    if path == "sparse":  # forbid every dense table
        monkeypatch.setattr(inst_mod, "_DENSE_CELLS_PER_RUN", 0)
        monkeypatch.setattr(inst_mod, "_DENSE_CELLS_MIN", 0)
    for seed in range(100, 108):
        rng = np.random.default_rng(seed)
        true = random_map(rng)
        pred = perturb(true, rng)
        if path == "relabel_dense":  # huge ids defeat the direct table
            true = np.where(true > 0, true.astype(np.int64) + 2**40, 0)
        for thr in (0.5, 0.2):
            assert_matches_reference(true, pred, thr)


def test_dense_and_sparse_paths_identical(monkeypatch) -> None:
    rng = np.random.default_rng(21)
    true = random_map(rng, (96, 96), n_max=40)
    pred = perturb(true, rng)
    dense = instance_metrics(pred, true, iou_threshold=0.1)
    monkeypatch.setattr(inst_mod, "_DENSE_CELLS_PER_RUN", 0)
    monkeypatch.setattr(inst_mod, "_DENSE_CELLS_MIN", 0)
    assert instance_metrics(pred, true, iou_threshold=0.1) == dense


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------
def two_images() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    # Image 1: split nucleus (TP 1, FP 1, FN 0, IoU sum 3/4; AJI 6/10).
    true1 = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    pred1 = np.array([[0, 0, 0, 0, 0], [4, 4, 4, 9, 0], [4, 4, 4, 9, 0]])
    # Image 2: perfect match of three nuclei of total area 5 (TP 3, IoU sum 3; AJI 5/5).
    true2 = np.array([[1, 0, 2, 2, 0], [0, 0, 0, 0, 0], [3, 3, 0, 0, 0]])
    pred2 = true2 * 10
    return (true1, pred1), (true2, pred2)


# By hand: pooled TP 4, FP 1, FN 0, IoU sum 15/4; AJI C = 11, U = 15.
POOLED = {
    "dq": Fraction(8, 9), "sq": Fraction(15, 16), "pq": Fraction(5, 6), "aji": Fraction(11, 15)
}
MEAN = {"dq": Fraction(5, 6), "sq": Fraction(7, 8), "pq": Fraction(3, 4), "aji": Fraction(4, 5)}


def test_aggregate_pooled_and_mean_by_hand() -> None:
    stats = [instance_metrics(p, t) for t, p in two_images()]
    pooled = aggregate(stats, mode="pooled")
    mean = aggregate(stats, mode="mean")
    assert pooled["mode"] == "pooled" and mean["mode"] == "mean"
    assert pooled["n_images"] == 2
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (4, 1, 0)
    assert_scores(pooled, aji_plus=Fraction(11, 15), **POOLED)
    assert_scores(mean, aji_plus=Fraction(4, 5), **MEAN)
    with pytest.raises(ValueError, match="mode"):
        aggregate(stats, mode="median")
    with pytest.raises(ValueError, match="empty"):
        aggregate([], mode="pooled")


def test_aggregate_empty_images_convention() -> None:
    z = np.zeros((3, 3), int)
    m = z.copy()
    m[0, 0] = 1
    stats = [instance_metrics(z, z), instance_metrics(m, m), instance_metrics(z, m)]
    mean = aggregate(stats, mode="mean")
    pooled = aggregate(stats, mode="pooled")
    assert_scores(mean, dq=Fraction(2, 3), pq=Fraction(2, 3), aji=Fraction(2, 3))
    assert_scores(pooled, dq=Fraction(2, 3), sq=1, aji=Fraction(1, 2))
    assert aggregate([instance_metrics(z, z)], mode="pooled")["pq"] == 1.0


# --------------------------------------------------------------------------------------------
# Real data (CPM-15), skipped when ../shared/data is absent
# --------------------------------------------------------------------------------------------
def cpm15_test_labels() -> list[np.ndarray]:
    files = sorted((SHARED_DATA / "cpm15" / "test" / "Labels").glob("*.mat"))
    if not files:
        pytest.skip(f"CPM-15 labels not found under {SHARED_DATA}")
    from scipy.io import loadmat

    return [np.asarray(loadmat(f)["inst_map"]) for f in files]


@pytest.mark.shared_data
def test_cpm15_perturbed_matches_reference() -> None:
    from skimage.morphology import dilation, erosion
    from skimage.segmentation import expand_labels

    rng = np.random.default_rng(2015)
    for label in cpm15_test_labels():
        # Crops keep the literal per-pair reference affordable.
        y = int(rng.integers(0, label.shape[0] - 128))
        x = int(rng.integers(0, label.shape[1] - 128))
        true = label[y : y + 128, x : x + 128]
        fp = np.ones((3, 3), dtype=bool)
        preds = [
            erosion(true, fp),
            dilation(true, fp),
            expand_labels(true, 2),
            np.roll(true, (3, -2), axis=(0, 1)),
            perturb(true, rng),
        ]
        for pred in preds:
            for thr in (0.5, 0.3):
                assert_matches_reference(true, pred, thr)


@pytest.mark.shared_data
def test_cpm15_full_maps_identity_and_paths(monkeypatch) -> None:
    from skimage.segmentation import expand_labels

    label = cpm15_test_labels()[0]
    res = instance_metrics(label, label)
    assert all(res[k] == 1.0 for k in SCORES)
    assert res["n_true"] == len(np.unique(label)) - 1
    pred = expand_labels(np.roll(label, 2, axis=1), 1)
    dense = instance_metrics(pred, label, iou_threshold=0.3)
    monkeypatch.setattr(inst_mod, "_DENSE_CELLS_PER_RUN", 0)
    monkeypatch.setattr(inst_mod, "_DENSE_CELLS_MIN", 0)
    assert instance_metrics(pred, label, iou_threshold=0.3) == dense
