"""Peak memory and throughput of ``gbench quality --data D --fake DIR`` (and ``--real DIR --fake DIR``)
at two crop counts: the folder routes stream, so the peak RSS must not grow with the count.

For each count N (default 1,000 and 10,000) the script builds a folder dataset whose test split
holds N / 4 tiles of 2 x CROP pixels (4 grid crops of CROP x CROP each under the ``smoke``
profile, CROP = 64), runs ``gbench maps export`` on it, paints one image per exported crop with a
plain numpy function (two colours on the binary map, as an outside generator would), then runs,
each in a fresh process whose peak RSS is read with ``resource.getrusage(RUSAGE_CHILDREN)`` in a
wrapper process of its own:

* ``gbench quality --data ROOT --fake FAKE --profile smoke --out Q`` (the Table 1 row route);
* ``gbench quality --real EXPORT --fake FAKE --out Q2`` (the folder-pair route).

Printed per (route, N): peak RSS (MiB), wall time (process start included) and crops/s; then the
ratio of the peaks at the largest and the smallest count (target: at most 1.10). The load
average is printed first: the times mean little on a busy machine (the RSS does not depend on it).
Example::

    python benchmarks/bench_folder_quality.py --counts 1000 10000 --crop 64

Target (issue 23): peak RSS at 10,000 crops within 10% of the peak at 1,000.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
GBENCH = [str(REPO / ".venv" / "bin" / "gbench")] if (REPO / ".venv" / "bin" / "gbench").exists() else [
    sys.executable, "-m", "gbench"]


def make_dataset(root: Path, tiles: int, side: int, seed: int = 0) -> None:
    """``root/test/{images,labels}/t<i>.png`` (and one train tile): H&E-like disks on pink, 16-bit labels."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    for split, n in (("test", tiles), ("train", 1)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(n):
            inst = np.zeros((side, side), np.uint16)
            for k in range(1, 1 + int(rng.integers(5, 15))):
                rr, cc = disk((rng.integers(0, side), rng.integers(0, side)), rng.integers(3, 9), shape=inst.shape)
                inst[rr, cc] = k
            img = np.empty((side, side, 3), np.float32)
            img[:] = (230, 170, 200)
            img[inst > 0] = (90, 50, 140)
            img += rng.normal(0, 8, img.shape)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / split / "images" / f"t{i:05d}.png")
            Image.fromarray(inst).save(root / split / "labels" / f"t{i:05d}.png")


def paint_folder(maps: Path, out: Path) -> int:
    """One image per exported crop: background / nucleus colours on the binary map (an outside generator)."""
    out.mkdir(parents=True)
    colours = np.array([[205, 150, 180], [100, 60, 150]], np.uint8)
    n = 0
    for f in sorted((maps / "binary").iterdir()):
        fg = np.asarray(Image.open(f)) > 127
        Image.fromarray(np.where(fg[..., None], colours[1], colours[0]).astype(np.uint8)).save(out / f.name)
        n += 1
    return n


def measure(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``cmd`` run in a wrapper process of its own."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
               "w = time.perf_counter() - t; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, w, rc)")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    kb, wall, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {rc}: {out.stderr.strip()[-500:]}")
    return int(kb) / 1024, float(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[1000, 10000], help="crop counts (multiples of 4)")
    ap.add_argument("--crop", type=int, default=64, help="crop side (the smoke profile's evaluation crop is 64)")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    if args.crop != 64:
        raise SystemExit("--crop: the smoke profile cuts 64-px crops; other sides need a profile file")
    print(f"load average {os.getloadavg()}; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    env_note = "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "(unset)")
    print(env_note)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for n in args.counts:
            base = Path(tmp) / f"n{n}"
            t0 = time.perf_counter()
            make_dataset(base / "data", n // 4, 2 * args.crop)
            rss_exp, wall_exp = measure([*GBENCH, "maps", "export", "--data", str(base / "data"), "--profile", "smoke",
                                         "--out", str(base / "maps")])
            painted = paint_folder(base / "maps", base / "fake")
            print(f"N={n}: dataset {time.perf_counter() - t0 - wall_exp:.1f} s, export {wall_exp:.1f} s "
                  f"({rss_exp:.0f} MiB), {painted} painted crops")
            for route, cmd in (
                ("--data --fake", [*GBENCH, "quality", "--data", str(base / "data"), "--fake", str(base / "fake"),
                                   "--profile", "smoke", "--label", "painted", "--out", str(base / "q")]),
                ("--real --fake", [*GBENCH, "quality", "--real", str(base / "maps"), "--fake", str(base / "fake"),
                                   "--profile", "smoke", "--out", str(base / "q2")]),
            ):
                rss, wall = measure(cmd)
                rows.append((route, n, rss, wall))
                print(f"  {route:14s} N={n:6d}: peak RSS {rss:7.1f} MiB, {wall:6.1f} s, {n / wall:6.1f} crops/s")
    print("\nroute           N       peak RSS MiB   wall s   crops/s")
    for route, n, rss, wall in rows:
        print(f"{route:14s} {n:6d}   {rss:10.1f}   {wall:7.1f}   {n / wall:7.1f}")
    for route in ("--data --fake", "--real --fake"):
        sub = [r for r in rows if r[0] == route]
        if len(sub) >= 2:
            lo, hi = min(sub, key=lambda r: r[1]), max(sub, key=lambda r: r[1])
            ratio = hi[2] / lo[2]
            print(f"{route}: peak RSS at {hi[1]} / at {lo[1]} = {ratio:.3f} ({'within' if ratio <= 1.10 else 'OVER'} "
                  "the 10% target)")


if __name__ == "__main__":
    main()
