"""Tables that stay readable in a narrow terminal (80 columns).

rich shrinks every column of a table wider than the terminal, down to one character when it has
to, so a wide table (``quality --generator ... --extractor ...``: eight metrics with intervals)
becomes a column of single letters. :func:`fit_table` prevents that for any rich table the CLI
prints (its console, :class:`FittingConsole`, calls it): no column gets narrower than its header
or than the longest word of its cells (at most :data:`MAX_WORD` characters; longer words fold);
when the columns cannot all fit at that width, the table is split into several tables of the
same rows, each repeating the row-label columns (the leading columns that are not
right-justified), the title on the first and the caption under the last.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["FittingConsole", "fit_table", "min_widths", "plain"]

#: A cell word longer than this may fold (a path, a long label) rather than widen its column.
MAX_WORD = 16


def plain(renderable: Any) -> str:
    """The text of a header or cell (markup removed); "" for what is not text."""
    if isinstance(renderable, Text):
        return renderable.plain
    if isinstance(renderable, str):
        try:
            return Text.from_markup(renderable).plain
        except Exception:  # noqa: BLE001 - not valid markup: shown as written
            return renderable
    return ""


def _header_width(column: Any) -> int:
    return max([cell_len(line) for line in plain(column.header).splitlines()] or [0])


def _word_width(column: Any) -> int:
    words = [w for cell in column._cells for w in plain(cell).split()]
    return min(max([cell_len(w) for w in words] or [0]), MAX_WORD)


def min_widths(table: Table) -> list[int]:
    """Per column, the narrowest it may be drawn (text only, no padding): its header's width and
    its longest cell word (up to :data:`MAX_WORD`); a ``no_wrap`` column its widest cell."""
    out = []
    for col in table.columns:
        need = max(_header_width(col), _word_width(col), col.min_width or 0)
        if col.no_wrap:
            need = max([need, *(max([cell_len(x) for x in plain(c).splitlines()] or [0]) for c in col._cells)])
        out.append(need)
    return out


def _padding(table: Table, index: int) -> int:
    return table._get_padding_width(index)  # rich's own rule (collapse_padding, pad_edge)


def _edges(table: Table, ncols: int) -> int:
    """Characters of the borders of a table of ``ncols`` columns."""
    if table.box is None:
        return 0
    return (2 if table.show_edge else 0) + max(ncols - 1, 0)


def _subtable(table: Table, columns: list[Any], *, title: bool, caption: bool) -> Table:
    out = copy.copy(table)
    out.columns = [dataclasses.replace(c, _index=i) for i, c in enumerate(columns)]
    out.title = table.title if title else None
    out.caption = table.caption if caption else None
    return out


def fit_table(table: Table, width: int) -> list[Table]:
    """``table`` as one or more tables that fit ``width`` columns without cutting any column below
    :func:`min_widths` (module docstring). The input is not changed."""
    if not table.columns:
        return [table]
    need = min_widths(table)
    table = copy.copy(table)
    table.columns = [dataclasses.replace(c, min_width=n) for c, n in zip(table.columns, need)]
    full = [n + _padding(table, i) for i, n in enumerate(need)]
    if sum(full) + _edges(table, len(full)) <= width or len(full) == 1:
        return [table]
    keys = 0
    while keys < len(table.columns) - 1 and table.columns[keys].justify != "right":
        keys += 1
    keys = max(keys, 1)
    # the label columns sit at the left edge in every part, the others follow them
    key_width = sum(full[:keys])
    groups: list[list[int]] = []
    for j in range(keys, len(full)):
        if groups:
            cols = len(groups[-1]) + 1
            if key_width + sum(full[i] for i in groups[-1]) + full[j] + _edges(table, keys + cols) <= width:
                groups[-1].append(j)
                continue
        groups.append([j])
    if len(groups) == 1:
        return [table]
    return [_subtable(table, [*table.columns[:keys], *(table.columns[i] for i in g)], title=n == 0,
                      caption=n == len(groups) - 1) for n, g in enumerate(groups)]


class FittingConsole(Console):
    """A :class:`rich.console.Console` whose tables never shrink a column below its header
    (:func:`fit_table`)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if not any(isinstance(o, Table) for o in objects):
            super().print(*objects, **kwargs)
            return
        width = kwargs.get("width") or self.width
        for o in objects:
            for part in fit_table(o, width) if isinstance(o, Table) else [o]:
                super().print(part, **kwargs)
