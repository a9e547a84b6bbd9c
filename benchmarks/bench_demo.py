"""What ``make demo`` costs: wall time, run-folder size and where the time went.

Runs ``gbench demo --out <temp folder>`` as a new user would (a fresh process, the installed
``.venv``), ``--runs`` times, each into a fresh folder, and prints per run the wall time, the size
of the run folder (with its largest parts) and the demo's own per-stage time table; then the
min / median / max over the runs. ``--cached`` also times a second ``gbench demo`` into the
last folder (every stage cached). The machine's load average before each run is printed: the
figures mean little on a machine busy with other work. Example::

    python benchmarks/bench_demo.py --runs 3 --cached

Targets (issue 11): <= 10 minutes and <= 300 MB on 2 CPU cores; a cached rerun <= 20 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(root: Path, depth: int = 3, top: int = 8) -> list[tuple[str, int]]:
    """The ``top`` largest folders ``depth`` levels below ``root`` (by bytes of files)."""
    parts: dict[str, int] = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(root).parts
            key = "/".join(rel[:depth]) if len(rel) > depth else "/".join(rel)
            parts[key] = parts.get(key, 0) + p.stat().st_size
    return sorted(parts.items(), key=lambda kv: -kv[1])[:top]


def time_table(log: str) -> str:
    """The demo's "Where the time went" table, cut from its output."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if "Where the time went" in line), None)
    if start is None:
        return "(no time table in the output)"
    end = next((j for j in range(start, len(lines)) if lines[j].strip().startswith(("└", "+--")) or
                lines[j].strip().startswith("╰")), None)
    if end is None:
        end = next((j for j in range(start, len(lines)) if "total" in lines[j]), len(lines) - 1) + 1
    return "\n".join(lines[start:end + 1])


def gbench_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("gbench")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "gbench.cli"]


def run_demo(out: Path, args: argparse.Namespace) -> tuple[float, str, int]:
    env = {**os.environ, "COLUMNS": "120", "TERM": "dumb"}
    cmd = gbench_cmd() + ["demo", "--out", str(out)]
    if args.profile:
        cmd += ["--profile", args.profile]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, proc.stdout + proc.stderr, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="fresh demo runs (min/median/max reported)")
    ap.add_argument("--cached", action="store_true", help="also time a rerun with every stage cached")
    ap.add_argument("--profile", default=None, help="profile (default: the demo's own, demo)")
    ap.add_argument("--keep", action="store_true", help="keep the run folders (printed)")
    ap.add_argument("--log", type=Path, default=None, help="write each run's full output to LOG.<k>")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gbench-bench-demo-"))
    walls, sizes = [], []
    try:
        for k in range(args.runs):
            out = root / f"run{k}"
            print(f"run {k + 1}/{args.runs}: load average before {os.getloadavg()[0]:.2f} "
                  f"(1 min), {os.cpu_count()} CPUs; gbench demo --out {out}", flush=True)
            wall, log, rc = run_demo(out, args)
            if args.log:
                args.log.with_name(f"{args.log.name}.{k}").write_text(log)
            if rc != 0:
                print(log[-4000:])
                print(f"gbench demo exited with {rc}")
                return 1
            size = folder_bytes(out)
            walls.append(wall)
            sizes.append(size)
            print(f"  wall time {wall:.1f} s ({wall / 60:.2f} min), run folder {size / 1e6:.1f} MB; "
                  f"load average after {os.getloadavg()[0]:.2f}")
            for part, b in largest_parts(out):
                print(f"    {b / 1e6:8.1f} MB  {part}")
            print(time_table(log))
        if args.cached:
            out = root / f"run{args.runs - 1}"
            wall, log, rc = run_demo(out, args)
            print(f"cached rerun: wall time {wall:.1f} s (exit {rc})")
        if len(walls) > 1:
            print(f"wall time over {len(walls)} runs: min {min(walls):.1f} s, median {statistics.median(walls):.1f} s, "
                  f"max {max(walls):.1f} s")
            print(f"run folder: min {min(sizes) / 1e6:.1f} MB, max {max(sizes) / 1e6:.1f} MB")
    finally:
        if args.keep:
            print(f"run folders kept under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
