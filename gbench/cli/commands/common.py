"""Options and consoles shared by every command module."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

console = Console()
err_console = Console(stderr=True)

ProfileOpt = Annotated[str, typer.Option("--profile", help="Run profile: smoke, demo or paper.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (recorded with every result).")]
SplitOpt = Annotated[str, typer.Option("--split", help="train, test or all.")]
DataSeedOpt = Annotated[int, typer.Option(
    "--data-seed", help="Seed of the built-in data: which tiles, crops and masks exist (default 0). Never the "
                        "training seed, so runs with different --seed values are tested on the same images.")]

OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace what the output folder holds (its previous contents are deleted first).")]

# How training runs on the device (gbench.core.runtime.Runtime); None: auto for the device.
AmpOpt = Annotated[Optional[str], typer.Option(
    "--amp", help="Mixed precision of training: bf16, fp16 or off [default: bf16 on CUDA, off on the CPU].")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", help="DataLoader worker processes building training batches (same batches whatever the number) "
                      "[default: 0 on the CPU; on CUDA min(8, CPUs per GPU - 1)].")]
ChannelsLastOpt = Annotated[Optional[bool], typer.Option(
    "--channels-last/--no-channels-last", help="NHWC memory format for training [default: on with CUDA].")]
DeterministicOpt = Annotated[Optional[bool], typer.Option(
    "--deterministic/--no-deterministic", help="Deterministic algorithms; off lets cudnn.benchmark pick the fastest "
                                               "kernels [default: on for the CPU, off on CUDA].")]


def with_runtime(prof: Any, amp: str | None, workers: int | None, channels_last: bool | None,
                 deterministic: bool | None) -> Any:
    """``prof`` with the runtime options given on the command line (a bad value: one line, exit 2)."""
    import dataclasses

    from gbench.core.runtime import Runtime

    return dataclasses.replace(prof, runtime=Runtime(amp=amp, channels_last=channels_last, workers=workers,
                                                     deterministic=deterministic))

# Where independent stages / cells run (gbench.pipelines.executor).
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help="sequential, local (independent stages / grid cells at once: one per GPU, --jobs on the CPU) "
                       "or ray (each a Ray task).")]
JobsOpt = Annotated[Optional[int], typer.Option(
    "--jobs", help="local: stages / cells at once on the CPU (default: one per visible GPU, else 1); ray: CPUs of "
                   "the local Ray instance.")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", help="ray: an existing cluster ('auto' or ray://host:port); default: a local instance.")]


def check_executor(executor: str, jobs: int | None, ray_address: str | None) -> None:
    """Reject a bad ``--executor`` / ``--jobs`` / ``--ray-address`` combination (one line, exit 2)."""
    from gbench.core.options import check_positive
    from gbench.pipelines.executor import EXECUTORS

    check_positive("--jobs", jobs)
    if executor not in EXECUTORS:
        raise ValueError(f"--executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    if ray_address is not None and executor != "ray":
        raise ValueError("--ray-address needs --executor ray")
    if jobs is not None and executor == "sequential":
        raise ValueError("--jobs needs --executor local or ray")


#: Files or folders that mark a folder as gbench output (``--overwrite`` empties only such folders).
OUTPUT_MARKERS = ("run.json", "summary.json", "summary.csv", "manifest.json", "manifest.csv", "records.csv",
                  "results.csv", "stage.json", "per_image.csv", "per_crop.csv", "history.csv", "report.html",
                  "checkpoints", "mi-gan.pt", "samples", "validation.json", "result.json", "stages")


def _ignored(name: str) -> bool:
    from gbench.core.fileio import is_temp_name

    return name == ".gbench.lock" or is_temp_name(name)


def folder_is_empty(folder: Path) -> bool:
    """True when ``folder`` is absent or holds nothing but gbench's lock file and orphan temp files."""
    if not folder.exists():
        return True
    return all(_ignored(p.name) for p in folder.iterdir())


def check_out_path(path: Path, option: str, *, folder: bool) -> None:
    """Refuse an output path that cannot be written: a file where a folder is needed (or the
    reverse), or a path below a file. One line naming the option and the path."""
    from gbench.core.errors import DataError

    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise DataError(path, f"{option}: {parent} is a file, not a folder")
    if folder and path.exists() and not path.is_dir():
        raise DataError(path, f"{option} must name a folder, but this is an existing file")
    if not folder and path.is_dir():
        raise DataError(path, f"{option} must name a file, but this is a folder")


def check_out_folder(out: Path, *, resume: bool = False, overwrite: bool = False, resumable: bool = True,
                     option: str = "--out") -> None:
    """The overwrite rule, checked before any work: a command that writes a run folder refuses
    one that already holds something, unless ``--resume`` (continue it; resumable commands
    only) or ``--overwrite`` (delete its contents and start again) is given.

    ``--overwrite`` empties only a folder that looks like gbench output (it holds one of
    :data:`OUTPUT_MARKERS`), so a mistyped ``--out ~`` cannot delete unrelated files.

    Raises:
        DataError: one line naming the folder (exit 2); nothing is changed.
    """
    import shutil

    from gbench.core.errors import DataError

    out = Path(out)
    check_out_path(out, option, folder=True)
    if resume and overwrite:
        raise DataError(out, "give either --resume or --overwrite, not both")
    if folder_is_empty(out) or (resume and resumable):
        return
    if not overwrite:
        how = "--resume to continue it or --overwrite to replace it" if resumable else "--overwrite to replace it"
        raise DataError(out, f"{option} folder already holds results; use {how} (or another {option})")
    if not any((out / m).exists() for m in OUTPUT_MARKERS):
        raise DataError(out, f"--overwrite: this folder does not look like gbench output (none of run.json, "
                             "summary.json, manifest.csv, records.csv ...); delete it yourself or choose another "
                             f"{option}")
    import os

    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 empties the folder
    for p in sorted(out.iterdir()):
        if p.name == ".gbench.lock":
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
