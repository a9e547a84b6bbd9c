"""The command line: data commands on a small folder dataset, one-line errors, exit codes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from gbench.cli import app
from tests.data.test_loaders import write_folder


def invoke(*args: str) -> Result:
    """``gbench ARGS`` through typer's ``CliRunner`` against :data:`gbench.cli.app` (the root
    command maps errors to exit codes, as for the console script). An exception the app lets
    through is raised again, with its traceback, rather than read as exit code 1."""
    result = CliRunner().invoke(app, list(args), prog_name="gbench")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``gbench ARGS`` (see :func:`invoke`): the exit code. What the command printed is passed on
    to ``sys.stdout``/``sys.stderr``, where the callers read it with ``capsys``. ``monkeypatch``
    is not used (kept for the callers)."""
    result = invoke(*args)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_code


def test_inspect_writes_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    labels = write_folder(tmp_path / "ds" / "train", ["a", "b"])
    write_folder(tmp_path / "ds" / "test", ["c"])
    code = run_cli(monkeypatch, "data", "inspect", str(tmp_path / "ds"), "--split", "train", "--seed", "3",
                   "--out", str(tmp_path / "out"))
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    n = sum(len(np.unique(v)) - 1 for v in labels.values())
    assert summary["images"] == 2 and summary["nuclei"] == n
    assert summary["provenance"]["seed"] == 3 and summary["provenance"]["profile"] == "demo"
    assert "torch" in summary["provenance"]["versions"]
    assert (tmp_path / "out" / "per_image.csv").read_text().splitlines()[0].startswith("name,height,width,nuclei")
    assert "| images" in (tmp_path / "out" / "summary.md").read_text()
    assert "nuclei / image" in capsys.readouterr().out


def test_preview_writes_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_folder(tmp_path / "ds", ["a", "b", "c"])
    out = tmp_path / "sheet.png"
    assert run_cli(monkeypatch, "data", "preview", str(tmp_path / "ds"), "--split", "all", "-n", "2", "-o", str(out)) == 0
    with Image.open(out) as im:
        w, h = im.size
    assert w > h > 100  # two rows of five panels
    assert not list(tmp_path.glob(".sheet.png*"))  # no temp file left behind


def test_errors_are_one_line_with_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(monkeypatch, "data", "inspect", str(tmp_path / "missing"))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error:") and "missing" in err and "no such folder" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    code = run_cli(monkeypatch, "data", "inspect", str(tmp_path), "--profile", "huge")
    assert code == 2 and "unknown profile 'huge'" in capsys.readouterr().err


def test_list_and_profiles(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(monkeypatch, "data", "list") == 0
    out = capsys.readouterr().out
    assert "synthetic-he" in out and "cpm17" in out
    assert run_cli(monkeypatch, "profiles") == 0
    assert "paper" in capsys.readouterr().out
