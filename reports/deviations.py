"""Deviations from the papers, as the training runs recorded them (``run.json`` ``deviations``).

``gbench train-gen`` writes, for generators that know the paper they implement, a list of
``{"setting", "value", "note"}`` entries: where the run's configuration departs from the paper
(the L1 term and the non-saturating G loss Sharp-GAN's Eq. 1 does not have, values the paper
does not give such as ``beta`` and ``lambda``). This module collects them from run files into one
table for the report. It reads JSON only (no torch).
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["COLUMNS", "load_deviations", "deviations_markdown", "deviations_html"]

COLUMNS = ["generator", "setting", "value", "note"]


def _run_file(path: str | Path) -> Path:
    p = Path(path)
    return p / "run.json" if p.is_dir() else p


def load_deviations(runs: Sequence[str | Path]) -> pd.DataFrame:
    """One row per (generator, setting) found in the ``run.json`` files (or folders holding one).

    Missing files and runs without a ``deviations`` list are skipped; the same (generator,
    setting, value) recorded by several runs appears once.
    """
    rows = []
    for r in runs:
        path = _run_file(r)
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for d in doc.get("deviations") or []:
            rows.append({"generator": str(doc.get("generator", "")), "setting": str(d.get("setting", "")),
                         "value": "" if d.get("value") is None else str(d.get("value")),
                         "note": str(d.get("note", ""))})
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.drop_duplicates(subset=["generator", "setting", "value"]).reset_index(drop=True)


def deviations_markdown(df: pd.DataFrame) -> str:
    """A Markdown table of :func:`load_deviations` with a one-line lead."""
    lead = ("Settings of the trained generators that depart from the paper, as each run recorded them "
            "(`run.json` `deviations`):\n\n")
    head = "| generator | setting | value | note |\n|---|---|---|---|\n"
    body = "".join(f"| {r.generator} | {r.setting} | {r.value} | {r.note.replace('|', '/')} |\n"
                   for r in df.itertuples(index=False))
    return lead + head + body


def deviations_html(df: pd.DataFrame) -> str:
    """An HTML table of :func:`load_deviations`."""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(r.generator)}</td><td><code>{esc(r.setting)}</code></td><td>{esc(r.value)}</td>"
                   f"<td>{esc(r.note)}</td></tr>\n" for r in df.itertuples(index=False))
    return ("<p>Settings of the trained generators that depart from the paper, as each run recorded them.</p>\n"
            "<table>\n<tr><th>generator</th><th>setting</th><th>value</th><th>note</th></tr>\n" + rows + "</table>\n")
