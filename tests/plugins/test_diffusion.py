"""The diffusion plugin (issue 27, ``examples/gbench-diffusion``): loaded through ``--plugin`` (not
installed), a smoke ``reproduce`` with ``ddpm`` beside the GANs (Table 1 row, its S set, the
R+S3k-ddpm Table 2 rows, the optional claims), same seed same samples, resume-exact training
steps, the frozen route (``ddpm-pretrained``) equal to the trained one. Skipped without diffusers."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("diffusers")

from gbench.cli.app import app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "examples" / "gbench-diffusion" / "src"
PLUGIN = str(SRC / "gbench_diffusion" / "plugin.py")
if str(SRC) not in sys.path:  # the package is not installed in CI: import it from its source folder
    sys.path.insert(0, str(SRC))

from gbench_diffusion.ddpm import DDPMConfig, DDPMModule, DDPMPretrained, ddpm, initial_noise  # noqa: E402

TINY = dict(image_size=32, block_out_channels=(8, 16), norm_groups=4, layers_per_block=1, sample_steps=2,
            ema_decay=0.0, lr=1e-3)
ATOL_F32 = 1e-5


def _maps(n: int = 3, size: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    maps = np.zeros((n, 1, size, size), np.float32)
    for k in range(n):
        for _ in range(3):
            cy, cx, r = rng.integers(4, size - 4), rng.integers(4, size - 4), rng.integers(2, 6)
            d = np.clip(1 - np.hypot(yy - cy, xx - cx) / r, 0, 1)
            maps[k, 0] = np.maximum(maps[k, 0], d)
    return torch.from_numpy(maps)


def _batch(n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"cond": _maps(n, size), "image": torch.rand(n, 3, size, size, generator=g),
            "contour": torch.zeros(n, 1, size, size)}


def test_config_presets_and_checks() -> None:
    assert DDPMConfig(image_size=64).preset == "smoke"
    demo = DDPMConfig(image_size=128)
    assert demo.preset == "demo" and demo.block_out_channels == (16, 32, 64) and demo.conditioning == "distance-map"
    assert DDPMConfig(image_size=256).sample_steps == 50
    assert DDPMConfig(conditioning="binary", image_size=64).conditioning == "binary-mask"
    assert DDPMConfig(image_size=64, sample_steps=7).sample_steps == 7  # an explicit field beats the preset
    for bad in ({"conditioning": "contour"}, {"block_out_channels": (6, 16), "norm_groups": 4},
                {"image_size": 34, "block_out_channels": (8, 16, 32), "norm_groups": 4}, {"preset": "huge"},
                {"sample_steps": 2000}):
        with pytest.raises(ValueError):
            DDPMConfig(**{"image_size": 64, **bad})
    with pytest.raises(ValueError, match="unknown ddpm option"):
        ddpm(ngf=8)
    assert ddpm(**TINY).unet.config.in_channels == 4  # noisy image + conditioning map


def test_same_seed_same_samples_and_batch_independence() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = ddpm(**TINY, init_seed=3), ddpm(**TINY, init_seed=3)
    assert torch.equal(torch.get_rng_state(), before)  # building draws from its own seed, not the global RNG
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
    maps = _maps(3)
    x1, x2 = a.generate(maps), b.generate(maps)
    assert x1.shape == (3, 3, 32, 32) and float(x1.min()) >= 0 and float(x1.max()) <= 1
    assert torch.equal(x1, x2)  # same seed, same samples, on the CPU
    # a crop's sample depends on its own map only: alone, or in a batch in another order
    torch.testing.assert_close(a.generate(maps[1:2]), x1[1:2], atol=ATOL_F32, rtol=0)
    torch.testing.assert_close(a.generate(maps.flip(0)), x1.flip(0), atol=ATOL_F32, rtol=0)
    assert not torch.allclose(initial_noise(maps, 0), initial_noise(maps, 1))
    other = DDPMModule(DDPMConfig(**{**TINY, "sample_seed": 1}))
    other.load_state_dict(a.state_dict())
    assert not torch.allclose(other.generate(maps), x1)


def test_training_steps_are_resume_exact() -> None:
    """Step s draws its noise and timesteps from (init_seed, s): two steps in one go equal one step,
    a reload (weights and optimiser) and the second step."""
    batch = _batch()
    a = ddpm(**{**TINY, "ema_decay": 0.9})
    logs = [a.training_step(batch, s) for s in (1, 2)]
    assert all(np.isfinite(v["mse"]) for v in logs)
    b = ddpm(**{**TINY, "ema_decay": 0.9})
    b.training_step(batch, 1)
    c = ddpm(**{**TINY, "ema_decay": 0.9})
    c.load_state_dict(b.state_dict())
    c.optimizers["unet"].load_state_dict(b.optimizers["unet"].state_dict())
    c.training_step(batch, 2)
    for (k, p), q in zip(a.state_dict().items(), c.state_dict().values()):
        torch.testing.assert_close(p, q, atol=0, rtol=0, msg=k)
    assert not torch.equal(a.ema.conv_in.weight, a.unet.conv_in.weight)  # the EMA lags the trained weights


def test_reproduce_smoke_with_ddpm_beside_the_gans(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["--plugin", PLUGIN, "reproduce", "sharp-gan", "--generator",
                                   "gan-binary,gan-dist,sharp-gan,ddpm", "--arch", "segnet", "--train", "R,R+S3k",
                                   "--seeds", "0", "--data", "synthetic-he", "--profile", "smoke", "--out", str(out)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(out / "records.csv")
    quality = recs[recs["kind"] == "quality"]
    assert set(quality["model"]) == {"gan-binary", "gan-dist", "sharp-gan", "ddpm"}  # Table 1 row beside the GANs
    table1 = (out / "report" / "tables" / "quality.md").read_text(encoding="utf-8")
    assert "ddpm" in table1
    # its own S set, as many images as the profile's S3k (smoke: 6)
    (manifest,) = (out / "stages").glob("synthesize-ddpm/*/S3k/manifest.csv")
    drawn = pd.read_csv(manifest)
    assert len(drawn) == 6 and set(drawn["generator"]) == {"ddpm"}
    assert len(list((manifest.parent / "images").glob("*.png"))) == 6
    # Table 2: R+S rows of both generators, scored on the same test set
    seg = recs[recs["kind"] == "segmentation"]
    assert {"R", "R+S3k", "R+S3k-ddpm"} <= set(seg["train_set"])
    assert seg.loc[seg["train_set"].isin(["R+S3k", "R+S3k-ddpm"]), "test_set"].nunique() == 1
    assert "R+S3k-ddpm" in (out / "report" / "tables" / "segmentation.md").read_text(encoding="utf-8")
    # the optional claims: listed because both sides exist; R+S10k was not run, so not listed
    claims = pd.read_csv(out / "report" / "claims.csv")
    assert "ddpm>sharp" in set(claims["id"]) and "segnet:R+S3k-ddpm>R+S3k" in set(claims["id"])
    assert "segnet:R+S10k-ddpm>R+S10k" not in set(claims["id"])
    assert claims.loc[claims["id"] == "ddpm>sharp", "paper"].iloc[0] == "not in the paper's tables"

    # the frozen route: the trained checkpoint through ddpm-pretrained gives the same images
    (ckpt,) = (out / "stages").glob("train-ddpm/*/checkpoints/last.pt")
    from gbench import generators

    trained = generators.load(ckpt, "ddpm")
    frozen = DDPMPretrained(str(ckpt))
    maps = _maps(2, 64)
    torch.testing.assert_close(frozen.generate(maps), trained.generate(maps), atol=0, rtol=0)
    folder = trained.save_pretrained(tmp_path / "pretrained")  # and through a diffusers folder
    torch.testing.assert_close(DDPMPretrained(str(folder)).generate(maps), trained.generate(maps), atol=ATOL_F32,
                               rtol=0)
    res = CliRunner().invoke(app, ["--plugin", PLUGIN, "quality", "--generator", "ddpm-pretrained", "--checkpoint",
                                   str(folder / "gbench_ddpm.json"), "--data", "synthetic-he", "--profile", "smoke", "--out",
                                   str(tmp_path / "q")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    q = pd.read_csv(tmp_path / "q" / "records.csv")
    ours = q[q["metric"] == "ssim"]["value"].iloc[0]
    theirs = quality[(quality["model"] == "ddpm") & (quality["metric"] == "ssim")]["value"].iloc[0]
    assert ours == pytest.approx(theirs, abs=1e-6)
    # no default weights: one line, exit 2
    res = CliRunner().invoke(app, ["--plugin", PLUGIN, "quality", "--generator", "ddpm-pretrained", "--data",
                                   "synthetic-he", "--profile", "smoke", "--out", str(tmp_path / "q2")])
    assert res.exit_code == 2 and "no default weights" in res.output and "Traceback" not in res.output
