"""The tidy record format: building, validation, atomic save with manifest, load errors."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

from gbench.core.records import (COLUMNS, KEY_COLUMNS, key_columns, load_records, make_records, manifest_path,
                                 provenance_columns, records_from_dicts, save_records)
from gbench.core.errors import DataError
from tests.reports.fixtures import PROV, fixed_records

REPO = Path(__file__).resolve().parents[2]


def test_make_records_one_row_per_metric_with_provenance() -> None:
    conv = {"ssim": {"sigma": 1.5}}
    df = make_records("quality", "sharp-gan", {"ssim": 0.7, "gmsd": 0.2}, train_set="R", profile="smoke", seed=3,
                      dataset="synthetic-he", split="test", n={"ssim": 4, "gmsd": 5},
                      provenance={"versions": {"gbench": "9.9", "torch": "2.14.1"}, "git_revision": "deadbeef",
                                  "device": "cpu:x", "date": "2026-01-01T00:00:00+00:00"},
                      conventions=conv, conditioning="distance-map")
    assert list(df.columns) == list(COLUMNS) + ["conditioning"]
    assert list(df["metric"]) == ["ssim", "gmsd"] and list(df["n"]) == [4, 5]
    assert set(df["seed"]) == {3} and df["seed"].dtype == "int64" and df["value"].dtype == "float64"
    row = df.iloc[0]
    assert (row.gbench_version, row.torch_version, row.git_revision, row.device) == ("9.9", "2.14.1", "deadbeef",
                                                                                     "cpu:x")
    assert json.loads(row.conventions) == conv
    assert key_columns(df) == list(KEY_COLUMNS) + ["conditioning"]


def test_provenance_from_gbench_provenance() -> None:
    from gbench.core.provenance import provenance

    cols = provenance_columns(provenance(profile="smoke", seed=0))
    import torch

    assert cols["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    assert cols["device"].startswith(("cpu", "cuda")) and cols["date"].startswith("20")
    assert cols["conventions"] == "{}"


def test_save_load_roundtrip_exact(tmp_path: Path) -> None:
    df = fixed_records()
    path = save_records(df, tmp_path / "r.csv")
    assert path == tmp_path / "r.csv"
    back = load_records(path)
    pd.testing.assert_frame_equal(back, df)
    assert (back["value"].to_numpy() == df["value"].to_numpy()).all()  # full precision, not rounded
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["rows"] == len(df) and manifest["columns"] == list(df.columns)
    assert manifest["metrics"]["gmsd"] == "lower" and manifest["metrics"]["pq"] == "higher"
    assert manifest["files"] == ["r.csv", "r.parquet"]  # pyarrow is a dependency: Parquet beside the CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.manifest.json", "r.parquet"]  # no temp files
    assert load_records(tmp_path / "r.csv").equals(load_records([path]))
    pd.testing.assert_frame_equal(load_records(tmp_path / "r.parquet"), df)  # the same table, exactly


def test_load_folder_and_several_files(tmp_path: Path) -> None:
    df = fixed_records()
    save_records(df[df.kind == "quality"], tmp_path / "a" / "records.csv")
    save_records(df[df.kind == "segmentation"], tmp_path / "b.csv")
    both = load_records([tmp_path / "a", tmp_path / "b.csv"])
    assert len(both) == len(df)
    with pytest.raises(ValueError, match="same keys and metric"):
        load_records([tmp_path / "b.csv", tmp_path / "b.csv"])


def test_failed_save_leaves_previous_file(tmp_path: Path) -> None:
    df = fixed_records()
    path = save_records(df, tmp_path / "r.csv")
    before = path.read_bytes()
    bad = df.copy()
    bad.loc[0, "kind"] = "nonsense"
    with pytest.raises(ValueError, match="unknown kind"):
        save_records(bad, path)
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="end in .csv"):
        save_records(df, tmp_path / "r.txt")


def _edit(text: str, column: str, value: str) -> str:
    """Set one column of the first data row of a record CSV (no quoting in the fixture's first row)."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index(column)] = value
    lines[1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("kind,", "sort,", 1), "missing column(s) kind"),
    (lambda t: _edit(t, "value", "zero"), "value 'zero' of metric 'ssim' is not a number"),
    (lambda t: _edit(t, "seed", "x"), "row 2: seed 'x' is not an integer"),
    (lambda t: _edit(t, "n", "-1"), "not a non-negative integer"),
    (lambda t: _edit(t, "kind", "mifocus"), "unknown kind(s) 'mifocus'"),
    (lambda t: t + t.splitlines()[1] + "\n", "share the same keys"),
    (lambda t: "", "unreadable CSV"),
])
def test_load_errors_name_file_and_problem(tmp_path: Path, mutate, message: str) -> None:
    path = save_records(fixed_records(), tmp_path / "r.csv")
    path.write_text(mutate(path.read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError) as exc:
            load_records(path)
    text = str(exc.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_missing_file_and_changed_csv_warning(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no records.csv"):
        load_records(tmp_path)
    path = save_records(fixed_records(), tmp_path / "r.csv")
    path.write_text(path.read_text().replace("abc123", "abc124"))
    with pytest.warns(UserWarning, match="changed since its manifest"):
        load_records(path)


def test_records_from_dicts_errors() -> None:
    row = {c: PROV.get(c, "x") for c in COLUMNS}
    row.update(seed=0, value=1.0, n=1, kind="quality", metric="ssim", ci_low=0.9, ci_high=1.1, n_images=1,
               n_seeds=1, status="ok", failure="")
    with pytest.raises(ValueError, match="lacks column"):
        records_from_dicts([{k: v for k, v in row.items() if k != "split"}])
    assert records_from_dicts([]).empty
    nan_row = dict(row, value=float("nan"))
    assert records_from_dicts([nan_row])["value"].isna().all()  # NaN is a legal value (e.g. no nuclei)


def test_estimate_columns_defaults_and_checks() -> None:
    base = {"kind": "segmentation", "model": "unet", "train_set": "R", "profile": "smoke", "seed": 0,
            "dataset": "d", "split": "test", "metric": "pq", "value": 0.5, "n": 7}
    df = records_from_dicts([base])
    assert df["n_images"].iloc[0] == 7 and df["n_seeds"].iloc[0] == 1 and df["status"].iloc[0] == "ok"
    assert math.isnan(df["ci_low"].iloc[0]) and "ci_low" not in key_columns(df)
    with pytest.raises(ValueError, match="not an interval"):
        records_from_dicts([dict(base, ci_low=0.6, ci_high=0.4)])
    with pytest.raises(ValueError, match="which check failed"):
        records_from_dicts([dict(base, status="failed")])
    with pytest.raises(ValueError, match="status 'broken'"):
        records_from_dicts([dict(base, status="broken")])
    ok = records_from_dicts([dict(base, status="failed", failure="no foreground predicted")])
    assert ok["status"].iloc[0] == "failed"


def test_reports_never_import_torch() -> None:
    code = ("import sys\n"
            "from tests.reports.fixtures import fixed_records\n"
            "import gbench.reports.tables, gbench.reports.render, gbench.reports.compare, gbench.reports.claims, gbench.reports.figures, "
            "gbench.reports.regress, gbench.pipelines.stages, gbench.reports.report\n"
            "from reports.tables import pivot_by_kind\n"
            "from reports.render import to_latex\n"
            "[to_latex(t) for t in pivot_by_kind(fixed_records())]\n"
            "gbench.reports.claims.check_claims(fixed_records())\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
