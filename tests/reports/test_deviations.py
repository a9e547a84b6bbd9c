"""The report's "Deviations from the papers" section, from the training runs' run.json."""
from __future__ import annotations

import json
from pathlib import Path

from gbench.reports.deviations import load_deviations
from gbench.reports.report import write_report
from tests.reports.fixtures import fixed_records

SHARP = [{"setting": "lambda_l1", "value": 100.0, "note": "L1 weight: pix2pix; not in the paper's Eq. 1"},
         {"setting": "beta", "value": 1.0, "note": "sharpness weight: paper gives no value"}]


def _run(folder: Path, generator: str, deviations: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"generator": generator, "deviations": deviations}))
    return folder


def test_load_deviations(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", "sharp-gan", SHARP)
    b = _run(tmp_path / "b", "sharp-gan", SHARP)  # a second seed: same entries once
    c = _run(tmp_path / "c", "mask-paint", [])
    df = load_deviations([a, b / "run.json", c, tmp_path / "missing"])
    assert list(df["generator"]) == ["sharp-gan", "sharp-gan"]
    assert list(df["setting"]) == ["lambda_l1", "beta"] and df["value"].iloc[0] == "100.0"
    assert load_deviations([c]).empty


def test_report_lists_the_deviations(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", "sharp-gan", SHARP)
    manifest = write_report(fixed_records(), tmp_path / "out", console=None, runs=[run])
    assert "deviations.md" in manifest["files"]
    md = (tmp_path / "out" / "deviations.md").read_text()
    assert "| sharp-gan | lambda_l1 | 100.0 | L1 weight: pix2pix; not in the paper's Eq. 1 |" in md
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Deviations from the papers" in html and "paper gives no value" in html
    # without runs: no section
    manifest = write_report(fixed_records(), tmp_path / "out2", console=None)
    assert "deviations.md" not in manifest["files"]
    assert "Deviations from the papers" not in (tmp_path / "out2" / "report.html").read_text()
