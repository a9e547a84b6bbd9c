"""Tests of the nucleus mask generator (gbench.data.masks)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon

from gbench.data.masks import (
    DEFAULT_STATS,
    MaskStats,
    _outline_radii,
    _rasterize,
    _vertices,
    fit_mask_stats,
    iter_synthesize,
    mask_statistics,
    polygon_vertices,
    synthesize_instance_map,
    synthesize_instances,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CPM_LABELS = SHARED / "cpm15" / "train" / "Labels"


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_maps():
    a = synthesize_instances(4, 128, seed=7)
    b = synthesize_instances(4, 128, seed=7)
    assert a.shape == (4, 128, 128) and a.dtype == np.int32
    np.testing.assert_array_equal(a, b)


def test_kth_image_independent_of_count_and_start():
    short = synthesize_instances(3, 96, seed=3)
    long = synthesize_instances(7, 96, seed=3)
    np.testing.assert_array_equal(short, long[:3])
    tail = synthesize_instances(2, 96, seed=3, start=5)
    np.testing.assert_array_equal(tail, long[5:7])
    np.testing.assert_array_equal(synthesize_instance_map(96, seed=3, index=4), long[4])


def test_different_seeds_and_images_differ():
    a = synthesize_instances(3, 128, seed=1)
    b = synthesize_instances(3, 128, seed=2)
    assert not np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], a[1])


def test_workers_do_not_change_results():
    one = np.stack(list(iter_synthesize(6, 64, seed=11, workers=1)))
    two = np.stack(list(iter_synthesize(6, 64, seed=11, workers=2, chunksize=2)))
    np.testing.assert_array_equal(one, two)


def test_non_square_size_and_overrides():
    m = synthesize_instances(2, (80, 150), seed=0, density=20.0, overlap=0.0)
    assert m.shape == (2, 80, 150)
    with pytest.raises(TypeError):
        synthesize_instances(1, 64, seed=0, not_a_field=1)


# ------------------------------------------------------------------------------ structure


def test_ids_contiguous_and_connected():
    maps = synthesize_instances(12, 160, seed=5, overlap=0.4, density=12.0, irregularity=0.2)
    for lab in maps:
        n = int(lab.max())
        assert n > 0
        ids = np.unique(lab)
        np.testing.assert_array_equal(ids, np.arange(n + 1))
        sizes = np.bincount(lab.ravel())
        assert sizes[1:].min() >= DEFAULT_STATS.min_pixels
        for k, sl in enumerate(ndi.find_objects(lab), start=1):
            # one region (8-connected: a one-pixel polygon tip may hang on by a corner)
            assert ndi.label(lab[sl] == k, structure=np.ones((3, 3)))[1] == 1


def test_rasterizer_matches_skimage_polygon():
    rng = np.random.default_rng(0)
    n = 80
    a, q, pert = _outline_radii(rng, n, replace(DEFAULT_STATS, irregularity=0.3))
    orient = rng.uniform(0, np.pi, n)
    cy, cx = rng.uniform(40, 90, n), rng.uniform(40, 90, n)
    ang, rad = _vertices(a, q, orient, pert)
    masks, r0, c0 = _rasterize(cy, cx, ang, rad)
    for i in range(n):
        ref = np.zeros((130, 130), dtype=bool)
        rr, cc = draw_polygon(*polygon_vertices(cy[i], cx[i], ang[i], rad[i]), shape=ref.shape)
        ref[rr, cc] = True
        mine = np.zeros_like(ref)
        m = masks[i]
        mine[r0[i] : r0[i] + m.shape[0], c0[i] : c0[i] + m.shape[1]] = m
        assert (ref ^ mine).sum() <= 1  # pixels exactly on an edge may differ


# ------------------------------------------------------------------------------ statistics


def test_mean_area_and_density_match_request():
    stats = replace(DEFAULT_STATS, log_area_mean=5.0, log_area_std=0.3, density_mean=5.0,
                    density_std=1.0, overlap=0.0)
    maps = synthesize_instances(40, 256, seed=21, stats=stats)
    m = mask_statistics(maps)
    density = m["count"] / m["pixels"] * 1e4
    assert density == pytest.approx(5.0, rel=0.1)
    # nuclei clear of the border, no occlusion: areas follow the requested log-normal
    assert np.log(m["areas"]).mean() == pytest.approx(5.0, abs=0.08)
    assert m["areas"].mean() == pytest.approx(stats.mean_area, rel=0.1)
    assert m["eccentricities"].mean() == pytest.approx(stats.ecc_mean, abs=0.05)


def test_fit_recovers_parameters():
    truth = MaskStats(log_area_mean=4.8, log_area_std=0.4, ecc_mean=0.6, ecc_std=0.12,
                      density_mean=9.0, density_std=2.0, overlap=0.3)
    maps = synthesize_instances(48, 256, seed=8, stats=truth)
    fit = fit_mask_stats(maps)
    assert fit.log_area_mean == pytest.approx(truth.log_area_mean, abs=0.2)
    assert fit.log_area_std == pytest.approx(truth.log_area_std, abs=0.12)
    assert fit.ecc_mean == pytest.approx(truth.ecc_mean, abs=0.07)
    assert fit.density_mean == pytest.approx(truth.density_mean, rel=0.15)
    assert fit.overlap == pytest.approx(truth.overlap, abs=0.12)
    # and it tells a low-overlap set apart from a high-overlap one
    low = fit_mask_stats(synthesize_instances(48, 256, seed=8, stats=replace(truth, overlap=0.0)))
    assert low.overlap < fit.overlap - 0.15


def test_fit_accepts_samples_and_iterables():
    from gbench.data.types import Dataset, Sample

    maps = synthesize_instances(6, 128, seed=2)
    samples = {f"s{k}": Sample(f"s{k}", np.zeros((128, 128, 3), np.uint8), maps[k]) for k in range(6)}
    ds = Dataset("toy", "train", list(samples), samples.__getitem__)
    a = fit_mask_stats(ds, calibrate=False)
    b = fit_mask_stats(list(maps), calibrate=False)
    assert a == b
    with pytest.raises(ValueError):
        fit_mask_stats([np.zeros((32, 32), np.int32)])


def _touching_fraction(maps):
    m = mask_statistics(maps)
    return m["touching"] / m["count"]


def test_overlap_present_when_requested():
    infos = [synthesize_instance_map(256, 4, k, overlap=0.5, density_mean=10.0, return_info=True)[1]
             for k in range(8)]
    assert sum(i["occluded"] for i in infos) > 20
    maps = synthesize_instances(8, 256, seed=4, overlap=0.5, density=10.0)
    assert _touching_fraction(maps) > 0.4


def test_no_overlap_and_no_touching_at_low_density():
    stats = replace(DEFAULT_STATS, overlap=0.0, density_mean=2.0, density_std=0.0)
    for k in range(10):
        _, info = synthesize_instance_map(256, 9, k, stats=stats, return_info=True)
        assert info["occluded"] == 0 and info["overlapping"] == 0
    maps = synthesize_instances(10, 256, seed=9, stats=stats)
    assert _touching_fraction(maps) < 0.05


def test_clustering_concentrates_nuclei():
    # nuclei gathered along rings and bands: counts in an 8x8 grid of cells are over-dispersed
    def dispersion(maps):
        out = []
        for lab in maps:
            com = np.array(ndi.center_of_mass(lab > 0, lab, np.arange(1, lab.max() + 1)))
            cells = np.histogram2d(com[:, 0], com[:, 1], bins=8, range=[[0, 256], [0, 256]])[0]
            out.append(cells.var() / cells.mean())
        return float(np.mean(out))

    flat = synthesize_instances(10, 256, seed=6, clustering=0.0, overlap=0.0)
    clustered = synthesize_instances(10, 256, seed=6, clustering=0.9, overlap=0.0)
    assert dispersion(clustered) > 1.5 * dispersion(flat)


def test_measures_match_regionprops():
    from skimage.measure import regionprops

    from gbench.data.masks import _region_measures

    lab = synthesize_instance_map(128, 3, 0, overlap=0.3, density_mean=12.0)
    n = int(lab.max())
    area, ecc = _region_measures(lab, n)
    props = regionprops(lab)
    np.testing.assert_allclose(area, [p.area for p in props])
    np.testing.assert_allclose(ecc, [p.eccentricity for p in props], atol=1e-6)


def test_invalid_stats_rejected():
    with pytest.raises(ValueError):
        MaskStats(ecc_mean=1.2)
    with pytest.raises(ValueError):
        MaskStats(overlap=-0.1)


# ------------------------------------------------------------------------------ real labels


def _cpm_maps():
    if not CPM_LABELS.is_dir() or not any(CPM_LABELS.glob("*.mat")):
        pytest.skip(f"CPM-15 labels not found under {CPM_LABELS}")
    from scipy.io import loadmat

    return [loadmat(p)["inst_map"].astype(np.int32) for p in sorted(CPM_LABELS.glob("*.mat"))]


@pytest.mark.shared_data
def test_fit_on_real_cpm15_labels():
    maps = _cpm_maps()
    fit = fit_mask_stats(maps)
    m = mask_statistics(maps)
    real_density = m["count"] / m["pixels"] * 1e4
    assert 40 < fit.median_area < 600
    assert 0.5 < fit.ecc_mean < 0.95
    # the drawn density makes up for the few nuclei the generator loses to occlusion/crowding
    assert real_density <= fit.density_mean <= 1.15 * real_density
    assert 0.0 <= fit.overlap <= 1.0
    # masks drawn with the fitted parameters resemble the real ones in size and density
    # (a fixed density keeps the check from depending on the large real spread, 20x and 40x)
    syn = synthesize_instances(24, 256, seed=0, stats=replace(fit, density_std=0.0))
    s = mask_statistics(syn)
    assert s["count"] / s["pixels"] * 1e4 == pytest.approx(real_density, rel=0.25)
    assert np.median(s["areas"]) == pytest.approx(np.median(m["areas"]), rel=0.3)
