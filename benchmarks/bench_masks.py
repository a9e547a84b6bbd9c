"""Benchmark: nucleus mask synthesis (``gbench.data.masks``) with Sharp-GAN distance maps.

Draws ``--count`` instance maps of ``--size`` x ``--size`` (default: 10,000 of 256x256, the
scale of Sharp-GAN's S10k set) and computes the distance map of each
(``gbench.data.conditioning.distance_map``), in a pool of ``--workers`` processes. Map ``k`` is
always ``synthesize_instance_map(size, seed, k)``, so the result does not depend on the number
of workers; a checksum over all maps is printed to show it. Also prints a single-process
breakdown (synthesis vs distance map) and the time to render synthetic-he tiles. Run by hand:

    .venv/bin/python benchmarks/bench_masks.py [--count 10000] [--size 256] [--workers 2]

No timing assertions: it prints figures only.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gbench.data.conditioning import distance_map  # noqa: E402
from gbench.data.masks import synthesize_instance_map  # noqa: E402

_SIZE = 256
_SEED = 0


def _init(size: int, seed: int) -> None:
    global _SIZE, _SEED
    _SIZE, _SEED = size, seed


def _one(k: int) -> tuple[int, float]:
    """Map k and its distance map; returns (nuclei, sum of the distance map) as a checksum."""
    lab = synthesize_instance_map(_SIZE, _SEED, k)
    dist = distance_map(lab)
    return int(lab.max()), float(dist.sum(dtype=np.float64))


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_pool(
    count: int, size: int, seed: int, workers: int, chunksize: int
) -> tuple[float, float, int, float]:
    """Wall seconds, CPU seconds (all processes), nuclei, checksum."""
    c0 = time.process_time() + _cpu_children()
    t0 = time.perf_counter()
    if workers <= 1:
        _init(size, seed)
        res = [_one(k) for k in range(count)]
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_init, initargs=(size, seed)) as pool:
            res = pool.map(_one, range(count), chunksize=chunksize)
    dt = time.perf_counter() - t0
    cpu = time.process_time() + _cpu_children() - c0
    nuclei = sum(r[0] for r in res)
    checksum = sum(r[1] for r in res)
    return dt, cpu, nuclei, checksum


def breakdown(n: int, size: int, seed: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    maps = [synthesize_instance_map(size, seed, k) for k in range(n)]
    t1 = time.perf_counter()
    for m in maps:
        distance_map(m)
    t2 = time.perf_counter()
    return (t1 - t0) / n, (t2 - t1) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunksize", type=int, default=64)
    ap.add_argument("--breakdown", type=int, default=200, help="maps for the 1-process breakdown")
    ap.add_argument("--he-tiles", type=int, default=20, help="synthetic-he tiles to time (0: skip)")
    args = ap.parse_args()

    print(f"cpus: {os.cpu_count()}  load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.breakdown:
        synth, dist = breakdown(args.breakdown, args.size, args.seed)
        print(
            f"1 process, {args.breakdown} maps {args.size}x{args.size}: synthesis {synth * 1e3:.2f} ms/map, "
            f"distance map {dist * 1e3:.2f} ms/map -> {1 / (synth + dist):.0f} maps/s"
        )
    dt, cpu, nuclei, checksum = run_pool(args.count, args.size, args.seed, args.workers, args.chunksize)
    print(
        f"{args.count} maps {args.size}x{args.size} + distance maps, {args.workers} worker(s): "
        f"{dt:.1f} s wall, {args.count / dt:.0f} maps/s, {nuclei / args.count:.1f} nuclei/map, "
        f"checksum {checksum:.6e}"
    )
    # on a shared machine the wall time depends on other load: the CPU time does much less
    print(
        f"  CPU time {cpu:.1f} s ({cpu / args.count * 1e3:.2f} ms/map): "
        f"{cpu / max(args.workers, 1):.1f} s on {args.workers} otherwise idle core(s)"
    )
    if args.he_tiles:
        from gbench.data.synthetic_he import render_tile

        render_tile(args.size, 0)
        times, cpus = [], []
        for s in range(args.he_tiles):
            t0, c0 = time.perf_counter(), time.process_time()
            render_tile(args.size, s)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        print(
            f"synthetic-he render_tile {args.size}x{args.size}: median {np.median(times) * 1e3:.0f} ms wall "
            f"({np.median(cpus) * 1e3:.0f} ms CPU), max {max(times) * 1e3:.0f} ms over {args.he_tiles} tiles"
        )


if __name__ == "__main__":
    main()
