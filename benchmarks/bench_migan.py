"""``gbench demo mi-gan``: does MI-GAN1 meet its targets, and how long does it take?

Runs ``gbench demo mi-gan --out <temp folder>`` as a new user would (a fresh process, the
installed ``.venv``), ``--runs`` times (each its own folder; ``--seeds`` picks the training seed
of each run, default 0, 1, 2 so the runs differ), and prints per run the wall time and the
targets table (from the run's ``evaluation.json``); then, per target, how many runs met it and
the values, min / median / max. The load average before each run is printed: the times mean
little on a machine busy with other work. ``--threads`` sets ``OMP_NUM_THREADS`` of the runs.
``--transfer`` adds ``--transfer`` (MI-GAN2 transfer vs scratch, seeds ``--transfer-seeds``)
to the last run and prints its table. ``--keep DIR`` keeps the run folders under DIR. Example::

    python benchmarks/bench_migan.py --runs 3 --threads 2

Targets (issue 16), on 256 samples against 256 real test stacks: focus peak at I0 or +-1,
inter-plane SSIM within 0.1 of the real stacks', diversity >= 0.5 x real, per-plane-mean FID
and KID at most half the lower of two floors (real stacks with shuffled planes; the training
set's mean stack); the whole demo within 10 minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("focus_peak", "interplane_ssim", "diversity", "fid", "kid")


def gbench_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("gbench")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "gbench.cli"]


def run_once(out: Path, seed: int, profile: str, threads: int | None, extra: list[str]) -> tuple[float, dict, str]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("COLUMNS", "120")
    cmd = [*gbench_cmd(), "demo", "mi-gan", "--out", str(out), "--profile", profile, "--seed", str(seed),
           "--no-progress", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"gbench demo mi-gan failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads((out / "evaluation.json").read_text()), proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seeds", default=None, help="training seed per run, comma-separated (default 0..runs-1)")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the runs (default: unset)")
    ap.add_argument("--transfer", action="store_true", help="add --transfer to the last run")
    ap.add_argument("--transfer-seeds", default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the run folders under this folder")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(range(args.runs))
    if len(seeds) != args.runs:
        sys.exit("--seeds must list one seed per run")
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-migan-"))
    root.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for i, seed in enumerate(seeds):
            extra: list[str] = []
            if args.transfer and i == len(seeds) - 1:
                extra = ["--transfer"] + (["--transfer-seeds", args.transfer_seeds] if args.transfer_seeds else [])
            load = os.getloadavg()[0]
            out = root / f"run{i}-seed{seed}"
            if out.exists():
                shutil.rmtree(out)
            wall, ev, stdout = run_once(out, seed, args.profile, args.threads, extra)
            results.append((seed, wall, ev))
            print(f"\n== run {i + 1}/{args.runs}: seed {seed}, {wall:.0f} s wall (load average before: {load:.2f}, "
                  f"threads {args.threads or 'default'}), status {ev['status']}"
                  + (f" ({ev['failure']})" if ev["failure"] else ""))
            print(f"   train {ev['seconds']['train']:.0f} s, sample + evaluate {ev['seconds']['sample + evaluate']:.0f} s; "
                  f"steps G1 {ev['steps_per_phase']['g1']}, G2 {ev['steps_per_phase']['g2']}, batch {ev['batch_size']}")
            for k in TARGETS:
                c = ev["checks"].get(k)
                if c:
                    print(f"   {k:16s} {'met   ' if c['passed'] else 'MISSED'} {c['text']}")
            if extra:
                start = stdout.find("transfer")
                print(stdout[start:] if start >= 0 else stdout[-4000:])
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n== summary over {len(results)} runs (profile {args.profile})")
    walls = [w for _, w, _ in results]
    print(f"   wall time: min {min(walls):.0f} s, median {statistics.median(walls):.0f} s, max {max(walls):.0f} s")
    print(f"   runs failed: {sum(ev['status'] == 'failed' for _, _, ev in results)}")
    for k in TARGETS:
        met = sum(bool(ev["checks"].get(k, {}).get("passed")) for _, _, ev in results)
        vals = [ev["values"]["mi-gan"][k] for _, _, ev in results if k in ev["values"]["mi-gan"]]
        rng = f"{min(vals):.4g} / {statistics.median(vals):.4g} / {max(vals):.4g}" if vals else ""
        print(f"   {k:16s} met in {met}/{len(results)}   value min/median/max {rng}")
    print(f"   all targets met in {sum(ev['passed'] for _, _, ev in results)}/{len(results)} runs")


if __name__ == "__main__":
    main()
