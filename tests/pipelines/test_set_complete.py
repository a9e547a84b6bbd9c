"""A synthetic set is usable only when complete; NaN generators write no set; failed runs are named."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from gbench import generators
from gbench.core.errors import DataError
from gbench.engine import load_checkpoint, save_checkpoint
from gbench.generators.train import train_generator
from gbench.pipelines import synthesis
from gbench.pipelines.synthesis import synthesize
from gbench.segmentation.sets import check_set_complete
from tests.cli.test_cli import run_cli
from tests.generators.test_train import tiles

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dummy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    return train_generator("dummy", "tiles", root / "dummy", profile="smoke", seed=0, steps=2, progress=False,
                           dataset=tiles(2)).checkpoint


def _set(tmp_path: Path, ck: Path, n: int = 6) -> Path:
    out = tmp_path / "synth" / "S3k"
    synthesize("dummy", ck, n, out, profile="smoke", progress=False)
    return out


def _segment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_cli(monkeypatch, "segment", "--train", "S3k", "--arch", "segnet", "--synthetic", str(tmp_path / "synth"),
                   "--data", "synthetic-he", "--profile", "smoke", "--out", str(tmp_path / "seg"), "--no-progress",
                   "--max-steps", "1")
    err = capsys.readouterr().err.strip()
    return code, err


def test_smaller_count_on_resume_is_refused(tmp_path: Path, dummy: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = _set(tmp_path, dummy)
    before = sorted(p.name for p in (out / "images").iterdir())
    manifest = (out / "manifest.csv").read_bytes()
    with pytest.raises(DataError, match=r"holds 6 samples, more than --count 3.*use --count 6 or more"):
        synthesize("dummy", dummy, 3, out, profile="smoke", progress=False)
    code = run_cli(monkeypatch, "synthesize", "dummy", "--checkpoint", str(dummy), "--out", str(out), "--count", "3",
                   "--resume", "--profile", "smoke")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(out) in err and "--count 3" in err, err
    # nothing deleted, nothing rewritten: 6 images behind a 6-row manifest, still complete
    assert sorted(p.name for p in (out / "images").iterdir()) == before and len(before) == 6
    assert (out / "manifest.csv").read_bytes() == manifest
    check_set_complete(out)
    # extending stays allowed
    assert synthesize("dummy", dummy, 8, out, profile="smoke", progress=False).generated == 2
    check_set_complete(out)


def test_segment_refuses_incomplete_sets(tmp_path: Path, dummy: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = _set(tmp_path, dummy)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"

    (out / "run.json").write_text(json.dumps({**run, "status": "running"}))
    code, err = _segment(monkeypatch, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and str(out) in err and "'running'" in err, err
    (out / "run.json").write_text(json.dumps(run))

    missing = out / "images" / "dummy-s0-000004.png"
    kept = missing.read_bytes()
    missing.unlink()
    code, err = _segment(monkeypatch, tmp_path, capsys)
    assert code == 2 and str(out) in err and "images/dummy-s0-000004.png, which is missing" in err, err
    missing.write_bytes(kept)

    shutil.copy(out / "images" / "dummy-s0-000000.png", out / "images" / "stray.png")
    code, err = _segment(monkeypatch, tmp_path, capsys)
    assert code == 2 and str(out) in err and "1 file(s) not listed (first: images/stray.png)" in err, err
    (out / "images" / "stray.png").unlink()
    check_set_complete(out)  # whole again


def test_nan_generator_writes_no_set(tmp_path: Path, dummy: Path) -> None:
    ck = load_checkpoint(dummy)
    ck["module"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in ck["module"].items()}
    bad = save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", ck)
    out = tmp_path / "synth" / "S3k"
    with pytest.raises(DataError, match="fails the output check .*NaN"):
        synthesize("dummy", bad, 6, out, profile="smoke", progress=False)
    assert not (out / "run.json").exists() and not (out / "images").exists()


def test_nan_in_a_later_batch_leaves_the_set_running(tmp_path: Path, dummy: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    real_load = generators.load
    calls = {"n": 0}

    def load(*args: Any, **kwargs: Any) -> Any:
        module = real_load(*args, **kwargs)
        plain = module.generate

        def generate(cond: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            fake = plain(cond)
            return fake * float("nan") if calls["n"] >= 3 else fake  # the check and batch 1 are fine

        module.generate = generate
        return module

    monkeypatch.setattr(synthesis.generators, "load", load)
    out = tmp_path / "synth" / "S3k"
    with pytest.raises(DataError, match="NaN/inf outputs for samples 2..3"):
        synthesize("dummy", dummy, 6, out, profile="smoke", batch_size=2, progress=False)
    assert json.loads((out / "run.json").read_text())["status"] == "running"  # never marked complete
    monkeypatch.undo()
    code, err = _segment(monkeypatch, tmp_path, capsys)
    assert code == 2 and "'running'" in err


def test_failed_training_run_is_named(tmp_path: Path, dummy: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = tmp_path / "failed-run"
    shutil.copytree(dummy.parent.parent, run_dir)
    doc = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**doc, "status": "failed", "failure": "loss l1 is nan at step 5"}))
    out = tmp_path / "synth" / "S3k"
    with caplog.at_level(logging.WARNING):
        synthesize("dummy", run_dir / "checkpoints" / "last.pt", 6, out, profile="smoke", progress=False)
    assert any("recorded as failed (loss l1 is nan at step 5)" in r.getMessage() and str(run_dir) in r.getMessage()
               for r in caplog.records)
    assert json.loads((out / "run.json").read_text())["source_run_failure"] == "loss l1 is nan at step 5"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check_set_complete(out)  # usable, but named when used
    assert any(str(out) in r.getMessage() and "recorded as failed" in r.getMessage() for r in caplog.records)


def test_records_of_a_checkpoint_carry_its_training_seed(tmp_path: Path) -> None:
    from gbench.pipelines.generator_eval import checkpoint_seed, generator_quality

    ck = train_generator("dummy", "tiles", tmp_path / "g", profile="smoke", seed=3, steps=1, progress=False,
                         dataset=tiles(2)).checkpoint
    assert checkpoint_seed(ck, 0) == 3 and checkpoint_seed(None, 5) == 5
    found = generator_quality("dummy", ck, "synthetic-he", "smoke", seed=0, metrics=("nrmse",), progress=False)
    assert set(found.records["seed"]) == {3} and set(found.observations["seed"]) == {3}
