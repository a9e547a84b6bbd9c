"""Benchmark gbench.metrics.quality against per-image scikit-image / piq calls.

Run by hand (prints figures, asserts nothing about speed)::

    .venv/bin/python benchmarks/bench_quality.py [--n 256] [--size 256] [--piq-dtype float32] [--threads N]

For each metric: images/s of the reference loop (scikit-image for SSIM and NRMSE,
one ``piq`` call per image for FSIM and GMSD) and of the gbench batched call on
the same uint8 pairs, the speed ratio, and the max |difference| of the values.
Pairs are random-but-structured: random (flipped / rotated) tiles of
``skimage.data.immunohistochemistry()`` as ``real``; ``fake`` is the tile blurred
and/or noised and/or shifted.
"""
from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import piq
import skimage
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import normalized_root_mse, structural_similarity

from gbench.metrics import quality as q


def make_pairs(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (fake, real) uint8 arrays of shape (n, size, size, 3)."""
    rng = np.random.default_rng(seed)
    src = skdata.immunohistochemistry()
    h, w = src.shape[:2]
    reals = np.empty((n, size, size, 3), np.uint8)
    fakes = np.empty_like(reals)
    for i in range(n):
        oy, ox = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        tile = np.rot90(src[oy : oy + size, ox : ox + size], k=int(rng.integers(4)))
        if rng.random() < 0.5:
            tile = tile[:, ::-1]
        real = np.ascontiguousarray(tile)
        fake = real.astype(np.float64)
        if rng.random() < 0.6:
            fake = gaussian_filter(fake, sigma=(rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), 0))
        if rng.random() < 0.6:
            fake = fake + rng.normal(0, rng.uniform(2, 20), fake.shape)
        if rng.random() < 0.3:
            fake = np.roll(fake, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
        reals[i] = real
        fakes[i] = np.clip(fake, 0, 255).round().astype(np.uint8)
    return fakes, reals


def timed(fn: Callable[[], np.ndarray], repeat: int = 1) -> tuple[np.ndarray, float]:
    best = float("inf")
    out = np.empty(0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = np.asarray(fn(), dtype=np.float64)
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="number of pairs")
    ap.add_argument("--size", type=int, default=256, help="tile side in pixels")
    ap.add_argument("--piq-dtype", choices=("float32", "float64"), default="float32", help="dtype fed to piq")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    fakes, reals = make_pairs(args.n, args.size)
    f_t = torch.from_numpy(fakes).permute(0, 3, 1, 2).contiguous()
    r_t = torch.from_numpy(reals).permute(0, 3, 1, 2).contiguous()
    pdt = getattr(torch, args.piq_dtype)
    f_p, r_p = f_t.to(pdt) / 255, r_t.to(pdt) / 255

    print(
        f"{args.n} pairs of {args.size}x{args.size} RGB uint8 | torch {torch.__version__} "
        f"({torch.get_num_threads()} threads) | skimage {skimage.__version__} | piq {piq.__version__} | "
        f"piq input {args.piq_dtype} [0,1] | {platform.processor() or platform.machine()}"
    )

    cases: list[tuple[str, str, Callable[[], np.ndarray], Callable[[], np.ndarray]]] = [
        (
            "ssim",
            "skimage loop",
            lambda: [
                structural_similarity(
                    r, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=255
                )
                for f, r in zip(fakes, reals)
            ],
            lambda: q.ssim(f_t, r_t).numpy(),
        ),
        (
            "nrmse",
            "skimage loop",
            lambda: [normalized_root_mse(r, f) for f, r in zip(fakes, reals)],
            lambda: q.nrmse(f_t, r_t).numpy(),
        ),
        (
            "fsim",
            "piq per image",
            lambda: [piq.fsim(f_p[i : i + 1], r_p[i : i + 1], data_range=1.0).item() for i in range(args.n)],
            lambda: q.fsim(f_t, r_t).numpy(),
        ),
        (
            "gmsd",
            "piq per image",
            lambda: [piq.gmsd(f_p[i : i + 1], r_p[i : i + 1], data_range=1.0).item() for i in range(args.n)],
            lambda: q.gmsd(f_t, r_t).numpy(),
        ),
    ]

    q.fsim(f_t[:2], r_t[:2])  # warm-up: filter-bank cache, FFT plans
    header = f"{'metric':<6} {'reference':<14} {'ref img/s':>10} {'gbench img/s':>13} {'speed-up':>9} {'max |diff|':>11}"
    print(header)
    print("-" * len(header))
    with torch.no_grad():
        for name, ref_name, ref_fn, ours_fn in cases:
            ref, t_ref = timed(ref_fn)
            ours, t_ours = timed(ours_fn, repeat=2)
            diff = float(np.max(np.abs(ours - ref)))
            print(
                f"{name:<6} {ref_name:<14} {args.n / t_ref:>10.1f} {args.n / t_ours:>13.1f} "
                f"{t_ref / t_ours:>8.2f}x {diff:>11.2e}"
            )


if __name__ == "__main__":
    main()
