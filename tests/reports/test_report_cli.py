"""gbench report: every format written from a record file, tables printed, bad input exits 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gbench.core.observations import save_observations
from gbench.core.records import load_records, save_records
from tests.reports.fixtures import fixed_records, observations_for
from tests.cli.test_cli import run_cli

GOLDEN = Path(__file__).parent / "golden"


def test_report_writes_all_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    recs = save_records(fixed_records(), tmp_path / "records.csv")
    out = tmp_path / "report"
    assert run_cli(monkeypatch, "report", str(recs), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "Segmentation" in printed and "untested" in printed and "Paper claims" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    for rel in manifest["files"]:
        assert (out / rel).is_file(), rel
    for rel in ("tables/quality.md", "tables/quality.tex", "tables/segmentation.csv", "comparison.md", "claims.md",
                "figures/quality_bars.png", "figures/segmentation_bars.png", "figures/pq_vs_synthetic.png",
                "report.html", "report.md", "records.csv"):
        assert rel in manifest["files"]
    # the per-kind files are exactly the renderers' output (golden, with the report's label)
    assert (out / "tables" / "quality.md").read_text() == (GOLDEN / "quality.md").read_text()
    assert (out / "tables" / "segmentation.tex").read_text() == (GOLDEN / "segmentation.tex").read_text()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Paper claims" in html and "Sharp-GAN, Table 1" in html
    claims = (out / "claims.md").read_text()
    assert "0 supported, 0 not significant, 0 contradicted, 13 untested" in claims
    assert "fails by means (SQ, PQ)" in claims and "“" in claims  # the paper's outcome and its words
    assert load_records(out / "records.csv").equals(fixed_records())
    assert manifest["inputs"][0]["path"] == str(recs) and len(manifest["inputs"][0]["sha256"]) == 64


def test_report_filters_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    recs = save_records(fixed_records(), tmp_path / "records.csv")
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "report", str(recs), "--out", str(out), "--only-seed", "2", "--reference", "none") == 0
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert "tables/quality.md" in files and "tables/segmentation.md" not in files  # seed 2: quality only
    assert "comparison.md" not in files
    capsys.readouterr()
    assert run_cli(monkeypatch, "report", str(recs), "--out", str(out), "--only-profile", "paper") == 2
    assert "no records left" in capsys.readouterr().err
    assert run_cli(monkeypatch, "report", str(tmp_path / "nope.csv"), "--out", str(out)) == 2
    assert run_cli(monkeypatch, "report", str(recs), "--out", str(out), "--reference", "mi-gan") == 2
    assert "unknown reference 'mi-gan'" in capsys.readouterr().err


def test_report_with_extra_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Segmentation records with ``aggregation`` = mean | pooled (as gbench/pipelines/segmentation_grid.py writes them)."""
    import pandas as pd

    recs = fixed_records()
    seg = recs[recs.kind == "segmentation"]
    both = pd.concat([recs[recs.kind == "quality"], seg.assign(aggregation="mean"),
                      seg.assign(aggregation="pooled", value=seg["value"] - 0.05)], ignore_index=True)
    path = save_records(both, tmp_path / "records.csv")
    out = tmp_path / "report"
    assert run_cli(monkeypatch, "report", str(path), "--out", str(out)) == 0
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert {"figures/pq_vs_synthetic_mean.png", "figures/pq_vs_synthetic_pooled.png"} <= set(files)
    table = (out / "tables" / "segmentation.md").read_text()
    assert "| Aggregation" in table and table.count("pooled") == 10
    claims = (out / "claims.md").read_text()
    assert claims.count("GAN-DIST beats GAN-Binary") == 1  # quality claims once, in the quality scope
    assert claims.count("U-Net: R+S (3k) beats R") == 2     # once per aggregation


def test_report_with_observations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Observations beside the record file: CIs in every table, claims tested, failed runs listed."""
    recs = fixed_records()
    obs = observations_for(recs)
    bad = (recs.model == "segnet") & (recs.train_set == "R")
    recs.loc[bad, ["status", "failure"]] = ["failed", "no foreground predicted on the test split"]
    path = save_records(recs, tmp_path / "records.csv")
    save_observations(obs, path)
    out = tmp_path / "report"
    assert run_cli(monkeypatch, "report", str(path), "--out", str(out), "--resamples", "300") == 0
    printed = capsys.readouterr().out
    assert "Paper claims" in printed and "supported" in printed and "failed" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert "observations.csv" in manifest["files"] and manifest["statistics"]["n_resamples"] == 300
    assert manifest["failed_runs"] == ["segnet R seed 0: no foreground predicted on the test split",
                                       "segnet R seed 1: no foreground predicted on the test split"]
    seg = (out / "tables" / "segmentation.md").read_text()
    assert "0.837 [" in seg and "*failed*" in seg and "t-interval" in seg  # 8 test units: t-intervals
    saved = load_records(out / "records.csv")
    ok = saved[saved.status == "ok"]
    assert ok["ci_low"].notna().all() and (ok["ci_low"] <= ok["value"]).all() and (ok["n_images"] == 16).all()
    claims = (out / "claims.md").read_text()
    assert "failed run (SegNet R seeds 0, 1: no foreground predicted on the test split)" in claims
    assert "✅ supported" in claims
    detail = (out / "claims_detail.csv").read_text()
    assert "p_holm" in detail.splitlines()[0]
    assert "failed_runs.md" in manifest["files"]
