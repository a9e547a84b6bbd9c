"""Write a report folder from records: tables in every format, comparison, claims, figures, HTML.

Layout of ``OUT``::

    records.csv, records.manifest.json   the records the report was made from
    tables/<kind>.{md,tex,csv}           one table per kind (mean ± std over seeds, best in bold)
    comparison.{md,csv}                  ours beside the paper (when any row matches a reference)
    claims.{md,csv}                      the paper's claims, holds / fails / untested
    deviations.md                        settings that depart from the papers (training run.json's)
    figures/<kind>_bars.png              metric bars with ±1 std over seeds
    figures/pq_vs_synthetic.png          PQ against the number of synthetic images (segmentation)
    report.md, report.html               everything together (HTML self-contained)
    manifest.json                        files written, input sha256, versions, date

Every file is written atomically; ``manifest.json`` last.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gbench.core.records import save_records, scope_columns
from reports import claims as _claims
from reports import compare as _compare
from reports import figures as _figures
from reports import render as _render
from reports.tables import pivot_by_kind

__all__ = ["write_report"]


def write_report(records: pd.DataFrame, out: str | Path, reference: str | None = "sharp-gan", precision: int = 3,
                 title: str = "gbench report", console: Any = None,
                 sources: Sequence[str | Path] = (), runs: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Render ``records`` into the folder ``out`` (see the module docstring).

    Args:
        records: Record DataFrame (validated).
        out: Output folder (created).
        reference: Reference table name for the comparison, or None for none.
        precision: Decimals shown.
        title: Page title.
        console: A rich console to print the tables on (None: print nothing).
        sources: Record files the records came from (their sha256 go in the manifest).
        runs: Training ``run.json`` files (or their folders): their ``deviations`` from the
            papers become the "Deviations from the papers" section and ``deviations.md``.

    Returns:
        The manifest (also written to ``out/manifest.json``).
    """
    from gbench import __version__
    from gbench.fileio import write_json, write_text
    from gbench.provenance import git_revision, package_versions

    if records.empty:
        raise ValueError("no records to report")
    if reference:
        _compare.load_reference(reference)  # unknown name or bad file: fail before writing anything
    out = Path(out)
    files: list[str] = []

    def put(rel: str, text: str) -> None:
        write_text(out / rel, text)
        files.append(rel)

    save_records(records, out / "records.csv")
    files += ["records.csv", "records.manifest.json"]
    md_parts = [f"# {title}\n"]
    html_sections: list[tuple[str, str]] = []
    figures: list[tuple[str, Path]] = []

    tables = pivot_by_kind(records)
    table_html = []
    for t in tables:
        name = t.kind or "results"
        put(f"tables/{name}.md", _render.to_markdown(t, precision))
        put(f"tables/{name}.tex", _render.to_latex(t, precision, label=f"tab:{name}"))
        put(f"tables/{name}.csv", _render.to_csv(t))
        md_parts.append(_render.to_markdown(t, precision))
        table_html.append(_render.to_html(t, precision))
        if console is not None:
            console.print(_render.to_rich(t, precision))
    html_sections.append(("Results", "".join(table_html)))

    if reference:
        try:
            cmp = _compare.compare(records, reference)
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
        results = _claims.check_claims(records)
        tested = [r for r in results if r.status != "untested"]
        if tested:
            put("claims.md", _claims.claims_markdown(results, precision))
            put("claims.csv", _claims.claims_frame(results, precision).to_csv(index=False, lineterminator="\n"))
            md_parts.append("## Paper claims\n\n" + _claims.claims_markdown(results, precision))
            html_sections.append(("Paper claims", _claims.claims_html(results, precision)))
            if console is not None:
                from rich.markup import escape

                for r in results:
                    colour = {"holds": "green", "fails": "red", "untested": "yellow"}[r.status]
                    console.print(f"[{colour}]{r.status:>8}[/]  {escape(r.claim.text)}")

    if runs:
        from reports import deviations as _deviations

        dev = _deviations.load_deviations(runs)
        if not dev.empty:
            put("deviations.md", _deviations.deviations_markdown(dev))
            md_parts.append("## Deviations from the papers\n\n" + _deviations.deviations_markdown(dev))
            html_sections.append(("Deviations from the papers", _deviations.deviations_html(dev)))

    for t in tables:
        name = t.kind or "results"
        sub = records if not t.kind else records[records["kind"] == t.kind]
        p = _figures.metric_bars(sub, out / "figures" / f"{name}_bars.png")
        files.append(f"figures/{name}_bars.png")
        figures.append((f"{t.title()}: mean ± std over seeds", p))
    seg = records[(records["kind"] == "segmentation") & (records["metric"] == "pq")]
    scope = [c for c in scope_columns(seg) if seg[c].nunique() > 1]
    for key, sub in (seg.groupby(scope, sort=False) if scope else [((), seg)]):
        if sub.empty or not (sub["train_set"] != "R").any():
            continue
        key = key if isinstance(key, tuple) else (key,)
        slug = "".join("_" + "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in str(v)) for v in key)
        rel = f"figures/pq_vs_synthetic{slug}.png"
        try:
            p = _figures.pq_vs_synthetic(sub, out / rel)
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
                "records": int(len(records)), **prov}
    write_json(out / "manifest.json", manifest)
    return manifest


def _record_provenance(records: pd.DataFrame) -> dict[str, list[str]]:
    cols = ["gbench_version", "git_revision", "torch_version", "device"]
    return {c: sorted(v for v in set(records[c]) if v) for c in cols if c in records.columns}
