"""``gbench quality``: image quality of synthetic images against real ones."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.commands.common import ProfileOpt, SeedOpt, console


def quality(
    real: Annotated[Optional[Path], typer.Option("--real", help="Folder of real images (or a folder dataset with images/).")] = None,
    fake: Annotated[Optional[Path], typer.Option("--fake", help="Folder of synthetic images with the same names.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write per_image.csv, summary.csv/.md/.json here.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="ssim, fsim, gmsd, nrmse; repeatable (default: all).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs scored per batch.")] = 16,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
) -> None:
    """Score synthetic images against real ones (SSIM, FSIM, GMSD, NRMSE), paired by file name."""
    from gbench.profiles import get_profile
    from gbench.quality_eval import METRICS, run_quality, summary_table

    get_profile(profile)
    if real is None or fake is None:
        raise ValueError("gbench quality needs --real DIR and --fake DIR")
    if batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    result = run_quality(real, fake, out, metrics=tuple(metric) if metric else METRICS, profile=profile, seed=seed,
                         batch_size=batch_size)
    console.print(summary_table(result.summary, f"{fake} vs {real} ({len(result.per_image)} pairs)"))
    for f in result.files:
        console.print(f"wrote {f}")


def register(app: typer.Typer) -> None:
    app.command("quality")(quality)
