"""``gbench segment``: the Sharp-GAN Table 2 protocol (U-Net / SegNet x R, S3k, R+S3k, S10k, R+S10k)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gbench.commands.common import ProfileOpt, SeedOpt, console


def _split(values: Optional[list[str]], default: list[str]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out or default


def _seeds(text: Optional[str], seed: int) -> list[int]:
    if not text:
        return [seed]
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct non-negative integers, got {text!r}")
    return seeds


def _reference() -> Any:
    try:
        from reports.compare import load_reference

        return load_reference("sharp-gan-table2")
    except (ImportError, KeyError, OSError, ValueError):
        return None


def _fmt(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def render_table(frame: Any, title: str) -> Any:
    """A rich table of :func:`segmentation.bench.table_frame` output, ours beside the paper's."""
    from rich.table import Table

    from segmentation.bench import METRICS

    names = {"unet": "U-Net", "segnet": "SegNet"}
    t = Table(title=title, show_header=True, caption="each cell: ours (mean ± std over seeds) / paper")
    for col in ("Model", "Training", "seeds"):
        t.add_column(col)
    for m in METRICS:
        t.add_column(f"{m.upper()} ↑", justify="right")
    for r in frame.to_dict("records"):
        cells = []
        for m in METRICS:
            paper = "-" if math.isnan(r[f"{m}_paper"]) else f"{r[f'{m}_paper']:.3f}"
            cells.append(f"{_fmt(r[m], r[f'{m}_std'])} / {paper}")
        t.add_row(names.get(r["arch"], r["arch"]), r["train_label"], str(r["seeds"]), *cells)
    return t


def table_markdown(frame: Any, caption: str) -> str:
    from segmentation.bench import METRICS

    names = {"unet": "U-Net", "segnet": "SegNet"}
    head = ["Model", "Training", "seeds", *[m.upper() for m in METRICS], *[f"paper {m.upper()}" for m in METRICS]]
    lines = [caption, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in frame.to_dict("records"):
        cells = [names.get(r["arch"], r["arch"]), r["train_label"], str(r["seeds"]),
                 *[_fmt(r[m], r[f"{m}_std"]) for m in METRICS],
                 *["-" if math.isnan(r[f"{m}_paper"]) else f"{r[f'{m}_paper']:.3f}" for m in METRICS]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def segment(
    train: Annotated[Optional[list[str]], typer.Option("--train", help="Training set(s): R, S3k, R+S3k, S10k, R+S10k or any +-join; comma-separated or repeated.")] = None,
    arch: Annotated[Optional[list[str]], typer.Option("--arch", help="Segmenter(s): unet, segnet; comma-separated or repeated.")] = None,
    data: Annotated[str, typer.Option("--data", help="Real dataset (name or folder): R is its train split, its test split is scored.")] = "synthetic-he",
    synthetic: Annotated[Optional[Path], typer.Option("--synthetic", help="Folder of synthetic sets: DIR/<set> (e.g. DIR/S3k), DIR/<name> or DIR itself in the folder layout [default: runs/synth].")] = None,
    target: Annotated[str, typer.Option("--target", help="binary (the paper's), contour or distance.")] = "binary",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder [default: runs/segment/<profile>].")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds to repeat the grid with (overrides --seed).")] = None,
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
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:1 ... [default: cuda when available].")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
) -> None:
    """Train segmenters on real / synthetic / mixed sets and score DQ, SQ, PQ, AJI on the real test split."""
    import dataclasses

    from gbench.fileio import write_text
    from gbench.profiles import get_profile
    from segmentation.bench import run_grid, table_frame
    from segmentation.postprocess import PostprocessConfig
    from segmentation.targets import get_target

    prof = get_profile(profile)
    get_target(target)
    if aggregation not in ("mean", "pooled"):
        raise ValueError(f"--aggregation must be mean or pooled, got {aggregation!r}")
    trains = _split(train, ["R"])
    archs = _split(arch, ["unet"])
    seed_list = _seeds(seeds, seed)
    out_dir = out if out is not None else Path("runs/segment") / prof.name

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

    rows: list[dict[str, Any]] = []
    for a in archs:
        rows += run_grid(archs=[a], trains=trains, seeds=seed_list, data=data, profile=prof, out=out_dir,
                         target=target, synthetic_dir=synthetic, resume=resume, progress=progress, device=device,
                         overrides={**overrides, **({"model": model_over[a]} if model_over.get(a) else {})},
                         on_cell=lambda r: console.print(
                             f"{r['arch']} {r['train_label']} seed {r['seed']}: DQ {float(r['dq_mean']):.3f} "
                             f"SQ {float(r['sq_mean']):.3f} PQ {float(r['pq_mean']):.3f} AJI {float(r['aji_mean']):.3f} "
                             f"(per-image mean over {r['n_test']} test tiles; {float(r['train_time_s']):.0f} s training)"))
    from gbench.engine import dist_info

    if not dist_info().is_main:
        return  # under torchrun, rank 0 reports
    console.print(f"results: {out_dir / 'results.csv'} ({len(rows)} cells)")
    if table:
        frame = table_frame(rows, _reference(), aggregation=aggregation)
        agg = "mean of per-image scores" if aggregation == "mean" else "pooled over test tiles"
        title = (f"Segmentation on {data} test ({target} target, profile {prof.name}, seeds {','.join(map(str, seed_list))}; "
                 f"{agg}; mean ± std over seeds) vs Sharp-GAN Table 2 (CPM-15&17)")
        console.print(render_table(frame, title))
        path = write_text(out_dir / "table.md", table_markdown(frame, title))
        console.print(f"table: {path}")


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
