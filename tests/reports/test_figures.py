"""Figures: PNG written atomically with the pixel size the arguments fix; bad input is refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.reports.compare import reference_records
from gbench.reports.figures import metric_bars, pq_vs_synthetic, sample_grid, synthetic_count
from tests.reports.fixtures import fixed_records


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_sample_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    maps = [rng.random((1, 32, 32)).astype(np.float32) for _ in range(3)]  # (C, H, W) condition maps
    real = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    fake = {"gan-binary": [r.astype(np.float64) / 255 for r in real], "sharp-gan": [r.transpose(2, 0, 1) for r in real]}
    path = sample_grid(maps, real, fake, tmp_path / "grid.png", panel=1.0, dpi=50)
    assert _size(path) == (4 * 50, 3 * 50)  # input, real, two generators; three samples
    with Image.open(path) as im:
        assert np.asarray(im.convert("L")).std() > 10  # not blank
    with pytest.raises(ValueError, match="3 input maps but 2 images from 'sharp-gan'"):
        sample_grid(maps, real, {"sharp-gan": real[:2]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        sample_grid(maps, real, {"g": [r.astype(np.float64) for r in real]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="expected an"):
        sample_grid([np.zeros((2, 2, 2, 2))], real[:1], {}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_metric_bars_and_pq_curve(tmp_path: Path) -> None:
    recs = fixed_records()
    q = metric_bars(recs[recs.kind == "quality"], tmp_path / "q.png", panel=(2.0, 2.5), dpi=60)
    assert _size(q) == (4 * 120, 150)  # four metrics
    s = metric_bars(recs[recs.kind == "segmentation"], tmp_path / "s.png", metrics=["pq", "aji"], dpi=50)
    assert _size(s) == (2 * 150, 150)
    p = pq_vs_synthetic(reference_records(), tmp_path / "pq.png", size=(4.0, 3.0), dpi=50)
    assert _size(p) == (200, 150)
    with pytest.raises(ValueError, match="no segmentation records"):
        pq_vs_synthetic(recs[recs.kind == "quality"], tmp_path / "none.png")
    with pytest.raises(ValueError, match=".png"):
        metric_bars(recs[recs.kind == "quality"], tmp_path / "q.jpg")


def test_synthetic_count() -> None:
    assert synthetic_count("R") == 0
    assert synthetic_count("R+S10k", "paper") == 10000 and synthetic_count("S3k", "paper") == 3000
    assert synthetic_count("S3k", "smoke") == 6 and synthetic_count("R+S10k", "demo") == 320
    assert synthetic_count("S3k") == 3000 and synthetic_count("S500") == 500
    with pytest.raises(ValueError, match="training set 'mixed'"):
        synthetic_count("mixed")
