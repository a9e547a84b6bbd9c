"""Stack generator (MI-GAN) commands: ``gbench train-mi-gan``, ``gbench sample-mi-gan`` and
``gbench quality-multifocus`` (which scores any multi-focus stacks, not only MI-GAN's). The names
``train-migan`` and ``sample-migan`` stay as hidden, deprecated aliases for one release.

Each parses, checks, calls one library function (:func:`generators.mi_gan_train.train_migan`,
:func:`generators.mi_gan_train.sample_to_folder`,
:func:`gbench.pipelines.multifocus.quality_multifocus`) and renders what it returns.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gbench.cli.commands.common import (AmpOpt, ChannelsLastOpt, DataSeedOpt, DeterministicOpt, DeviceOpt, OverwriteOpt,
                                        ProfileOpt, SeedOpt, WorkersOpt, check_out_folder, console, deprecated,
                                        deprecated_command, merge_one, pin_device, with_runtime)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("train-mi-gan")(train_migan_cmd)
    app.command("sample-mi-gan")(sample_migan_cmd)
    app.command("quality-multifocus")(quality_multifocus_cmd)
    deprecated_command(app, "train-migan", "train-mi-gan", train_migan_cmd)
    deprecated_command(app, "sample-migan", "sample-mi-gan", sample_migan_cmd)


# ------------------------------------------------------------------------------------------ commands


def train_migan_cmd(
    data: Annotated[Optional[str], typer.Option("--data", help="Stacks to train on, required: multifocus:PATH, a folder, or the built-in synthetic-cells:siha / synthetic-cells:cancer.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/mi-gan"),
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    split: Annotated[str, typer.Option("--split", help="Split of --data (a flat folder is 'all').")] = "train",
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Fine-tune a trained MI-GAN run (transfer learning, MI-GAN1 -> MI-GAN2).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoints in --out.")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Generator iterations per phase (default: the profile's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Real items per critic update (default: the profile's).")] = None,
    n_train: Annotated[Optional[int], typer.Option("--n-train", help="Built-in training stacks (default: the profile's, migan.train_stacks / cancer_stacks).")] = None,
    n_critic: Annotated[Optional[int], typer.Option("--n-critic", help="Critic updates per generator update (default 5).")] = None,
    critic_norm: Annotated[Optional[str], typer.Option("--critic-norm", help="batch (paper), layer, instance or none (default: the profile's).")] = None,
    device: DeviceOpt = None,
    amp: AmpOpt = None,
    workers: WorkersOpt = None,
    channels_last: ChannelsLastOpt = None,
    deterministic: DeterministicOpt = None,
    overwrite: OverwriteOpt = False,
    steps_g2: Annotated[Optional[int], typer.Option("--steps-g2", help="Generator iterations of G2 (default: --steps, else the profile's).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="MI-GAN option KEY=VALUE (upsample, g2_arch, g2_l1, latent_channels, lr, ...; see generators/mi_gan.py); repeatable.")] = None,
) -> None:
    """Train MI-GAN (G1 then G2, independently, WGAN-GP) on multi-focus cell stacks.

    Under ``--amp bf16`` (the CUDA default) the forwards run in bfloat16 and the gradient penalty in float32;
    ``--amp fp16`` is refused (no loss scaling across the critic's n_critic updates)."""
    from gbench.core.options import check_device, check_positive, parse_set_options
    from gbench.core.profiles import get_profile
    from gbench.generators.mi_gan import MIGANConfig
    from gbench.generators.mi_gan_train import train_migan

    prof = with_runtime(get_profile(profile), amp, workers, channels_last, deterministic)
    for opt, value in (("--steps", steps), ("--steps-g2", steps_g2), ("--batch-size", batch_size),
                       ("--n-train", n_train), ("--n-critic", n_critic)):
        check_positive(opt, value)
    check_device("--device", device)
    overrides: dict[str, Any] = parse_set_options(set_, MIGANConfig, what="MI-GAN option")
    if n_critic is not None:
        overrides["n_critic"] = n_critic
    if critic_norm is not None:
        overrides["critic_norm"] = critic_norm
    if not data:
        raise ValueError("--data is required: the stacks to train on (multifocus:PATH or a folder); use --data "
                         "synthetic-cells:siha for the built-in SiHa stacks")
    check_out_folder(out, resume=resume, overwrite=overwrite, inputs=[("--data", data), ("--init-from", init_from)])

    run = train_migan(data, out, profile=prof, seed=seed, data_seed=data_seed, split=split, init_from=init_from,
                      resume=resume, steps=steps, steps_g2=steps_g2, batch_size=batch_size, n_train=n_train,
                      device=device, **overrides)
    if not run.record:
        return  # a non-zero rank under torchrun: rank 0 wrote and reports
    ph = run.record["phases"]
    for p in ("g1", "g2"):
        console.print(f"{p.upper()}: {ph[p].get('steps', 0)} steps, critic loss {ph[p].get('loss_d_first', float('nan')):.3g} -> "
                      f"{ph[p].get('loss_d_last', float('nan')):.3g}, {ph[p]['wall_time_s']:.1f} s on {ph[p]['device']}")
    console.print(f"wrote {run.model_path}, {run.out_dir / 'samples.png'}, {run.out_dir / 'run.json'}")


def sample_migan_cmd(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="Trained MI-GAN run folder (or its mi-gan.pt).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the synthetic stacks (a multifocus dataset).")],
    count: Annotated[int, typer.Option("--count", "-n", help="Stacks to draw.")] = 16,
    fmt: Annotated[str, typer.Option("--format", help="npy, tif (multi-page) or png (a folder per stack).")] = "npy",
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = False,
    n_old: Annotated[Optional[int], deprecated("--n", "--count (or -n)")] = None,
) -> None:
    """Draw multi-focus stacks from a trained MI-GAN (z -> G1 -> I0 -> G2)."""
    from gbench.core.errors import DataError
    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile
    from gbench.data.multifocus import stack_array
    from gbench.data.resolve import load_stacks
    from gbench.generators.mi_gan_train import sample_to_folder, write_stack_grid

    get_profile(profile)
    n = merge_one(ctx, "count", "n_old")
    check_positive("--count", n)
    if fmt not in ("npy", "tif", "png"):
        raise ValueError(f"--format must be npy, tif or png, got {fmt!r}")
    if not run.exists():
        raise DataError(run, "no such MI-GAN run folder or mi-gan.pt")
    check_out_folder(out, overwrite=overwrite, resumable=False, inputs=[("RUN", run)])
    pin_device(device)  # the generator goes where CUDA is visible: --device decides what that is

    folder = sample_to_folder(run, out, n, seed=seed, fmt=fmt)  # type: ignore[arg-type]
    grid = write_stack_grid(folder / "grid.png", stack_array(load_stacks(folder, split="all"), 8))
    console.print(f"wrote {n} stacks to {folder} (grid: {grid})")


def quality_multifocus_cmd(
    ctx: typer.Context,
    real: Annotated[str, typer.Option("--real", help="Real stacks: synthetic-cells:TYPE, multifocus:PATH or a folder.")],
    fake: Annotated[str, typer.Option("--fake", help="Synthetic stacks (e.g. from gbench sample-mi-gan).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for records, summary and figures.")] = None,
    real_split: Annotated[str, typer.Option("--real-split", help="Split of --real.")] = "test",
    fake_split: Annotated[str, typer.Option("--fake-split", help="Split of --fake.")] = "all",
    extractor: Annotated[str, typer.Option("--extractor", help="random-conv (offline; not comparable with published FID), inception (torch-fidelity's FID network), timm:NAME or inception-v3 (torchvision).")] = "random-conv",
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Local weights file of --extractor (needed for inception-v3 and timm:NAME; inception: default the torch-fidelity cache).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Read at most this many stacks per side (a cap on existing stacks; --count of sample-mi-gan says how many to draw).")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = False,
    inception_weights_old: Annotated[Optional[Path], deprecated("--inception-weights", "--weights")] = None,
) -> None:
    """Per-plane FID/KID, focus curve and inter-plane SSIM of synthetic vs real multi-focus stacks."""
    from rich.table import Table

    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines.multifocus import quality_multifocus

    get_profile(profile)
    inception_weights = merge_one(ctx, "weights", "inception_weights_old")
    check_positive("--limit", limit)
    if extractor not in ("random-conv", "inception-v3", "inception") and not extractor.startswith("timm:"):
        raise ValueError(f"--extractor must be random-conv, inception, timm:NAME or inception-v3, got {extractor!r}")
    if out is not None:
        check_out_folder(out, overwrite=overwrite, resumable=False, inputs=[("--real", real), ("--fake", fake)])
    pin_device(device)  # the feature extractor goes where CUDA is visible: --device decides what that is

    res = quality_multifocus(real, fake, out, profile=profile, seed=seed, data_seed=data_seed, real_split=real_split,
                             fake_split=fake_split,
                             extractor=extractor, inception_weights=inception_weights, limit=limit)
    r = res["result"]
    t = Table(title=f"multi-focus: {fake} vs {real} ({r.extractor})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for row in r.rows:
        if row["plane"] == "all":
            t.add_row(row["metric"], f"{row['value']:.4g}")
    t.caption = r.rows[0]["note"] if r.rows else ""
    console.print(t)
    if res["files"]:
        console.print(f"wrote {', '.join(str(p) for p in res['files'])}")
