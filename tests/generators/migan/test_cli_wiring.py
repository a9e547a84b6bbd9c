"""MI-GAN is a stack generator: one command each (``train-mi-gan``, ``sample-mi-gan``,
``quality-multifocus``); the image-generator commands refuse it with a pointer."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.test_cli import run_cli


def test_quality_multifocus_on_builtin_stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mf"
    assert run_cli(monkeypatch, "quality-multifocus", "--real", "synthetic-cells:siha", "--fake",
                   "synthetic-cells:cancer", "--profile", "smoke", "--out", str(out)) == 0
    recs = pd.read_csv(out / "records.csv")
    assert (recs["kind"] == "multifocus").all()
    fid = recs[(recs["metric"] == "fid") & (recs["plane"].astype(str) == "all")]["value"]
    assert len(fid) == 1 and float(fid.iloc[0]) > 0  # two different cell types are not identical
    assert (out / "focus_curve.png").is_file()


def test_wiring_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the duplicate spellings are gone: one command each
    assert run_cli(monkeypatch, "quality", "--multifocus", "--real", "synthetic-cells:siha") == 2
    assert "No such option: --multifocus" in capsys.readouterr().err
    assert run_cli(monkeypatch, "train-gen", "mi-gan", "--data", "synthetic-cells:siha", "--out", str(tmp_path / "m")) == 2
    err = capsys.readouterr().err
    assert "'mi-gan' is a stack generator" in err and "gbench train-mi-gan" in err
    assert run_cli(monkeypatch, "train-mi-gan", "--out", str(tmp_path / "m"), "--set", "upsample=pixelshuffle") == 2
    assert "--set upsample=pixelshuffle: expected one of transposed, resize, bilinear" in capsys.readouterr().err
    assert run_cli(monkeypatch, "train-mi-gan", "--out", str(tmp_path / "m"), "--set", "ngf=4") == 2
    assert "unknown MI-GAN option(s) ngf" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert run_cli(monkeypatch, "train-gen", "sharp-gan", "--data", "synthetic-he", "--out", str(tmp_path / "s"),
                   "--init-from", str(tmp_path)) == 2
    assert "No such option: --init-from" in capsys.readouterr().err


def test_train_migan_takes_set_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert run_cli(monkeypatch, "train-mi-gan", "--data", "synthetic-cells:siha", "--out", str(out), "--profile",
                   "smoke", "--steps", "1", "--set", "upsample=bilinear", "--set", "g2_l1=5", "--set", "g2_arch=paper",
                   "--amp", "bf16") == 0
    record = json.loads((out / "run.json").read_text())
    cfg = record["config"]
    assert (cfg["upsample"], cfg["g2_l1"], cfg["g2_arch"]) == ("bilinear", 5.0, "paper")
    assert [record["phases"][p]["runtime"]["amp"] for p in ("g1", "g2")] == ["bf16", "bf16"]
    assert record["provenance"]["runtime"]["amp"] == "bf16"


def test_train_migan_refuses_fp16_before_writing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert run_cli(monkeypatch, "train-mi-gan", "--data", "synthetic-cells:siha", "--out", str(out), "--profile", "smoke",
                   "--amp", "fp16") == 2
    err = capsys.readouterr().err
    assert "--amp fp16: MI-GAN" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
