"""Render :class:`reports.tables.ResultTable` as a rich table, Markdown, LaTeX, CSV or HTML.

Every format shows each cell as ``estimate [low, high]`` (its 95% confidence interval; see
:mod:`reports.tables`), falling back to ``mean ± std`` over seeds (or the bare value for one
seed) with a note when there is no interval; a failed run reads ``failed``, never a number;
``†`` marks a generator (Table 1) or a trained segmentation cell's PQ (Table 2) that does not
significantly beat the floor (mask-paint; the untrained floor segmenter). Every table has the seed
and test-image counts of each row, an arrow for the better direction of every metric, the best
mean of each column in bold (at the displayed precision; ties are all bold; metrics of unknown
direction and failed cells are never bold) and its notes below. :func:`html_page` builds one
self-contained page (CSS inline, figures as base64 PNG) from rendered parts.

The libraries do the writing: Markdown and CSV by pandas (tabulate), LaTeX by pandas'
``Styler.to_latex`` (booktabs rules, caption, label), HTML by the jinja2 templates in
``reports/templates`` (escaping); this module decides what each cell says.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader
from rich.markup import escape
from rich.table import Table

from gbench.core.records import metric_label
from gbench.reports.tables import ResultTable, arrow, display_name

__all__ = ["to_markdown", "to_latex", "to_rich", "to_csv", "to_html", "html_page", "latex_escape", "fmt", "notes_text"]

_DASH = "–"
#: The HTML templates (``reports/templates``); autoescape: every value is HTML-escaped unless marked ``safe``.
_TEMPLATES = Environment(loader=PackageLoader("gbench.reports", "templates"), autoescape=True, trim_blocks=True,
                         keep_trailing_newline=True)
_LATEX_ARROWS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$"}
_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def fmt(value: float, precision: int = 3) -> str:
    """A number at fixed precision; ``–`` for NaN."""
    return _DASH if value is None or math.isnan(value) else f"{value:.{precision}f}"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _cell_parts(table: ResultTable, row: tuple[str, ...], metric: str, precision: int,
                best: set[tuple[str, ...]]) -> tuple[str, str, bool, str]:
    """(value text, uncertainty text, bold, mark) of one cell.

    The uncertainty is ``[low, high]`` (95% CI) when the cell has one, else ``± std`` over
    several seeds, else ``""``; a failed run reads ``failed`` with no uncertainty; ``mark`` is
    ``†`` when the cell does not significantly beat the floor generator.
    """
    c = table.estimate(row, metric)
    if c.failed:
        return "failed", "", False, ""
    if c.has_ci:
        unc = f"[{fmt(c.ci_low, precision)}, {fmt(c.ci_high, precision)}]"
    elif c.seeds > 1 and not math.isnan(c.std):
        unc = f"± {fmt(c.std, precision)}"
    else:
        unc = ""
    return fmt(c.mean, precision), unc, row in best and not math.isnan(c.mean), "†" if c.below_floor else ""


def _cells(table: ResultTable, precision: int) -> list[tuple[tuple[str, ...], list[tuple[str, str, bool, str]]]]:
    """Per row: (key, [(value text, uncertainty text, is best, mark) per metric])."""
    best = {m: table.best(m, precision) for m in table.metrics}
    return [(row, [_cell_parts(table, row, m, precision, best[m]) for m in table.metrics]) for row in table.rows]


def _row_labels(table: ResultTable, row: tuple[str, ...]) -> list[str]:
    return [display_name(v) for v in row]


def _plain(value: str, unc: str, mark: str) -> str:
    return value + mark + (f" {unc}" if unc else "")


def notes_text(table: ResultTable) -> list[str]:
    """The table's notes (how the intervals were made, fallbacks, failed runs, the floor)."""
    return list(table.notes)


def to_markdown(table: ResultTable, precision: int = 3) -> str:
    """A GitHub-flavoured Markdown table (via pandas/tabulate): caption, table, notes below."""
    header = ([table.row_label(k) for k in table.row_keys] + [table.header(m) for m in table.metrics]
              + ["Seeds", "Images"])
    body = []
    for row, cells in _cells(table, precision):
        texts = [_plain(f"**{v}**" if best else (f"*{v}*" if v == "failed" else v), unc, mark)
                 for v, unc, best, mark in cells]
        body.append(_row_labels(table, row) + texts + [table.row_seeds(row), table.row_images(row)])
    frame = pd.DataFrame(body, columns=header)
    align = ["left"] * len(table.row_keys) + ["right"] * (len(table.metrics) + 2)
    md = frame.to_markdown(index=False, colalign=align, disable_numparse=True)
    notes = "".join(f"\n_{n}_" if i == 0 else f"  \n_{n}_" for i, n in enumerate(notes_text(table)))
    return f"**{table.title()}**\n\n{md}\n" + (f"{notes}\n" if notes else "")


def to_latex(table: ResultTable, precision: int = 3, caption: str | None = None, label: str | None = None,
             float_env: bool = True) -> str:
    r"""A booktabs LaTeX table (needs ``\usepackage{booktabs}``), written by pandas' ``Styler.to_latex``.

    Cells read ``estimate [low, high]`` (95% CI) or ``mean $\pm$ std``; the best mean of each
    column is ``\textbf``, headers carry ``$\uparrow$``/``$\downarrow$``, repeated leading row
    keys are left blank and groups of the first key are separated by ``\midrule``, as in the
    Sharp-GAN paper's Table 2. The notes follow the table as a footnote-size paragraph.
    """
    nkeys = len(table.row_keys)
    heads = [latex_escape(table.row_label(k)) for k in table.row_keys]
    for m in table.metrics:
        a = arrow(m)
        heads.append(latex_escape(metric_label(m)) + (" " + _LATEX_ARROWS[a] if a else ""))
    heads += ["Seeds", "Images"]
    body = []
    previous: tuple[str, ...] | None = None
    for row, cells in _cells(table, precision):
        labels = [latex_escape(x) for x in _row_labels(table, row)]
        if previous is not None and nkeys > 1:
            for i in range(nkeys - 1):
                if row[: i + 1] == previous[: i + 1]:
                    labels[i] = ""
            if row[0] != previous[0]:
                # Styler has no rule between groups of rows: the row of a new group starts with one
                labels[0] = "\\midrule\n" + labels[0]
        texts = []
        for v, unc, best, mark in cells:
            text = rf"\textbf{{{v}}}" if best else (r"\textit{failed}" if v == "failed" else v)
            text += r"$^\dagger$" if mark else ""
            if unc.startswith("±"):
                text += rf" $\pm$ {unc[2:]}"
            elif unc:
                text += " {\\scriptsize " + unc + "}"
            texts.append(text)
        body.append(labels + texts + [table.row_seeds(row), table.row_images(row)])
        previous = row
    # cells and headers are escaped above (escape=None below), so the markup in them survives
    styler = pd.DataFrame(body, columns=heads).style.hide(axis="index")
    wrap = {}
    if float_env:
        wrap = {"position": "t", "position_float": "centering", "label": label,
                "caption": latex_escape(caption if caption is not None else table.title())}
    tex = styler.to_latex(column_format="l" * nkeys + "c" * len(table.metrics) + "rr", hrules=True, **wrap)
    notes = notes_text(table)
    if notes:  # a paragraph under the tabular, inside the float (Styler has no place for it)
        par = r"\par\footnotesize " + r" \\ ".join(latex_escape(n).replace("†", r"$^\dagger$") for n in notes)
        tex = tex.replace("\\end{tabular}\n", "\\end{tabular}\n" + par + "\n", 1)
    return tex


def to_rich(table: ResultTable, precision: int = 3, *, compact: bool = False,
            only: Mapping[str, str] | None = None) -> Any:
    """A :class:`rich.table.Table` for the terminal (best in bold green, failed in red, notes as caption).

    The row labels never shrink (rich drops the text of columns that do not fit; a table of
    numbers without its row names is useless): label columns keep their full width and the metric
    columns fold instead.

    Args:
        compact: For a summary screen: each cell's interval goes on a second line under its
            estimate, and the Seeds/Images columns become one caption line when every row has the
            same counts.
        only: Keep the rows whose key columns have these values (e.g. ``{"aggregation": "mean"}``);
            a note says what was left out. Keys the table does not have are ignored.
    """
    keep = {k: v for k, v in (only or {}).items() if k in table.row_keys}
    idx = {k: table.row_keys.index(k) for k in keep}
    cells = [(row, c) for row, c in _cells(table, precision) if all(row[idx[k]] == v for k, v in keep.items())]
    dropped = len(table.rows) - len(cells)
    notes = notes_text(table)
    if dropped:
        notes = [*notes, "shown: " + ", ".join(f"{table.row_label(k).lower()} {display_name(v)}"
                                                for k, v in keep.items())
                 + f" ({dropped} more rows in the report)"]
    counts = {(table.row_seeds(row), table.row_images(row)) for row, _ in cells}
    fold_counts = compact and len(counts) == 1
    if fold_counts:
        seeds, images = next(iter(counts))
        notes = [*notes, f"every row: {seeds} seed(s), {images} test images"]
    out = Table(title=escape(table.title()), show_lines=compact,
                caption=escape("\n".join(notes)) if notes else None, caption_justify="left")
    shown = [j for j, k in enumerate(table.row_keys) if k not in keep]  # a filtered key is one value: in the note
    for j in shown:
        k = table.row_keys[j]
        labels = [display_name(row[j]) for row, _ in cells]
        width = max([len(table.row_label(k)), *map(len, labels)])
        out.add_column(escape(table.row_label(k)), justify="left", no_wrap=True, min_width=width)
    for m in table.metrics:
        out.add_column(escape(table.header(m)), justify="right", overflow="fold")
    if not fold_counts:
        out.add_column("Seeds", justify="right", no_wrap=True)
        out.add_column("Images", justify="right", no_wrap=True)
    for row, row_cells in cells:
        texts = []
        for v, unc, best, mark in row_cells:
            if v == "failed":
                texts.append("[bold red]failed[/]")
                continue
            head = f"[bold green]{v}[/]" if best else v
            sep = "\n" if compact else " "
            texts.append(head + (f"[yellow]{mark}[/]" if mark else "") + (f"{sep}[dim]{escape(unc)}[/]" if unc else ""))
        tail = [] if fold_counts else [table.row_seeds(row), table.row_images(row)]
        labels = _row_labels(table, row)
        out.add_row(*[escape(labels[j]) for j in shown], *texts, *tail)
    return out


def to_csv(table: ResultTable) -> str:
    """Wide CSV: the row keys, then per metric ``<m>_mean``, ``<m>_std``, ``<m>_seeds``,
    ``<m>_ci_low``, ``<m>_ci_high``, ``<m>_n_images``, ``<m>_status`` (``_below_floor`` in a
    table with a floor).

    Full precision (no rounding; a failed cell keeps its number, with status ``failed``); the
    key values are the record keys, not display names.
    """
    data: dict[str, list[Any]] = {k: [r[i] for r in table.rows] for i, k in enumerate(table.row_keys)}
    floor = bool(table.below_floor) or any("floor" in n for n in table.notes)
    for m in table.metrics:
        cells = [table.estimate(row, m) for row in table.rows]
        data[f"{m}_mean"] = [c.mean for c in cells]
        data[f"{m}_std"] = [c.std for c in cells]
        data[f"{m}_seeds"] = [c.seeds for c in cells]
        data[f"{m}_ci_low"] = [c.ci_low for c in cells]
        data[f"{m}_ci_high"] = [c.ci_high for c in cells]
        data[f"{m}_n_images"] = [c.n_images for c in cells]
        data[f"{m}_status"] = [c.status for c in cells]
        if floor:
            data[f"{m}_below_floor"] = [c.below_floor for c in cells]
    return pd.DataFrame(data).to_csv(index=False, lineterminator="\n")


def to_html(table: ResultTable, precision: int = 3) -> str:
    """An HTML ``<table>`` fragment (caption, arrows, best in bold, CI small, failed in red, notes),
    from the jinja2 template ``reports/templates/table.html`` (every text is HTML-escaped)."""
    rows = [{"labels": _row_labels(table, row), "seeds": table.row_seeds(row), "images": table.row_images(row),
             "cells": [{"value": v, "unc": unc, "best": best, "mark": mark} for v, unc, best, mark in cells]}
            for row, cells in _cells(table, precision)]
    heads = [table.row_label(k) for k in table.row_keys] + [table.header(m) for m in table.metrics]
    return _TEMPLATES.get_template("table.html").render(title=table.title(), heads=heads, rows=rows,
                                                        notes=notes_text(table))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:70em;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}caption{font-weight:600;text-align:left;padding:.3em 0}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}th{border-bottom:2px solid #444}
td.key,th:first-child{text-align:left}.holds,.supported{color:#1a7f37;font-weight:600}
.fails,.contradicted,.failed{color:#cf222e;font-weight:600}.untested{color:#9a6700}.not-significant{color:#57606a}.undecidable{color:#8250df}
.ci{color:#57606a;font-size:.85em}.notes{font-size:.85em;color:#57606a;margin-top:-.5em}
figure{margin:1em 0}figure img{max-width:100%}pre{background:#f6f8fa;padding:.8em;
overflow-x:auto;font-size:.85em}
"""


def html_page(title: str, sections: Sequence[tuple[str, str]], figures: Sequence[tuple[str, str | Path | bytes]] = (),
              provenance: Mapping[str, Any] | None = None) -> str:
    """A self-contained HTML page: inline CSS, sections of HTML, figures as base64 PNG (jinja2
    template ``reports/templates/page.html``).

    Args:
        title: Page title.
        sections: ``(heading, html fragment)`` pairs, in order.
        figures: ``(caption, PNG path or bytes)`` pairs, embedded as ``data:image/png;base64``.
        provenance: Shown as JSON at the end (versions, revision, date ...).
    """
    embedded = []
    for caption, png in figures:
        data = png if isinstance(png, bytes) else Path(png).read_bytes()
        if not data.startswith(b"\x89PNG"):
            raise ValueError(f"figure {caption!r} is not a PNG image")
        embedded.append((caption, base64.b64encode(data).decode("ascii")))
    prov = json.dumps(dict(provenance), indent=2, default=str) if provenance else ""
    return _TEMPLATES.get_template("page.html").render(title=title, css=_CSS, sections=sections, figures=embedded,
                                                       provenance=prov)
