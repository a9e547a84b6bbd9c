"""Tests of the built-in synthetic-he dataset (gbench.data.synthetic_he)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from gbench.data.synthetic_he import DEFAULT_COUNTS, render_tile, synthetic_he, tile_seed
from gbench.data.types import Dataset

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CPM = SHARED / "cpm15" / "train"


def _gray(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_render_tile_types_and_determinism():
    img, lab = render_tile(128, seed=5)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    assert lab.shape == (128, 128) and lab.dtype == np.int32
    img2, lab2 = render_tile(128, seed=5)
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lab, lab2)
    img3, _ = render_tile(128, seed=6)
    assert not np.array_equal(img, img3)


def test_render_tile_non_square():
    img, lab = render_tile((96, 160), seed=1)
    assert img.shape == (96, 160, 3) and lab.shape == (96, 160)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_match_rendered_nuclei(seed):
    img, lab = render_tile(256, seed=seed)
    n = int(lab.max())
    assert n > 10
    # ids 1..n, every id has pixels
    np.testing.assert_array_equal(np.unique(lab), np.arange(n + 1))
    fg = lab > 0
    gray = _gray(img)
    # nuclei are clearly darker than the rest, and bluer (hematoxylin) relative to red
    assert gray[fg].mean() < gray[~fg].mean() - 50
    rgb = img.astype(np.float64)
    ratio = rgb[..., 2] / np.maximum(rgb[..., 0], 1)
    assert ratio[fg].mean() > ratio[~fg].mean() + 0.05
    # nearly every nucleus is darker than the tissue right around it
    ring = ndi.binary_dilation(fg, iterations=4) & ~ndi.binary_dilation(fg, iterations=1)
    stroma_level = np.median(gray[ring])
    per_nucleus = ndi.mean(gray, lab, np.arange(1, n + 1))
    assert np.mean(per_nucleus < stroma_level - 20) > 0.9


def test_dataset_defaults_and_names():
    tr = synthetic_he("train", size=64)
    te = synthetic_he("test", size=64)
    assert isinstance(tr, Dataset) and tr.name == "synthetic-he"
    assert len(tr) == DEFAULT_COUNTS["train"] == 24 and len(te) == DEFAULT_COUNTS["test"] == 8
    assert tr.names[:2] == ["he_0000", "he_0001"]
    s = tr[3]
    assert s.name == "he_0003" and s.meta["split"] == "train" and s.meta["index"] == 3
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
    assert s.instances.dtype == np.int32
    both = synthetic_he("all", n=2, size=64)
    assert both.names == ["train/he_0000", "train/he_0001", "test/he_0000", "test/he_0001"]
    np.testing.assert_array_equal(both[2].image, te[0].image)
    with pytest.raises(ValueError):
        synthetic_he("valid")


def test_sample_independent_of_n_and_fixed_split():
    a = synthetic_he("train", n=3, size=96, seed=4)
    b = synthetic_he("train", n=10, size=96, seed=4)
    np.testing.assert_array_equal(a[2].image, b[2].image)
    np.testing.assert_array_equal(a[2].instances, b[2].instances)
    # tile k of a split is a fixed function of (seed, split, k)
    img, lab = render_tile(96, tile_seed(4, "test", 1))
    te = synthetic_he("test", n=2, size=96, seed=4)
    np.testing.assert_array_equal(te[1].image, img)
    np.testing.assert_array_equal(te[1].instances, lab)
    # another dataset seed gives other tiles
    assert not np.array_equal(synthetic_he("train", n=1, size=96, seed=5)[0].image, a[0].image)


def test_train_and_test_disjoint():
    seeds_tr = {tile_seed(0, "train", k) for k in range(200)}
    seeds_te = {tile_seed(0, "test", k) for k in range(200)}
    assert len(seeds_tr) == 200 and len(seeds_te) == 200 and not seeds_tr & seeds_te
    tr = synthetic_he("train", n=4, size=64)
    te = synthetic_he("test", n=4, size=64)
    for s in te:
        assert all(not np.array_equal(s.image, t.image) for t in tr)


def test_samples_cached_and_read_only():
    ds = synthetic_he("train", n=2, size=64, seed=9)
    s1, s2 = ds[0], ds[0]
    assert s1.image is s2.image
    with pytest.raises(ValueError):
        s1.image[0, 0, 0] = 0


def test_stain_variation_across_tiles():
    means = np.array([render_tile(96, seed=s)[0].reshape(-1, 3).mean(0) for s in range(6)])
    assert means.std(axis=0).max() > 2.0  # tiles are not all stained alike


@pytest.mark.shared_data
def test_colours_in_range_of_real_cpm15_tile():
    path = CPM / "Images" / "image_00.png"
    if not path.exists():
        pytest.skip(f"CPM-15 tile not found at {path}")
    from scipy.io import loadmat
    from skimage.io import imread

    real = imread(path)[..., :3].astype(np.float64)
    real_fg = loadmat(CPM / "Labels" / "image_00.mat")["inst_map"] > 0
    nuc_r, bg_r = real[real_fg].mean(0), real[~real_fg].mean(0)
    nuc, bg = [], []
    for seed in range(4):
        img, lab = render_tile(256, seed=seed)
        nuc.append(img[lab > 0].mean(0))
        bg.append(img[lab == 0].mean(0))
    nuc, bg = np.mean(nuc, 0), np.mean(bg, 0)
    # mean RGB within ~30 levels of the real tile, in and out of the nuclei
    assert np.abs(nuc - nuc_r).max() < 30, (nuc, nuc_r)
    assert np.abs(bg - bg_r).max() < 30, (bg, bg_r)
