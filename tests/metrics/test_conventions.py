"""The conventions catalogue against the libraries whose defaults each entry is named after."""
from __future__ import annotations

import numpy as np
import piq
import pytest
import torch
from skimage.metrics import normalized_root_mse, structural_similarity

from gbench.metrics.conventions import (_matlab_round, catalogue, conventions_table, fsim_full_resolution,
                                        gmsd_full_resolution, matlab_ssim, score_conventions)

ATOL = 1e-6


def _pairs(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth-ish real images and noisy synthetic partners, uint8 (N, 3, H, W)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    real = gaussian_filter(rng.random((n, 3, h, w)) * 255, sigma=(0, 0, 2, 2)) * 3 - 200
    real = np.clip(real, 0, 255).astype(np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-25, 26, real.shape), 0, 255).astype(np.uint8)
    return torch.from_numpy(fake), torch.from_numpy(real)


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy()


def _by_key(metric: str) -> dict:
    return {c.key: c for c in catalogue([metric])}


def test_ssim_entries_equal_their_libraries() -> None:
    fake, real = _pairs(2, 48, 40)
    c = _by_key("ssim")
    f, r = _hwc(fake), _hwc(real)
    sk = [structural_similarity(ri, fi, channel_axis=-1, data_range=255) for fi, ri in zip(f, r)]
    np.testing.assert_allclose(c["skimage-defaults"].fn(fake, real), sk, atol=1e-12)
    gauss = [structural_similarity(ri, fi, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False) for fi, ri in zip(f, r)]
    np.testing.assert_allclose(c["wang-gaussian"].fn(fake, real), gauss, atol=ATOL)
    ref = piq.ssim(fake.float() / 255, real.float() / 255, data_range=1.0, reduction="none")
    np.testing.assert_allclose(c["piq-defaults"].fn(fake, real), ref, atol=1e-12)
    np.testing.assert_allclose(ref, gauss, atol=1e-5)  # no pooling below 384 px: piq = Wang's Gaussian
    from torchmetrics.functional.image import structural_similarity_index_measure as tm

    one = [float(tm(fake[i:i + 1].float() / 255, real[i:i + 1].float() / 255)) for i in range(2)]
    np.testing.assert_allclose(c["torchmetrics-defaults"].fn(fake, real), one, atol=1e-12)
    assert c["wang-gaussian"].default and "scikit-image" in c["skimage-defaults"].name


def test_matlab_ssim_downsampling_rule_against_scikit_image() -> None:
    assert [_matlab_round(x) for x in (0.5, 1.496, 1.5, 2.5)] == [1, 1, 2, 3]  # halves away from zero
    for h, w, f in ((40, 48, 1), (512, 520, 2)):
        fake, real = _pairs(1, h, w, seed=h)
        wts = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
        gray = [np.floor(_hwc(x)[0].astype(np.float64) @ wts + 0.5) for x in (real, fake)]
        if f > 1:  # 2x2 block means (h, w even): MATLAB's box filter + subsampling for f = 2
            gray = [g.reshape(h // f, f, w // f, f).mean(axis=(1, 3)) for g in gray]
        ref = structural_similarity(gray[0], gray[1], data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert float(matlab_ssim(fake, real)[0]) == pytest.approx(ref, abs=1e-10)


def test_fsim_and_gmsd_without_downsampling_against_piq() -> None:
    fake, real = _pairs(1, 256, 264, seed=3)
    up = lambda x: x.repeat_interleave(2, -1).repeat_interleave(2, -2)  # noqa: E731  # 512 x 528: piq pools by 2
    # pooling a 2x nearest-upsampled image by 2 gives the image back: piq's defaults on it = full resolution here
    np.testing.assert_allclose(fsim_full_resolution(fake, real),
                               piq.fsim(up(fake).float() / 255, up(real).float() / 255, data_range=1.0,
                                        reduction="none"), atol=1e-6)
    small_f, small_r = _pairs(1, 64, 72, seed=4)
    np.testing.assert_allclose(gmsd_full_resolution(small_f, small_r),
                               piq.gmsd(up(small_f).float() / 255, up(small_r).float() / 255, data_range=1.0,
                                        reduction="none"), atol=1e-6)
    # below 384 px FSIM does not pool: both conventions agree; GMSD always pools
    c = _by_key("fsim")
    np.testing.assert_allclose(c["piq-defaults"].fn(small_f, small_r), c["no-downsampling"].fn(small_f, small_r),
                               atol=1e-10)
    g = _by_key("gmsd")
    assert abs(float(g["piq-defaults"].fn(small_f, small_r)[0] - g["no-downsampling"].fn(small_f, small_r)[0])) > 1e-3


def test_nrmse_normalisations_against_scikit_image() -> None:
    fake, real = _pairs(2, 24, 24, seed=5)
    c = _by_key("nrmse")
    for norm in ("euclidean", "min-max", "mean"):
        ref = [normalized_root_mse(ri, fi, normalization=norm) for fi, ri in zip(_hwc(fake), _hwc(real))]
        np.testing.assert_allclose(c[norm].fn(fake, real), ref, rtol=1e-10)


def test_side_by_side_table_shows_how_much_the_convention_moves_ssim() -> None:
    fake, real = _pairs(1, 400, 400, seed=6)  # pooled by round(400 / 256) = 2 under piq and ssim.m
    entries = catalogue(["ssim", "nrmse"])
    values = score_conventions(fake, real, conventions=entries)
    table = conventions_table(values, entries)
    assert list(table.columns[:4]) == ["metric", "convention", "matches", "mean"]
    ssim = table[table.metric == "ssim"].set_index("convention")
    assert ssim.loc["wang-gaussian", "delta"] == 0 and bool(ssim.loc["wang-gaussian", "default"])
    # at 400 px the downsampling conventions (piq, MATLAB) differ from full resolution
    assert abs(ssim.loc["piq-defaults", "delta"]) > 1e-3 and abs(ssim.loc["matlab-ssim.m", "delta"]) > 1e-3
    assert ssim["mean"].nunique() == len(ssim)
    with pytest.raises(ValueError, match="no conventions for metric"):
        catalogue(["psnr"])
    with pytest.raises(ValueError, match="uint8 batches"):
        score_conventions(fake.float(), real.float())
