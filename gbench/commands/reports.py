"""``gbench regress`` (CI check of a result table against its baseline) and ``gbench report``."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.commands.common import OverwriteOpt, check_out_folder, check_out_path, console

FilterProfileOpt = Annotated[Optional[str], typer.Option("--profile", help="Use only the records of this profile.")]
FilterSeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Use only the records of this seed.")]


def regress(
    baseline: Annotated[Path, typer.Argument(help="Baseline records (.csv), e.g. reports/baselines/smoke.csv.")],
    new: Annotated[Path, typer.Argument(help="New records (.csv) to check against the baseline.")],
    tolerance: Annotated[Optional[list[str]], typer.Option(
        "--tolerance", "-t", help="Absolute tolerance: VALUE for every metric or METRIC=VALUE; repeatable "
        "(default 1e-6).")] = None,
    rel_tolerance: Annotated[Optional[list[str]], typer.Option(
        "--rel-tolerance", help="Relative tolerance (of |baseline|): VALUE or METRIC=VALUE; repeatable "
        "(default 0). A cell may move by max(abs, rel*|baseline|).")] = None,
    update: Annotated[bool, typer.Option("--update", help="Accept NEW: rewrite BASELINE with it (atomically) "
                                         "after showing the differences; exits 0.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also list the cells that improved.")] = False,
    profile: FilterProfileOpt = None,
    seed: FilterSeedOpt = None,
) -> None:
    """Compare NEW with BASELINE cell by cell; exit 1 when a metric got worse beyond its tolerance.

    Exit codes: 0 no regression (or --update), 1 regression, 2 bad input (missing file, tables that
    hold different experiments or metrics).
    """
    from reports.regress import TableMismatchError, parse_tolerances, regress as run_regress, update_baseline

    tol = parse_tolerances(tolerance or (), rel_tolerance or ())
    if update:
        check_out_path(baseline, "BASELINE", folder=False)
        if baseline.exists():
            try:
                report = run_regress(baseline, new, tol, profile=profile, seed=seed)
            except TableMismatchError as exc:
                console.print(f"[yellow]baseline and new table differ in shape:[/] {exc}", highlight=False)
            else:
                console.print(report.summary())
                if not report.regressions.empty:
                    console.print(report.to_rich("worse"))
        path = update_baseline(new, baseline)
        console.print(f"updated baseline {path}")
        return
    report = run_regress(baseline, new, tol, profile=profile, seed=seed)
    if show_all and not report.improvements.empty:
        console.print(report.to_rich("better"))
    if report.ok:
        console.print(f"[green]ok[/] {report.summary()}", highlight=False)
        return
    console.print(report.to_rich("worse"))
    console.print(f"[bold red]regression[/] {report.summary()}", highlight=False)
    # SystemExit, not typer.Exit: gbench.cli.main runs the app with standalone_mode=False, where click
    # turns typer.Exit into a return value that main() does not pass on.
    raise SystemExit(1)


def report(
    records: Annotated[list[Path], typer.Argument(help="Record files (.csv) or folders holding records.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder to write.")] = Path("runs/report"),
    reference: Annotated[str, typer.Option("--reference", help="Paper table to compare with: sharp-gan, "
                                           "sharp-gan-table1, sharp-gan-table2, a .csv, or none.")] = "sharp-gan",
    precision: Annotated[int, typer.Option("--precision", help="Decimals shown in tables.")] = 3,
    profile: FilterProfileOpt = None,
    seed: FilterSeedOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Render records as tables (terminal, Markdown, LaTeX, CSV), comparison, claims, figures and HTML."""
    from gbench.core.records import load_records
    from reports.compare import load_reference
    from reports.report import write_report

    if precision < 0 or precision > 12:
        raise ValueError(f"--precision must be between 0 and 12, got {precision}")
    if reference.lower() != "none":
        load_reference(reference)  # unknown name or unreadable file: one line, before anything is written
    df = load_records(records if len(records) > 1 else records[0])
    if profile is not None:
        df = df[df["profile"] == profile]
    if seed is not None:
        df = df[df["seed"] == seed]
    if df.empty:
        raise ValueError("no records left after --profile/--seed filtering")
    check_out_folder(out, overwrite=overwrite, resumable=False)
    ref = None if reference.lower() == "none" else reference
    manifest = write_report(df.reset_index(drop=True), out, reference=ref, precision=precision, console=console,
                            sources=[r for r in records if r.is_file()])
    console.print(f"wrote {len(manifest['files'])} files to {out} (open {out / 'report.html'})")


def register(app: typer.Typer) -> None:
    app.command("regress")(regress)
    app.command("report")(report)
