"""gbench compare: two experiments paired on the same test images; one-line errors (exit 2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbench.core.observations import load_observations, make_observations, save_observations
from gbench.core.records import save_records
from gbench.metrics.instance import instance_metrics
from tests.reports.fixtures import fixed_records, observations_for
from tests.cli.test_cli import run_cli


@pytest.fixture()
def run_folder(tmp_path: Path) -> Path:
    recs = fixed_records()
    path = save_records(recs, tmp_path / "run" / "records.csv")
    save_observations(observations_for(recs), path)
    return path


def test_compare_prints_the_paired_table(run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "cmp.csv"
    code = run_cli(monkeypatch, "compare", str(run_folder.parent), "--a", "model=unet", "--a", "train_set=R+S10k",
                   "--b", "model=unet,train_set=R", "--resamples", "500", "--csv", str(csv))
    assert code == 0
    out = capsys.readouterr().out
    assert "Holm p" in out and "95% CI" in out and "better" in out and "DQ" in out
    frame = pd.read_csv(csv)
    assert list(frame["metric"]) == ["dq", "sq", "pq", "aji"]
    row = frame.set_index("metric").loc["dq"]
    assert row["a"] == pytest.approx(0.841) and row["b"] == pytest.approx(0.825)
    assert row["diff"] == pytest.approx(0.016) and row["ci_low"] < row["diff"] < row["ci_high"]
    assert (frame["p_holm"] >= frame["p"]).all() and set(frame["verdict"]) <= {"better", "not significant"}
    assert frame["n_images"].eq(16).all() and frame["n_seeds"].eq(2).all()
    # issue 24: 2 seeds a side: P(a > b) with its stratified bootstrap CI; the design's smallest Holm p
    assert frame["p_improvement"].between(0, 1).all() and "P(a>b): DQ" in out
    assert (frame["p_improvement_ci_low"] <= frame["p_improvement"]).all() and frame["n_units"].eq(16).all()
    assert frame["min_p_holm"].lt(0.05).all()  # 16 units: decidable
    # the same experiment on both sides of a different seed subset: identical values, no difference
    code = run_cli(monkeypatch, "compare", str(run_folder), "--a", "model=unet,train_set=R,seed=0",
                   "--b", "model=unet,train_set=R,seed=1", "--metric", "pq", "--test", "wilcoxon",
                   "--resamples", "200", "--csv", str(csv))
    assert code == 0 and pd.read_csv(csv)["verdict"].item() in ("not significant", "better", "worse")


def test_compare_non_inferiority(run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "ni.csv"
    assert run_cli(monkeypatch, "compare", str(run_folder), "--a", "model=unet,train_set=R+S3k",
                   "--b", "model=unet,train_set=R", "--margin", "0.05", "--resamples", "300", "--csv", str(csv)) == 0
    frame = pd.read_csv(csv)
    assert set(frame["verdict"]) == {"non-inferior"} and (frame["margin"] == 0.05).all()


@pytest.mark.parametrize("args, message", [
    (["--a", "model=nope", "--b", "model=unet,train_set=R"], "--a model=nope: no observations match"),
    (["--a", "model=unet", "--b", "model=unet,train_set=R"], "--a model=unet: ambiguous, matches 5 experiments"),
    (["--a", "colour=red", "--b", "model=unet,train_set=R"], "--a: unknown key 'colour'"),
    (["--a", "model", "--b", "model=unet,train_set=R"], "--a 'model': expected KEY=VALUE"),
    (["--a", "model=unet,train_set=R", "--b", "model=unet,train_set=R"], "select the same experiment"),
    (["--a", "model=unet,train_set=R", "--b", "model=unet,train_set=S3k", "--test", "t"], "--test must be one of"),
])
def test_compare_errors(run_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                        args: list[str], message: str) -> None:
    assert run_cli(monkeypatch, "compare", str(run_folder), *args) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


def test_compare_refuses_different_test_sets(run_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    obs = load_observations(run_folder)
    obs.loc[obs["train_set"] == "S3k", "test_set"] = "another"
    save_observations(obs, run_folder)
    assert run_cli(monkeypatch, "compare", str(run_folder), "--a", "model=unet,train_set=S3k",
                   "--b", "model=unet,train_set=R") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "were tested on different test sets (another vs fixture)" in err


def test_compare_without_observations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = save_records(fixed_records(), tmp_path / "records.csv")
    assert run_cli(monkeypatch, "compare", str(path), "--a", "model=unet,train_set=R", "--b",
                   "model=segnet,train_set=R") == 2
    assert "no per-image observation file" in capsys.readouterr().err


def test_compare_pooled_and_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for model, miss in (("good", 0.1), ("bad", 0.7)):
        rows = []
        for i in range(12):
            t = np.zeros((32, 32), np.int32)
            for k in range(4):
                y, x = 2 + 7 * k, int(rng.integers(0, 26))
                t[y:y + 5, x:x + 5] = k + 1
            p = np.where(rng.random(5)[t] > miss, t, 0)  # drop each nucleus with probability miss
            r = instance_metrics(p, t)
            r["name"] = f"i{i}"
            rows.append(r)
        frames.append(make_observations("segmentation", model, rows, train_set="R", profile="smoke", seed=0,
                                        dataset="d", split="test", test_set="h"))
    path = tmp_path / "records.csv"
    save_observations(pd.concat(frames, ignore_index=True), path)
    csv = tmp_path / "p.csv"
    assert run_cli(monkeypatch, "compare", str(path), "--a", "model=good", "--b", "model=bad", "--aggregation",
                   "pooled", "--resamples", "300", "--csv", str(csv)) == 0
    frame = pd.read_csv(csv)
    assert list(frame["metric"]) == ["dq", "sq", "pq", "aji", "aji_plus"] and (frame["aggregation"] == "pooled").all()
    assert frame.set_index("metric").loc["dq", "verdict"] == "better"
    assert run_cli(monkeypatch, "compare", str(path), "--a", "model=good", "--b", "model=bad", "--aggregation",
                   "pooled", "--test", "wilcoxon") == 2
    assert "use aggregation 'mean'" in capsys.readouterr().err
    obs = load_observations(path)
    obs.loc[obs["model"] == "bad", ["status", "failure"]] = ["failed", "no foreground predicted"]
    save_observations(obs, path)
    assert run_cli(monkeypatch, "compare", str(path), "--a", "model=good", "--b", "model=bad") == 2
    assert "bad R is a failed run (no foreground predicted)" in capsys.readouterr().err
