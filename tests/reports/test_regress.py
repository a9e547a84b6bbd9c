"""gbench regress: planted regressions, improvements, tolerances, mismatched tables, CLI exit codes."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from gbench.core.records import load_records, manifest_path, save_records
from gbench.reports.regress import InvalidBaselineError, TableMismatchError, Tolerance, compare_tables, parse_tolerances
from tests.reports.fixtures import fixed_records
from tests.cli.test_cli import run_cli


def _cell(df: pd.DataFrame, model: str, train_set: str, metric: str, seed: int = 0) -> pd.Series:
    return (df.model == model) & (df.train_set == train_set) & (df.metric == metric) & (df.seed == seed)


def test_identical_tables_pass() -> None:
    rep = compare_tables(fixed_records(), fixed_records())
    assert rep.ok and len(rep.cells) == len(fixed_records()) and set(rep.cells.status) == {"same"}


@pytest.mark.parametrize("metric, delta, status", [
    ("pq", -0.01, "worse"), ("pq", +0.01, "better"),      # higher is better
    ("aji", -1e-3, "worse"), ("sq", +1e-3, "better"),
])
def test_planted_change_segmentation(metric: str, delta: float, status: str) -> None:
    base = fixed_records()
    new = base.copy()
    sel = _cell(new, "unet", "R+S3k", metric, seed=1)
    new.loc[sel, "value"] += delta
    rep = compare_tables(base, new)
    changed = rep.cells[rep.cells.status != "same"]
    assert len(changed) == 1
    row = changed.iloc[0]
    assert (row.model, row.train_set, row.seed, row.metric, row.status) == ("unet", "R+S3k", 1, metric, status)
    assert row["delta"] == pytest.approx(delta)
    assert rep.ok == (status == "better")


@pytest.mark.parametrize("delta, status", [(+0.01, "worse"), (-0.01, "better")])
def test_lower_is_better_metric(delta: float, status: str) -> None:
    base = fixed_records()
    new = base.copy()
    new.loc[_cell(new, "sharp-gan", "R", "gmsd"), "value"] += delta
    rep = compare_tables(base, new)
    assert list(rep.cells.loc[rep.cells.status != "same", "status"]) == [status]


def test_tolerance_absolute_relative_and_per_metric() -> None:
    base = fixed_records()
    new = base.copy()
    new.loc[_cell(new, "unet", "R", "pq"), "value"] -= 0.004      # baseline 0.653
    new.loc[_cell(new, "gan-dist", "R", "nrmse"), "value"] += 0.004  # baseline 0.249
    assert len(compare_tables(base, new).regressions) == 2
    assert compare_tables(base, new, Tolerance(abs=0.005)).ok
    assert not compare_tables(base, new, Tolerance(abs=0.003)).ok
    # relative: 0.004 / 0.653 = 0.61 %, 0.004 / 0.249 = 1.6 %
    rel = compare_tables(base, new, Tolerance(abs=0.0, rel=0.01))
    assert list(rel.regressions.metric) == ["nrmse"]
    per = compare_tables(base, new, parse_tolerances(["1e-6", "pq=0.005"], []))
    assert list(per.regressions.metric) == ["nrmse"]
    per = compare_tables(base, new, parse_tolerances([], ["nrmse=0.02", "pq=0.001"]))
    assert list(per.regressions.metric) == ["pq"]
    tol = parse_tolerances(["2e-3", "pq=0.01"], ["0.5"])
    assert tol.allowed("pq", 0.1) == pytest.approx(0.05) and tol.allowed("ssim", 0.001) == pytest.approx(2e-3)


def test_default_tolerance_covers_float_noise() -> None:
    base = fixed_records()
    new = base.copy()
    new["value"] = new["value"] * (1 + 1e-12)
    assert compare_tables(base, new).ok


def test_nan_handling() -> None:
    base = fixed_records()
    new = base.copy()
    new.loc[_cell(new, "unet", "R", "aji"), "value"] = math.nan
    rep = compare_tables(base, new)
    assert list(rep.regressions.metric) == ["aji"]  # the new run gave no number: worse, never a pass
    # a NaN in the baseline is an error, never "better" (it used to pass) nor "unchanged"
    with pytest.raises(InvalidBaselineError, match="not a finite number.*metric=aji"):
        compare_tables(new, base)
    with pytest.raises(InvalidBaselineError):
        compare_tables(new, new)
    inf = base.copy()
    inf.loc[_cell(inf, "unet", "R", "aji"), "value"] = math.inf
    assert list(compare_tables(base, inf).regressions.metric) == ["aji"]  # inf is not better


def test_failed_runs_are_compared_as_failed() -> None:
    base = fixed_records().assign(status="ok", failure="")
    failed = base.copy()
    sel = _cell(failed, "unet", "R", "pq")
    failed.loc[sel, ["value", "status", "failure"]] = [math.nan, "failed", "no foreground"]
    assert list(compare_tables(base, failed).regressions.metric) == ["pq"]  # ok -> failed: worse
    assert list(compare_tables(failed, base).improvements.metric) == ["pq"]  # failed -> ok: better
    both = compare_tables(failed, failed)
    assert both.ok and set(both.cells.status) == {"same"}  # failed in both: unchanged, value never read
    failed.loc[sel, "value"] = 0.99  # a failed run's number is not read as a number
    assert list(compare_tables(base, failed).regressions.metric) == ["pq"]


def test_tolerance_for_unknown_metric_is_refused() -> None:
    base = fixed_records()
    with pytest.raises(ValueError, match=r"unknown metric\(s\) unknown \(metrics: aji, .*pq"):
        compare_tables(base, base, parse_tolerances(["unknown=0.1"]))
    with pytest.raises(ValueError, match="finite"):
        parse_tolerances(["pq=inf"])
    with pytest.raises(ValueError, match="finite"):
        parse_tolerances([], ["pq=nan"])


def test_mismatched_tables_are_rejected_clearly() -> None:
    base = fixed_records()
    with pytest.raises(TableMismatchError, match=r"different metrics: only the new table has metric\(s\) fid"):
        extra = base.iloc[[0]].assign(metric="fid")
        compare_tables(base, pd.concat([base, extra], ignore_index=True))
    with pytest.raises(TableMismatchError, match=r"only the baseline has metric\(s\) aji"):
        compare_tables(base, base[base.metric != "aji"])
    with pytest.raises(TableMismatchError, match=r"the new table lacks 1 cell\(s\), e.g. kind=segmentation"):
        compare_tables(base, base.drop(index=base.index[-1]))
    with pytest.raises(TableMismatchError, match=r"the baseline lacks 4 cell\(s\)"):
        more = base[(base.model == "unet") & (base.train_set == "R") & (base.seed == 0)].assign(seed=7)
        compare_tables(base, pd.concat([base, more], ignore_index=True))
    with pytest.raises(TableMismatchError, match="only the new table has conditioning"):
        compare_tables(base, base.assign(conditioning="distance-map"))
    with pytest.raises(TableMismatchError, match="different numbers of images"):
        compare_tables(base, base.assign(n=9))
    # provenance columns are not keys: a new date, revision or device is fine
    assert compare_tables(base, base.assign(date="2030-01-01", git_revision="x", device="cuda:H100")).ok


def test_bad_tolerance_specs() -> None:
    with pytest.raises(ValueError, match="--tolerance 'pq=x'"):
        parse_tolerances(["pq=x"])
    with pytest.raises(ValueError, match=">= 0"):
        parse_tolerances(["-1"])


# ---------------------------------------------------------------------------------------------- CLI

def _write_pair(tmp_path: Path, delta: float) -> tuple[Path, Path]:
    base = fixed_records()
    new = base.copy()
    new.loc[_cell(new, "segnet", "R", "pq"), "value"] += delta
    return save_records(base, tmp_path / "base.csv"), save_records(new, tmp_path / "new.csv")


def test_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    b, n = _write_pair(tmp_path, -0.02)
    assert run_cli(monkeypatch, "regress", str(b), str(b)) == 0
    assert "0 worse" in capsys.readouterr().out
    assert run_cli(monkeypatch, "regress", str(b), str(n)) == 1
    out = capsys.readouterr().out
    assert "1 worse" in out and "segnet" in out and "PQ" in out
    assert run_cli(monkeypatch, "regress", str(b), str(n), "--tolerance", "pq=0.03") == 0
    assert run_cli(monkeypatch, "regress", str(b), str(n), "--rel-tolerance", "0.05") == 0  # 0.02 / 0.579 = 3.5 %
    assert run_cli(monkeypatch, "regress", str(n), str(b)) == 0  # the other way round it is an improvement
    capsys.readouterr()
    assert run_cli(monkeypatch, "regress", str(b), str(tmp_path / "missing.csv")) == 2
    err = capsys.readouterr().err
    assert "missing.csv: no such file" in err and len(err.strip().splitlines()) == 1
    fewer = save_records(load_records(b).query("metric != 'aji'"), tmp_path / "fewer.csv")
    assert run_cli(monkeypatch, "regress", str(b), str(fewer)) == 2
    assert "different metrics" in capsys.readouterr().err
    assert run_cli(monkeypatch, "regress", str(b), str(n), "--tolerance", "pq=oops") == 2
    assert run_cli(monkeypatch, "regress", str(b), str(n), "--only-profile", "paper") == 2
    assert "no records of profile 'paper'" in capsys.readouterr().err


def test_cli_update_rewrites_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, n = _write_pair(tmp_path, -0.02)
    assert run_cli(monkeypatch, "regress", str(b), str(n), "--update") == 0
    assert load_records(b).equals(load_records(n))
    assert manifest_path(b).is_file() and "updated_from" in manifest_path(b).read_text()
    assert run_cli(monkeypatch, "regress", str(b), str(n)) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    fresh = tmp_path / "baselines" / "smoke.csv"
    assert run_cli(monkeypatch, "regress", str(fresh), str(n), "--update") == 0 and fresh.is_file()


def test_cli_nan_and_tolerance_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    b, n = _write_pair(tmp_path, 0.0)
    nan = save_records(fixed_records().assign(value=math.nan), tmp_path / "nan.csv")
    before = b.read_bytes()
    capsys.readouterr()
    # --update refuses an all-NaN table: one line naming it, the baseline untouched
    assert run_cli(monkeypatch, "regress", str(b), str(nan), "--update") == 2
    err = capsys.readouterr().err
    assert "nan.csv" in err and "every value is not a finite number" in err and len(err.strip().splitlines()) == 1
    assert b.read_bytes() == before
    # a NaN baseline is an error (exit 2, naming the file), never a pass
    assert run_cli(monkeypatch, "regress", str(nan), str(n)) == 2
    assert "nan.csv" in capsys.readouterr().err
    assert run_cli(monkeypatch, "regress", str(b), str(nan)) == 1  # NaN in the new table: worse
    for spec in ("pq=inf", "unknown=0.1", "pq=nan"):
        assert run_cli(monkeypatch, "regress", str(b), str(n), "-t", spec) == 2, spec
        err = capsys.readouterr().err
        assert spec.split("=")[0] in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
