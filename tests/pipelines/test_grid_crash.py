"""A segment grid killed at any write, then resumed, ends with the files of an uninterrupted run.

Fault injection at the rename that ends every atomic write (``gbench.core.fileio.atomic_path`` ->
``os.replace``): the run is stopped right after the k-th file lands, for every k (in-process, by a
BaseException nothing catches), and at the classic bad moment (a cell's ``result.json`` written, its
summary rows not) by ``os._exit`` in a subprocess, a real kill with no clean-up.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gbench.core.observations import load_observations
from gbench.core.profiles import SMOKE
from gbench.core.records import load_records
from gbench.pipelines.segmentation_grid import run_grid

REPO = Path(__file__).resolve().parents[2]
TINY = {"model": {"width": 0.125}, "max_steps": 2, "val_every": 1}
GRID: dict[str, Any] = dict(archs=["segnet"], trains=["R"], data="synthetic-he", profile=SMOKE, progress=False,
                            overrides=TINY)
# what differs between two uninterrupted runs of the same grid: where and when it ran (and the
# checkout's revision, which moves while other work is committed)
_RUN_COLUMNS = ["run_dir", "train_time_s", "eval_time_s", "date", "git_revision"]
SUMMARIES = ("results.csv", "records.csv", "observations.csv")


class _Killed(BaseException):
    """Stands for SIGKILL: no ``except Exception`` catches it."""


def summaries(out: Path) -> dict[str, pd.DataFrame]:
    """The grid's three summary files, without the columns that say where and when a cell ran."""
    res = pd.read_csv(out / "results.csv", dtype=str, keep_default_na=False).drop(columns=_RUN_COLUMNS)
    rec = load_records(out / "records.csv").drop(columns=["date", "git_revision"])
    obs = load_observations(out / "records.csv", required=True)
    return {"results.csv": res, "records.csv": rec, "observations.csv": obs}


def assert_same_summaries(out: Path, ref: Path) -> None:
    a, b = summaries(out), summaries(ref)
    for name in SUMMARIES:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


@pytest.fixture
def renames(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``state["kill_after"] = k``: the k-th ``os.replace`` lands, then the run dies."""
    real = os.replace
    state: dict[str, Any] = {"n": 0, "kill_after": None, "targets": []}

    def replace(src: Any, dst: Any) -> None:
        real(src, dst)
        state["n"] += 1
        state["targets"].append(Path(dst))
        if state["kill_after"] is not None and state["n"] >= state["kill_after"]:
            raise _Killed(f"killed after writing {dst}")

    monkeypatch.setattr(os, "replace", replace)
    yield state


def _reference(tmp_path: Path, renames: dict[str, Any], seeds: list[int]) -> tuple[Path, list[Path]]:
    ref = tmp_path / "ref"
    run_grid(out=ref, seeds=seeds, **GRID)
    return ref, list(renames["targets"])


def _kill_and_resume(out: Path, renames: dict[str, Any], k: int, seeds: list[int]) -> None:
    renames.update(n=0, kill_after=k)
    with pytest.raises(_Killed):
        run_grid(out=out, seeds=seeds, **GRID)
    renames["kill_after"] = None
    run_grid(out=out, seeds=seeds, resume=True, **GRID)


def test_kill_after_result_json_then_resume(tmp_path: Path, renames: dict[str, Any]) -> None:
    """The issue's case: result.json written, summary rows not; the resume puts the cell back. Also
    after the results.csv rename (records.csv not yet rebuilt), and deleted summaries come back."""
    ref, targets = _reference(tmp_path, renames, [0])
    names = [t.name for t in targets]
    for k in (names.index("result.json") + 1, names.index("results.csv") + 1):
        out = tmp_path / f"cut{k}"
        _kill_and_resume(out, renames, k, [0])
        assert_same_summaries(out, ref)
    # the summaries deleted: --resume rebuilds them without retraining
    for name in SUMMARIES:
        (out / name).unlink()
    stamp = (out / "segnet/R/binary/seed0/result.json").stat().st_mtime_ns
    rows = run_grid(out=out, seeds=[0], resume=True, **GRID)
    assert len(rows) == 1 and (out / "segnet/R/binary/seed0/result.json").stat().st_mtime_ns == stamp
    assert_same_summaries(out, ref)


def test_real_kill_between_result_json_and_rows(tmp_path: Path) -> None:
    """``os._exit`` right after the cell's result.json lands (no finally, no clean-up), then a
    resume in this process: every cell in results.csv, records.csv and observations.csv."""
    script = f"""
import os, sys
sys.path.insert(0, {str(REPO)!r})
real = os.replace
def replace(src, dst):
    real(src, dst)
    if str(dst).endswith("result.json"):
        os._exit(9)
os.replace = replace
from tests.pipelines.test_grid_crash import GRID
from gbench.pipelines.segmentation_grid import run_grid
run_grid(out={str(tmp_path / 'cut')!r}, seeds=[0], **GRID)
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr[-2000:]
    out = tmp_path / "cut"
    assert (out / "segnet/R/binary/seed0/result.json").is_file() and not (out / "results.csv").exists()
    run_grid(out=out, seeds=[0], resume=True, **GRID)
    run_grid(out=tmp_path / "ref", seeds=[0], **GRID)
    assert_same_summaries(out, tmp_path / "ref")
    assert len(pd.read_csv(out / "results.csv")) == 1


@pytest.mark.slow
def test_kill_at_every_write_of_a_two_cell_grid(tmp_path: Path, renames: dict[str, Any]) -> None:
    """Every rename of a two-cell grid (cell files, checkpoints, summaries) as the crash point."""
    ref, targets = _reference(tmp_path, renames, [0, 1])
    assert len(targets) > 30
    for k in range(1, len(targets)):
        out = tmp_path / f"cut{k}"
        _kill_and_resume(out, renames, k, [0, 1])
        try:
            assert_same_summaries(out, ref)
        except AssertionError as exc:
            raise AssertionError(f"killed after write {k} ({targets[k - 1]}): {exc}") from None
