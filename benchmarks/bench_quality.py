"""Benchmark gbench.metrics.quality against per-image scikit-image / piq calls.

Run by hand (prints figures, asserts nothing about speed)::

    .venv/bin/python benchmarks/bench_quality.py [--n 64] [--size 256] [--threads 1] [--device cpu|cuda]

For each metric, side by side in one process on the same uint8 pairs: images/s of the reference loop
(scikit-image for SSIM and NRMSE, one ``piq`` call per image for FSIM and GMSD, float32 input as in everyday
piq use), of gbench's ``precision="exact"`` (float64) and ``precision="fast"`` (float32, the default) batched
calls, their speed-ups over the reference loop, the max |difference| of the fast values from the reference and
from the exact path (NRMSE: relative). Every column is the best of ``--repeat`` interleaved runs; besides
wall-clock ratios the CPU-time ratio of fast over the reference (this thread's CPU time, which other processes
on a shared machine barely disturb) is printed. Pairs are random-but-structured: random (flipped / rotated) tiles of
``skimage.data.immunohistochemistry()`` as ``real``; ``fake`` is the tile blurred and/or noised and/or shifted.
Wall-clock times; the load average is printed since other processes on the machine slow every column.
"""
from __future__ import annotations

import argparse
import os
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


def timed(fn: Callable[[], object], sync: Callable[[], None] = lambda: None) -> tuple[np.ndarray, float, float]:
    """Run ``fn`` once: (values as float64 numpy, wall seconds, CPU seconds of this thread)."""
    sync()
    w0, c0 = time.perf_counter(), time.thread_time()
    res = fn()
    sync()
    wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
    out = res.double().cpu().numpy() if isinstance(res, torch.Tensor) else np.asarray(res, dtype=np.float64)
    return out, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="number of pairs")
    ap.add_argument("--size", type=int, default=256, help="tile side in pixels")
    ap.add_argument("--piq-dtype", choices=("float32", "float64"), default="float32", help="dtype fed to piq")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--device", default="cpu", help="device of the gbench calls (references always run on the CPU)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many interleaved runs (all columns)")
    ap.add_argument("--metrics", default="ssim,nrmse,fsim,gmsd", help="comma-separated subset")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    fakes, reals = make_pairs(args.n, args.size)
    f_t = torch.from_numpy(fakes).permute(0, 3, 1, 2).contiguous()
    r_t = torch.from_numpy(reals).permute(0, 3, 1, 2).contiguous()
    f_d, r_d = f_t.to(device), r_t.to(device)
    pdt = getattr(torch, args.piq_dtype)
    f_p, r_p = f_t.to(pdt) / 255, r_t.to(pdt) / 255

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(
        f"{args.n} pairs of {args.size}x{args.size} RGB uint8 | torch {torch.__version__} "
        f"({torch.get_num_threads()} threads) | skimage {skimage.__version__} | piq {piq.__version__} | "
        f"piq input {args.piq_dtype} [0,1] | gbench on {args.device} ({dev_name}) | "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )

    def ours(name: str, precision: str) -> Callable[[], torch.Tensor]:
        fn = getattr(q, name)
        return lambda: fn(f_d, r_d, precision=precision)

    references: dict[str, tuple[str, Callable[[], object]]] = {
        "ssim": (
            "skimage loop",
            lambda: [
                structural_similarity(
                    r, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1, data_range=255
                )
                for f, r in zip(fakes, reals)
            ],
        ),
        "nrmse": ("skimage loop", lambda: [normalized_root_mse(r, f) for f, r in zip(fakes, reals)]),
        "fsim": (
            "piq per image",
            lambda: [piq.fsim(f_p[i : i + 1], r_p[i : i + 1], data_range=1.0).item() for i in range(args.n)],
        ),
        "gmsd": (
            "piq per image",
            lambda: [piq.gmsd(f_p[i : i + 1], r_p[i : i + 1], data_range=1.0).item() for i in range(args.n)],
        ),
    }
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(names) - set(references))
    if unknown:
        ap.error(f"unknown metric(s) {unknown}; choose from {', '.join(references)}")

    for precision in ("exact", "fast"):  # warm-up: filter-bank caches, FFT plans, kernels
        for name in names:
            getattr(q, name)(f_d[:2], r_d[:2], precision=precision)
    sync()
    print(
        f"best of {args.repeat} interleaved runs each; img/s from wall-clock time; "
        "'cpu' ratios from this thread's CPU time (insensitive to other processes taking the cores)"
    )
    header = (
        f"{'metric':<6} {'reference':<14} {'ref img/s':>10} {'exact img/s':>12} {'fast img/s':>11} "
        f"{'exact/ref':>10} {'fast/ref':>9} {'fast/ref cpu':>13} {'|fast-ref|':>11} {'|fast-exact|':>13}"
    )
    print(header)
    print("-" * len(header))
    with torch.no_grad():
        for name in names:
            ref_name, ref_fn = references[name]
            runs = {"ref": (ref_fn, lambda: None), "exact": (ours(name, "exact"), sync), "fast": (ours(name, "fast"), sync)}
            best = {k: [float("inf"), float("inf")] for k in runs}
            values: dict[str, np.ndarray] = {}
            for _ in range(args.repeat):
                for key, (fn, sy) in runs.items():
                    values[key], wall, cpu = timed(fn, sy)
                    best[key] = [min(best[key][0], wall), min(best[key][1], cpu)]
            ref, exact, fast = values["ref"], values["exact"], values["fast"]
            if name == "nrmse":  # relative differences (0/0 for identical pairs counts as 0)
                d_ref = float(np.max(np.abs(fast - ref) / np.where(ref != 0, np.abs(ref), 1.0)))
                d_exact = float(np.max(np.abs(fast - exact) / np.where(exact != 0, np.abs(exact), 1.0)))
            else:
                d_ref = float(np.max(np.abs(fast - ref)))
                d_exact = float(np.max(np.abs(fast - exact)))
            (t_ref, c_ref), (t_exact, _), (t_fast, c_fast) = best["ref"], best["exact"], best["fast"]
            print(
                f"{name:<6} {ref_name:<14} {args.n / t_ref:>10.1f} {args.n / t_exact:>12.1f} {args.n / t_fast:>11.1f} "
                f"{t_ref / t_exact:>9.2f}x {t_ref / t_fast:>8.2f}x {c_ref / c_fast:>12.2f}x {d_ref:>11.2e} {d_exact:>13.2e}"
            )
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
