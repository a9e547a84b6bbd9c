"""``gbench demo mi-gan``: MI-GAN1 on the built-in SiHa-like stacks in minutes, evaluated against
its targets; ``--transfer`` adds the paper's MI-GAN2 transfer claim (several seeds, paired test).

The work is :func:`gbench.pipelines.migan_demo.demo_migan`; this module parses and checks the options.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.cli.commands.common import (DataSeedOpt, DeviceOpt, OverwriteOpt, ProfileOpt, SeedOpt, check_out_folder,
                                        console)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

__all__ = ["register_demo", "demo_migan_cmd", "parse_seeds"]


def parse_seeds(text: str | None, option: str = "--transfer-seeds") -> tuple[int, ...] | None:
    """``"0,1,2"`` -> ``(0, 1, 2)``; None stays None. One-line errors naming ``option``."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{option} must be whole numbers separated by commas (e.g. 0,1,2), got {text!r}") from None
    if not seeds:
        raise ValueError(f"{option} needs at least one seed, got {text!r}")
    if any(not 0 <= s <= 2**32 - 1 for s in seeds):
        raise ValueError(f"{option} must be between 0 and 2**32 - 1, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{option} lists a seed twice: {text!r}")
    return seeds


def demo_migan_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo-migan"),
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    transfer: Annotated[bool, typer.Option("--transfer", help="Also test the paper's transfer claim: MI-GAN2 on "
                                           "synthetic-cells:cancer from MI-GAN1 vs from scratch, several seeds.")] = False,
    transfer_seeds: Annotated[Optional[str], typer.Option("--transfer-seeds", help="Training seeds of the transfer "
                                                          "runs (default 0,...,6: seven, the fewest that can give "
                                                          "'supported' with seeds as units).")] = None,
    device: DeviceOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the runs in --out (finished ones are reused).")] = False,
    overwrite: OverwriteOpt = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="MI-GAN option KEY=VALUE over the profile's "
                                                      "(e.g. upsample=bilinear); repeatable. Applies to MI-GAN1 "
                                                      "and to both sides of --transfer.")] = None,
) -> None:
    """MI-GAN1 on synthetic-cells:siha: train, sample, evaluate (focus peak, inter-plane SSIM, diversity,
    FID/KID against two floors). With --transfer: MI-GAN2 transfer vs scratch on synthetic-cells:cancer."""
    from gbench.core.options import check_device
    from gbench.core.profiles import get_profile
    from gbench.pipelines.migan_demo import demo_migan

    prof = get_profile(profile)
    if set_:
        import dataclasses

        from gbench.core.options import parse_set_options
        from gbench.generators.mi_gan import MIGANConfig, config_for_profile

        prof = dataclasses.replace(prof, migan=prof.migan.with_config(
            **parse_set_options(set_, MIGANConfig, what="MI-GAN option")))
        config_for_profile(prof)  # an invalid combination fails here, in one line
    seeds = parse_seeds(transfer_seeds)
    if seeds is not None and not transfer:
        raise ValueError("--transfer-seeds needs --transfer")
    check_device("--device", device)
    check_out_folder(out, resume=resume, overwrite=overwrite)
    res = demo_migan(out, profile=prof, seed=seed, data_seed=data_seed, console=console, progress=progress,
                     resume=resume, transfer=transfer, transfer_seeds=seeds, device=device)
    ev = res["evaluation"]
    if ev.failure:
        console.print(f"[red]MI-GAN1 run FAILED: {ev.failure}[/]")


def register_demo(demo_app: typer.Typer) -> None:
    demo_app.command("mi-gan")(demo_migan_cmd)
