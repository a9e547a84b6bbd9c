"""Every command's tables at 80 columns: no column narrower than its header (or than the longest
word of its cells), no line longer than the terminal (gbench.cli.tables.fit_table).

The tables are caught as the commands print them (the CLI console calls ``fit_table``) and laid
out again by rich at width 80; a column is measured the way rich draws it
(``Table._calculate_column_widths``, the widths rich renders with).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from gbench.cli import tables as cli_tables
from gbench.cli.commands import common
from tests.cli.test_cli import invoke

WIDTH = 80


def layout(table: Table, width: int = WIDTH) -> tuple[list[int], list[str]]:
    """(text width of each column, rendered lines) of ``table`` drawn by rich at ``width``."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    widths = table._calculate_column_widths(console, console.options.update_width(width - table._extra_width))
    text = [w - table._get_padding_width(i) for i, w in enumerate(widths)]
    console.print(table)
    return text, console.export_text().splitlines()


def cut_columns(table: Table, width: int = WIDTH) -> list[str]:
    """Headers of the columns rich draws narrower than the header itself, or lines past ``width``."""
    text, lines = layout(table, width)
    bad = [f"{cli_tables.plain(c.header)!r}: {w} < {cell_len(cli_tables.plain(c.header))}"
           for c, w in zip(table.columns, text) if w < max(map(cell_len, cli_tables.plain(c.header).splitlines() or [""]))]
    bad += [f"line of {cell_len(line)} characters" for line in lines if cell_len(line) > width]
    return bad


@pytest.fixture()
def printed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Table, list[Table]]]:
    """The tables the commands print (as given, and as drawn), on an 80-column console."""
    seen: list[tuple[Table, list[Table]]] = []
    fit = cli_tables.fit_table

    def spy(table: Table, width: int) -> list[Table]:
        parts = fit(table, width)
        seen.append((table, parts))
        return parts

    monkeypatch.setattr(cli_tables, "fit_table", spy)
    monkeypatch.setattr(common.console, "_width", WIDTH)
    monkeypatch.setattr(common.err_console, "_width", WIDTH)
    return seen


def check(seen: list[tuple[Table, list[Table]]], least: int) -> list[Table]:
    assert len(seen) >= least, f"expected {least} tables, the command printed {len(seen)}"
    for table, parts in seen:
        for part in parts:
            assert not cut_columns(part), (part.title, cut_columns(part))
        # every column of the table is shown (the label columns in each part)
        shown = {id(c._cells) for p in parts for c in p.columns}
        assert shown == {id(c._cells) for c in table.columns}
    return [t for t, _ in seen]


def test_fit_table_splits_wide_tables_and_repeats_the_labels() -> None:
    t = Table(title="wide", caption="notes")
    t.add_column("Model", no_wrap=True)
    for m in range(10):
        t.add_column(f"Metric {m} ↑", justify="right")
    t.add_row("sharp-gan", *[f"0.{m}12 [0.{m}00, 0.{m}30]" for m in range(10)])
    assert cut_columns(t), "rich alone squeezes this table below its headers"
    parts = cli_tables.fit_table(t, WIDTH)
    assert len(parts) > 1
    assert all(cli_tables.plain(p.columns[0].header) == "Model" for p in parts)
    assert parts[0].title == "wide" and parts[-1].caption == "notes" and parts[-1].title is None
    for p in parts:
        assert not cut_columns(p)
    # a table that fits is drawn whole
    assert len(cli_tables.fit_table(t, 1000)) == 1


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixed report records with per-image observations beside them."""
    from gbench.core.observations import save_observations
    from gbench.core.records import save_records
    from tests.reports.fixtures import fixed_records, observations_for

    root = tmp_path_factory.mktemp("records")
    recs = fixed_records()
    save_records(recs, root / "records.csv")
    save_observations(observations_for(recs), root / "records.csv")
    return root


def test_quality_generators_with_extractor_at_80_columns(tmp_path: Path, printed: list) -> None:
    """The case of the issue: ``quality --generator ... --extractor ...`` (eight metrics with intervals)."""
    from gbench.data.io import write_png
    from gbench.generators.train import train_generator
    from tests.generators.test_train import tiles

    cks = [train_generator(g, "tiles", tmp_path / g, profile="smoke", seed=0, steps=2, progress=False,
                           dataset=tiles(2)).checkpoint for g in ("dummy", "mask-paint")]
    data = tmp_path / "tiles"
    for split in ("train", "test"):
        for sub in ("images", "labels"):
            (data / split / sub).mkdir(parents=True)
        for s in tiles(2):
            write_png(data / split / "images" / f"{s.name}.png", s.image)
            write_png(data / split / "labels" / f"{s.name}.png", s.instances.astype(np.uint16))
    res = invoke("quality", "--generator", "dummy,mask-paint", "--checkpoint", str(cks[0]), "--checkpoint",
                 str(cks[1]), "--data", str(data), "--profile", "smoke", "--extractor", "random-conv", "--stain")
    assert res.exit_code == 0, res.stderr
    tables = check(printed, 3)
    assert any(cut_columns(t) for t in tables), "the Table 1 layout did not need fitting: the test lost its case"
    assert max(map(cell_len, res.stdout.splitlines())) <= WIDTH


def test_compare_regress_report_at_80_columns(records_dir: Path, tmp_path: Path, printed: list) -> None:
    import pandas as pd

    rec = str(records_dir / "records.csv")
    assert invoke("compare", rec, "--a", "model=sharp-gan", "--b", "model=gan-dist", "--resamples", "200").exit_code == 0
    n = len(printed)
    check(printed, 1)
    planted = pd.read_csv(rec)
    planted.loc[planted["metric"] == "pq", "value"] -= 0.1
    planted.loc[planted["metric"] == "ssim", "value"] += 0.1
    planted.to_csv(tmp_path / "planted.csv", index=False)
    res = invoke("regress", rec, str(tmp_path / "planted.csv"), "--all")
    assert res.exit_code == 1
    check(printed, n + 2)
    assert invoke("report", rec, "--out", str(tmp_path / "report"), "--resamples", "200").exit_code == 0
    check(printed, n + 3)


def test_data_and_profile_tables_at_80_columns(tmp_path: Path, printed: list) -> None:
    from tests.data.test_loaders import write_folder

    write_folder(tmp_path / "ds", ["a", "b"])
    for args in (["data", "inspect", str(tmp_path / "ds"), "--split", "all"], ["data", "list"], ["profiles"]):
        res = invoke(*args)
        assert res.exit_code == 0, (args, res.stderr)
        assert max(map(cell_len, res.stdout.splitlines())) <= WIDTH, args
    check(printed, 3)


def test_segment_table2_at_80_columns(tmp_path: Path, printed: list) -> None:
    from tests.cli.test_bad_inputs import write_split_dataset

    write_split_dataset(tmp_path / "ds")
    res = invoke("segment", "--data", str(tmp_path / "ds"), "--profile", "smoke", "--max-steps", "1", "--table",
                 "--no-progress", "--out", str(tmp_path / "seg"))
    assert res.exit_code == 0, res.stderr
    tables: list[Any] = check(printed, 1)
    assert any("Sharp-GAN Table 2" in str(t.title) for t in tables)
    assert max(map(cell_len, res.stdout.splitlines())) <= WIDTH
