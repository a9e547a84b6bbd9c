"""Multi-focus metrics against direct formulas: FID, KID, variance of the Laplacian, inter-plane SSIM."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from gbench.core.errors import DataError
from gbench.data.multifocus import stack_array
from gbench.data.synthetic_cells import synthetic_cells
from gbench.metrics.multifocus import (
    NOT_COMPARABLE,
    InceptionFeatures,
    RandomConvFeatures,
    evaluate_multifocus,
    fid_from_features,
    focus_curve,
    get_extractor,
    interplane_ssim,
    kid_from_features,
    variance_of_laplacian,
)

# one torch thread per test, as under tests/generators/conftest.py (where these tests lived before)
pytestmark = pytest.mark.usefixtures("one_thread")


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """FID with the matrix square root from an eigendecomposition (no sqrtm)."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r1 @ s2 @ r1)  # Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def test_fid_matches_direct_numpy_computation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 6))
    b = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6)) * 0.5 + 1.0
    assert fid_from_features(a, b) == pytest.approx(_fid_reference(a, b), rel=1e-7, abs=1e-9)
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-7)
    assert abs(fid_from_features(a, a)) < 1e-7
    # two Gaussians with known parameters: FID -> |mu|^2 + sum (sqrt(s1) - sqrt(s2))^2 for diagonal covariances
    big1 = rng.normal(size=(20000, 2))
    big2 = rng.normal(size=(20000, 2)) * 2.0 + 3.0
    assert fid_from_features(big1, big2) == pytest.approx(2 * 9 + 2 * (1 - 2) ** 2, rel=0.03)


def test_kid_matches_literal_unbiased_mmd() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(9, 4)), rng.normal(size=(7, 4)) + 0.3
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    yy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    xy = sum(k(x[i], y[j]) for i in range(9) for j in range(7)) / (9 * 7)
    kid, std = kid_from_features(x, y)
    assert kid == pytest.approx(xx + yy - 2 * xy, rel=1e-10) and std == 0.0
    kid_sub, std_sub = kid_from_features(x, y, subsets=20, subset_size=5, seed=0)
    assert std_sub > 0 and np.isfinite(kid_sub)
    with pytest.raises(ValueError, match="at least 2"):
        kid_from_features(x[:1], y)


def test_focus_and_interplane_ssim_against_references() -> None:
    stacks = stack_array(synthetic_cells("siha", "train", n=2, size=32))
    luma = (0.299 * stacks[..., 0] + 0.587 * stacks[..., 1] + 0.114 * stacks[..., 2]) / 255.0
    ref = np.array([[ndimage.laplace(p)[1:-1, 1:-1].var() for p in s] for s in luma])
    np.testing.assert_allclose(focus_curve(stacks), ref, rtol=1e-10)
    np.testing.assert_allclose(variance_of_laplacian(np.zeros((3, 8, 8))), 0.0)
    s = interplane_ssim(stacks)
    assert s.shape == (2, 10)
    for i, k in [(0, 0), (1, 4), (1, 9)]:
        r = structural_similarity(stacks[i, k + 1], stacks[i, k], gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, channel_axis=-1, data_range=255)
        assert s[i, k] == pytest.approx(r, abs=1e-6)


def test_random_conv_features_are_seeded() -> None:
    imgs = stack_array(synthetic_cells("siha", "train", n=2, size=32))[:, 5]
    a, b = RandomConvFeatures(seed=0, device="cpu"), RandomConvFeatures(seed=0, device="cpu")
    np.testing.assert_array_equal(a(imgs), b(imgs))
    assert a(imgs).shape == (2, 112)
    assert not np.allclose(a(imgs), RandomConvFeatures(seed=1, device="cpu")(imgs))


def test_evaluate_multifocus_ranks_sets_and_labels_results() -> None:
    real = stack_array(synthetic_cells("siha", "train", n=5, size=32))
    same = stack_array(synthetic_cells("siha", "test", n=5, size=32))
    other = stack_array(synthetic_cells("cancer", "test", n=5, size=32))
    flat = np.repeat(same[:, 5:6], 11, axis=1)  # no focus variation at all
    r_same = evaluate_multifocus(same, real, kid_subset_size=5)
    r_other = evaluate_multifocus(other, real, kid_subset_size=5)
    r_flat = evaluate_multifocus(flat, real, kid_subset_size=5)
    assert r_same.value("fid") < r_other.value("fid") and r_same.value("kid") < r_other.value("kid")
    assert r_same.value("focus_curve_l1") < r_flat.value("focus_curve_l1")
    assert r_same.value("interplane_ssim_w1") < r_flat.value("interplane_ssim_w1")
    assert r_same.value("focus_peak_real") == 0 and r_same.value("focus_peak_at_i0_fake") == 1.0
    fids = [r for r in r_same.rows if r["metric"] in ("fid", "kid")]
    assert len(fids) == 24 and all(r["note"] == NOT_COMPARABLE for r in fids)
    assert not r_same.comparable_with_published_fid
    with pytest.raises(ValueError, match="planes, H, W"):
        evaluate_multifocus(real[:, :, :16, :16], real)


def test_inception_extractor_only_with_a_local_weights_file(tmp_path) -> None:
    with pytest.raises(ValueError, match="local weights file"):
        get_extractor("inception-v3")
    with pytest.raises(DataError, match="not found"):
        get_extractor("inception-v3", inception_weights=tmp_path / "none.pth")
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="do not fit"):
        InceptionFeatures(tmp_path / "bad.pth")
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), tmp_path / "inc.pth")
    ext = get_extractor("inception-v3", inception_weights=tmp_path / "inc.pth", device="cpu")
    feats = ext(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
