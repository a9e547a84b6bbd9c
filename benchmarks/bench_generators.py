"""Generator speed, by hand: ``python benchmarks/bench_generators.py [--threads N] [--quick]``.

Prints, on this machine:

1. the sharpness loss (8 shifted slices) against the literal per-pixel loop of the paper's
   Eq. 4-5 on the same input (ratio), and its cost at the paper's batch (16 x 3 x 256 x 256)
   with its backward pass;
2. seconds per pix2pix training step (one D and one G update) at each profile's crop and batch
   size, for a few generator widths (``ngf = ndf``), and the implied time of a run of the
   profile's length;
3. generator throughput in eval mode (images/s) at each size, i.e. the cost of S3k / S10k.

Nothing here is asserted; the numbers go to the README's cost table.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def literal(contour: np.ndarray, image: np.ndarray, lam: float) -> float:
    n, _, m, w = image.shape
    total = 0.0
    for b in range(n):
        g = 0.299 * image[b, 0] + 0.587 * image[b, 1] + 0.114 * image[b, 2]
        acc = 0.0
        for i in range(m):
            for j in range(w):
                if contour[b, i, j] == 0:
                    continue
                for p in range(max(0, i - 1), min(m, i + 2)):
                    for q in range(max(0, j - 1), min(w, j + 2)):
                        if (p, q) != (i, j):
                            acc += math.exp(-((g[i, j] - g[p, q]) ** 2) / (2 * lam**2)) / (abs(p - i) + abs(q - j))
        total += acc / (m * w)
    return total / n


def bench_sharpness(quick: bool) -> None:
    from gbench.generators.sharp_gan import sharpness_loss

    rng = np.random.default_rng(0)
    n, s = 2, 64
    img = rng.random((n, 3, s, s))
    con = (rng.random((n, s, s)) > 0.85).astype(np.float64)
    t_lit = _timeit(lambda: literal(con, img, 0.1), 1)
    ti, tc = torch.from_numpy(img), torch.from_numpy(con)
    t_vec = _timeit(lambda: sharpness_loss(tc, ti, 0.1), 20)
    print(f"sharpness loss {n}x3x{s}x{s} float64: literal loop {t_lit * 1e3:.1f} ms, vectorised {t_vec * 1e3:.3f} ms, "
          f"speed-up x{t_lit / t_vec:.0f}")
    n, s = (4, 128) if quick else (16, 256)
    x = torch.rand(n, 3, s, s, requires_grad=True)
    c = (torch.rand(n, 1, s, s) > 0.85).float()

    def fwd_bwd() -> None:
        x.grad = None
        sharpness_loss(c, x, 0.1).backward()

    print(f"sharpness loss {n}x3x{s}x{s} float32 forward+backward: {_timeit(fwd_bwd, 3) * 1e3:.1f} ms")


def bench_training(quick: bool) -> None:
    from gbench import generators
    from gbench.core.profiles import PROFILES

    print("\npix2pix training step (D + G update), sharp-gan, CPU:")
    print(f"{'profile':8s} {'crop':>5s} {'batch':>5s} {'ngf':>4s} {'params G':>10s} {'s/step':>8s} {'run length':>12s}")
    ref = None
    for prof in PROFILES.values():
        if quick and prof.name == "paper":
            continue
        widths = (8, 16) if prof.name == "smoke" else (16, 32, 64)
        for ngf in widths:
            m = generators.create("sharp-gan", image_size=prof.generator.image_size, ngf=ngf, ndf=ngf, lr=prof.generator.lr)
            g = torch.Generator().manual_seed(0)
            b, s = prof.generator.batch_size, prof.generator.image_size
            batch = {"cond": torch.rand(b, 1, s, s, generator=g), "image": torch.rand(b, 3, s, s, generator=g),
                     "contour": (torch.rand(b, 1, s, s, generator=g) > 0.85).float()}
            reps = 1 if prof.name == "paper" else 3
            t = _timeit(lambda: m.training_step(batch, 0), reps)
            steps = prof.generator.max_steps
            length = f"{steps} steps: {steps * t / 60:.1f} min" if steps else "500 epochs"
            ratio = "" if ref is None else f"  (x{t / ref:.1f} the smoke/ngf=8 step)"
            ref = ref or t
            params = sum(p.numel() for p in m.G.parameters())
            print(f"{prof.name:8s} {s:5d} {b:5d} {ngf:4d} {params:10,d} {t:8.3f} {length:>12s}{ratio}")


def bench_generation(quick: bool) -> None:
    from gbench import generators
    from gbench.core.profiles import PROFILES

    print("\ngenerator inference (eval mode), sharp-gan, CPU:")
    for prof in PROFILES.values():
        if quick and prof.name == "paper":
            continue
        for ngf in (16, 64):
            m = generators.create("sharp-gan", image_size=prof.generator.image_size, ngf=ngf, ndf=ngf).eval()
            cond = torch.rand(prof.generator.batch_size, 1, prof.generator.image_size, prof.generator.image_size)
            t = _timeit(lambda: m.generate(cond), 2)
            ips = prof.generator.batch_size / t
            counts = dict(prof.synthesis.counts)
            print(f"{prof.name:8s} {prof.generator.image_size:4d}px ngf={ngf:3d}: {ips:7.1f} images/s -> S3k ({counts['S3k']}) "
                  f"{counts['S3k'] / ips:.0f} s, S10k ({counts['S10k']}) {counts['S10k'] / ips:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="skip the paper-size runs")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"device for training runs: {'cuda' if torch.cuda.is_available() else 'cpu'}\n")
    bench_sharpness(args.quick)
    bench_training(args.quick)
    bench_generation(args.quick)


if __name__ == "__main__":
    main()
