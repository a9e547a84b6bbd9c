"""``gbench quality --extractor/--stain/--conventions``: records, files and one-line errors, both forms."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gbench.core.records import load_records
from gbench.metrics.distribution import CI_METHOD, DISTRIBUTION_METRICS
from gbench.metrics.features import file_sha256
from gbench.pipelines.quality import run_quality
from tests.cli.test_cli import run_cli
from tests.pipelines.test_quality import make_folders


def _labelled(root: Path) -> tuple[Path, Path]:
    """Folders of 7 pairs (two sizes) with ``labels/`` beside the real images."""
    from skimage.draw import disk

    real, fake, pairs = make_folders(root, n=7)
    labels = real / "labels"
    labels.mkdir()
    for i, (name, (r, _)) in enumerate(pairs.items()):
        lab = np.zeros(r.shape[:2], np.uint8)
        rr, cc = disk((r.shape[0] // 2, r.shape[1] // 2), 8 + i, shape=r.shape[:2])
        lab[rr, cc] = 1
        Image.fromarray(lab).save(labels / f"{name}.png")
    images = real / "images"
    images.mkdir()
    for p in real.glob("*.png"):
        p.rename(images / p.name)
    return real, fake


def test_folder_form_adds_distribution_records_stain_and_conventions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    real, fake = _labelled(tmp_path)
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--real", str(real), "--fake", str(fake), "--out", str(out),
                   "--extractor", "random-conv", "--stain", "--conventions", "--kid-subset-size", "3",
                   "--kid-subsets", "4") == 0
    text = capsys.readouterr().out
    assert "Distribution metrics" in text and "Stain statistics" in text and "Conventions side by side" in text
    recs = load_records(out / "records.csv")
    dist = recs[recs.metric.isin(DISTRIBUTION_METRICS)].set_index("metric")
    assert sorted(dist.index) == sorted(DISTRIBUTION_METRICS)
    # set statistics: the seeded bootstrap over images of both sets (gbench.metrics.distribution_ci)
    assert dist["ci_method"].str.startswith("95% basic bootstrap over images").all()
    assert (dist["ci_low"] <= dist["ci_high"]).all() and dist["ci_low"].notna().all()
    conv = json.loads(dist.loc["fid", "conventions"])
    assert conv["extractor"] == "random-conv" and conv["n_real"] == conv["n_fake"] == 7
    assert "not comparable with published FID" in conv["note"] and conv["resize"] and "weights_sha256" in conv
    assert conv["kid_subset_size"] == 3 and conv["kid_subsets"] == 4
    per_image = recs[recs.metric == "ssim"]
    assert per_image["ci_method"].iloc[0] != CI_METHOD  # the paired metrics keep their bootstrap CIs
    # the same as the Python API, and Parquet beside the CSV
    api = run_quality(real, fake, None, progress=False, extractor="random-conv", kid_subsets=4, kid_subset_size=3)
    got = api.records.set_index("metric")["value"]
    for m in DISTRIBUTION_METRICS:
        assert got[m] == pytest.approx(dist.loc[m, "value"], rel=1e-12)
    pd.testing.assert_frame_equal(load_records(out / "records.parquet"), load_records(out / "records.csv"))
    stain = pd.read_csv(out / "stain.csv")
    assert set(stain.region) == {"nuclei", "background", "all"} and (stain.w1 > 0).all()
    assert (out / "figures" / "stain.png").stat().st_size > 1000
    table = pd.read_csv(out / "conventions.csv")
    assert {"skimage-defaults", "piq-defaults", "matlab-ssim.m", "no-downsampling", "min-max"} <= set(table.convention)
    summary = json.loads((out / "summary.json").read_text())
    assert {"distribution", "stain", "conventions_side_by_side"} <= set(summary)
    # the default convention is the number gbench reports
    ours = pd.read_csv(out / "per_image.csv")["ssim"].mean()
    assert table.set_index("convention").loc["wang-gaussian", "mean"] == pytest.approx(ours, abs=1e-6)


def test_missing_inception_weights_is_one_line_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    real, fake, _ = make_folders(tmp_path, n=2)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--real", str(real), "--fake", str(fake), "--out", str(out),
                   "--extractor", "inception") == 2
    err = capsys.readouterr().err.strip()
    assert "weights-inception-2015-12-05-6726825d.pth" in err and "--weights" in err and "Traceback" not in err
    assert not out.exists()
    assert run_cli(monkeypatch, "quality", "--real", str(real), "--fake", str(fake), "--weights", str(tmp_path)) == 2
    assert "--weights needs --extractor" in capsys.readouterr().err


def test_timm_extractor_through_the_api(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    import torch

    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), path)
    real, fake, _ = make_folders(tmp_path, n=6)
    res = run_quality(real, fake, None, progress=False, extractor="timm:test_resnet", weights=path)
    conv = json.loads(res.records.set_index("metric").loc["fid", "conventions"])
    assert conv["extractor"] == "timm:test_resnet" and conv["weights_sha256"] == file_sha256(path)
    assert conv["weights"] == "tiny.pth" and conv["resize"].startswith(("bicubic", "bilinear"))
    small_real, small_fake, _ = make_folders(tmp_path / "small", n=3)
    with pytest.raises(ValueError, match="at least 6 images per side"):
        run_quality(small_real, small_fake, None, progress=False, extractor="random-conv")


@pytest.mark.slow
def test_generator_form_adds_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    from gbench.generators.train import train_generator
    from tests.generators.test_train import tiles

    ck = train_generator("dummy", "tiles", tmp_path / "g", profile="smoke", seed=0, steps=2, progress=False,
                         dataset=tiles(2)).checkpoint
    from gbench.data.io import write_png

    data = tmp_path / "tiles"  # a folder dataset whose test split has 2 tiles: 8 grid crops of 64 px
    for split in ("train", "test"):
        for sub in ("images", "labels"):
            (data / split / sub).mkdir(parents=True)
        for s in tiles(2):
            write_png(data / split / "images" / f"{s.name}.png", s.image)
            write_png(data / split / "labels" / f"{s.name}.png", s.instances.astype(np.uint16))
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--generator", "dummy", "--checkpoint", str(ck), "--data", str(data),
                   "--profile", "smoke", "--out", str(out), "--extractor", "random-conv", "--stain",
                   "--conventions", "--metric", "ssim", "--metric", "nrmse") == 0
    recs = load_records(out / "records.csv")
    assert set(DISTRIBUTION_METRICS) <= set(recs.metric) and set(recs.model) == {"dummy"}
    n_crops = int(recs.set_index("metric").loc["ssim", "n"])
    assert json.loads(recs.set_index("metric").loc["kid", "conventions"])["n_real"] == n_crops
    stain = pd.read_csv(out / "dummy_stain.csv")
    assert set(stain.region) == {"nuclei", "background", "all"}  # the generator form has the instance maps
    assert (out / "figures" / "dummy_stain.png").is_file()
    assert set(pd.read_csv(out / "dummy_conventions.csv").metric) == {"ssim", "nrmse"}
