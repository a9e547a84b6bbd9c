"""``gbench bench``: training and inference speed of every model on this device, and the projected
wall time of ``gbench reproduce sharp-gan`` under the profile."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gbench.cli.commands.common import (
    AmpOpt,
    ChannelsLastOpt,
    DataSeedOpt,
    DeterministicOpt,
    DeviceOpt,
    ProfileOpt,
    SeedOpt,
    WorkersOpt,
    check_out_path,
    console,
    with_runtime,
)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.


def _seconds(sec: float) -> str:
    if sec < 1:
        return f"{sec * 1000:.1f} ms"
    if sec < 120:
        return f"{sec:.1f} s"
    if sec < 7200:
        return f"{sec / 60:.1f} min"
    return f"{sec / 3600:.1f} h"


def measurement_table(result: Any) -> Any:
    """A rich table: one row per model (crop, batch, s/step, train images/s, data wait, inference)."""
    from rich.table import Table

    t = Table(title=f"Speed on {result.device} (profile {result.profile}; runtime "
                    + ", ".join(f"{k} {v}" for k, v in result.runtime.items()) + ")", title_justify="left")
    for col in ("model", "crop x batch", "s/step", "train img/s", "data wait", "infer img/s"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for m in result.measurements:
        t.add_row(m.name, f"{m.image_size} x {m.batch_size}", f"{m.train_s_per_step:.3g}",
                  f"{m.train_images_per_s:.1f}", f"{100 * m.data_wait_share:.1f}%", f"{m.infer_images_per_s:.1f}")
    return t


def projection_table(result: Any) -> Any:
    """A rich table: the projected wall time of ``reproduce sharp-gan``, one row per stage family."""
    from rich.table import Table

    total = result.projected_s
    t = Table(title=f"Projected: gbench reproduce sharp-gan --profile {result.profile}", title_justify="left")
    for col in ("stage", "stages", "per stage", "s/unit", "wall time", "share"):
        t.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    for r in result.projection:
        t.add_row(r.stage, str(r.stages), f"{r.units} {r.unit}", f"{r.seconds_per_unit:.3g}", _seconds(r.seconds),
                  f"{100 * r.seconds / total:.1f}%" if total > 0 else "-")
    t.add_section()
    t.add_row("total", "", "", "", _seconds(total), "100%")
    return t


def bench(
    data: Annotated[str, typer.Option("--data", help="Training data the crops come from (name or folder).")] = "synthetic-he",
    device: DeviceOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Timed training steps per model (after --warmup).")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed training steps first (allocation, autotuning).")] = 3,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the measurements and projection here.")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    amp: AmpOpt = None,
    workers: WorkersOpt = None,
    channels_last: ChannelsLastOpt = None,
    deterministic: DeterministicOpt = None,
) -> None:
    """Measure training and inference images/s of every generator and segmenter on this device, the
    share of step time spent waiting for data, and project the wall time of `gbench reproduce
    sharp-gan` under the profile (stages x steps from the profile x measured seconds per step)."""
    from gbench.core.fileio import write_json
    from gbench.core.options import check_device, check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines.bench import bench as run_bench

    prof = with_runtime(get_profile(profile), amp, workers, channels_last, deterministic)
    check_positive("--steps", steps)
    check_positive("--warmup", warmup, allow_zero=True)
    check_device("--device", device)
    if json_out is not None:
        check_out_path(json_out, "--json", folder=False)

    def line(m: Any) -> None:
        console.print(f"[dim]{m.component} {m.name}: {m.train_s_per_step:.4f} s/step, "
                      f"{m.infer_images_per_s:.1f} images/s inference[/]")

    res = run_bench(prof, data=data, data_seed=data_seed, device=device, steps=steps, warmup=warmup, seed=seed,
                    on_result=line)
    console.print(measurement_table(res))
    console.print(projection_table(res))
    console.print("quality-*: the generator pass only; *-test: the segmenters' test pass. Not counted: quality metrics, validation passes, checkpoint and image writes, the report; "
                  "segmenters at their full schedule (early stopping only shortens them)")
    if json_out is not None:
        console.print(f"written: {write_json(json_out, res.to_dict())}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
