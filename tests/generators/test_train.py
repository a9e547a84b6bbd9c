"""Training a generator: the smoke run lowers L1, resume equals uninterrupted, files and CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gbench.core.profiles import SMOKE
from gbench.data.types import Dataset, Sample
from gbench.engine import StepLoader, load_checkpoint
from gbench.generators.train import CropDataset, train_generator
from tests.cli.test_cli import run_cli
from tests.conftest import random_disks

TINY = {"ngf": 8, "ndf": 8}


def tiles(n: int = 3, size: int = 80) -> Dataset:
    """H&E-like tiles: dark purple nuclei (disks) on a pink background, with texture noise."""
    samples = {}
    for i in range(n):
        inst = random_disks((size, size), n=10, seed=i, rmin=4, rmax=9)
        rng = np.random.default_rng(100 + i)
        img = np.empty((size, size, 3), dtype=np.float64)
        img[:] = (230, 170, 200)
        img[inst > 0] = (90, 50, 140)
        img += rng.normal(0, 8, img.shape)
        samples[f"t{i}"] = Sample(f"t{i}", np.clip(img, 0, 255).astype(np.uint8), inst)
    return Dataset("tiles", "train", list(samples), samples.__getitem__)


def test_crop_dataset_items() -> None:
    from gbench import generators

    m = generators.create("gan-binary", image_size=64, **TINY)
    crops = CropDataset(tiles(3, 80), 64, m.train_item)
    assert len(crops) == 3 * 4  # a 2x2 grid of 64-px crops covers each 80-px tile
    a = crops.get(5, np.random.default_rng([0, 0, 5]))
    b = crops.get(5, np.random.default_rng([0, 0, 5]))
    assert set(a) == {"cond", "image", "contour"}
    assert a["cond"].shape == (1, 64, 64) and a["image"].shape == (3, 64, 64) and a["contour"].shape == (1, 64, 64)
    assert a["image"].dtype == np.float32 and 0 <= a["image"].min() and a["image"].max() <= 1
    assert set(np.unique(a["cond"])) <= {0.0, 1.0}  # binary mask
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # the binary mask is where the nuclei are dark
    img = a["image"].mean(0)
    assert img[a["cond"][0] == 1].mean() < img[a["cond"][0] == 0].mean() - 0.2


def test_smoke_training_lowers_l1(tmp_path: Path) -> None:
    res = train_generator("sharp-gan", "tiles", tmp_path, profile="smoke", seed=0, steps=30,
                          overrides={**TINY, "lr": 1e-3}, progress=False, dataset=tiles())
    l1 = [h["l1"] for h in res.fit.history]
    assert len(l1) == 30
    assert np.mean(l1[-5:]) < 0.75 * np.mean(l1[:5])
    assert all(np.isfinite(h["sharp"]) and h["sharp"] > 0 for h in res.fit.history)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["generator"] == "sharp-gan" and run["steps"] == 30 and run["config"]["beta"] == 1.0
    assert run["config"]["image_size"] == SMOKE.generator.image_size and run["batch_size"] == SMOKE.generator.batch_size
    assert run["provenance"]["profile"] == "smoke" and run["provenance"]["seed"] == 0
    assert "git_revision" in run["provenance"] and "torch" in run["provenance"]["versions"]
    assert run["loss_first_last"]["l1"]["last"] < run["loss_first_last"]["l1"]["first"]
    # sample grids: 3 rows (map, real, synthetic) of preview crops
    grids = sorted((tmp_path / "samples").glob("step-*.png"))
    assert [g.name for g in grids] == [f"step-{s:06d}.png" for s in (6, 12, 18, 24, 30)]
    from PIL import Image

    with Image.open(grids[-1]) as im:
        assert im.size == (2 * 64 + 2, 3 * 64 + 4)  # smoke: 2 preview samples
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ck["meta"]["generator"] == "sharp-gan" and ck["step"] == 30


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    kw = dict(profile="smoke", seed=3, overrides={**TINY, "lr": 1e-3}, progress=False, dataset=tiles(2))
    full = train_generator("sharp-gan", "tiles", tmp_path / "full", steps=6, **kw)
    train_generator("sharp-gan", "tiles", tmp_path / "part", steps=3, **kw)
    part = train_generator("sharp-gan", "tiles", tmp_path / "part", steps=6, resume=True, **kw)
    assert part.fit.start_step == 3
    a = load_checkpoint(full.checkpoint)
    b = load_checkpoint(part.checkpoint)
    assert a["module"].keys() == b["module"].keys()
    for k, v in a["module"].items():
        assert torch.equal(v, b["module"][k]), k  # G, D and the BatchNorm statistics, bit for bit
    for name in ("G", "D"):
        for pid, st in a["optimizers"][name]["state"].items():
            assert torch.equal(st["exp_avg"], b["optimizers"][name]["state"][pid]["exp_avg"])
    assert [h["l1"] for h in a["history"]] == [h["l1"] for h in b["history"]]
    run = json.loads((tmp_path / "part" / "run.json").read_text())
    assert run["resumed_from"] == 3 and run["steps"] == 6


def test_epochs_decide_steps_without_max_steps() -> None:
    import dataclasses

    from gbench import generators
    from gbench.generators.train import resolve_steps

    m = generators.create("dummy")
    crops = CropDataset(tiles(3, 80), 64, m.train_item)
    paper_like = dataclasses.replace(SMOKE, generator=dataclasses.replace(SMOKE.generator, max_steps=None, epochs=5,
                                                                          batch_size=5))
    assert resolve_steps(paper_like, StepLoader(crops, 5, 0), None) == 12  # 5 epochs x 12 crops / 5
    assert resolve_steps(SMOKE, StepLoader(crops, 2, 0), None) == SMOKE.generator.max_steps
    with pytest.raises(ValueError, match="--steps"):
        resolve_steps(SMOKE, StepLoader(crops, 2, 0), 0)


def test_cli_train_gen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = run_cli(monkeypatch, "train-gen", "gan-dist", "--data", "synthetic-he", "--profile", "smoke", "--seed", "1",
                   "--out", str(out), "--set", "ngf=8", "--set", "ndf=8", "--steps", "2")
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "2 steps (0 resumed)" in text and "checkpoint:" in text
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["ngf"] == 8 and run["config"]["conditioning"] == "distance-map"
    assert run["data"] == "synthetic-he" and run["dataset"]["tiles"] == SMOKE.data.builtin_train
    # unknown option and unknown generator: one line, exit 2
    code = run_cli(monkeypatch, "train-gen", "gan-dist", "--data", "synthetic-he", "--profile", "smoke",
                   "--out", str(tmp_path / "x"), "--set", "ngff=8")
    err = capsys.readouterr().err
    assert code == 2 and "unknown generator option(s) ngff" in err and len(err.strip().splitlines()) == 1
    code = run_cli(monkeypatch, "train-gen", "sharpgan", "--data", "synthetic-he", "--profile", "smoke",
                   "--out", str(tmp_path / "x"))
    assert code == 2 and "did you mean sharp-gan" in capsys.readouterr().err
