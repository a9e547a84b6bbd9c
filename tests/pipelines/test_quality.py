"""``gbench quality --real --fake``: pairing, per-image values against scikit-image, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.metrics import normalized_root_mse, structural_similarity

from gbench.core.errors import DataError
from gbench.pipelines.quality import find_pairs, run_quality
from tests.cli.test_cli import invoke


def _tissue(seed: int, shape: tuple[int, int] = (48, 56)) -> np.ndarray:
    from skimage.data import immunohistochemistry

    img = immunohistochemistry()
    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, img.shape[0] - shape[0]), rng.integers(0, img.shape[1] - shape[1])
    return img[y:y + shape[0], x:x + shape[1]].copy()


def _degrade(img: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 12, img.shape)
    return np.clip(img.astype(float) + noise, 0, 255).astype(np.uint8)


def make_folders(root: Path, n: int = 5) -> tuple[Path, Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    real, fake = root / "real", root / "fake" / "images"
    real.mkdir(parents=True)
    fake.mkdir(parents=True)
    pairs = {}
    for i in range(n):
        shape = (48, 56) if i % 2 == 0 else (40, 40)  # two sizes: two batches
        r = _tissue(i, shape)
        f = _degrade(r, 100 + i)
        Image.fromarray(r).save(real / f"img{i}.png")
        Image.fromarray(f).save(fake / f"img{i}.png")
        pairs[f"img{i}"] = (r, f)
    return real, root / "fake", pairs


def test_run_quality_matches_skimage_per_image(tmp_path: Path) -> None:
    real, fake, pairs = make_folders(tmp_path)
    res = run_quality(real, fake, tmp_path / "out", batch_size=2, progress=False, seed=4)
    df = pd.read_csv(tmp_path / "out" / "per_image.csv").set_index("name")
    assert list(df.index) == sorted(pairs)
    for name, (r, f) in pairs.items():
        ref_ssim = structural_similarity(r, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         channel_axis=-1, data_range=255)
        assert df.loc[name, "ssim"] == pytest.approx(ref_ssim, abs=1e-6)
        assert df.loc[name, "nrmse"] == pytest.approx(normalized_root_mse(r, f), abs=1e-6)
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("metric")
    assert summary.loc["ssim", "mean"] == pytest.approx(df["ssim"].mean(), abs=1e-9)
    assert summary.loc["gmsd", "std"] == pytest.approx(df["gmsd"].std(ddof=1), abs=1e-9)
    assert summary.loc["nrmse", "better"] == "lower" and summary.loc["fsim", "n"] == 5
    meta = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert meta["conventions"]["ssim"]["sigma"] == 1.5 and meta["provenance"]["seed"] == 4
    # the values come from the default float32 path, and the record says so
    assert {m: c["precision"] for m, c in meta["conventions"].items()} == dict.fromkeys(meta["metrics"], "fast")
    assert res.summary.shape[0] == 4


def test_missing_partner_lists_names(tmp_path: Path) -> None:
    real, fake, _ = make_folders(tmp_path, n=3)
    (fake / "images" / "img1.png").unlink()
    Image.fromarray(_tissue(9)).save(real / "extra.png")
    with pytest.raises(DataError) as err:
        find_pairs(real, fake)
    msg = str(err.value)
    assert "2 real image(s) without a synthetic partner: extra, img1" in msg and "\n" not in msg


def test_size_mismatch_names_file(tmp_path: Path) -> None:
    real, fake, _ = make_folders(tmp_path, n=2)
    Image.fromarray(_tissue(3, (30, 30))).save(fake / "images" / "img0.png")
    with pytest.raises(DataError, match=r"img0\.png: size 30x30 differs from its real partner img0\.png \(56x48\)"):
        run_quality(real, fake, None, progress=False)


def test_cli_quality_writes_and_fails_cleanly(tmp_path: Path) -> None:
    real, fake, _ = make_folders(tmp_path, n=2)
    result = invoke("quality", "--real", str(real), "--fake", str(fake), "--out", str(tmp_path / "q"),
                    "--metric", "ssim", "--metric", "nrmse")
    assert result.exit_code == 0
    assert list(pd.read_csv(tmp_path / "q" / "per_image.csv").columns) == ["name", "ssim", "nrmse"]
    assert "SSIM" in result.stdout
    result = invoke("quality", "--real", str(real), "--fake", str(tmp_path / "nope"), "--out", str(tmp_path / "q2"))
    assert result.exit_code == 2 and "nope: folder not found" in result.stderr
    assert not (tmp_path / "q2").exists()  # nothing half-written
