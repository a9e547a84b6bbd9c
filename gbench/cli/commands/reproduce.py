"""``gbench reproduce``: a paper's whole pipeline, stage-cached."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.cli.commands.common import (
    AmpOpt,
    ChannelsLastOpt,
    ConfigOpt,
    DataSeedOpt,
    DeterministicOpt,
    DeviceOpt,
    ExecutorOpt,
    JobsOpt,
    ProfileOpt,
    RayAddressOpt,
    SeedOpt,
    WorkersOpt,
    check_executor,
    console,
    deprecated,
    merge_list,
    pin_device,
    require_data,
    resolved_options,
    with_runtime,
    write_run_json,
)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.


def _ints(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        seeds = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if any(not 0 <= s <= 2**32 - 1 for s in seeds):
        raise ValueError(f"--seeds takes whole numbers between 0 and 2**32 - 1, got {text!r}")
    return seeds


def _names(values: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """Repeated and comma-separated names (None: ``default``)."""
    from gbench.cli.commands.common import split_list

    return default if values is None else tuple(split_list(values))


def reproduce(
    ctx: typer.Context,
    paper: Annotated[str, typer.Argument(help="Which paper: sharp-gan.")] = "sharp-gan",
    data: Annotated[Optional[str], typer.Option("--data", help="Real dataset (name or folder), required. The built-in procedural tiles: --data synthetic-he.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder (stages/, records.csv, report/).")] = Path("runs/reproduce"),
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Segmentation training seeds, e.g. 0,1,2 (default: the profile's); the test images stay those of --data-seed.")] = None,
    generator: Annotated[Optional[list[str]], typer.Option("--generator", help="Generator(s) to train and draw with, comma-separated or repeated (default: all three).")] = None,
    arch: Annotated[Optional[list[str]], typer.Option("--arch", help="Segmenter(s), comma-separated or repeated (default: segnet,unet).")] = None,
    train: Annotated[Optional[list[str]], typer.Option("--train", help="Training set(s), comma-separated or repeated (default: R,S3k,R+S3k,S10k,R+S10k): R, the paper's S3k / S10k (drawn by Sharp-GAN, scaled down under smaller profiles), a set named with --synthetic (NAME, or NAME:COUNT for its first COUNT images), or a +-join.")] = None,
    synthetic: Annotated[Optional[list[str]], typer.Option("--synthetic", help="NAME=DIR: your own synthetic set (images/ and labels/), trained on beside the drawn one, e.g. --synthetic mine=runs/mine --train R,R+S3k,R+mine; repeatable.")] = None,
    gen_steps: Annotated[Optional[int], typer.Option("--gen-steps", help="Generator steps (default: the profile's schedule).")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    amp: AmpOpt = None,
    workers: WorkersOpt = None,
    channels_last: ChannelsLastOpt = None,
    deterministic: DeterministicOpt = None,
    executor: ExecutorOpt = "sequential",
    jobs: JobsOpt = None,
    ray_address: RayAddressOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    generators_old: Annotated[Optional[str], deprecated("--generators", "--generator (repeatable) or --generator a,b")] = None,
    archs_old: Annotated[Optional[str], deprecated("--archs", "--arch (repeatable) or --arch a,b")] = None,
) -> None:
    """Run a paper's whole pipeline (train generators, synthesize, Table 1, segmentation, Table 2,
    report); every stage is cached by a hash of its inputs and config. The options (after --config
    and the command line) and the resolved profile are written to OUT/run.json."""
    from gbench.pipelines import reproduce as rp

    if paper != "sharp-gan":
        raise ValueError(f"unknown paper {paper!r}: gbench reproduce knows sharp-gan "
                         "(MI-GAN has no tables to reproduce; see gbench train-mi-gan)")
    from gbench.cli.commands.common import check_out_folder
    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile

    prof = with_runtime(get_profile(profile), amp, workers, channels_last, deterministic)
    generators, archs = merge_list(generator, generators_old), merge_list(arch, archs_old)
    check_positive("--gen-steps", gen_steps)
    check_executor(executor, jobs, ray_address)
    from gbench import generators as gens
    from gbench import segmentation
    from gbench.segmentation.sets import parse_synthetic_options, parse_train_spec, resolve_part

    for name in _names(generators, rp.GENERATORS):
        gens.is_frozen(name)  # an unknown name fails now (with suggestions), not after the first stages
    for a in _names(archs, rp.ARCHS):
        segmentation.SEGMENTERS.get(a)
    sources = parse_synthetic_options(synthetic)
    if sources.folder is not None:
        raise ValueError(f"--synthetic {sources.folder}: reproduce draws the paper's S3k / S10k itself; name your "
                         "own set instead (--synthetic NAME=DIR, then --train R+NAME)")
    specs = [parse_train_spec(t, named=sources.names) for t in _names(train, rp.TRAIN_SETS)]
    _ints(seeds)
    data = require_data(data)
    pin_device(device)  # every stage picks its device itself: --device decides what it can see
    for spec in specs:
        for part in spec.named:  # a missing or too small set fails now, not after the generators trained
            resolve_part(part, prof, sources)
    # no overwrite rule here: the run folder is a stage cache, and running again continues it (resume);
    # the folder is still locked (one writer) and must lie outside --data
    check_out_folder(out, resume=True, inputs=[("--data", data), *(("--synthetic", d) for _, d in sources.named)])
    write_run_json(out, {**resolved_options(ctx, prof), "synthetic_sets": sources.to_dict()})
    res = rp.reproduce_sharp_gan(data=data, profile=prof, seed=seed, out=out, seeds=_ints(seeds),
                                 generators=_names(generators, rp.GENERATORS), archs=_names(archs, rp.ARCHS),
                                 train_sets=_names(train, rp.TRAIN_SETS), gen_steps=gen_steps, console=console,
                                 data_seed=data_seed, executor=executor, jobs=jobs, address=ray_address,
                                 synthetic_sets=dict(sources.named))
    done = sum(not s["skipped"] for s in res.stages)
    console.print(f"{len(res.stages)} stages ({done} run, {len(res.stages) - done} cached) in {res.seconds:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
