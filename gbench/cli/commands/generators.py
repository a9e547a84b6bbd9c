"""``gbench train-gen`` and ``gbench synthesize``: train a generator, draw a synthetic set."""
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
    OverwriteOpt,
    ProfileOpt,
    SeedOpt,
    WorkersOpt,
    check_out_folder,
    console,
    with_runtime,
)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.


def parse_overrides(items: list[str] | None, generator: str | None = None) -> dict[str, Any]:
    """``["ngf=32", "beta=0.5", "norm=instance"]`` -> ``{"ngf": 32, "beta": 0.5, "norm": "instance"}``.

    With ``generator``, each value is checked against the type of its field in the generator's
    config dataclass (whole numbers for ``int``, finite numbers for ``float`` ...; see
    :mod:`gbench.core.options`); without, values are read as JSON when they parse (finite numbers
    only), else kept as strings. Errors are one line naming the option.
    """
    from gbench.core.options import config_class, parse_set_options

    cls = None
    if generator is not None:
        from gbench import generators

        cls = config_class(generators.factory(generator))
    return parse_set_options(items, cls)


def train_gen(
    name: Annotated[str, typer.Argument(help="Image generator: gan-binary, gan-dist, sharp-gan, mask-paint (generators.available()).")],
    data: Annotated[str, typer.Option("--data", help="Training dataset (name or folder); its train split is used.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, samples/, history.csv, run.json.")],
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoints/last.pt.")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total optimiser steps (default: the profile's).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Generator option KEY=VALUE (ngf, ndf, lambda_l1, beta, lam, ...); repeatable.")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="Steps between checkpoints (default: a tenth of the run).")] = None,
    sample_every: Annotated[Optional[int], typer.Option("--sample-every", help="Steps between sample grids (default: a fifth of the run).")] = None,
    device: DeviceOpt = None,
    amp: AmpOpt = None,
    workers: WorkersOpt = None,
    channels_last: ChannelsLastOpt = None,
    deterministic: DeterministicOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train an image generator on the real training split (random crops, flips, rotations); runs under torchrun too.

    Multi-focus stack generators (``mi-gan``) train with ``gbench train-mi-gan``."""
    from gbench import generators
    from gbench.core.options import check_device, check_positive
    from gbench.core.profiles import get_profile
    from gbench.generators.train import train_generator

    generators.factory(name)  # unknown generator: one line with suggestions
    prof = with_runtime(get_profile(profile), amp, workers, channels_last, deterministic)
    overrides = parse_overrides(set_, name)
    for opt, value in (("--steps", steps), ("--checkpoint-every", checkpoint_every), ("--sample-every", sample_every)):
        check_positive(opt, value)
    check_device("--device", device)
    check_out_folder(out, resume=resume, overwrite=overwrite, inputs=[("--data", data)])

    res = train_generator(name, data, out, profile=prof, seed=seed, resume=resume, steps=steps,
                          overrides=overrides, checkpoint_every=checkpoint_every,
                          sample_every=sample_every, device=device, overwrite=overwrite, data_seed=data_seed)
    if res.run_json is None:  # a DDP rank other than 0
        return
    hist = res.fit.history
    if hist:
        last = {k: v for k, v in hist[-1].items() if k != "step"}
        console.print("last step: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))
    console.print(f"{res.fit.steps} steps ({res.fit.start_step} resumed) in {res.fit.wall_time_s:.1f} s on {res.fit.device}")
    console.print(f"checkpoint: {res.checkpoint}")
    if res.samples:
        console.print(f"samples: {res.samples[-1]}")
    console.print(f"run manifest: {res.run_json}")


def synthesize(
    name: Annotated[str, typer.Argument(help="Generator name (must match the checkpoint).")],
    out: Annotated[Path, typer.Option("--out", help="Set folder (images/, labels/, manifest.csv, run.json).")],
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="checkpoints/last.pt from gbench train-gen; for a frozen plugin generator its own weights file (default: its default weights).")] = None,
    count: Annotated[Optional[int], typer.Option("--count", "-n", help="Samples in the set.")] = None,
    set_name: Annotated[Optional[str], typer.Option("--set-name", help="S3k or S10k: take --count from the profile.")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="Fit the mask statistics to this dataset's train split.")] = None,
    masks: Annotated[Optional[Path], typer.Option("--masks", help="Draw from your own instance maps instead: a folder of label files (labels/ inside it when present, e.g. from gbench maps sample), one square size, in name order; --count defaults to their number.")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Image side (default: the profile's image size).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Generator batch (default: the profile's).")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    device: DeviceOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue (or extend) the set already in --out.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Draw nucleus masks, run the generator on them and write image/label pairs (resumable with --resume)."""
    from gbench.core.options import check_device, check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines.synthesis import synthesize as run

    prof = get_profile(profile)
    if masks is not None and data is not None:
        raise ValueError("--masks draws from your own maps; --data fits drawn masks: give one of them")
    if masks is not None and count is None and set_name is None:
        from gbench.pipelines.synthesis import count_masks

        count = count_masks(masks)
    if count is None and set_name is None:
        raise ValueError("gbench synthesize needs --count N or --set-name S3k|S10k")
    for opt, value in (("--count", count), ("--size", size), ("--batch-size", batch_size)):
        check_positive(opt, value)
    check_device("--device", device)
    if count is None:
        count = prof.synthetic_count(str(set_name))
    if checkpoint is None:
        from gbench import generators

        if not generators.is_frozen(name):  # unknown name: one line with suggestions
            raise ValueError(f"generator {name!r} needs --checkpoint (checkpoints/last.pt written by gbench train-gen)")
    elif not checkpoint.is_file():
        from gbench.core.errors import DataError

        raise DataError(checkpoint, "--checkpoint: no such file" if not checkpoint.exists() else "--checkpoint: not a file")
    check_out_folder(out, resume=resume, overwrite=overwrite, inputs=[("--checkpoint", checkpoint), ("--data", data), ("--masks", masks)])
    res = run(name, checkpoint, count, out, seed=seed, profile=prof, data=data, size=size, batch_size=batch_size,
              device=device, data_seed=data_seed, masks=masks)
    console.print(f"{res.count} samples in {res.out} ({res.generated} made now, {res.count - res.generated} already there)")
    if res.generated:
        console.print(f"{res.images_per_s:.2f} images/s overall, {res.generator_images_per_s:.2f} images/s in the generator")
    console.print(f"manifest: {res.manifest}")


def register(app: typer.Typer) -> None:
    app.command("train-gen")(train_gen)
    app.command("synthesize")(synthesize)
