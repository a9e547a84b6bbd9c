"""Write a report folder from records: tables in every format, comparison, claims, figures, HTML.

Layout of ``OUT``::

    records.csv, records.manifest.json   the records the report was made from
    observations.csv                     the per-image observations behind the intervals (when given)
    tables/<kind>.{md,tex,csv}           one table per kind (estimate [95% CI], seeds, images, best in bold)
    comparison.{md,csv}                  ours beside the paper (when any row matches a reference; a
                                         difference only on the paper's data and protocol)
    claims.{md,csv}, claims_detail.csv   the paper's claims: supported / not significant / undecidable /
                                         contradicted / untested (e.g. below the floor), with a - b, 95% CI
                                         and Holm p per metric, units for 80% power, P(a>b) with seeds
    failed_runs.md                       runs flagged failed (when any)
    deviations.md                        settings that depart from the papers (training run.json's)
    figures/<kind>_bars.png              metric bars with 95% CI error bars (± std where no CI): segmentation
                                         grouped by architecture, training sets as hue; the paper's values
                                         as markers where comparable
    figures/pq_vs_synthetic.png          PQ against the number of synthetic images, 95% CI band
    report.md, report.html               everything together (HTML self-contained)
    manifest.json                        files written, input sha256, versions, date

Every file is written atomically; ``manifest.json`` last.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import html as _html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gbench import __version__
from gbench.core.fileio import write_json, write_text
from gbench.core.observations import FLOOR_SEGMENTER, load_observations, load_replicates, save_observations
from gbench.core.provenance import git_revision, package_versions
from gbench.core.records import save_records, scope_columns
from gbench.core.stats import attach_intervals
from gbench.reports import claims as _claims
from gbench.reports import compare as _compare
from gbench.reports import deviations as _deviations
from gbench.reports import figures as _figures
from gbench.reports import render as _render
from gbench.reports.tables import pivot_by_kind

__all__ = ["write_report"]


def write_report(records: pd.DataFrame, out: str | Path, reference: str | None = "sharp-gan", precision: int = 3,
                 title: str = "gbench report", console: Any = None,
                 sources: Sequence[str | Path] = (), runs: Sequence[str | Path] = (),
                 observations: pd.DataFrame | None = None, margin: float = 0.05, alpha: float = 0.05,
                 test: str = "permutation", n_resamples: int = 2000, seed: int = 0,
                 compact: bool = False) -> dict[str, Any]:
    """Render ``records`` into the folder ``out`` (see the module docstring).

    Args:
        records: Record DataFrame (validated).
        out: Output folder (created).
        reference: Reference table name for the comparison, or None for none.
        precision: Decimals shown.
        title: Page title.
        console: A rich console to print the tables and claims on, after every file is written
            (None: print nothing).
        compact: Print a summary screen instead: intervals under the estimates, the per-image
            mean rows of the segmentation table, one short table of the claims' verdicts.
        sources: Record files the records came from (their sha256 go in the manifest).
        runs: Training ``run.json`` files (or their folders): their ``deviations`` from the
            papers become the "Deviations from the papers" section and ``deviations.md``.
        observations: Per-image observations of the records; None loads the ones beside
            ``sources`` (:func:`gbench.core.observations.load_observations`), if any.
        margin: Non-inferiority margin of the claims ("slightly worse", "comparable").
        alpha, test: Level and p-value test of the claims' paired comparisons.
        n_resamples, seed: Bootstrap / permutation resamples and their seed (CIs and tests).

    Returns:
        The manifest (also written to ``out/manifest.json``).
    """

    if records.empty:
        raise ValueError("no records to report")
    if reference:
        _compare.load_reference(reference)  # unknown name or bad file: fail before writing anything
    out = Path(out)
    files: list[str] = []

    def put(rel: str, text: str) -> None:
        write_text(out / rel, text)
        files.append(rel)

    if observations is None and sources:
        observations = load_observations([s for s in sources if Path(s).is_file()])
    replicates = load_replicates([s for s in sources if Path(s).is_file()]) if sources else None
    stat = {"n_resamples": n_resamples, "seed": seed}
    if observations is not None:
        records = attach_intervals(records, observations, only_missing=True, **stat)
    save_records(records, out / "records.csv")
    files += ["records.csv", "records.manifest.json"]
    if observations is not None:
        save_observations(observations, out / "records.csv")
        files.append("observations.csv")
    md_parts = [f"# {title}\n"]
    html_sections: list[tuple[str, str]] = []
    figures: list[tuple[str, Path]] = []

    screen: list[Any] = []  # printed together at the end, so nothing the report writes scrolls them away
    tables = pivot_by_kind(records, observations, alpha=alpha, replicates=replicates, **stat)
    table_html = []
    for t in tables:
        name = t.kind or "results"
        put(f"tables/{name}.md", _render.to_markdown(t, precision))
        put(f"tables/{name}.tex", _render.to_latex(t, precision, label=f"tab:{name}"))
        put(f"tables/{name}.csv", _render.to_csv(t))
        md_parts.append(_render.to_markdown(t, precision))
        table_html.append(_render.to_html(t, precision))
        screen.append(_render.to_rich(t, precision, compact=compact, only={"aggregation": "mean"} if compact else None))
    html_sections.append(("Results", "".join(table_html)))

    if reference:
        try:
            cmp = _compare.compare(records, reference, observations, **stat)
        except ValueError as exc:
            cmp = None
            note = f"Comparison with {reference} skipped: {exc}"
            md_parts.append(f"_{note}_\n")
            html_sections.append(("Ours vs the paper", f"<p>{note}</p>\n"))
        if cmp is not None and not cmp.empty:
            put("comparison.md", _compare.comparison_markdown(cmp, precision))
            put("comparison.csv", cmp.to_csv(index=False, lineterminator="\n"))
            md_parts.append("## Ours vs the paper\n\n" + _compare.comparison_markdown(cmp, precision))
            html_sections.append(("Ours vs the paper", _compare.comparison_html(cmp, precision)))

    if set(records["kind"]) & {"quality", "segmentation"}:
        results = _claims.check_claims(records, observations=observations, margin=margin, alpha=alpha, test=test,
                                       reference="sharp-gan", replicates=replicates, **stat)
        # a scope that holds only one side of every claim says nothing: list claims where records exist
        present = [r for r in results if not r.reason.startswith("no records")]
        if present:
            put("claims.md", _claims.claims_markdown(results, precision))
            put("claims.csv", _claims.claims_frame(results, precision).to_csv(index=False, lineterminator="\n"))
            put("claims_detail.csv", _claims.claims_detail_frame(results).to_csv(index=False, lineterminator="\n"))
            md_parts.append("## Paper claims\n\n" + _claims.claims_markdown(results, precision))
            html_sections.append(("Paper claims", _claims.claims_html(results, precision)))
            screen.append(_claims.claims_rich(results, precision, compact=compact,
                                              aggregation="mean" if compact else None))

    failed = _failed_runs(records)
    if failed:
        text = "".join(f"- {line}\n" for line in failed)
        put("failed_runs.md", "# Failed runs\n\n" + text)
        md_parts.append("## Failed runs\n\nShown as `failed` in the tables, never as numbers; claims on them are "
                        "untested.\n\n" + text)

        html_sections.append(("Failed runs", "<ul>" + "".join(f"<li class='failed'>{_html.escape(x)}</li>"
                                                               for x in failed) + "</ul>\n"))

    if runs:
        dev = _deviations.load_deviations(runs)
        if not dev.empty:
            put("deviations.md", _deviations.deviations_markdown(dev))
            md_parts.append("## Deviations from the papers\n\n" + _deviations.deviations_markdown(dev))
            html_sections.append(("Deviations from the papers", _deviations.deviations_html(dev)))

    for t in tables:
        name = t.kind or "results"
        sub = records if not t.kind else records[records["kind"] == t.kind]
        p = _figures.kind_bars(sub, out / "figures" / f"{name}_bars.png", table=t)  # grouped, CI bars, paper marks
        files.append(f"figures/{name}_bars.png")
        bars = "95% CI" if any(t.estimate(r, m).has_ci for r in t.rows for m in t.metrics) else "± std over seeds"
        figures.append((f"{t.title()}: estimate with {bars}", p))
    seg = records[(records["kind"] == "segmentation") & (records["metric"] == "pq")
                  & (records["model"] != FLOOR_SEGMENTER)]  # the floor trains on no images: no point on this curve
    scope = [c for c in scope_columns(seg) if seg[c].nunique() > 1]
    for key, sub in (seg.groupby(scope, sort=False) if scope else [((), seg)]):
        if sub.empty or not (sub["train_set"] != "R").any():
            continue
        key = key if isinstance(key, tuple) else (key,)
        slug = "".join("_" + "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in str(v)) for v in key)
        rel = f"figures/pq_vs_synthetic{slug}.png"
        try:
            p = _figures.pq_vs_synthetic(sub, out / rel, observations=observations, **stat)
        except ValueError:
            continue  # training sets without a synthetic count: no such figure
        files.append(rel)
        where = ", ".join(f"{c} {v}" for c, v in zip(scope, key))
        figures.append(("PQ versus the number of synthetic training images" + (f" ({where})" if where else ""), p))
    for caption, p in figures:
        md_parts.append(f"![{caption}]({p.relative_to(out).as_posix()})\n")

    prov = {"gbench_version": __version__, "git_revision": git_revision(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "record_provenance": _record_provenance(records), "versions": package_versions()}
    put("report.md", "\n".join(md_parts))
    put("report.html", _render.html_page(title, html_sections, figures, prov))
    manifest = {"format": "gbench-report", "files": files, "reference": reference,
                "inputs": [{"path": str(s), "sha256": hashlib.sha256(Path(s).read_bytes()).hexdigest()}
                           for s in sources if Path(s).is_file()],
                "records": int(len(records)), "failed_runs": failed,
                "statistics": {"confidence": 0.95, "n_resamples": n_resamples, "seed": seed, "test": test,
                               "alpha": alpha, "margin": margin, "observations": observations is not None},
                **prov}
    write_json(out / "manifest.json", manifest)
    if console is not None:
        for item in screen:
            console.print(item)
    return manifest


def _failed_runs(records: pd.DataFrame) -> list[str]:
    """One line per failed experiment (model, training set, seed: the check that caught it)."""
    if "status" not in records.columns:
        return []
    bad = records[records["status"] == "failed"]
    keys = [c for c in ("kind", "model", "train_set", "seed") if c in bad.columns]
    out = []
    for r in bad.drop_duplicates(keys).itertuples(index=False):
        what = (f"{r.model} {r.train_set} seed {r.seed}" if r.kind == "segmentation"
                else f"{r.model} seed {r.seed} ({r.kind})")
        out.append(f"{what}: {r.failure}")
    return out


def _record_provenance(records: pd.DataFrame) -> dict[str, list[str]]:
    cols = ["gbench_version", "git_revision", "torch_version", "device"]
    return {c: sorted(v for v in set(records[c]) if v) for c in cols if c in records.columns}
