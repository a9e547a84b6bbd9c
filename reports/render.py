"""Render :class:`reports.tables.ResultTable` as a rich table, Markdown, LaTeX, CSV or HTML.

Every format shows ``mean ± std`` over seeds (the mean alone for one seed), the seed count of
each row, an arrow for the better direction of every metric, and the best mean of each
column in bold (at the displayed precision; ties are all bold; metrics of unknown direction
are never bold). :func:`html_page` builds one self-contained page (CSS inline, figures as
base64 PNG) from rendered parts.
"""
from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gbench.core.records import metric_label
from reports.tables import ResultTable, arrow, display_name

__all__ = ["to_markdown", "to_latex", "to_rich", "to_csv", "to_html", "html_page", "latex_escape", "fmt"]

_DASH = "–"
_LATEX_ARROWS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$"}
_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def fmt(value: float, precision: int = 3) -> str:
    """A number at fixed precision; ``–`` for NaN."""
    return _DASH if value is None or math.isnan(value) else f"{value:.{precision}f}"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _cells(table: ResultTable, precision: int) -> list[tuple[tuple[str, ...], list[tuple[str, str, bool]]]]:
    """Per row: (key, [(mean text, std text or "", is best) per metric])."""
    best = {m: table.best(m, precision) for m in table.metrics}
    out = []
    for row in table.rows:
        cells = []
        for m in table.metrics:
            mean, std, seeds = table.cell(row, m)
            std_text = fmt(std, precision) if seeds > 1 and not math.isnan(std) else ""
            cells.append((fmt(mean, precision), std_text, row in best[m] and not math.isnan(mean)))
        out.append((row, cells))
    return out


def _row_labels(table: ResultTable, row: tuple[str, ...]) -> list[str]:
    return [display_name(v) for v in row]


def to_markdown(table: ResultTable, precision: int = 3) -> str:
    """A GitHub-flavoured Markdown table (via pandas/tabulate) with its caption as a heading line."""
    header = [table.row_label(k) for k in table.row_keys] + [table.header(m) for m in table.metrics] + ["Seeds"]
    body = []
    for row, cells in _cells(table, precision):
        texts = [(f"**{mean}**" if best else mean) + (f" ± {std}" if std else "") for mean, std, best in cells]
        body.append(_row_labels(table, row) + texts + [table.row_seeds(row)])
    frame = pd.DataFrame(body, columns=header)
    align = ["left"] * len(table.row_keys) + ["right"] * (len(table.metrics) + 1)
    md = frame.to_markdown(index=False, colalign=align)
    return f"**{table.title()}**\n\n{md}\n"


def to_latex(table: ResultTable, precision: int = 3, caption: str | None = None, label: str | None = None,
             float_env: bool = True) -> str:
    r"""A booktabs LaTeX table (needs ``\usepackage{booktabs}``).

    The best mean of each column is ``\textbf``, headers carry ``$\uparrow$``/``$\downarrow$``,
    repeated leading row keys are left blank and groups of the first key are separated by
    ``\midrule``, as in the Sharp-GAN paper's Table 2.
    """
    nkeys = len(table.row_keys)
    spec = "l" * nkeys + "c" * len(table.metrics) + "r"
    heads = [latex_escape(table.row_label(k)) for k in table.row_keys]
    for m in table.metrics:
        a = arrow(m)
        heads.append(latex_escape(metric_label(m)) + (" " + _LATEX_ARROWS[a] if a else ""))
    heads.append("Seeds")
    lines = []
    if float_env:
        lines += [r"\begin{table}[t]", r"\centering"]
        lines.append(r"\caption{" + latex_escape(caption if caption is not None else table.title()) + "}")
        if label:
            lines.append(r"\label{" + label + "}")
    lines += [r"\begin{tabular}{" + spec + "}", r"\toprule", " & ".join(heads) + r" \\", r"\midrule"]
    previous: tuple[str, ...] | None = None
    for row, cells in _cells(table, precision):
        labels = [latex_escape(x) for x in _row_labels(table, row)]
        if previous is not None and nkeys > 1 and row[0] != previous[0]:
            lines.append(r"\midrule")
        if previous is not None and nkeys > 1:
            for i in range(nkeys - 1):
                if row[: i + 1] == previous[: i + 1]:
                    labels[i] = ""
        texts = [(rf"\textbf{{{mean}}}" if best else mean) + (rf" $\pm$ {std}" if std else "")
                 for mean, std, best in cells]
        lines.append(" & ".join(labels + texts + [table.row_seeds(row)]) + r" \\")
        previous = row
    lines += [r"\bottomrule", r"\end{tabular}"]
    if float_env:
        lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_rich(table: ResultTable, precision: int = 3) -> Any:
    """A :class:`rich.table.Table` for the terminal (best in bold green)."""
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=escape(table.title()), show_lines=False)
    for k in table.row_keys:
        out.add_column(escape(table.row_label(k)), justify="left")
    for m in table.metrics:
        out.add_column(escape(table.header(m)), justify="right", no_wrap=True)
    out.add_column("Seeds", justify="right")
    for row, cells in _cells(table, precision):
        texts = [(f"[bold green]{mean}[/]" if best else mean) + (f" ± {std}" if std else "")
                 for mean, std, best in cells]
        out.add_row(*[escape(x) for x in _row_labels(table, row)], *texts, table.row_seeds(row))
    return out


def to_csv(table: ResultTable) -> str:
    """Wide CSV: the row keys, then ``<metric>_mean``, ``<metric>_std``, ``<metric>_seeds``.

    Full precision (no rounding); the key values are the record keys, not display names.
    """
    data: dict[str, list[Any]] = {k: [r[i] for r in table.rows] for i, k in enumerate(table.row_keys)}
    for m in table.metrics:
        means, stds, seeds = [], [], []
        for row in table.rows:
            mean, std, n = table.cell(row, m)
            means.append(mean)
            stds.append(std)
            seeds.append(n)
        data[f"{m}_mean"], data[f"{m}_std"], data[f"{m}_seeds"] = means, stds, seeds
    return pd.DataFrame(data).to_csv(index=False, lineterminator="\n")


def to_html(table: ResultTable, precision: int = 3) -> str:
    """An HTML ``<table>`` fragment (caption, arrows, best in bold)."""
    esc = html.escape
    parts = [f"<table>\n<caption>{esc(table.title())}</caption>\n<thead><tr>"]
    parts += [f"<th>{esc(table.row_label(k))}</th>" for k in table.row_keys]
    parts += [f"<th>{esc(table.header(m))}</th>" for m in table.metrics]
    parts.append("<th>Seeds</th></tr></thead>\n<tbody>\n")
    for row, cells in _cells(table, precision):
        parts.append("<tr>" + "".join(f"<td class='key'>{esc(x)}</td>" for x in _row_labels(table, row)))
        for mean, std, best in cells:
            text = (f"<b>{esc(mean)}</b>" if best else esc(mean)) + (f" ± {esc(std)}" if std else "")
            parts.append(f"<td>{text}</td>")
        parts.append(f"<td>{esc(table.row_seeds(row))}</td></tr>\n")
    parts.append("</tbody>\n</table>\n")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:70em;
color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0}caption{font-weight:600;text-align:left;padding:.3em 0}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}th{border-bottom:2px solid #444}
td.key,th:first-child{text-align:left}.holds{color:#1a7f37;font-weight:600}.fails{color:#cf222e;font-weight:600}
.untested{color:#9a6700}figure{margin:1em 0}figure img{max-width:100%}pre{background:#f6f8fa;padding:.8em;
overflow-x:auto;font-size:.85em}
"""


def html_page(title: str, sections: Sequence[tuple[str, str]], figures: Sequence[tuple[str, str | Path | bytes]] = (),
              provenance: Mapping[str, Any] | None = None) -> str:
    """A self-contained HTML page: inline CSS, sections of HTML, figures as base64 PNG.

    Args:
        title: Page title.
        sections: ``(heading, html fragment)`` pairs, in order.
        figures: ``(caption, PNG path or bytes)`` pairs, embedded as ``data:image/png;base64``.
        provenance: Shown as JSON at the end (versions, revision, date ...).
    """
    import json

    esc = html.escape
    parts = ["<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n",
             f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"]
    for heading, fragment in sections:
        parts.append(f"<section>\n<h2>{esc(heading)}</h2>\n{fragment}</section>\n")
    if figures:
        parts.append("<section>\n<h2>Figures</h2>\n")
        for caption, png in figures:
            data = png if isinstance(png, bytes) else Path(png).read_bytes()
            if not data.startswith(b"\x89PNG"):
                raise ValueError(f"figure {caption!r} is not a PNG image")
            b64 = base64.b64encode(data).decode("ascii")
            parts.append(f"<figure><img alt='{esc(caption)}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{esc(caption)}</figcaption></figure>\n")
        parts.append("</section>\n")
    if provenance:
        parts.append("<section>\n<h2>Provenance</h2>\n<pre>"
                     + esc(json.dumps(dict(provenance), indent=2, default=str)) + "</pre>\n</section>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)
