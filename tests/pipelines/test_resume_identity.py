"""``--resume`` never continues a run under other settings: segment and train-mi-gan refuse, naming what changed."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gbench.core.errors import DataError
from gbench.data.resolve import _TEST_SET_HASHES
from gbench.generators.mi_gan_train import train_migan
from tests.cli.test_cli import run_cli
from tests.data.test_loaders import write_folder


def _dataset(root: Path) -> Path:
    write_folder(root / "train", ["a", "b"], shape=(64, 64))
    write_folder(root / "test", ["c", "d"], shape=(64, 64))
    return root


def _segment(monkeypatch: pytest.MonkeyPatch, out: Path, data: Path | str, *extra: str) -> int:
    return run_cli(monkeypatch, "segment", "--arch", "segnet", "--width", "0.125", "--max-steps", "1",
                   "--val-fraction", "0", "--data", str(data), "--profile", "smoke", "--out", str(out),
                   "--no-progress", *extra)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_segment_resume_refuses_other_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "grid"
    assert _segment(monkeypatch, out, data) == 0
    capsys.readouterr()
    before = (out / "results.csv").read_bytes()
    cell = out / "segnet" / "R" / "binary" / "seed0"
    stamp = (cell / "result.json").stat().st_mtime_ns

    cases = [(("--threshold", "0.7"), "postprocess.threshold 0.5 -> 0.7"),
             (("--min-area", "7"), "postprocess.min_area"),
             (("--profile", "demo"), "--profile ('smoke' -> 'demo')")]
    for extra, expected in cases:
        args = [a for a in extra if a != "--profile"]
        code = (_segment(monkeypatch, out, data, "--resume", *args) if "--profile" not in extra else
                run_cli(monkeypatch, "segment", "--arch", "segnet", "--width", "0.125", "--max-steps", "1",
                        "--val-fraction", "0", "--data", str(data), "--profile", "demo", "--out", str(out),
                        "--no-progress", "--resume"))
        err = _one_line_error(capsys)
        assert code == 2 and "--resume" in err and expected in err, (extra, err)
        assert str(out) in err

    # other --data: by name, and the same folder with one test image changed (by content)
    other = tmp_path / "ds2"
    shutil.copytree(data, other)
    assert _segment(monkeypatch, out, other, "--resume") == 2
    assert "--data" in _one_line_error(capsys)
    img = np.asarray(Image.open(data / "test" / "images" / "c.png")).copy()
    img[0, 0] = 255 - img[0, 0]
    Image.fromarray(img).save(data / "test" / "images" / "c.png")
    _TEST_SET_HASHES.clear()  # split hashes are cached per process; a new CLI process hashes afresh
    assert _segment(monkeypatch, out, data, "--resume") == 2
    assert "--data (its images, by content)" in _one_line_error(capsys)

    # nothing was touched by the refused runs: the cell and its row are as they were
    assert (cell / "result.json").stat().st_mtime_ns == stamp
    assert (out / "results.csv").read_bytes() == before
    assert len(pd.read_csv(out / "results.csv")) == 1


def test_segment_resume_same_settings_and_new_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "grid"
    assert _segment(monkeypatch, out, data, "--threshold", "0.6") == 0
    # same settings: accepted; a new seed is added to the folder
    assert _segment(monkeypatch, out, data, "--threshold", "0.6", "--resume", "--seeds", "0,1") == 0
    res = pd.read_csv(out / "results.csv")
    assert sorted(res["seed"]) == [0, 1]
    # an older gbench's cell (no cell.json) cannot be checked: refused
    (out / "segnet" / "R" / "binary" / "seed0" / "cell.json").unlink()
    capsys.readouterr()
    assert _segment(monkeypatch, out, data, "--threshold", "0.6", "--resume") == 2
    assert "no cell.json" in _one_line_error(capsys)


def test_train_migan_resume_refuses_other_data_or_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mg"
    kw = dict(profile="smoke", seed=0, steps=1, progress=False)
    train_migan("synthetic-cells:siha", out, **kw)
    record = (out / "run.json").read_bytes()
    with pytest.raises(DataError, match=r"different --data \('synthetic-cells:siha' -> 'synthetic-cells:cancer'\)"):
        train_migan("synthetic-cells:cancer", out, resume=True, **kw)
    with pytest.raises(DataError, match=r"options \(lr 0\.\S+ -> 0\.01\)"):
        train_migan("synthetic-cells:siha", out, resume=True, lr=0.01, **kw)
    with pytest.raises(DataError, match=r"training stacks \(by content\)"):
        train_migan("synthetic-cells:siha", out, resume=True, data_seed=3, **kw)
    assert (out / "run.json").read_bytes() == record  # run.json still describes the run that was made
    # the same settings resume (a finished run: nothing trained again)
    train_migan("synthetic-cells:siha", out, resume=True, **kw)
    # through the CLI: one line, exit 2
    code = run_cli(monkeypatch, "train-mi-gan", "--data", "synthetic-cells:cancer", "--out", str(out), "--profile",
                   "smoke", "--steps", "1", "--resume")
    err = _one_line_error(capsys)
    assert code == 2 and "--resume" in err and "--data" in err
