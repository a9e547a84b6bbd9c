"""``gbench data``: list, inspect and preview datasets."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.cli.commands.common import DataSeedOpt, OverwriteOpt, ProfileOpt, SeedOpt, SplitOpt, console

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

data_app = typer.Typer(help="Datasets: list, inspect, preview.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


# ---------------------------------------------------------------------------------------------- data

@data_app.command("list")
def data_list() -> None:
    """List the loaders, the built-in datasets and the real datasets gbench knows by name."""
    from gbench.pipelines import runner

    console.print(runner.data_list_table())


@data_app.command("inspect")
def data_inspect(
    dataset: Annotated[str, typer.Argument(help="Dataset name or folder (see `gbench data list`).")],
    split: SplitOpt = "train",
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write summary.json, per_image.csv and summary.md here.")] = None,
    data_seed: DataSeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Counts, sizes, nuclei per image and nucleus-area statistics as a table."""
    from gbench.cli.commands.common import check_out_folder
    from gbench.core.profiles import get_profile
    from gbench.pipelines import runner

    prof = get_profile(profile)
    if out is not None:
        check_out_folder(out, overwrite=overwrite, resumable=False, inputs=[("DATASET", dataset)])

    result = runner.inspect_dataset(dataset, split=split, profile=prof, seed=seed, out=out, data_seed=data_seed)
    console.print(result.table)
    if out is not None:
        console.print(f"wrote {', '.join(str(p) for p in result.files)}")


@data_app.command("preview")
def data_preview(
    dataset: Annotated[str, typer.Argument(help="Dataset name or folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")],
    split: SplitOpt = "train",
    count: Annotated[Optional[int], typer.Option("--count", "-n", help="Samples on the sheet (default: the profile's).")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Centre-crop each sample to this size (default: the profile's image size for tiles larger than twice it).")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
) -> None:
    """A sheet of image, instances, binary mask, distance map and contour map for a few samples."""
    from gbench.cli.commands.common import check_out_path
    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines import runner

    prof = get_profile(profile)
    check_positive("--count", count)
    check_positive("--crop", crop)
    check_out_path(output, "-o/--output", folder=False)

    path = runner.preview_dataset(dataset, output, split=split, count=count, crop=crop, profile=prof, seed=seed,
                                  data_seed=data_seed)
    console.print(f"wrote {path}")


