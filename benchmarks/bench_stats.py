"""Benchmark: the cost of an interval and of a paired comparison (``gbench.core.stats``).

For test sets of 32, 128 and 512 resampling units, one and three seeds, ``mean`` and ``pooled``
aggregation: the time of :func:`gbench.core.stats.estimate` (one cell's 95% CI: scipy BCa for one
seed, the two-level bootstrap for several) and of :func:`gbench.core.stats.paired_difference` (paired
bootstrap CI + sign-flip permutation p), 2000 resamples each. A report holds one estimate per
table cell and four paired differences per claim. Run by hand:

    .venv/bin/python benchmarks/bench_stats.py [--resamples 2000]

No timing assertions: it prints figures only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gbench.core import stats  # noqa: E402
from gbench.core.observations import POOLED_STATS, make_observations  # noqa: E402


def _obs(rng: np.random.Generator, model: str, units: int, seeds: int) -> pd.DataFrame:
    frames = []
    for s in range(seeds):
        rows = [{"name": f"i{i}", "pq": rng.random(), **{k: float(rng.integers(1, 20)) for k in POOLED_STATS}}
                for i in range(units)]
        frames.append(make_observations("segmentation", model, rows, train_set="R", profile="bench", seed=s,
                                        dataset="d", split="test", test_set="h"))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    stats.estimate(_obs(rng, "warm", 8, 1), "pq", n_resamples=100)  # scipy import, first-call costs
    print(f"{'units':>5} {'seeds':>5} {'aggregation':>11} {'estimate ms':>12} {'paired ms':>10}")
    for units in (32, 128, 512):
        for seeds in (1, 3):
            a, b = _obs(rng, "a", units, seeds), _obs(rng, "b", units, seeds)
            for agg in ("mean", "pooled"):
                t0 = time.perf_counter()
                stats.estimate(a, "pq", agg, n_resamples=args.resamples)
                t1 = time.perf_counter()
                stats.paired_difference(a, b, "pq", agg, n_resamples=args.resamples)
                t2 = time.perf_counter()
                print(f"{units:>5} {seeds:>5} {agg:>11} {1000 * (t1 - t0):>12.1f} {1000 * (t2 - t1):>10.1f}")


if __name__ == "__main__":
    main()
