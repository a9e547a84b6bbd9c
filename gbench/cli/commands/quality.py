"""``gbench quality``: image quality of synthetic images against real ones."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.cli.commands.common import (
    ConfigOpt,
    DataSeedOpt,
    DeviceOpt,
    JsonOpt,
    OverwriteOpt,
    ProfileOpt,
    SeedOpt,
    check_out_folder,
    console,
    distribution_metric_hint,
    emit_json,
    json_mode,
    pin_device,
    split_list,
)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.


def quality(
    real: Annotated[Optional[Path], typer.Option("--real", help="Folder of real images (flat or images/); with --unpaired also a dataset name or layout (its --split cut into the Table 1 crops).")] = None,
    fake: Annotated[Optional[Path], typer.Option("--fake", help="Folder of synthetic images: with --real, the same file stems (unless --unpaired); with --data, one image per exported crop (gbench maps export), named <tile>@y<Y>x<X>.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write per_image.csv, summary.csv/.md/.json here.")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="ssim, fsim, gmsd, nrmse; repeatable (default: all).")] = None,
    generator: Annotated[Optional[list[str]], typer.Option("--generator", help="Score trained generator(s) on the real test split's own maps (Table 1 protocol); comma-separated or repeated.")] = None,
    checkpoint: Annotated[Optional[list[str]], typer.Option("--checkpoint", help="Checkpoint of each --generator, in the same order (a frozen plugin generator: its own weights file, or none for its default weights).")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="Real dataset whose test split is scored (with --generator, or with --fake: a folder drawn from gbench maps export).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="Name of the --fake folder's row (the records' model; default: the folder's name).")] = None,
    units: Annotated[str, typer.Option("--units", help="Resampling units of --fake images: tile (default: a name <tile>@y<Y>x<X> belongs to <tile>, the part before the first @; other names are their own unit), image (each its own unit) or FILE.csv with columns name,unit.")] = "tile",
    unpaired: Annotated[bool, typer.Option("--unpaired", help="Distribution metrics only (needs --extractor and/or --stain): --real and --fake may hold any numbers of images, nothing is paired.")] = False,
    split: Annotated[str, typer.Option("--split", help="Split of --data (or of a dataset given to --real --unpaired) whose crops are scored.")] = "test",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs scored per batch.")] = 16,
    extractor: Annotated[Optional[str], typer.Option("--extractor", help="Add FID, KID, precision/recall, density/coverage on this extractor's features: inception (torch-fidelity's FID weights: --weights or its cache), timm:NAME (--weights FILE) or random-conv (offline; not comparable with published FID).")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Local weights file of --extractor (nothing is downloaded).")] = None,
    kid_subsets: Annotated[int, typer.Option("--kid-subsets", help="KID: random subsets (when a set exceeds --kid-subset-size).")] = 100,
    kid_subset_size: Annotated[int, typer.Option("--kid-subset-size", help="KID: samples per subset; sets no larger are used whole.")] = 1000,
    stain: Annotated[bool, typer.Option("--stain", help="Stain statistics: hematoxylin/eosin (rgb2hed) inside and outside nuclei, real vs synthetic (Wasserstein-1) and a figure.")] = False,
    conventions: Annotated[bool, typer.Option("--conventions", help="Also score the pairs under each common convention of each metric (scikit-image, piq, torchmetrics, MATLAB ssim.m ...), side by side.")] = False,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    data_seed: DataSeedOpt = 0,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score synthetic images against real ones: SSIM, FSIM, GMSD, NRMSE per pair; FID, KID, precision/recall, density/coverage and stain with --extractor / --stain.

    Routes: --real DIR --fake DIR (pairs by file stem); --data D --fake DIR --label NAME (a folder drawn
    from `gbench maps export --data D`, scored as a Table 1 row: same crops, units and test-set hash as
    --generator, so `gbench compare` pairs them); --generator NAME --checkpoint PATH --data D; --real D_OR_DIR
    --fake DIR --unpaired --extractor NAME (any counts on each side).

    Which metrics need pairs: SSIM, FSIM, GMSD and NRMSE (and --conventions) compare each synthetic image with
    its own real partner and need pairs; FID, KID, precision/recall, density/coverage and --stain compare two
    distributions and do not (--unpaired).
    """
    from gbench.core.options import check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines.quality import METRICS, run_quality, summary_table

    json_mode(json_out)
    get_profile(profile)
    metrics = tuple(metric) if metric else METRICS
    unknown = [m for m in metrics if m not in METRICS]
    for m in unknown:
        hint = distribution_metric_hint(m)
        if hint:
            raise ValueError(f"--metric {m}: {hint}; --metric picks the paired metrics ({', '.join(METRICS)})")
    if unknown:
        raise ValueError(f"--metric {unknown[0]!r}: unknown metric (known: {', '.join(METRICS)})")
    check_positive("--batch-size", batch_size)
    check_positive("--kid-subsets", kid_subsets)
    if kid_subset_size < 2:
        raise ValueError(f"--kid-subset-size must be at least 2, got {kid_subset_size}")
    if weights is not None and extractor is None:
        raise ValueError("--weights needs --extractor (inception or timm:NAME)")
    if units not in ("tile", "image") and not (units.lower().endswith(".csv") and Path(units).is_file()):
        raise ValueError(f"--units must be tile, image or an existing CSV file with columns name,unit, got {units!r}")
    dev = pin_device(device)  # the generators and metrics pick their device themselves: --device decides what they see
    generator = split_list(generator) or None
    ext = None
    if extractor is not None:
        from gbench.metrics.features import build_extractor

        ext = build_extractor(extractor, weights, seed=seed, device=dev)  # a missing weights file: one line, nothing written
    twice = sorted({g for g in generator or [] if (generator or []).count(g) > 1})
    if twice:  # one row per generator name: a second one would replace the first in the table and records
        raise ValueError(f"--generator {twice[0]} given twice: each generator is one row of the table; score its "
                         "other checkpoint in a second run (another --out)")
    if out is not None:
        check_out_folder(out, overwrite=overwrite, resumable=False,
                         inputs=[("--real", real), ("--fake", fake), ("--data", data),
                                 *(("--checkpoint", c) for c in checkpoint or [])])
    if generator:
        if real is not None or fake is not None:
            raise ValueError("use either --real/--fake or --generator/--checkpoint/--data, not both")
        res = _quality_generators(generator, checkpoint or [], data, out, metrics, profile, seed, batch_size,
                                  data_seed, extractor=ext, stain=stain, conventions=conventions,
                                  kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
        if json_out:
            emit_json({"command": "quality", "route": "generator", "records": res.records, "files": res.files,
                       "diagnostics": {n: _json_diagnostics(g.diagnostics) for n, g in res.per_generator.items()}})
        return
    if unpaired:
        ures = _quality_unpaired(real, fake, out, ext, weights, stain, conventions, label, profile, seed, data_seed,
                                 split, batch_size, kid_subsets, kid_subset_size, data)
        if json_out:
            emit_json({"command": "quality", "route": "unpaired", "n_real": ures.n_real, "n_fake": ures.n_fake,
                       "records": ures.records, "diagnostics": _json_diagnostics(ures.diagnostics),
                       "files": ures.files})
        return
    if data is not None and fake is not None:
        if real is not None:
            raise ValueError("use either --real/--fake or --data/--fake (a folder drawn from gbench maps export), not both")
        from gbench.pipelines.quality import run_quality_data

        result = run_quality_data(data, fake, out, label=label, metrics=metrics, profile=profile, seed=seed,
                                  data_seed=data_seed, split=split, batch_size=batch_size, units=units, extractor=ext,
                                  stain=stain, conventions=conventions, kid_subsets=kid_subsets,
                                  kid_subset_size=kid_subset_size)
        what = f"{label or fake.name} on {data} ({split})"
        console.print(summary_table(result.summary, f"{what}: {len(result.per_image)} test crops"))
        if result.records["status"].iloc[0] == "failed":
            console.print(f"[red]{label or fake.name}: failed run ({result.records['failure'].iloc[0]})[/]")
        _print_diagnostics(result.diagnostics, what)
        for f in result.files:
            console.print(f"wrote {f}")
        if json_out:
            _emit_result("data", result)
        return
    if real is None or fake is None:
        raise ValueError("gbench quality needs --real DIR and --fake DIR, --data D and --fake DIR, "
                         "or --generator NAME --checkpoint PATH --data D")
    if batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    result = run_quality(real, fake, out, metrics=metrics, profile=profile, seed=seed,
                         batch_size=batch_size, extractor=ext, stain=stain, conventions=conventions,
                         kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, label=label, units=units)
    console.print(summary_table(result.summary, f"{fake} vs {real} ({len(result.per_image)} pairs)"))
    _print_diagnostics(result.diagnostics, f"{fake} vs {real}")
    for f in result.files:
        console.print(f"wrote {f}")
    if json_out:
        _emit_result("pairs", result)


def _json_diagnostics(found: dict | None) -> dict:
    """The distribution metrics, stain distances and conventions as JSON-ready tables."""
    keep = ("distribution", "stain", "conventions")  # not the histograms and per-pair values behind them
    return {k: v for k, v in (found or {}).items() if v is not None and k in keep}


def _emit_result(route: str, result: object) -> None:
    """``--json`` of a paired route: summary.csv's rows, the records and the diagnostics."""
    emit_json({"command": "quality", "route": route, "n": len(result.per_image),  # type: ignore[attr-defined]
               "summary": result.summary, "records": result.records,  # type: ignore[attr-defined]
               "diagnostics": _json_diagnostics(result.diagnostics),  # type: ignore[attr-defined]
               "files": result.files})  # type: ignore[attr-defined]


def _quality_unpaired(real: Path | None, fake: Path | None, out: Path | None, ext: object, weights: Path | None,
                      stain: bool, conventions: bool, label: str | None, profile: str, seed: int, data_seed: int,
                      split: str, batch_size: int, kid_subsets: int, kid_subset_size: int, data: str | None) -> object:
    """``--unpaired``: :func:`gbench.pipelines.quality.run_unpaired`."""
    from gbench.pipelines.quality import run_unpaired

    if real is None or fake is None:
        raise ValueError("--unpaired needs --real (a folder of images, a dataset name or layout) and --fake DIR")
    if data is not None:
        raise ValueError("--unpaired takes the real set from --real (a dataset name works there), not --data")
    if ext is None and not stain:
        raise ValueError("--unpaired computes FID, KID, precision/recall, density/coverage (--extractor) and stain "
                         "(--stain): give at least one; SSIM, FSIM, GMSD and NRMSE need pairs")
    if conventions:
        raise ValueError("--conventions scores pairs: it does not apply to --unpaired")
    res = run_unpaired(str(real), fake, out, extractor=ext, weights=weights, stain=stain, label=label,
                       profile=profile, seed=seed, data_seed=data_seed, split=split, batch_size=batch_size,
                       kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
    _print_diagnostics(res.diagnostics, f"{label or fake.name} vs {real} ({res.n_fake} synthetic, {res.n_real} real)")
    for f in res.files:
        console.print(f"wrote {f}")
    return res


def _print_diagnostics(found: dict | None, what: str) -> None:
    """The distribution metrics, stain distances and conventions side by side, when computed."""
    if not found:
        return
    from gbench.pipelines.diagnostics import conventions_rich, distribution_table, stain_table

    if found.get("distribution") is not None:
        console.print(distribution_table(found["distribution"], f"Distribution metrics: {what}"))
    if found.get("stain") is not None:
        console.print(stain_table(found["stain"], f"Stain statistics: {what}"))
    if found.get("conventions") is not None:
        console.print(conventions_rich(found["conventions"], f"Conventions side by side: {what}"))


def _quality_generators(names: list[str], checkpoints: list[str], data: str | None, out: Path | None,
                        metrics: tuple[str, ...], profile: str, seed: int, batch_size: int,
                        data_seed: int = 0, extractor: object = None, stain: bool = False,
                        conventions: bool = False, kid_subsets: int = 100, kid_subset_size: int = 1000) -> object:
    """Table 1 protocol for one or more generators (:func:`gbench.pipelines.generator_eval.score_generators`):
    one table, one record file and the per-crop observations behind its confidence intervals."""
    from gbench.pipelines.generator_eval import score_generators
    from gbench.reports.render import to_rich
    from gbench.reports.tables import pivot_by_kind

    if data is None:
        raise ValueError("--generator needs --data (the real dataset whose test split is scored)")
    from gbench.pipelines.generator_eval import pair_checkpoints

    ckpts = pair_checkpoints(names, checkpoints)  # frozen generators may go without (their default weights)
    res = score_generators(names, ckpts, data, profile, seed, out=out, data_seed=data_seed, metrics=metrics,
                           batch_size=batch_size, extractor=extractor, stain=stain, conventions=conventions,
                           kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
    for name, found in res.per_generator.items():
        _print_diagnostics(found.diagnostics, name)
        if found.records["status"].iloc[0] == "failed":
            console.print(f"[red]{name}: failed run ({found.records['failure'].iloc[0]})[/]")
    for table in pivot_by_kind(res.records, res.observations, replicates=res.replicates):  # CIs, paired floor tests
        console.print(to_rich(table, precision=4))
    for f in res.files:
        console.print(f"wrote {f}")
    return res


def register(app: typer.Typer) -> None:
    app.command("quality")(quality)
