"""``gbench regress`` (CI check of a result table against its baseline), ``gbench report`` and ``gbench compare``."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gbench.cli.commands.common import (
    JsonOpt,
    OverwriteOpt,
    check_out_folder,
    check_out_path,
    console,
    deprecated,
    distribution_metric_hint,
    emit_json,
    json_mode,
    merge_one,
)

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

# Filters of the records: not the run profile and training seed that --profile / --seed mean elsewhere.
FilterProfileOpt = Annotated[Optional[str], typer.Option("--only-profile", help="Use only the records of this profile.")]
FilterSeedOpt = Annotated[Optional[int], typer.Option("--only-seed", help="Use only the records of this training "
                                                      "seed.")]
OldProfileOpt = Annotated[Optional[str], deprecated("--profile", "--only-profile (it filters the records)")]
OldSeedOpt = Annotated[Optional[int], deprecated("--seed", "--only-seed (it filters the records)")]


def regress(
    ctx: typer.Context,
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
    json_out: JsonOpt = False,
    profile_old: OldProfileOpt = None,
    seed_old: OldSeedOpt = None,
) -> None:
    """Compare NEW with BASELINE cell by cell; exit 1 when a metric got worse beyond its tolerance.

    Exit codes: 0 no regression (or --update), 1 regression, 2 bad input (missing file, tables that
    hold different experiments or metrics).
    """
    from gbench.reports.regress import TableMismatchError, parse_tolerances, update_baseline
    from gbench.reports.regress import regress as run_regress

    json_mode(json_out)
    profile, seed = merge_one(ctx, "profile", "profile_old"), merge_one(ctx, "seed", "seed_old")
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
        if json_out:
            emit_json({"command": "regress", "updated": path})
        return
    report = run_regress(baseline, new, tol, profile=profile, seed=seed)
    if json_out:  # every cell with its baseline, new value, delta, allowed move and status
        emit_json({"command": "regress", "ok": report.ok, "summary": report.summary(), "keys": list(report.keys),
                   "worse": len(report.regressions), "better": len(report.improvements), "cells": report.cells})
    if show_all and not report.improvements.empty:
        console.print(report.to_rich("better"))
    if report.ok:
        console.print(f"[green]ok[/] {report.summary()}", highlight=False)
        return
    console.print(report.to_rich("worse"))
    console.print(f"[bold red]regression[/] {report.summary()}", highlight=False)
    # exit status 1 (the root command, gbench.cli.app._Root, passes SystemExit codes on as they are)
    raise SystemExit(1)


def report(
    ctx: typer.Context,
    records: Annotated[list[Path], typer.Argument(help="Record files (.csv) or folders holding records.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder to write.")] = Path("runs/report"),
    reference: Annotated[str, typer.Option("--reference", help="Paper table to compare with: sharp-gan, "
                                           "sharp-gan-table1, sharp-gan-table2, a .csv, or none.")] = "sharp-gan",
    precision: Annotated[int, typer.Option("--precision", help="Decimals shown in tables.")] = 3,
    profile: FilterProfileOpt = None,
    seed: FilterSeedOpt = None,
    overwrite: OverwriteOpt = False,
    margin: Annotated[float, typer.Option("--margin", help="Non-inferiority margin (absolute) of the claims "
                                          "'S (3k) only slightly worse than R' and 'S (10k) comparable to "
                                          "R+S (10k)'.")] = 0.05,
    test: Annotated[str, typer.Option("--test", help="p-value of the claims' paired comparisons: permutation, "
                                      "bootstrap or wilcoxon.")] = "permutation",
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap / permutation resamples (CIs and "
                                           "tests; seeded).")] = 2000,
    profile_old: OldProfileOpt = None,
    seed_old: OldSeedOpt = None,
) -> None:
    """Render records as tables (terminal, Markdown, LaTeX, CSV), comparison, claims, figures and HTML.

    The per-image observations beside the record files (``observations.csv``) give every cell its
    95% CI and every claim its paired test; without them cells show ± std over seeds and claims
    are untested.
    """
    from gbench.core import stats
    from gbench.core.observations import load_observations
    from gbench.core.records import load_records
    from gbench.reports.compare import load_reference
    from gbench.reports.report import write_report

    profile, seed = merge_one(ctx, "profile", "profile_old"), merge_one(ctx, "seed", "seed_old")
    if precision < 0 or precision > 12:
        raise ValueError(f"--precision must be between 0 and 12, got {precision}")
    if test not in stats.TESTS:
        raise ValueError(f"--test must be one of {', '.join(stats.TESTS)}, got {test!r}")
    if resamples < 100:
        raise ValueError(f"--resamples must be at least 100, got {resamples}")
    if not margin >= 0:
        raise ValueError(f"--margin must be a non-negative number, got {margin}")
    if reference.lower() != "none":
        load_reference(reference)  # unknown name or unreadable file: one line, before anything is written
    df = load_records(records if len(records) > 1 else records[0])
    if profile is not None:
        df = df[df["profile"] == profile]
    if seed is not None:
        df = df[df["seed"] == seed]
    if df.empty:
        raise ValueError("no records left after --only-profile/--only-seed filtering")
    obs = load_observations(records if len(records) > 1 else records[0])
    check_out_folder(out, overwrite=overwrite, resumable=False, inputs=[("RECORDS", r) for r in records])
    ref = None if reference.lower() == "none" else reference
    manifest = write_report(df.reset_index(drop=True), out, reference=ref, precision=precision, console=console,
                            sources=[r for r in records if r.is_file()], observations=obs, margin=margin, test=test,
                            n_resamples=resamples)
    console.print(f"wrote {len(manifest['files'])} files to {out} (open {out / 'report.html'})")


def compare(
    ctx: typer.Context,
    records: Annotated[list[Path], typer.Argument(help="Record files (.csv) or run folders; the per-image "
                                                  "observations beside them are compared.")],
    a: Annotated[list[str], typer.Option("--a", help="Side a: KEY=VALUE on the experiment keys (model=unet, "
                                         "train_set=R+S3k, dataset=..., seed=...); repeatable or comma-separated.")],
    b: Annotated[list[str], typer.Option("--b", help="Side b, as --a.")],
    metric: Annotated[Optional[list[str]], typer.Option(
        "--metric", "-m", help="Metric to compare; repeatable (default: every per-image metric both sides "
        "have).")] = None,
    aggregation: Annotated[str, typer.Option("--aggregation", help="mean (per-image mean) or pooled (DQ/SQ/PQ/AJI "
                                             "recomputed from summed statistics).")] = "mean",
    test: Annotated[str, typer.Option("--test", help="p-value: permutation (sign-flip), bootstrap (paired) or "
                                      "wilcoxon (signed-rank, mean aggregation).")] = "permutation",
    margin: Annotated[Optional[float], typer.Option(
        "--margin", help="Non-inferiority margin (absolute): test 'a is not worse than b by more than M'.")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Level of the Holm-corrected verdicts.")] = 0.05,
    resample_seed: Annotated[int, typer.Option("--resample-seed", help="Seed of the bootstrap / permutation "
                                               "resampling.")] = 0,
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap / permutation resamples.")] = 2000,
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Also write the table as CSV (full precision).")] = None,
    json_out: JsonOpt = False,
    seed_old: Annotated[Optional[int], deprecated("--seed", "--resample-seed (the seed of the resampling)")] = None,
) -> None:
    """Compare two experiments paired on the same test images: per metric a, b, a − b, 95% CI, p, Holm p, verdict.

    Exit codes: 0 done (whatever the verdict), 2 bad input (no match, an ambiguous selection, a failed run,
    different test sets or images).
    """
    from gbench.core import stats
    from gbench.core.observations import load_observations
    from gbench.reports.paired import compare_frame, comparison_rich, default_metrics, parse_selection, select_experiment

    json_mode(json_out)
    seed = merge_one(ctx, "resample_seed", "seed_old")
    if aggregation not in stats.AGGREGATIONS:
        raise ValueError(f"--aggregation must be mean or pooled, got {aggregation!r}")
    if test not in stats.TESTS:
        raise ValueError(f"--test must be one of {', '.join(stats.TESTS)}, got {test!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha must lie in (0, 1), got {alpha}")
    if resamples < 100:
        raise ValueError(f"--resamples must be at least 100, got {resamples}")
    sel_a, sel_b = parse_selection(a, "--a"), parse_selection(b, "--b")
    obs = load_observations(records if len(records) > 1 else records[0], required=True)
    obs_a, obs_b = select_experiment(obs, sel_a, "--a"), select_experiment(obs, sel_b, "--b")
    if obs_a.index.equals(obs_b.index):
        raise ValueError("--a and --b select the same experiment")
    metrics = list(metric) if metric else default_metrics(obs_a, obs_b, aggregation)
    from gbench.core.observations import load_replicates
    from gbench.reports.paired import compare_selected, improvements

    replicates = load_replicates(records if len(records) > 1 else records[0])
    for m in metrics:
        hint = distribution_metric_hint(m)
        if hint and replicates is None and m not in obs_a.columns:
            raise ValueError(f"--metric {m}: {hint} to gbench quality, whose replicates.csv lets gbench compare "
                             "test it")
    diffs = compare_selected(obs_a, obs_b, metrics, aggregation, replicates=replicates, sel_a=sel_a, sel_b=sel_b,
                             test=test, margin=margin, alpha=alpha, n_resamples=resamples, seed=seed)
    pi = improvements(obs_a, obs_b, diffs, n_resamples=resamples, seed=seed)
    label = lambda sel: " ".join(f"{k}={v}" for k, v in sel.items())  # noqa: E731
    console.print(comparison_rich(diffs, label(sel_a), label(sel_b), alpha, improvement=pi))
    frame = compare_frame(diffs, alpha, pi).assign(a_selection=label(sel_a), b_selection=label(sel_b))
    if csv is not None:
        from gbench.core.fileio import write_text

        console.print(f"wrote {write_text(csv, frame.to_csv(index=False, lineterminator=chr(10)))}")
    if json_out:  # the rows of --csv
        emit_json({"command": "compare", "a": label(sel_a), "b": label(sel_b), "alpha": alpha, "aggregation": aggregation,
                   "test": test, "rows": frame})


def register(app: typer.Typer) -> None:
    app.command("regress")(regress)
    app.command("report")(report)
    app.command("compare")(compare)
