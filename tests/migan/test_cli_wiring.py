"""``gbench train-gen mi-gan`` and ``gbench quality --multifocus`` reach the MI-GAN code."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.test_cli import run_cli


def test_quality_multifocus_on_builtin_stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mf"
    assert run_cli(monkeypatch, "quality", "--multifocus", "--real", "synthetic-cells:siha", "--fake",
                   "synthetic-cells:cancer", "--profile", "smoke", "--out", str(out)) == 0
    recs = pd.read_csv(out / "records.csv")
    assert (recs["kind"] == "multifocus").all()
    fid = recs[(recs["metric"] == "fid") & (recs["plane"].astype(str) == "all")]["value"]
    assert len(fid) == 1 and float(fid.iloc[0]) > 0  # two different cell types are not identical
    assert (out / "focus_curve.png").is_file()


def test_wiring_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(monkeypatch, "quality", "--multifocus", "--real", "synthetic-cells:siha") == 2
    assert "--multifocus needs --real STACKS and --fake STACKS" in capsys.readouterr().err
    assert run_cli(monkeypatch, "train-gen", "mi-gan", "--data", "synthetic-cells:siha", "--out", str(tmp_path / "m"),
                   "--set", "ngf=4") == 2
    assert "mi-gan takes --set n_critic" in capsys.readouterr().err
    assert run_cli(monkeypatch, "train-gen", "sharp-gan", "--data", "synthetic-he", "--out", str(tmp_path / "s"),
                   "--init-from", str(tmp_path)) == 2
    assert "--init-from applies to mi-gan only" in capsys.readouterr().err
