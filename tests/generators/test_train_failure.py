"""train-gen records a run that did not learn as failed: NaN/inf losses, constant outputs."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from gbench import generators
from gbench.engine import load_checkpoint
from gbench.generators.dummy import DummyConfig, DummyModule
from gbench.generators.train import train_generator
from tests.generators.test_train import tiles


class _NaNAfter(DummyModule):
    """The dummy generator whose loss turns NaN at step 5."""

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        logs = super().training_step(batch, step)
        return {**logs, "l1": float("nan")} if step >= 4 else logs


class _Constant(DummyModule):
    """The dummy generator that ignores its input at generation time (mode collapse)."""

    @torch.no_grad()
    def generate(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.full((cond.shape[0], 3, *cond.shape[2:]), 0.6)


def nan_after(**overrides: Any) -> _NaNAfter:
    return _NaNAfter(DummyConfig(**overrides))


def constant(**overrides: Any) -> _Constant:
    return _Constant(DummyConfig(**overrides))


@pytest.fixture
def registered() -> Iterator[None]:
    items = generators.GENERATORS._items
    items["nan-after-test"] = "tests.generators.test_train_failure:nan_after"
    items["constant-test"] = "tests.generators.test_train_failure:constant"
    yield
    items.pop("nan-after-test")
    items.pop("constant-test")


def test_nan_loss_is_a_failed_run_not_a_crash(tmp_path: Path, registered: None) -> None:
    res = train_generator("nan-after-test", "tiles", tmp_path, profile="smoke", seed=0, steps=10,
                          checkpoint_every=2, progress=False, dataset=tiles(2))
    assert res.status == "failed" and res.failure == "loss l1 is nan at step 5"
    assert res.fit.steps == 4 and len(res.fit.history) == 4
    assert res.checkpoint is not None and res.checkpoint.is_file()  # the last finite checkpoint (step 4)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "failed" and run["failure"] == res.failure and run["steps"] == 4


def test_nan_before_any_checkpoint(tmp_path: Path, registered: None) -> None:
    res = train_generator("nan-after-test", "tiles", tmp_path, profile="smoke", seed=0, steps=10,
                          checkpoint_every=8, progress=False, dataset=tiles(2))
    assert res.failure.startswith("loss l1 is nan")
    # the state the failure left is checkpointed, so later stages load it and report the failure
    assert res.checkpoint is not None and res.checkpoint.is_file()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["checkpoint"] == str(res.checkpoint) and run["status"] == "failed"
    ck = load_checkpoint(res.checkpoint)
    assert ck["meta"]["failure"] == res.failure and ck["step"] == 4 and len(ck["history"]) == 4
    assert generators.load(res.checkpoint, "nan-after-test").name == "nan-after-test"


def test_constant_outputs_are_a_failed_run(tmp_path: Path, registered: None) -> None:
    res = train_generator("constant-test", "tiles", tmp_path, profile="smoke", seed=0, steps=2, progress=False,
                          dataset=tiles(3))
    assert res.status == "failed" and res.failure.startswith("near-constant outputs across the batch")
    assert json.loads((tmp_path / "run.json").read_text())["failure"] == res.failure


def test_normal_run_is_ok(tmp_path: Path) -> None:
    res = train_generator("dummy", "tiles", tmp_path, profile="smoke", seed=0, steps=2, progress=False,
                          dataset=tiles(3))
    assert res.status == "ok" and res.failure == ""
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "ok" and run["failure"] == "" and run["deviations"] == []


def test_untrained_pix2pix_is_flagged_and_deviations_are_listed(tmp_path: Path) -> None:
    """Two steps at lr 1e-4: in eval mode the U-Net still paints every map the same grey."""
    res = train_generator("sharp-gan", "tiles", tmp_path, profile="smoke", seed=0, steps=2, progress=False,
                          overrides={"ngf": 8, "ndf": 8}, dataset=tiles(2))
    assert res.failure.startswith("near-constant outputs across the batch")
    run = json.loads((tmp_path / "run.json").read_text())
    dev = {d["setting"]: d for d in run["deviations"]}
    assert dev["lambda_l1"]["value"] == 100.0 and "not in the paper's Eq. 1" in dev["lambda_l1"]["note"]
    assert {"beta", "lam", "gan_loss"} <= set(dev)
