"""Benchmark: ``gbench.data.labels.relabel_sequential`` vs ``skimage.segmentation.relabel_sequential``.

Relabels instance maps of the sizes gbench handles (synthetic 256x256 maps from
``gbench.data.masks.synthesize_instance_map``, their uint8/uint16/int32 copies, a 1024x1024 tile,
and maps with very large ids) with both functions, checks that the labels are equal, and prints
the median time of each and the ratio skimage / gbench. For skimage the time includes the cast
to gbench's int32 output (what every caller needs). Run by hand:

    .venv/bin/python benchmarks/bench_labels.py [--repeat 50]

No timing assertions: it prints figures only.
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

import numpy as np  # noqa: E402
from skimage.segmentation import relabel_sequential as sk_relabel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gbench.data.labels import relabel_sequential  # noqa: E402
from gbench.data.masks import synthesize_instance_map  # noqa: E402


def _skimage(inst: np.ndarray) -> tuple[np.ndarray, int]:
    lab = sk_relabel(inst)[0].astype(np.int32, copy=False)
    return lab, int(lab.max())


def _median_s(fn, inst: np.ndarray, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(inst)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    m256 = synthesize_instance_map(256, 0, 0).astype(np.int32)
    big = np.concatenate(
        [np.concatenate([synthesize_instance_map(256, 0, 4 * r + c) + 1000 * (4 * r + c)
                         for c in range(4)], axis=1) for r in range(4)], axis=0
    ).astype(np.int32)
    big[big % 1000 == 0] = 0
    sparse = np.where(m256 > 0, m256.astype(np.int64) * 1_000_003, 0)
    noise = rng.integers(0, 5000, size=(256, 256)).astype(np.int64)
    return [
        ("256x256 int32", m256),
        ("256x256 uint8", m256.astype(np.uint8)),
        ("256x256 uint16", m256.astype(np.uint16)),
        ("1024x1024 int32 (16 tiles)", big),
        ("256x256 int64 huge ids", sparse),
        ("256x256 int64 5000 ids", noise),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    print(f"{'case':<28} {'gbench ms':>10} {'skimage ms':>11} {'skimage/gbench':>15}  equal")
    for name, inst in cases():
        a, na = relabel_sequential(inst)
        b, nb = _skimage(inst)
        equal = bool(na == nb and np.array_equal(a, b))
        t_ours = _median_s(relabel_sequential, inst, args.repeat)
        t_sk = _median_s(_skimage, inst, args.repeat)
        print(f"{name:<28} {1e3 * t_ours:>10.3f} {1e3 * t_sk:>11.3f} {t_sk / t_ours:>15.1f}  {equal}")


if __name__ == "__main__":
    main()
