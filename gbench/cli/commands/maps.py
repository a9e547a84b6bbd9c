"""``gbench maps export`` and ``gbench maps sample``: conditioning maps for generators outside gbench.

Layout of ``--out`` (both commands; ``sample`` has no ``images/`` and its crops are whole maps)::

    images/<tile>@y<Y>x<X>.png   the real test crop, RGB 8 bit (export only)
    labels/<name>.png            instance map, 16-bit gray PNG (0 = background, 1..n = nuclei)
    binary/<name>.png            binary mask, 8-bit gray, 0 or 255
    distance/<name>.npy          Sharp-GAN distance map, float32 (H, W) in [0, 1]
    contour/<name>.png           contour map, 8-bit gray, 0 or 255
    manifest.csv                 name, tile, y, x, size, image, label, binary, distance, contour
    maps.json                    crop size, test-set hash, profile, dataset, split, data seed (export);
                                 seed and fitted mask statistics (sample); written last

Round trip of an outside generator: ``gbench maps export --data D --profile P --out M``; draw one
image per crop from M's maps with any framework, saved as ``FAKE/<tile>@y<Y>x<X>.png``; then
``gbench quality --data D --profile P --fake FAKE --label NAME --out Q`` gives a Table 1 row with
the crops, resampling units and test-set hash of ``gbench quality --generator``.
See :mod:`gbench.pipelines.maps`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.cli.commands.common import DataSeedOpt, OverwriteOpt, ProfileOpt, SeedOpt, check_out_folder, console

# Imports inside the command functions are deliberate: `gbench --help` answers without torch.

maps_app = typer.Typer(help="Conditioning maps for generators outside gbench: export the Table 1 test crops' "
                            "maps, or sample nucleus maps fitted to a dataset.", no_args_is_help=True)


@maps_app.command("export")
def export(
    data: Annotated[str, typer.Option("--data", help="Dataset (name or folder) whose crops Table 1 scores.")],
    out: Annotated[Path, typer.Option("--out", help="New folder: images/, labels/, binary/, distance/, contour/, "
                                                    "manifest.csv, maps.json.")],
    split: Annotated[str, typer.Option("--split", help="Split whose tiles are cut into crops (Table 1: test).")] = "test",
    profile: ProfileOpt = "demo",
    data_seed: DataSeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write exactly the crops that Table 1 scores (quality --generator) with their instance, binary, distance and contour maps.

    Every tile of --split is cut into grid crops of the profile's evaluation crop side (tiles smaller than a
    crop are mirror-padded; the last crop of a row or column is flush with the edge); crop <tile>@y<Y>x<X> starts
    at row Y, column X of <tile>.

    Layout: images/<crop>.png (real crop, RGB 8 bit), labels/<crop>.png (instance ids, 16-bit gray, 0 =
    background), binary/<crop>.png and contour/<crop>.png (8-bit gray, 0 or 255), distance/<crop>.npy (float32
    in [0, 1]), manifest.csv (name, tile, y, x, size and the paths), maps.json (crop size, test-set hash,
    profile, dataset, split, data seed; written last).

    Draw one image per crop, name it <crop>.png in a folder, then score it as a Table 1 row:
    gbench quality --data D --profile P --fake FOLDER --label NAME (same units and test-set hash as
    quality --generator, so gbench compare works between them).
    """
    from gbench.core.profiles import get_profile
    from gbench.pipelines.maps import export_maps

    prof = get_profile(profile)
    check_out_folder(out, overwrite=overwrite, resumable=False, inputs=[("--data", data)])
    res = export_maps(data, out, split=split, profile=prof, data_seed=data_seed)
    console.print(f"{res.count} crops of {res.meta['crop_size']} px from {res.meta['tiles']} {split} tiles of "
                  f"{res.meta['dataset']} (test set {res.test_set}, profile {prof.name}) in {res.out}")
    console.print(f"manifest: {res.out / 'manifest.csv'}")


@maps_app.command("sample")
def sample(
    data: Annotated[str, typer.Option("--data", help="Dataset (name or folder) whose training split the nucleus statistics are fitted to.")],
    count: Annotated[int, typer.Option("--count", "-n", help="How many instance maps.")],
    out: Annotated[Path, typer.Option("--out", help="New folder: labels/, binary/, distance/, contour/, manifest.csv, maps.json.")],
    size: Annotated[Optional[int], typer.Option("--size", help="Side of a map (default: the profile's synthesis image size).")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write nucleus instance maps fitted to a dataset, with their binary, distance and contour maps: the input of a synthetic set.

    Map k is drawn from (--seed, k) by the procedural mask generator (Hou et al. 2019) under statistics fitted
    to --data's training split (the masks gbench synthesize --data D --seed S draws), named mask-s<seed>-<k:06d>.
    Layout as maps export, without images/. gbench synthesize NAME --masks OUT draws a set from them.
    """
    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines.maps import sample_maps

    prof = get_profile(profile)
    check_positive("--count", count)
    check_positive("--size", size)
    check_out_folder(out, overwrite=overwrite, resumable=False, inputs=[("--data", data)])
    res = sample_maps(data, count, out, seed=seed, profile=prof, data_seed=data_seed, size=size)
    console.print(f"{res.count} instance maps of {res.meta['size']} px fitted to {res.meta['dataset']} in {res.out}")
    console.print(f"manifest: {res.out / 'manifest.csv'}")


def register(app: typer.Typer) -> None:
    app.add_typer(maps_app, name="maps")
