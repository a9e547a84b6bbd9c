"""Training throughput of gbench's segmentation loop against a bare smp / PyTorch loop.

Same model (built from the same seed), same batch size and crop size, same images (the built-in
``synthetic-he`` tiles). Four loops, each timed over ``--steps`` optimiser steps, interleaved for
``--rounds`` rounds (median reported):

* ``bare-tensors``: a plain loop over pre-collated batches (compute only, no data work);
* ``bare-data``: a plain loop that draws its crops with the same ``TrainItems`` + collate;
* ``engine.fit``: ``gbench.engine.fit`` with ``SegmenterModule`` and ``StepLoader`` (no files);
* ``train_segmenter``: the full cell trainer (engine, checkpoints, history, no validation).

The ratio column is images/s relative to ``bare-data`` (the harness overhead; ``bare-tensors``
shows the data cost). Example::

    python benchmarks/bench_segment.py --arch unet --size 128 --batch 8 --steps 10
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gbench import segmentation  # noqa: E402
from gbench.core.profiles import get_profile  # noqa: E402
from gbench.data.resolve import resolve_dataset  # noqa: E402
from gbench.engine import StepLoader, fit  # noqa: E402
from gbench.segmentation.targets import get_target  # noqa: E402
from gbench.segmentation.train import SegmenterModule, TrainItems, config_from_profile, train_segmenter  # noqa: E402


def build(arch: str, opts: dict, seed: int) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return segmentation.create(arch, **opts)


def bare_tensors(arch: str, opts: dict, batches: list[dict], lr: float) -> float:
    net = build(arch, opts, 0).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = get_target("binary").loss
    t0 = time.perf_counter()
    for b in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(b["image"] * 2 - 1), b["target"])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def bare_data(arch: str, opts: dict, items: TrainItems, batch: int, steps: int, lr: float) -> float:
    import numpy as np
    from torch.utils.data import default_collate

    net = build(arch, opts, 0).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = get_target("binary").loss
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        b = default_collate([items.get(int(rng.integers(len(items))), rng) for _ in range(batch)])
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(b["image"] * 2 - 1), b["target"])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def engine_fit(arch: str, opts: dict, items: TrainItems, batch: int, steps: int, lr: float) -> float:
    module = SegmenterModule(build(arch, opts, 0), get_target("binary"), lr)
    loader = StepLoader(items, batch, seed=0)
    t0 = time.perf_counter()
    fit(module, loader, max_steps=steps, seed=0, progress=False, device="cpu")
    return time.perf_counter() - t0


def full_trainer(arch: str, opts: dict, ds, profile, batch: int, steps: int, lr: float) -> float:
    cfg = config_from_profile(profile, arch, max_steps=steps, batch_size=batch, lr=lr, val_fraction=0.0,
                              model=opts)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train_segmenter(cfg, [(ds, list(range(len(ds))))], seed=0, out_dir=d, progress=False, device="cpu")
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="unet", choices=segmentation.available())
    ap.add_argument("--profile", default="demo", help="profile whose model defaults and tiles are used")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    prof = get_profile(args.profile)
    opts = prof.segmenter(args.arch).model_options
    ds = resolve_dataset("synthetic-he", "train", prof, 0)
    items = TrainItems([(ds, i) for i in range(len(ds))], args.size, get_target("binary"))
    loader = StepLoader(items, args.batch, seed=0)
    batches = [loader.batch(s) for s in range(args.steps)]
    lr = prof.segmenter(args.arch).lr
    runs = {
        "bare-tensors": lambda: bare_tensors(args.arch, opts, batches, lr),
        "bare-data": lambda: bare_data(args.arch, opts, items, args.batch, args.steps, lr),
        "engine.fit": lambda: engine_fit(args.arch, opts, items, args.batch, args.steps, lr),
        "train_segmenter": lambda: full_trainer(args.arch, opts, ds, prof, args.batch, args.steps, lr),
    }
    runs["bare-tensors"]()  # warm-up (allocator, oneDNN primitives)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, f in runs.items():
            times[k].append(f())
    n_img = args.steps * args.batch
    ref = n_img / statistics.median(times["bare-data"])
    print(f"{args.arch} {opts}, {args.size}px crops, batch {args.batch}, {args.steps} steps x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'loop':<16} {'images/s':>9} {'vs bare-data':>13}   (median of rounds; all rounds s: )")
    for k, ts in times.items():
        ips = n_img / statistics.median(ts)
        print(f"{k:<16} {ips:9.2f} {ips / ref:12.3f}x   {', '.join(f'{t:.2f}' for t in ts)}")


if __name__ == "__main__":
    main()
