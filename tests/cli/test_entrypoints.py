"""The ways gbench is started: ``python -m gbench``, ``python -m gbench.cli`` and ``torchrun -m gbench``;
and the one import name the package claims."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gbench import __version__

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH="")
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.parametrize("module", ["gbench", "gbench.cli"])
def test_python_dash_m(module: str, tmp_path: Path) -> None:
    res = _run([sys.executable, "-m", module, "--version"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"gbench {__version__}"


def test_torchrun_module(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = Path(shutil.which("torchrun") or "")
    if not torchrun.is_file():
        pytest.skip("torchrun not installed")
    res = _run([str(torchrun), "--nproc_per_node", "2", "--master_port", "0", "-m", "gbench", "--version"],
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(f"gbench {__version__}") == 2


def test_one_top_level_import_name(tmp_path: Path) -> None:
    """Outside the repository (so the folders there are not on sys.path), the library and its
    parts import as gbench.*, and the old top-level names are not installed."""
    code = ("import importlib.util, gbench.generators, gbench.segmentation, gbench.reports.tables\n"
            "print([importlib.util.find_spec(n) is None for n in ('generators', 'segmentation', 'reports')])\n")
    res = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[True, True, True]"
