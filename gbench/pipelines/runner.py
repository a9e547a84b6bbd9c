"""Orchestration behind the CLI: each command builds its inputs here and calls the libraries."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gbench.core.fileio import write_json, write_text
from gbench.core.profiles import PROFILES, Profile, as_profile
from gbench.core.provenance import provenance
from gbench.data.loaders import BUILTINS, COMBINED, KNOWN_REAL, LOADERS, data_root
from gbench.data.preview import preview_sheet
from gbench.data.resolve import resolve_dataset
from gbench.data.summary import summarize
from gbench.data.types import Sample
from gbench.pipelines.reproduce import reproduce_sharp_gan

__all__ = ["inspect_dataset", "preview_dataset", "demo", "data_list_table",
           "profiles_table"]


@dataclass
class InspectResult:
    summary: dict[str, Any]
    table: Any
    files: list[Path] = field(default_factory=list)


def _summary_table(summary: dict[str, Any]) -> Any:

    t = Table(title=escape(f"{summary['dataset']} [{summary['split']}]"), show_header=True)
    t.add_column("statistic")
    t.add_column("value", justify="right")
    if summary["images"] == 0:
        t.add_row("images", "0")
        return t
    rows = [
        ("images", f"{summary['images']}"),
        ("nuclei", f"{summary['nuclei']}"),
        ("height (px)", f"{summary['height_min']}-{summary['height_max']}"),
        ("width (px)", f"{summary['width_min']}-{summary['width_max']}"),
        ("nuclei / image (mean, min-max)", f"{summary['nuclei_per_image_mean']:.1f} ({summary['nuclei_per_image_min']}-{summary['nuclei_per_image_max']})"),
        ("nucleus area px (mean)", f"{summary['area_mean']:.1f}"),
        ("nucleus area px (median)", f"{summary['area_median']:.1f}"),
        ("nucleus area px (5th-95th pct)", f"{summary['area_p05']:.0f}-{summary['area_p95']:.0f}"),
        ("foreground fraction (mean)", f"{summary['foreground_mean']:.3f}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def inspect_dataset(name: str, split: str = "train", profile: Profile | str = "demo", seed: int = 0,
                    out: Path | None = None, data_seed: int = 0) -> InspectResult:
    """Summarize a dataset; with ``out`` write summary.json, per_image.csv and summary.md (atomically).

    ``profile`` (a :class:`~gbench.core.profiles.Profile` or its name) sizes a built-in dataset,
    ``data_seed`` draws it; ``seed`` is recorded."""

    prof = as_profile(profile)
    ds = resolve_dataset(name, split, prof, data_seed)
    summary = summarize(ds, progress=True)
    result = InspectResult(summary, _summary_table(summary))
    if out is not None:
        out = Path(out)
        rows = summary.get("rows", [])
        per_image = pd.DataFrame(rows)
        flat = {k: v for k, v in summary.items() if k != "rows"}
        record = {**flat, "info": ds.info, "data_seed": data_seed,
                  "provenance": provenance(profile=prof.name, seed=seed, data_seed=data_seed)}
        result.files = [
            write_json(out / "summary.json", record),
            write_text(out / "per_image.csv", per_image.to_csv(index=False)),
            write_text(out / "summary.md", _summary_markdown(flat, prof.name, seed, data_seed)),
        ]
    return result


def _summary_markdown(flat: dict[str, Any], profile: str, seed: int, data_seed: int = 0) -> str:
    df = pd.DataFrame({"statistic": list(flat), "value": [str(v) for v in flat.values()]})
    return (f"# Dataset summary: {flat['dataset']} [{flat['split']}]\n\n"
            f"profile `{profile}`, seed {seed}, data seed {data_seed}\n\n" + df.to_markdown(index=False) + "\n")


def _centre_crop(sample: Sample, size: int) -> Sample:
    h, w = sample.shape
    if h <= size and w <= size:
        return sample
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return Sample(sample.name, sample.image[y:y + size, x:x + size], sample.instances[y:y + size, x:x + size], sample.meta)


def preview_dataset(name: str, output: Path, split: str = "train", count: int | None = None,
                    crop: int | None = None, profile: Profile | str = "demo", seed: int = 0, data_seed: int = 0) -> Path:
    """Write a preview sheet of the first ``count`` samples (centre-cropped for large tiles);
    ``data_seed`` draws a built-in dataset."""

    prof = as_profile(profile)
    ds = resolve_dataset(name, split, prof, data_seed)
    n = min(len(ds), count if count is not None else prof.preview_samples)
    if n <= 0:
        raise ValueError("preview needs --count >= 1")
    samples = []
    for i in range(n):
        s = ds[i]
        side = prof.generator.image_size
        size = crop if crop is not None else (side * 2 if max(s.shape) > side * 2 else None)
        samples.append(_centre_crop(s, size) if size else s)
    return preview_sheet(samples, output, title=f"{ds.name} [{split}] (profile {prof.name}, data seed {data_seed})")


def data_list_table() -> Any:
    t = Table(title="gbench datasets", show_header=True)
    t.add_column("name")
    t.add_column("kind")
    t.add_column("where / what")
    for name in BUILTINS:
        t.add_row(name, "built-in", "procedurally rendered H&E-like tiles, deterministic from --data-seed, sized by --profile")
    root = data_root()
    for name, (loader, desc) in KNOWN_REAL.items():
        present = "present" if (root / name).exists() else "not present"
        t.add_row(name, f"real ({loader})", f"{root / name} [{present}]: {desc}")

    for name, parts in COMBINED.items():
        present = "present" if all((root / part).exists() for part in parts) else "not present"
        t.add_row(name, "combined", f"union of {' and '.join(parts)} (names prefixed by source) [{present}]")
    for name in LOADERS:
        t.add_row(f"{name}:PATH", "loader", f"force the {name!r} loader on a folder (a bare folder path is detected)")
    return t


def profiles_table() -> Any:
    t = Table(title="gbench profiles", show_header=True)
    for col in ("profile", "crop", "batch", "lr", "epochs", "max steps", "S3k / S10k", "built-in tiles", "MI-GAN"):
        t.add_column(col)
    for p in PROFILES.values():
        counts = dict(p.synthesis.counts)
        g, d = p.generator, p.data
        t.add_row(p.name, f"{g.image_size}", f"{g.batch_size}", f"{g.lr:.0e}", f"{g.epochs}",
                  "-" if g.max_steps is None else f"{g.max_steps}", f"{counts['S3k']}/{counts['S10k']}",
                  f"{d.builtin_train}+{d.builtin_test}x{d.builtin_size}", f"{p.migan.image_size}x{p.migan.planes}")
    t.caption = " | ".join(f"{p.name}: {p.description}" for p in PROFILES.values())
    return t


def demo(out: Path, profile: str = "demo", seed: int = 0, console: Any = None, data_seed: int = 0) -> dict[str, Path]:
    """What ``make demo`` runs on the built-in dataset: the dataset's preview sheet and summary
    tables, then the whole Sharp-GAN pipeline (``gbench reproduce sharp-gan --data synthetic-he``):
    three generators, Table 1, synthetic sets, the segmentation grid, Table 2 and the report."""


    console = console or Console()
    out = Path(out)
    files: dict[str, Path] = {}
    t0 = time.perf_counter()
    console.rule(f"gbench demo: built-in dataset synthetic-he (profile {profile}, seed {seed}, data seed {data_seed})")
    for split in ("train", "test"):
        res = inspect_dataset("synthetic-he", split=split, profile=profile, seed=seed, out=out / "data" / split,
                              data_seed=data_seed)
        console.print(res.table)
        files[f"summary-{split}"] = res.files[0]
    files["preview"] = preview_dataset("synthetic-he", out / "data" / "preview.png", split="train", profile=profile, seed=seed,
                                       data_seed=data_seed)
    console.print(f"preview sheet: {files['preview']}")

    preview_s = time.perf_counter() - t0
    res = reproduce_sharp_gan(data="synthetic-he", profile=profile, seed=seed, data_seed=data_seed, out=out / "reproduce",
                              console=console, timings=[{"stage": "data preview", "spent_s": round(preview_s, 3)}])
    files["records"] = out / "reproduce" / "records.csv"
    files["report"] = out / "reproduce" / "report" / "report.html"
    done = sum(not s["skipped"] for s in res.stages)
    console.print(f"demo finished: {len(res.stages)} stages ({done} run, {len(res.stages) - done} cached) "
                  f"in {res.seconds + preview_s:.0f} s; report {files['report']}")
    return files
