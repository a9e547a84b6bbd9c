"""``gbench segment --executor``: the grid's cells at once give the sequential grid's numbers."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gbench.core.observations import load_observations
from gbench.core.profiles import SMOKE
from gbench.core.records import load_records
from gbench.pipelines.segmentation_grid import RESULT_COLUMNS, run_grid
from tests.cli.test_cli import run_cli

TINY = {"model": {"width": 0.125}}
GRID = dict(archs=["segnet"], trains=["R"], seeds=[0, 1], data="synthetic-he", profile=SMOKE, progress=False,
            overrides=TINY)
# what differs between two runs of the same cell: where and when it ran
_RUN_COLUMNS = ("run_dir", "train_time_s", "eval_time_s", "date", "git_revision")  # when, where, which commit


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
def test_local_executor_gives_the_sequential_records(tmp_path: Path) -> None:
    seq_rows = run_grid(out=tmp_path / "seq", **GRID)
    seen: list[int] = []
    par_rows = run_grid(out=tmp_path / "par", executor="local", jobs=2, on_cell=lambda r: seen.append(r["seed"]),
                        **GRID)
    assert sorted(seen) == [0, 1]
    assert [r["seed"] for r in par_rows] == [r["seed"] for r in seq_rows] == [0, 1]  # grid order, whoever ran them
    for a, b in zip(seq_rows, par_rows):
        for col in RESULT_COLUMNS:
            if col not in _RUN_COLUMNS:
                assert a[col] == b[col], col
    # distinct cells, distinct folders: two concurrent cells never share one
    assert len({r["run_dir"] for r in par_rows}) == 2
    for name in ("results.csv",):
        seq = _sorted(pd.read_csv(tmp_path / "seq" / name), ["seed"]).drop(columns=list(_RUN_COLUMNS))
        par = _sorted(pd.read_csv(tmp_path / "par" / name), ["seed"]).drop(columns=list(_RUN_COLUMNS))
        pd.testing.assert_frame_equal(seq, par)
    keys = ["seed", "metric", "aggregation"]
    seq_rec = _sorted(load_records(tmp_path / "seq" / "records.csv"), keys)
    par_rec = _sorted(load_records(tmp_path / "par" / "records.csv"), keys)
    assert len(seq_rec) == 2 * 5 * 2
    for col in ("value", "ci_low", "ci_high", "n", "status"):
        pd.testing.assert_series_equal(seq_rec[col], par_rec[col])
    obs_keys = ["seed", "image"]
    seq_obs = _sorted(load_observations(tmp_path / "seq" / "records.csv"), obs_keys)
    par_obs = _sorted(load_observations(tmp_path / "par" / "records.csv"), obs_keys)
    pd.testing.assert_frame_equal(seq_obs, par_obs)

    # resumed under the executor: cells read back, nothing appended
    again = run_grid(out=tmp_path / "par", executor="local", jobs=2, resume=True, **GRID)
    assert [r["pq_mean"] for r in again] == [r["pq_mean"] for r in par_rows]
    assert len(pd.read_csv(tmp_path / "par" / "results.csv")) == 2


def test_executor_options_fail_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    base = ["segment", "--profile", "smoke", "--out", str(tmp_path / "o")]
    assert run_cli(monkeypatch, *base, "--executor", "slurm") == 2
    assert "--executor 'slurm': use one of sequential, local, ray" in capsys.readouterr().err
    assert run_cli(monkeypatch, *base, "--jobs", "2") == 2
    assert "--jobs needs --executor local or ray" in capsys.readouterr().err
    assert run_cli(monkeypatch, *base, "--executor", "local", "--ray-address", "auto") == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    assert run_cli(monkeypatch, *base, "--executor", "local", "--jobs", "0") == 2
    assert "--jobs" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="leave --device unset"):
        run_grid(out=tmp_path / "x", executor="local", device="cuda:1", **GRID)
