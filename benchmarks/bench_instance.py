"""Benchmark: gbench DQ/SQ/PQ/AJI/AJI+ against a per-nucleus-pair reference.

The reference follows the style of HoVer-Net's ``stats_utils`` (one full-image mask per
nucleus, a loop over true nuclei, pairwise masks for the predicted nuclei they overlap, then
threshold / argmax / linear_sum_assignment on the pairwise IoU matrix), written here without
epsilon terms so that its values must equal ours. Run by hand:

    .venv/bin/python benchmarks/bench_instance.py [--repeats 15] [--ref-repeats 3]

Prints the median times (single-threaded), the speed-up and whether the values agree.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from skimage.draw import disk  # noqa: E402
from skimage.segmentation import expand_labels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gbench.metrics.instance import instance_metrics  # noqa: E402

SHARED_DATA = ROOT / ".." / "shared" / "data"
KEYS = ("dq", "sq", "pq", "aji", "aji_plus")


def reference(true: np.ndarray, pred: np.ndarray, thr: float = 0.5) -> dict[str, float]:
    """Per-nucleus-pair reference (HoVer-Net stats_utils style, exact)."""
    t_ids = [int(i) for i in np.unique(true) if i != 0]
    p_ids = [int(j) for j in np.unique(pred) if j != 0]
    t_masks = [true == i for i in t_ids]
    p_masks = [pred == j for j in p_ids]
    p_index = {j: b for b, j in enumerate(p_ids)}
    nt, npr = len(t_ids), len(p_ids)
    inter = np.zeros((nt, npr), dtype=np.int64)
    union = np.zeros((nt, npr), dtype=np.int64)
    for a, t_mask in enumerate(t_masks):
        for j in np.unique(pred[t_mask]):
            if j == 0:
                continue
            b = p_index[int(j)]
            inter[a, b] = np.count_nonzero(t_mask & p_masks[b])
            union[a, b] = np.count_nonzero(t_mask | p_masks[b])
    iou = np.divide(inter, union, out=np.zeros((nt, npr)), where=union > 0)
    t_area = np.array([m.sum() for m in t_masks], dtype=np.int64)
    p_area = np.array([m.sum() for m in p_masks], dtype=np.int64)

    # PQ: unique matching at IoU > 0.5.
    ta, pb = np.nonzero(iou > thr)
    tp = len(ta)
    fp, fn = npr - tp, nt - tp
    dq = tp / (tp + fp / 2 + fn / 2) if tp + fp + fn else 1.0
    sq = float(iou[ta, pb].sum()) / tp if tp else (0.0 if fp + fn else 1.0)

    # AJI: argmax per true nucleus (first = smallest id on ties).
    best = np.argmax(iou, axis=1) if npr else np.zeros(nt, dtype=np.intp)
    c = u = 0
    used = np.zeros(npr, dtype=bool)
    for a in range(nt):
        b = best[a]
        if npr and iou[a, b] > 0:
            c += int(inter[a, b])
            u += int(union[a, b])
            used[b] = True
        else:
            u += int(t_area[a])
    u += int(p_area[~used].sum())
    aji = c / u if u else 1.0

    # AJI+: assignment on the full IoU matrix, pairs with positive IoU.
    rows, cols = linear_sum_assignment(iou, maximize=True)
    keep = iou[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    c = int(inter[rows, cols].sum())
    u = int(union[rows, cols].sum())
    u += int(t_area.sum() - t_area[rows].sum()) + int(p_area.sum() - p_area[cols].sum())
    ajip = c / u if u else 1.0
    return {"dq": dq, "sq": sq, "pq": dq * sq, "aji": aji, "aji_plus": ajip}


def synthetic(rng: np.random.Generator, shape=(1000, 1000), n: int = 500) -> np.ndarray:
    m = np.zeros(shape, dtype=np.int32)
    for k in range(1, n + 1):
        center = (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]))
        rr, cc = disk(center, rng.uniform(6, 14), shape=shape)
        m[rr, cc] = k
    return m


def perturb(true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift, grow, merge 10%, drop 5%, add 20 false positives, non-contiguous ids."""
    pred = expand_labels(np.roll(true, (2, -1), axis=(0, 1)), 1)
    ids = np.unique(pred)[1:]
    lut = np.arange(int(pred.max()) + 1, dtype=np.int64)
    lut[rng.choice(ids, size=len(ids) // 20, replace=False)] = 0
    merged = rng.choice(ids, size=len(ids) // 10, replace=False)
    lut[merged] = np.maximum(merged - 1, 1)
    pred = lut[pred]
    fp = synthetic(rng, true.shape, 20)
    pred = np.where(fp > 0, fp + int(pred.max()), pred)
    return pred * 7 + 3 * (pred > 0)


def cpm15_mosaic() -> np.ndarray | None:
    """1000x1000 mosaic of a real CPM-15 test label map (2x2 tiles, ids kept distinct)."""
    f = SHARED_DATA / "cpm15" / "test" / "Labels" / "image_02.mat"
    if not f.exists():
        return None
    from scipy.io import loadmat

    lab = np.asarray(loadmat(f)["inst_map"]).astype(np.int32)
    off = int(lab.max())
    top = np.hstack([lab, np.where(lab > 0, lab + off, 0)])
    bottom = np.hstack([np.where(lab > 0, lab + 2 * off, 0), np.where(lab > 0, lab + 3 * off, 0)])
    return np.vstack([top, bottom])[:1000, :1000]


def timings(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median, min) wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--ref-repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    cases = []
    syn = synthetic(rng)
    cases.append(("synthetic disks, perturbed", syn, perturb(syn, rng)))
    cases.append(("synthetic disks, independent", syn, synthetic(rng)))
    real = cpm15_mosaic()
    if real is None:
        print(f"(CPM-15 labels not found under {SHARED_DATA}: real-data case skipped)")
    else:
        cases.append(("CPM-15 mosaic, perturbed", real, perturb(real, rng)))
        cases.append(("CPM-15 mosaic, identical", real, real.copy()))

    print("single-threaded; times are medians (min in brackets); ours = instance_metrics,")
    print(
        f"all five scores from one call; {args.repeats} runs of ours, "
        f"{args.ref_repeats} of the reference"
    )
    header = (
        f"{'case':30s} {'shape':>9s} {'n_t':>4s} {'n_p':>4s} {'ours ms':>15s} {'ref ms':>9s} "
        f"{'ratio':>6s}  values"
    )
    print(header)
    print("-" * len(header))
    for name, true, pred in cases:
        ours = instance_metrics(pred, true)
        ref = reference(true, pred)
        diff = max(abs(ours[k] - ref[k]) for k in KEYS)
        same = "identical" if all(ours[k] == ref[k] for k in KEYS) else f"max |diff| {diff:.1e}"
        t_ours, t_ours_min = timings(lambda: instance_metrics(pred, true), args.repeats)
        t_ref, _ = timings(lambda: reference(true, pred), args.ref_repeats)
        shape = f"{true.shape[0]}x{true.shape[1]}"
        ours_ms = f"{1e3 * t_ours:.1f} ({1e3 * t_ours_min:.1f})"
        print(
            f"{name:30s} {shape:>9s} {ours['n_true']:4d} {ours['n_pred']:4d} {ours_ms:>15s} "
            f"{1e3 * t_ref:9.1f} {t_ref / t_ours:5.0f}x  {same}"
        )
        print("    " + "  ".join(f"{k}={ours[k]:.6f}" for k in KEYS))


if __name__ == "__main__":
    main()
