"""Nuclei instance-segmentation metrics: DQ / SQ / PQ, AJI and AJI+.

All metrics compare a predicted instance map ``pred`` with a ground-truth instance map
``true``, in that order: ``fn(pred, true)``, the order of every gbench metric function (see
:mod:`gbench.core.metric_specs`). Both are 2-D integer maps, 0 = background, every other value
one nucleus. Ids may be any non-negative integers, need not be contiguous and may come in any
integer (or bool) dtype; they are relabelled internally to ``1..n`` in increasing order of the
original id.

Everything is derived from one true x pred overlap table built from a single pass over the
pixels: the paired maps are run-length encoded (row-major), the run values relabelled with
:func:`gbench.data.labels.relabel_sequential`, and the runs counted with ``np.bincount`` (or
``np.unique`` of the paired codes when the dense table would be too large). The cost is
O(pixels) plus a small matching step; there is no Python loop over pairs of nuclei (the
one-to-one assignments loop only over connected components of the overlap graph that have
at least two nuclei on both sides).

Conventions (also in :data:`CONVENTIONS`, to be stored with every result):

* **Matching for DQ/SQ/PQ** (Kirillov et al. 2019): a true and a predicted nucleus match when
  their IoU is *strictly* greater than ``iou_threshold`` (default 0.5). For thresholds
  >= 0.5 a match is unique. For thresholds < 0.5 it is not, and we use the one-to-one
  assignment that maximises the summed IoU over the pairs with IoU > threshold
  (``scipy.optimize.linear_sum_assignment``, solved per connected component of the overlap
  graph). DQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU of matched pairs (0 when nothing
  matches), PQ = DQ * SQ.
* **No epsilon**: scores are exact ratios; a perfect prediction gives exactly 1.0 (HoVer-Net
  divides by TP + 1e-6 and reports 0.999999).
* **AJI** (Kumar et al. 2017, MoNuSeg evaluation code): every true nucleus takes the
  overlapping predicted nucleus of highest IoU; an exact tie goes to the smallest original
  predicted id. Its intersection is added to C and its union to U; a true nucleus with no
  overlapping prediction adds its area to U; predicted nuclei chosen by no true nucleus add
  their area to U. A predicted nucleus may be chosen by several true nuclei, and then its
  pixels enter U several times, exactly as in the reference code.
* **AJI+** (Graham et al. 2019, HoVer-Net ``get_fast_aji_plus`` without epsilon): one-to-one
  assignment maximising the summed IoU over pairs with positive overlap; matched pairs add
  intersection to C and union to U, unmatched true and predicted nuclei add their area to U.
* **Ties in the assignments** (AJI+, and PQ with a threshold < 0.5): when several one-to-one
  assignments reach the same maximal summed IoU, the result is deterministic but which one
  is taken is not specified (a component with a single nucleus on one side takes its
  highest-IoU partner, smallest id on ties; larger components take the solution returned by
  ``linear_sum_assignment`` with rows and columns in increasing id order).
* **Empty maps**: both maps without nuclei -> DQ = SQ = PQ = AJI = AJI+ = 1 (perfect
  agreement, nothing to find). Exactly one map empty -> all scores 0 (TP = 0 with FP or
  FN > 0, SQ = 0 because nothing matches, AJI = 0 / U = 0).
* **Aggregation** over a data set: ``"mean"`` averages the per-image scores (empty-empty
  images count as 1); ``"pooled"`` sums TP, FP, FN, the IoU sum and the AJI / AJI+
  intersections and unions over all images and computes every score once from the sums.

References:
    Kirillov, He, Girshick, Rother, Dollar. Panoptic Segmentation. CVPR 2019.
    Kumar et al. A Dataset and a Technique for Generalized Nuclear Segmentation for
    Computational Pathology. IEEE TMI 36(7), 2017.
    Graham et al. HoVer-Net: Simultaneous Segmentation and Classification of Nuclei in
    Multi-Tissue Histology Images. Medical Image Analysis 58, 2019.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gbench.data.labels import relabel_sequential

__all__ = [
    "CONVENTIONS",
    "aggregate",
    "aji",
    "aji_plus",
    "dq_sq_pq",
    "instance_metrics",
]

CONVENTIONS: dict[str, str] = {
    "match_rule": (
        "DQ/SQ/PQ: a true and a predicted nucleus match when IoU > iou_threshold (strict); "
        "unique for thresholds >= 0.5; for thresholds < 0.5 the one-to-one assignment "
        "maximising the summed IoU over pairs with IoU > threshold (linear_sum_assignment)"
    ),
    "pq_formula": (
        "DQ = TP / (TP + FP/2 + FN/2); SQ = mean IoU of matched pairs, 0 when nothing "
        "matches; PQ = DQ * SQ (Kirillov et al. 2019)"
    ),
    "no_epsilon": "exact ratios, no epsilon terms: a perfect prediction scores exactly 1.0",
    "aji": (
        "Kumar et al. 2017 / MoNuSeg code: each true nucleus takes the overlapping predicted "
        "nucleus of highest IoU (a predicted nucleus may be taken by several true nuclei and "
        "then enters the union several times); unmatched true and unused predicted nuclei "
        "add their area to the union"
    ),
    "aji_tie_rule": "AJI: an exact IoU tie goes to the smallest original predicted id",
    "aji_plus": (
        "one-to-one assignment maximising the summed IoU over pairs with positive overlap "
        "(HoVer-Net get_fast_aji_plus without epsilon); unmatched true and predicted nuclei "
        "add their area to the union"
    ),
    "assignment_ties": (
        "AJI+ and PQ with threshold < 0.5: among assignments with equal maximal summed IoU "
        "the choice is deterministic but unspecified"
    ),
    "empty_maps": (
        "both maps without nuclei: DQ = SQ = PQ = AJI = AJI+ = 1; exactly one map empty: "
        "all scores 0"
    ),
    "aggregation": (
        "mean: mean of per-image scores; pooled: TP, FP, FN, IoU sum and AJI/AJI+ "
        "intersections and unions summed over images, scores computed once from the sums"
    ),
    "ids": (
        "any non-negative integer ids (any integer or bool dtype), relabelled internally in "
        "increasing id order; 0 is background"
    ),
}

_SCORE_KEYS = ("dq", "sq", "pq", "aji", "aji_plus")
_SUM_KEYS = ("tp", "fp", "fn", "iou_sum", "aji_inter", "aji_union", "ajip_inter", "ajip_union")

# The dense overlap table has (n_true + 1) * (n_pred + 1) cells; above this many cells per
# run of the paired maps (plus a constant) the sparse path (np.unique of the paired run
# codes, O(runs log runs) time and O(runs) memory) is used instead.
_DENSE_CELLS_PER_RUN = 16
_DENSE_CELLS_MIN = 1 << 20


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------
def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D instance map, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "biu":
        raise ValueError(f"{name} must have an integer or bool dtype, got {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
        raise ValueError(f"{name} contains negative ids (min {int(arr.min())}); ids must be >= 0")
    return arr


def _check_pair(true: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _to_numpy(true, "true")
    p = _to_numpy(pred, "pred")
    if t.shape != p.shape:
        raise ValueError(f"true and pred must have the same shape, got {t.shape} and {p.shape}")
    return t, p


def _check_threshold(iou_threshold: float) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float, np.number)):
        raise ValueError(f"iou_threshold must be a number in [0, 1), got {iou_threshold!r}")
    thr = float(iou_threshold)
    if not 0.0 <= thr < 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold!r}")
    return thr


# --------------------------------------------------------------------------------------------
# Overlap table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Overlap:
    """Sparse true x pred overlap table over pairs with positive intersection.

    ``ti`` and ``pj`` are the relabelled ids (1-based) of the overlapping pairs, sorted by
    ``ti`` then ``pj``; ``inter`` their intersections, ``union`` their unions and ``iou`` their
    IoU; ``area_t`` / ``area_p`` the areas indexed by relabelled id (index 0 = background).
    """

    n_true: int
    n_pred: int
    area_t: np.ndarray
    area_p: np.ndarray
    ti: np.ndarray
    pj: np.ndarray
    inter: np.ndarray
    union: np.ndarray
    iou: np.ndarray


def _runs(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encode the paired maps (row-major): (true id, pred id, length) per run.

    Counting runs instead of pixels is what makes the table fast: ``np.bincount`` over
    millions of pixels is slowed down by long stretches of equal values (background, the
    inside of nuclei), while a 1000 x 1000 map has only some ten thousand runs.
    """
    n = t.size
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(t[1:], t[:-1], out=change[1:])
    change[1:] |= p[1:] != p[:-1]
    starts = np.flatnonzero(change)
    lengths = np.diff(starts, append=n)
    return t[starts], p[starts], lengths


def _overlap(true: np.ndarray, pred: np.ndarray) -> _Overlap:
    t = true.ravel()
    p = pred.ravel()
    if t.size == 0:
        zero = np.zeros(1, dtype=np.int64)
        empty_i = np.zeros(0, dtype=np.intp)
        empty_f = np.zeros(0, dtype=np.float64)
        return _Overlap(0, 0, zero, zero, empty_i, empty_i, empty_i.astype(np.int64),
                        empty_i.astype(np.int64), empty_f)
    run_t, run_p, lengths = _runs(t, p)
    # Relabel the run values: the ids present in a map are exactly those of its runs.
    lt, nt = relabel_sequential(run_t)
    lp, npr = relabel_sequential(run_p)
    width = npr + 1
    codes = lt.astype(np.intp)
    codes *= width
    codes += lp
    if (nt + 1) * width <= _DENSE_CELLS_PER_RUN * lengths.size + _DENSE_CELLS_MIN:
        table = np.bincount(codes, weights=lengths, minlength=(nt + 1) * width)
        table = table.reshape(nt + 1, width)
        area_t = table.sum(axis=1)
        area_p = table.sum(axis=0)
        ti, pj = np.divmod(np.flatnonzero(table[1:, 1:] > 0), max(npr, 1))
        ti += 1
        pj += 1
        inter = table[ti, pj]
    else:
        # Too many nuclei for a dense table: count the distinct paired codes instead.
        area_t = np.bincount(lt, weights=lengths, minlength=nt + 1)
        area_p = np.bincount(lp, weights=lengths, minlength=npr + 1)
        uniq, inv = np.unique(codes, return_inverse=True)
        counts = np.bincount(inv.ravel(), weights=lengths, minlength=uniq.size)
        ti, pj = np.divmod(uniq, width)
        both = (ti > 0) & (pj > 0)
        ti, pj, inter = ti[both], pj[both], counts[both]
    # Pixel counts are sums of integers in float64: exact, convert back to integers.
    ti = ti.astype(np.intp, copy=False)
    pj = pj.astype(np.intp, copy=False)
    inter = inter.astype(np.int64)
    area_t = area_t.astype(np.int64)
    area_p = area_p.astype(np.int64)
    union = area_t[ti] + area_p[pj] - inter
    iou = inter / union
    return _Overlap(nt, npr, area_t, area_p, ti, pj, inter, union, iou)


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------
def _first_per_group(group: np.ndarray, other: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Indices of the highest-``w`` element of every ``group`` (ties: smallest ``other``)."""
    order = np.lexsort((other, -w, group))
    g = group[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


def _max_weight_matching(
    ti: np.ndarray, pj: np.ndarray, w: np.ndarray, n_true: int, n_pred: int
) -> np.ndarray:
    """One-to-one matching maximising the summed weight over the given candidate edges.

    Args:
        ti: 1-based true ids of the candidate edges.
        pj: 1-based predicted ids of the candidate edges (no duplicate (ti, pj) pairs).
        w: positive edge weights.
        n_true: number of true nuclei.
        n_pred: number of predicted nuclei.

    Returns:
        Boolean mask over the edges: True for matched edges.
    """
    m = ti.size
    matched = np.zeros(m, dtype=bool)
    if m == 0:
        return matched
    deg_t = np.bincount(ti, minlength=n_true + 1)
    deg_p = np.bincount(pj, minlength=n_pred + 1)
    leaf_t = deg_t[ti] == 1  # the edge's true nucleus has no other candidate
    leaf_p = deg_p[pj] == 1
    # Components made of a single edge.
    matched[leaf_t & leaf_p] = True
    # Stars centred on a true nucleus (all its partners are leaves): take the best edge.
    bad_t = np.bincount(ti[~leaf_p], minlength=n_true + 1) > 0
    star_t = np.flatnonzero(~leaf_t & ~bad_t[ti])
    if star_t.size:
        matched[star_t[_first_per_group(ti[star_t], pj[star_t], w[star_t])]] = True
    # Stars centred on a predicted nucleus.
    bad_p = np.bincount(pj[~leaf_t], minlength=n_pred + 1) > 0
    star_p = np.flatnonzero(~leaf_p & ~bad_p[pj])
    if star_p.size:
        matched[star_p[_first_per_group(pj[star_p], ti[star_p], w[star_p])]] = True
    # Remaining components have >= 2 nuclei on both sides: assignment per component.
    rest = np.flatnonzero(bad_t[ti] & bad_p[pj])
    if rest.size == 0:
        return matched
    rt = ti[rest] - 1
    rp = pj[rest] - 1 + n_true
    n_nodes = n_true + n_pred
    graph = coo_matrix((np.ones(rest.size, dtype=np.int8), (rt, rp)), shape=(n_nodes, n_nodes))
    n_comp, comp_of_node = connected_components(graph, directed=False)
    # Nodes of each side sorted by (component, id): a component's rows (columns) are a
    # contiguous slice of it, and a node's local index is its offset in that slice.
    local = np.zeros(n_nodes, dtype=np.intp)
    sorted_nodes, offsets, sizes = [], [], []
    for nodes in (np.unique(rt), np.unique(rp)):
        comp_n = comp_of_node[nodes]
        order = np.argsort(comp_n, kind="stable")  # nodes are already sorted by id
        nodes, comp_n = nodes[order], comp_n[order]
        size = np.bincount(comp_n, minlength=n_comp)
        offset = np.cumsum(size) - size
        local[nodes] = np.arange(nodes.size) - offset[comp_n]
        sorted_nodes.append(nodes)
        offsets.append(offset.tolist())
        sizes.append(size.tolist())
    comp = comp_of_node[rt]
    order = np.argsort(comp, kind="stable")
    edges, comp = rest[order], comp[order]
    li = local[rt[order]]
    lj = local[rp[order]]
    we = w[edges]
    bounds = np.flatnonzero(np.diff(comp)) + 1
    starts = [0, *bounds.tolist()]
    stops = [*bounds.tolist(), edges.size]
    comps = comp[starts].tolist()
    off_r, off_c = offsets
    size_r, size_c = sizes
    out_r, out_c = [], []
    for a, b, c in zip(starts, stops, comps):
        weights = np.zeros((size_r[c], size_c[c]))
        weights[li[a:b], lj[a:b]] = we[a:b]
        r, k = linear_sum_assignment(weights, maximize=True)
        out_r.append(r + off_r[c])
        out_c.append(k + off_c[c])
    # Back to edges; assigned pairs that are not candidate edges (weight 0) are dropped.
    width = n_true + n_pred + 1
    got = np.sort(
        sorted_nodes[0][np.concatenate(out_r)] * width + sorted_nodes[1][np.concatenate(out_c)]
    )
    codes = rt * width + rp
    pos = np.searchsorted(got, codes)
    pos[pos == got.size] = 0
    matched[rest[got[pos] == codes]] = True
    return matched


# --------------------------------------------------------------------------------------------
# Sufficient statistics and scores
# --------------------------------------------------------------------------------------------
def _pq_stats(ov: _Overlap, thr: float) -> tuple[int, int, int, float]:
    cand = ov.iou > thr
    if thr >= 0.5:
        matched_iou = ov.iou[cand]
    else:
        idx = np.flatnonzero(cand)
        sel = _max_weight_matching(ov.ti[idx], ov.pj[idx], ov.iou[idx], ov.n_true, ov.n_pred)
        matched_iou = ov.iou[idx[sel]]
    tp = int(matched_iou.size)
    return tp, ov.n_pred - tp, ov.n_true - tp, float(matched_iou.sum())


def _aji_stats(ov: _Overlap) -> tuple[int, int]:
    if ov.ti.size == 0:
        return 0, int(ov.area_t[1:].sum() + ov.area_p[1:].sum())
    # Exact IoU ties compare equal as floats (equal ratios round identically), and distinct
    # ratios of pixel counts differ by far more than a rounding error on any realistic map,
    # so float IoUs rank exactly; ties then go to the smallest (original) predicted id.
    best = _first_per_group(ov.ti, ov.pj, ov.iou)
    used = np.zeros(ov.n_pred + 1, dtype=bool)
    used[ov.pj[best]] = True
    has_match = np.zeros(ov.n_true + 1, dtype=bool)
    has_match[ov.ti[best]] = True
    inter = int(ov.inter[best].sum())
    union = int(ov.union[best].sum())
    union += int(ov.area_t[1:][~has_match[1:]].sum()) + int(ov.area_p[1:][~used[1:]].sum())
    return inter, union


def _ajip_stats(ov: _Overlap) -> tuple[int, int]:
    sel = _max_weight_matching(ov.ti, ov.pj, ov.iou, ov.n_true, ov.n_pred)
    inter = int(ov.inter[sel].sum())
    union = int(ov.union[sel].sum())
    unmatched_t = int(ov.area_t[1:].sum() - ov.area_t[ov.ti[sel]].sum())
    unmatched_p = int(ov.area_p[1:].sum() - ov.area_p[ov.pj[sel]].sum())
    return inter, union + unmatched_t + unmatched_p


def _pq_scores(tp: float, fp: float, fn: float, iou_sum: float) -> tuple[float, float, float]:
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    dq = float(tp) / (tp + fp / 2 + fn / 2)
    sq = float(iou_sum) / tp if tp > 0 else 0.0
    return dq, sq, dq * sq


def _ratio(inter: float, union: float) -> float:
    return 1.0 if union == 0 else float(inter) / float(union)


def _scores_from_stats(s: Mapping[str, Any]) -> dict[str, float]:
    dq, sq, pq = _pq_scores(s["tp"], s["fp"], s["fn"], s["iou_sum"])
    return {
        "dq": dq,
        "sq": sq,
        "pq": pq,
        "aji": _ratio(s["aji_inter"], s["aji_union"]),
        "aji_plus": _ratio(s["ajip_inter"], s["ajip_union"]),
    }


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------
def instance_metrics(pred: Any, true: Any, iou_threshold: float = 0.5) -> dict[str, Any]:
    """DQ, SQ, PQ, AJI and AJI+ from one overlap table, with their sufficient statistics.

    Args:
        pred: (H, W) predicted instance map (numpy array or torch tensor, any integer or
            bool dtype, non-negative ids, 0 = background).
        true: (H, W) ground-truth instance map, same requirements and shape.
        iou_threshold: IoU above which (strictly) a pair matches for DQ/SQ/PQ, in [0, 1).

    Returns:
        Dict with the scores ``dq``, ``sq``, ``pq``, ``aji``, ``aji_plus`` (floats), the
        statistics ``tp``, ``fp``, ``fn`` (ints), ``iou_sum`` (float, summed IoU of the
        matched pairs), ``aji_inter``, ``aji_union``, ``ajip_inter``, ``ajip_union`` (ints, AJI
        and AJI+ intersection and union sums), ``n_true``, ``n_pred`` (ints) and
        ``iou_threshold``. See :data:`CONVENTIONS`.

    Raises:
        ValueError: on maps that are not 2-D, differ in shape, have a non-integer dtype or
            negative ids, or on a threshold outside [0, 1).

    References:
        Kirillov et al., Panoptic Segmentation, CVPR 2019; Kumar et al., IEEE TMI 36(7), 2017;
        Graham et al., HoVer-Net, Medical Image Analysis 58, 2019.
    """
    thr = _check_threshold(iou_threshold)
    t, p = _check_pair(true, pred)
    ov = _overlap(t, p)
    tp, fp, fn, iou_sum = _pq_stats(ov, thr)
    aji_inter, aji_union = _aji_stats(ov)
    ajip_inter, ajip_union = _ajip_stats(ov)
    stats: dict[str, Any] = {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "iou_sum": iou_sum,
        "aji_inter": aji_inter,
        "aji_union": aji_union,
        "ajip_inter": ajip_inter,
        "ajip_union": ajip_union,
        "n_true": ov.n_true,
        "n_pred": ov.n_pred,
        "iou_threshold": thr,
    }
    return {**_scores_from_stats(stats), **stats}


def dq_sq_pq(pred: Any, true: Any, iou_threshold: float = 0.5) -> tuple[float, float, float]:
    """Detection, segmentation and panoptic quality of one image (Kirillov et al. 2019).

    A true and a predicted nucleus match when their IoU is strictly greater than
    ``iou_threshold``. For thresholds >= 0.5 the match is unique; for thresholds < 0.5 the
    one-to-one assignment maximising the summed IoU over the pairs above the threshold is
    used (``scipy.optimize.linear_sum_assignment``). DQ = TP / (TP + FP/2 + FN/2),
    SQ = mean IoU of the matched pairs (0 when nothing matches), PQ = DQ * SQ, without
    epsilon terms. Both maps empty gives (1, 1, 1); one empty gives (0, 0, 0).

    Args:
        pred: (H, W) predicted instance map (integer or bool, non-negative ids).
        true: (H, W) ground-truth instance map.
        iou_threshold: matching threshold in [0, 1).

    Returns:
        (dq, sq, pq) as floats.

    Raises:
        ValueError: on invalid maps or threshold (see :func:`instance_metrics`).

    References:
        Kirillov, He, Girshick, Rother, Dollar. Panoptic Segmentation. CVPR 2019.
    """
    thr = _check_threshold(iou_threshold)
    t, p = _check_pair(true, pred)
    return _pq_scores(*_pq_stats(_overlap(t, p), thr))


def aji(pred: Any, true: Any) -> float:
    """Aggregated Jaccard Index of one image (Kumar et al. 2017, MoNuSeg code).

    Each true nucleus takes the overlapping predicted nucleus of highest IoU (exact ties: the
    smallest predicted id), adding their intersection to C and their union to U; a true
    nucleus without overlapping prediction adds its area to U; predicted nuclei taken by no
    true nucleus add their area to U. A predicted nucleus taken by several true nuclei enters
    U once per true nucleus, as in the reference code. AJI = C / U; 1 when both maps are empty.

    Args:
        pred: (H, W) predicted instance map (integer or bool, non-negative ids).
        true: (H, W) ground-truth instance map.

    Returns:
        The AJI as a float.

    Raises:
        ValueError: on invalid maps (see :func:`instance_metrics`).

    References:
        Kumar et al. A Dataset and a Technique for Generalized Nuclear Segmentation for
        Computational Pathology. IEEE TMI 36(7), 2017.
    """
    t, p = _check_pair(true, pred)
    return _ratio(*_aji_stats(_overlap(t, p)))


def aji_plus(pred: Any, true: Any) -> float:
    """AJI+ of one image: AJI with a one-to-one matching (Graham et al. 2019).

    True and predicted nuclei are paired by the one-to-one assignment maximising the summed
    IoU over the pairs with positive overlap, so a merged prediction is counted once.
    Matched pairs add intersection to C and union to U; unmatched nuclei of either map add
    their area to U. AJI+ = C / U, exact (no epsilon); 1 when both maps are empty.

    Args:
        pred: (H, W) predicted instance map (integer or bool, non-negative ids).
        true: (H, W) ground-truth instance map.

    Returns:
        The AJI+ as a float.

    Raises:
        ValueError: on invalid maps (see :func:`instance_metrics`).

    References:
        Graham et al. HoVer-Net. Medical Image Analysis 58, 2019 (``get_fast_aji_plus``).
    """
    t, p = _check_pair(true, pred)
    return _ratio(*_ajip_stats(_overlap(t, p)))


def aggregate(
    stats_list: Sequence[Mapping[str, Any]], mode: Literal["mean", "pooled"] = "mean"
) -> dict[str, Any]:
    """Data-set level DQ, SQ, PQ, AJI and AJI+ from per-image :func:`instance_metrics` results.

    Args:
        stats_list: per-image dicts as returned by :func:`instance_metrics` (only the
            sufficient statistics are read).
        mode: ``"mean"`` averages the per-image scores; ``"pooled"`` sums TP, FP, FN, the IoU
            sum and the AJI / AJI+ intersections and unions over all images and computes the
            scores once from the sums.

    Returns:
        Dict with ``mode``, ``n_images``, the five scores and the summed statistics
        (``tp``, ``fp``, ``fn``, ``iou_sum``, ``aji_inter``, ``aji_union``, ``ajip_inter``,
        ``ajip_union``, ``n_true``, ``n_pred``).

    Raises:
        ValueError: on an unknown mode, an empty list, a missing statistic, or results
            computed with different IoU thresholds.
    """
    if mode not in ("mean", "pooled"):
        raise ValueError(f"mode must be 'mean' or 'pooled', got {mode!r}")
    if len(stats_list) == 0:
        raise ValueError("stats_list is empty: nothing to aggregate")
    for i, s in enumerate(stats_list):
        missing = [k for k in _SUM_KEYS if k not in s]
        if missing:
            raise ValueError(f"stats_list[{i}] lacks the statistics {missing}")
    thresholds = {float(s["iou_threshold"]) for s in stats_list if "iou_threshold" in s}
    if len(thresholds) > 1:
        raise ValueError(f"results computed with different IoU thresholds: {sorted(thresholds)}")
    sums: dict[str, Any] = {}
    for k in (*_SUM_KEYS, "n_true", "n_pred"):
        if k == "iou_sum":
            sums[k] = float(sum(float(s[k]) for s in stats_list))
        elif all(k in s for s in stats_list):
            sums[k] = int(sum(int(s[k]) for s in stats_list))
    if mode == "pooled":
        scores = _scores_from_stats(sums)
    else:
        per_image = [_scores_from_stats(s) for s in stats_list]
        scores = {k: float(np.mean([d[k] for d in per_image])) for k in _SCORE_KEYS}
    out: dict[str, Any] = {"mode": mode, "n_images": len(stats_list), **scores, **sums}
    if thresholds:
        out["iou_threshold"] = thresholds.pop()
    return out
