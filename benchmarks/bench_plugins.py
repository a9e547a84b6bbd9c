"""Plugin discovery cost (issue 23): what entry-point scanning adds to a command that reads a
registry, and that ``gbench --help`` imports nothing extra.

Measured in fresh processes (the first registry lookup of a process is what scanning costs):

* ``scan``: ``importlib.metadata.entry_points(group=...)`` for the five gbench groups, alone;
* ``lookup``: ``import gbench.generators`` then ``names()`` of the five plugin registries (discovery on) against
  the same with discovery switched off (each registry marked discovered before the lookup);
* ``--help``: the modules ``from gbench.cli.app import app`` imports, with and without a
  ``GBENCH_PLUGINS`` plugin set: plugins must not be imported, nor torch.

Prints medians and ratios; asserts nothing about time.

    python benchmarks/bench_plugins.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

SCAN = ("import time; from importlib.metadata import entry_points; t=time.perf_counter(); "
        "[list(entry_points(group=g)) for g in ('gbench.generators','gbench.stack_generators','gbench.segmenters',"
        "'gbench.extractors','gbench.datasets')]; print(time.perf_counter()-t)")
LOOKUP = ("import time, gbench.generators as g; from gbench import segmentation as s; "
          "from gbench.metrics import features as f; from gbench.data import resolve as d; {off}"
          "t=time.perf_counter(); [x.names() for x in (g.GENERATORS, g.STACK_GENERATORS, s.SEGMENTERS, "
          "f.EXTRACTOR_REGISTRY, d.DATASETS)]; print(time.perf_counter()-t)")
OFF = ("import gbench.core.registry as r; r._ENV_LOADED.append(True); "
       "[setattr(x, '_discovered', True) for x in (g.GENERATORS, g.STACK_GENERATORS, s.SEGMENTERS, "
       "f.EXTRACTOR_REGISTRY, d.DATASETS)]; ")
HELP = ("import sys; before=set(sys.modules); from gbench.cli.app import app; "
        "print(len(set(sys.modules)-before), 'torch' in sys.modules, "
        "any(m.startswith('gbench_plugin') for m in sys.modules), 'importlib.metadata' in sys.modules)")


def _time(code: str, repeat: int, env: dict[str, str] = ENV) -> float:
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  env=env, check=True).stdout.split()[-1]) for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    scan = _time(SCAN, args.repeat)
    on = _time(LOOKUP.format(off=""), args.repeat)
    off = _time(LOOKUP.format(off=OFF), args.repeat)
    print(f"five separate entry_points(group=...) scans (not what gbench does; it scans once): {scan * 1e3:.1f} ms (median of {args.repeat} fresh processes)")
    print(f"first lookups of the 5 registries: {on * 1e3:.1f} ms with discovery, {off * 1e3:.2f} ms without: "
          f"+{(on - off) * 1e3:.1f} ms (ratio {on / max(off, 1e-9):.0f}x of a lookup, target: at most +50 ms)")
    plugin = os.path.join(os.path.dirname(__file__), "..", "examples", "gbench-plugin-example", "src",
                          "gbench_plugin_example", "plugin.py")
    for label, env in (("no plugins", ENV), ("GBENCH_PLUGINS set", {**ENV, "GBENCH_PLUGINS": plugin})):
        out = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True, env=env,
                             check=True).stdout.split()
        print(f"--help ({label}): {out[0]} modules imported; torch {out[1]}, a plugin {out[2]}, "
              f"importlib.metadata {out[3]}")


if __name__ == "__main__":
    main()
