"""``gbench segment``: the Sharp-GAN Table 2 protocol (U-Net / SegNet x R, S3k, R+S3k, S10k, R+S10k)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

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
    JsonOpt,
    OverwriteOpt,
    ProfileOpt,
    RayAddressOpt,
    SeedOpt,
    WorkersOpt,
    check_executor,
    check_out_folder,
    console,
    emit_json,
    json_mode,
    require_data,
    resolved_options,
    split_list,
    with_runtime,
    write_run_json,
)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.


def _split(values: Optional[list[str]], default: list[str]) -> list[str]:
    return split_list(values) or default


def _seeds(text: Optional[str], seed: int) -> list[int]:
    if not text:
        return [seed]
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or any(not 0 <= s <= 2**32 - 1 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct whole numbers between 0 and 2**32 - 1, got {text!r}")
    return seeds


def _reference() -> Any:
    try:
        from gbench.reports.compare import load_reference

        return load_reference("sharp-gan-table2")
    except (ImportError, KeyError, OSError, ValueError):
        return None


def _fmt(mean: float, std: float, lo: float = math.nan, hi: float = math.nan) -> str:
    """``0.612 [0.580, 0.641]`` with a confidence interval, else ``0.612 ± 0.010`` (std over seeds)."""
    if math.isnan(mean):
        return "-"
    if not math.isnan(lo):
        return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def _cell(r: dict[str, Any], m: str) -> str:
    if r.get("status", "ok") == "failed":
        return "failed"
    mark = "†" if m == "pq" and r.get("below_floor") else ""
    return _fmt(r[m], r[f"{m}_std"], r.get(f"{m}_ci_low", math.nan), r.get(f"{m}_ci_high", math.nan)) + mark


def _floor_notes(frame: Any) -> list[str]:
    """The † footnote: trained rows whose PQ does not significantly beat the floor segmenter."""
    if "below_floor" not in frame.columns or not frame["below_floor"].astype(bool).any():
        return []
    how = "; ".join(dict.fromkeys(str(t) for t in frame.loc[frame["below_floor"].astype(bool), "floor_test"] if t))
    return [f"† PQ does not significantly beat the (floor) row, a watershed on the hematoxylin channel with no "
            f"training ({how}): the model learned nothing a threshold could not do"]



def _seeds_cell(r: dict[str, Any]) -> str:
    failed = int(r.get("failed_seeds", 0) or 0)
    return f"{r['seeds']}" + (f" ({failed} failed)" if failed else "")


def _failure_notes(frame: Any) -> list[str]:
    from gbench.segmentation import label as arch_label

    return [f"{arch_label(r['arch'])} {r['train_label']}: failed run ({r['failure']})"
            for r in frame.to_dict("records") if r.get("failure")]


def render_table(frame: Any, title: str) -> Any:
    """A rich table of :func:`gbench.pipelines.segmentation_grid.table_frame` output, ours beside the paper's."""
    from rich.table import Table

    from gbench.core.metric_specs import metric_label, metric_spec
    from gbench.pipelines.segmentation_grid import METRICS
    from gbench.segmentation import label as arch_label

    caption = ("each cell: ours [95% CI over test images and seeds] (± std over seeds where no per-image data) "
               "/ paper; failed: the run did not learn (never a number)")
    t = Table(title=title, show_header=True, caption=caption)
    for col in ("Model", "Training", "seeds"):
        t.add_column(col)
    for m in METRICS:
        t.add_column(f"{metric_label(m)} {'↑' if metric_spec(m).higher_is_better else '↓'}", justify="right")
    for r in frame.to_dict("records"):
        cells = []
        for m in METRICS:
            paper = "-" if math.isnan(r[f"{m}_paper"]) else f"{r[f'{m}_paper']:.3f}"
            cells.append(f"{_cell(r, m)} / {paper}")
        t.add_row("HED watershed" if r["train_label"] == "(floor)" else arch_label(r["arch"]), r["train_label"],
                  _seeds_cell(r), *cells)
    notes = _floor_notes(frame)
    if notes:
        t.caption = f"{caption}\n" + "\n".join(notes)
    return t


def table_markdown(frame: Any, caption: str) -> str:
    from gbench.core.metric_specs import metric_label
    from gbench.pipelines.segmentation_grid import METRICS
    from gbench.segmentation import label as arch_label

    head = ["Model", "Training", "seeds", *[metric_label(m) for m in METRICS],
            *[f"paper {metric_label(m)}" for m in METRICS]]
    lines = [caption, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in frame.to_dict("records"):
        cells = ["HED watershed" if r["train_label"] == "(floor)" else arch_label(r["arch"]), r["train_label"],
                 _seeds_cell(r),
                 *[_cell(r, m) for m in METRICS],
                 *["-" if math.isnan(r[f"{m}_paper"]) else f"{r[f'{m}_paper']:.3f}" for m in METRICS]]
        lines.append("| " + " | ".join(cells) + " |")
    notes = _failure_notes(frame) + _floor_notes(frame)
    if "ci_method" in frame.columns and frame["ci_method"].astype(bool).any():
        lines += ["", "Confidence intervals: " + "; ".join(dict.fromkeys(m for m in frame["ci_method"] if m))]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def segment(
    ctx: typer.Context,
    train: Annotated[Optional[list[str]], typer.Option("--train", help="Training set(s), comma-separated or repeated: R (the train split of --data), the paper's S3k / S10k (scaled down under smaller profiles, and the label says so), a set you named with --synthetic (all its images; NAME:COUNT for its first COUNT, e.g. mine:3000), or any +-join (R+mine, R+S3k).")] = None,
    arch: Annotated[Optional[list[str]], typer.Option("--arch", help="Segmenter(s): unet, segnet; comma-separated or repeated.")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="Real dataset (name or folder), required: R is its train split, its test split is scored. The built-in procedural tiles: --data synthetic-he.")] = None,
    synthetic: Annotated[Optional[list[str]], typer.Option("--synthetic", help="NAME=DIR names a synthetic set (a folder with images/ and labels/) for --train, e.g. --synthetic mine=runs/mine --train R,R+mine,mine; repeatable. A plain DIR is where the paper's S3k / S10k are read (DIR/S3k, DIR/S10k, DIR/S or DIR itself) [default: runs/synth]; it names no set.")] = None,
    target: Annotated[str, typer.Option("--target", help="binary (the paper's), contour or distance.")] = "binary",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder [default: runs/segment/<profile>].")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated training seeds to repeat the grid with (overrides --seed); the test images stay those of --data-seed.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Reuse finished cells and continue interrupted ones.")] = False,
    table: Annotated[bool, typer.Option("--table", help="Print the Table 2 layout beside the paper's values (also written to table.md).")] = False,
    aggregation: Annotated[str, typer.Option("--aggregation", help="Table aggregation: mean (of per-image scores) or pooled.")] = "mean",
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Optimiser steps per cell (default: the profile's).")] = None,
    patience: Annotated[Optional[int], typer.Option("--patience", help="Validations without improvement before stopping; 0 never stops.")] = None,
    val_fraction: Annotated[Optional[float], typer.Option("--val-fraction", help="Share of each training part held out for validation (0: none).")] = None,
    val_every: Annotated[Optional[int], typer.Option("--val-every", help="Steps between validations.")] = None,
    monitor: Annotated[Optional[str], typer.Option("--monitor", help="Early-stopping value: loss or pq.")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="U-Net encoder (smp name; default per profile).")] = None,
    width: Annotated[Optional[float], typer.Option("--width", help="SegNet channel multiplier (1 = paper; default per profile).")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Foreground probability threshold.")] = None,
    min_area: Annotated[Optional[int], typer.Option("--min-area", help="Drop predicted instances smaller than this (pixels).")] = None,
    markers: Annotated[Optional[str], typer.Option("--markers", help="distance target: threshold or h-maxima.")] = None,
    device: DeviceOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
    amp: AmpOpt = None,
    workers: WorkersOpt = None,
    channels_last: ChannelsLastOpt = None,
    deterministic: DeterministicOpt = None,
    executor: ExecutorOpt = "sequential",
    jobs: JobsOpt = None,
    ray_address: RayAddressOpt = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train segmenters on real / synthetic / mixed sets and score DQ, SQ, PQ, AJI on the real test split.

    Every input (real train and test split, every synthetic set) is read and checked before the
    first cell trains. The options (after --config and the command line) and the resolved profile
    are written to OUT/run.json."""
    import dataclasses

    from gbench.core.fileio import write_text
    from gbench.core.options import check_device, check_finite, check_positive
    from gbench.core.profiles import get_profile
    from gbench.pipelines.segmentation_grid import run_grid, table_frame
    from gbench.segmentation.postprocess import PostprocessConfig
    from gbench.segmentation.targets import get_target

    json_mode(json_out)
    prof = with_runtime(get_profile(profile), amp, workers, channels_last, deterministic)
    get_target(target)
    if aggregation not in ("mean", "pooled"):
        raise ValueError(f"--aggregation must be mean or pooled, got {aggregation!r}")
    from gbench.segmentation.sets import parse_synthetic_options, parse_train_spec

    sources = parse_synthetic_options(synthetic)
    trains = _split(train, ["R"])
    for t in trains:
        parse_train_spec(t, named=sources.names)  # an unknown or ambiguous set fails now, in one line
    archs = _split(arch, ["unet"])
    seed_list = _seeds(seeds, seed)
    out_dir = out if out is not None else Path("runs/segment") / prof.name
    for opt, value in (("--max-steps", max_steps), ("--val-every", val_every), ("--width", width)):
        check_positive(opt, value)
    check_positive("--patience", patience, allow_zero=True)
    check_positive("--min-area", min_area, allow_zero=True)
    for opt, fvalue in (("--val-fraction", val_fraction), ("--threshold", threshold)):
        check_finite(opt, fvalue)
    check_device("--device", device)
    check_executor(executor, jobs, ray_address)

    overrides: dict[str, Any] = {}
    for name, value in (("max_steps", max_steps), ("patience", patience), ("val_fraction", val_fraction),
                        ("val_every", val_every), ("monitor", monitor)):
        if value is not None:
            overrides[name] = value
    post_over = {k: v for k, v in (("threshold", threshold), ("min_area", min_area), ("markers", markers)) if v is not None}
    if post_over:
        overrides["postprocess"] = dataclasses.replace(PostprocessConfig(), **post_over)
    model_over: dict[str, dict[str, Any]] = {"unet": {}, "segnet": {}}
    if encoder is not None:
        model_over["unet"]["encoder"] = encoder
    if width is not None:
        model_over["segnet"]["width"] = width
    from gbench import segmentation

    for a in archs:
        segmentation.SEGMENTERS.get(a)  # an unknown name fails (with suggestions) before a missing --data
    data = require_data(data)
    validate_inputs(archs, trains, data, prof, sources, data_seed)  # before the out folder is touched
    check_out_folder(out_dir, resume=resume, overwrite=overwrite,
                     inputs=[("--data", data), *(("--synthetic", p) for p in _source_folders(sources))])
    write_run_json(out_dir, {**resolved_options(ctx, prof), "synthetic_sets": sources.to_dict()})

    rows = run_grid(archs=archs, trains=trains, seeds=seed_list, data=data, profile=prof, out=out_dir,
                    target=target, synthetic_dir=sources, resume=resume, progress=progress, device=device,
                    overrides=overrides, model_overrides={a: o for a, o in model_over.items() if o},
                    on_cell=_print_cell, data_seed=data_seed, executor=executor, jobs=jobs, address=ray_address)
    from gbench.engine import dist_info

    if not dist_info().is_main:
        return  # under torchrun, rank 0 reports
    console.print(f"results: {out_dir / 'results.csv'} ({len(rows)} cells)")
    from gbench.pipelines.segmentation_grid import run_floor

    # the floor segmenter (no training) on the same test images: seconds; beside the cells' records
    floor = run_floor(data=data, profile=prof, out=out_dir, target=target, data_seed=data_seed)
    console.print(f"floor (HED watershed, no training): PQ {floor.row['pq_' + aggregation]:.3f} "
                  f"({floor.row['eval_time_s']:.1f} s)")
    frame = None
    if table:
        from gbench.core.observations import load_observations

        frame = table_frame([*rows, floor.row], _reference(), aggregation=aggregation,
                            observations=load_observations(out_dir / "records.csv"))
        agg = "mean of per-image scores" if aggregation == "mean" else "pooled over test tiles"
        title = (f"Segmentation on {data} test ({target} target, profile {prof.name}, seeds {','.join(map(str, seed_list))}, "
                 f"data seed {data_seed}; {agg}; 95% CI) vs Sharp-GAN Table 2 (CPM-15&17)")
        console.print(render_table(frame, title))
        for note in _failure_notes(frame):
            console.print(f"[red]{note}[/]")
        reason = _paper_reason(rows)
        if reason:
            console.print(f"[yellow]{reason}[/]")
        reason = _paper_reason(rows)
        path = write_text(out_dir / "table.md", table_markdown(frame, title) + (f"\n{reason}\n" if reason else ""))
        console.print(f"table: {path}")
    if json_out:  # the rows of results.csv (one per cell), the floor row and, with --table, the table's rows
        emit_json({"command": "segment", "out": out_dir, "results": out_dir / "results.csv", "aggregation": aggregation,
                   "cells": rows, "floor": floor.row, "table": frame})


def _source_folders(sources: Any) -> list[Path]:
    return [p for p in (sources.folder, *(d for _, d in sources.named)) if p is not None]


def _paper_reason(rows: list[dict[str, Any]]) -> str:
    """Why ours and the paper's are side by side without a difference ("" when comparable)."""
    try:
        from gbench.reports.compare import comparable
    except ImportError:
        return ""
    first = rows[0] if rows else {}
    ok, why = comparable(str(first.get("dataset", "")), str(first.get("split", "test")), str(first.get("profile", "")))
    return "" if ok else why


def _print_cell(r: dict[str, Any]) -> None:
    head = f"{r['arch']} {r['train_label']} seed {r['seed']}"
    if r.get("status") == "failed":
        console.print(f"[red]{head}: FAILED: {r['failure']}[/] ({float(r['train_time_s']):.0f} s training)")
        return
    ci = ""
    if str(r.get("pq_mean_ci_low", "")) not in ("", "nan"):
        ci = f" [95% CI {float(r['pq_mean_ci_low']):.3f}, {float(r['pq_mean_ci_high']):.3f}]"
    console.print(f"{head}: DQ {float(r['dq_mean']):.3f} SQ {float(r['sq_mean']):.3f} PQ {float(r['pq_mean']):.3f}{ci} "
                  f"AJI {float(r['aji_mean']):.3f} (per-image mean over {r['n_test']} test tiles; "
                  f"{float(r['train_time_s']):.0f} s training)")


def validate_inputs(archs: list[str], trains: list[str], data: str, prof: Any, synthetic: Any,
                    data_seed: int = 0) -> int:
    """Read every image and label a segment run will use (the real train and test splits, the
    synthetic images of every training set) before anything trains: a bad file fails at once, as
    one line naming it. Returns the number of samples checked."""
    from gbench import segmentation
    from gbench.data.resolve import resolve_dataset
    from gbench.pipelines.segmentation_grid import parse_train_spec, resolve_training_set

    for a in archs:
        segmentation.SEGMENTERS.get(a)
    from gbench.segmentation.sets import SyntheticSources

    synth = SyntheticSources.of(synthetic)
    specs = [parse_train_spec(t, named=synth.names) for t in trains]
    seen: set[tuple[str, str, str]] = set()
    checked = 0
    test = resolve_dataset(data, "test", prof, data_seed)
    sources = [(test, list(range(len(test))))]
    for spec in specs:
        parts, _ = resolve_training_set(spec, data, prof, data_seed, synth)
        sources += parts
    for ds, indices in sources:
        if len(ds) == 0:
            raise ValueError(f"{ds.name}: no images")
        for i in indices:
            key = (str(ds.name), str(ds.split), str(ds.names[i]))
            if key in seen:
                continue
            seen.add(key)
            ds[i]  # reads and checks the image and its label (DataError names the file)
            checked += 1
    return checked


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
