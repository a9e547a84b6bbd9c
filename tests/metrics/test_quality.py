"""Tests for gbench.metrics.quality against scikit-image and piq, plus properties and input validation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import piq
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import normalized_root_mse as sk_nrmse
from skimage.metrics import structural_similarity as sk_ssim

from gbench.metrics import quality as q

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CPM15_IMAGES = SHARED_DATA / "cpm15" / "test" / "Images"

TOL_SKIMAGE = 1e-8  # spec: 1e-4, measured ~1e-15
TOL_PIQ = 1e-8  # spec: 1e-5 (float64 piq); measured ~1e-16
NORMS = ("euclidean", "min-max", "mean")


# ---------------------------------------------------------------------------
# data helpers
# ---------------------------------------------------------------------------
def _degrade(img: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Blurred, noised and (circularly) shifted versions of an HWC uint8 image."""
    blur = np.clip(gaussian_filter(img.astype(np.float64), sigma=(1.2, 1.2, 0)), 0, 255).round().astype(np.uint8)
    noise = np.clip(img + rng.normal(0.0, 12.0, img.shape), 0, 255).round().astype(np.uint8)
    shift = np.roll(img, (2, 3), axis=(0, 1))
    return [blur, noise, shift]


def _nchw(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def ihc() -> np.ndarray:
    return skdata.immunohistochemistry()


def _pairs(img: np.ndarray, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    fakes = _degrade(img, np.random.default_rng(seed))
    return fakes, [img] * len(fakes)


CROPS = {"square128": (128, 128, 100, 100), "wide96x160": (96, 160, 220, 40), "odd97x161": (97, 161, 10, 300)}


@pytest.fixture(scope="module", params=list(CROPS))
def crop_pairs(request: pytest.FixtureRequest, ihc: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    h, w, oy, ox = CROPS[request.param]
    return _pairs(ihc[oy : oy + h, ox : ox + w])


def _sk_ssim(real: np.ndarray, fake: np.ndarray, data_range: float, channel_axis: int | None = -1) -> float:
    return float(
        sk_ssim(
            real,
            fake,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=channel_axis,
            data_range=data_range,
        )
    )


def _y(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


# ---------------------------------------------------------------------------
# agreement with scikit-image
# ---------------------------------------------------------------------------
def test_ssim_matches_skimage_uint8(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    ours = q.ssim(_nchw(fakes), _nchw(reals))
    ref = np.array([_sk_ssim(r, f, 255) for f, r in zip(fakes, reals)])
    assert ours.dtype == torch.float64 and ours.shape == (len(fakes),)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL_SKIMAGE)
    assert np.ptp(ref) > 0.1  # the cases really differ


def test_ssim_matches_skimage_float(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    f32 = [(f / 255.0).astype(np.float32) for f in fakes]
    r32 = [(r / 255.0).astype(np.float32) for r in reals]
    ours = q.ssim(_nchw(f32), _nchw(r32))
    # we compute in float64, so compare with scikit-image on the same values in float64
    ref = np.array([_sk_ssim(r.astype(np.float64), f.astype(np.float64), 1.0) for f, r in zip(f32, r32)])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL_SKIMAGE)


def test_ssim_luminance_matches_skimage_on_y(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    ours = q.ssim(_nchw(fakes), _nchw(reals), luminance=True)
    ref = np.array([_sk_ssim(_y(r), _y(f), 255, channel_axis=None) for f, r in zip(fakes, reals)])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL_SKIMAGE)
    assert not np.allclose(ours.numpy(), q.ssim(_nchw(fakes), _nchw(reals)).numpy(), atol=1e-4)


@pytest.mark.parametrize("size", [(11, 11), (12, 17), (23, 11)])
def test_ssim_borders_match_skimage_on_noise(size: tuple[int, int]) -> None:
    """Pure noise at (near-)minimum size: any boundary-handling difference would show here."""
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    fake = np.clip(real + rng.normal(0, 40, real.shape), 0, 255).astype(np.uint8)
    ours = float(q.ssim(_nchw([fake]), _nchw([real]))[0])
    assert abs(ours - _sk_ssim(real, fake, 255)) < TOL_SKIMAGE


@pytest.mark.parametrize("normalization", NORMS)
def test_nrmse_matches_skimage(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]], normalization: str) -> None:
    fakes, reals = crop_pairs
    ours = q.nrmse(_nchw(fakes), _nchw(reals), normalization=normalization)
    ref = np.array([sk_nrmse(r, f, normalization=normalization) for f, r in zip(fakes, reals)])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_nrmse_reference_is_real() -> None:
    """NRMSE is not symmetric; the denominator comes from ``real`` (skimage's image_true)."""
    rng = np.random.default_rng(2)
    real = rng.integers(100, 200, (3, 16, 16), dtype=np.uint8)
    fake = (real // 2).astype(np.uint8)
    got = float(q.nrmse(fake, real)[0])
    want = np.linalg.norm(real.astype(float) - fake) / np.linalg.norm(real.astype(float))
    assert got == pytest.approx(want, rel=1e-12)
    assert float(q.nrmse(real, fake)[0]) > got * 1.5


# ---------------------------------------------------------------------------
# agreement with piq
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("chromatic", [True, False])
def test_fsim_matches_piq(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]], chromatic: bool) -> None:
    fakes, reals = crop_pairs
    f, r = _nchw(fakes), _nchw(reals)
    ours = q.fsim(f, r, chromatic=chromatic)
    ref = piq.fsim(f.double(), r.double(), data_range=255, chromatic=chromatic, reduction="none")
    assert (ours - ref).abs().max().item() < TOL_PIQ
    # also against piq's everyday float32 [0, 1] usage, at the spec tolerance
    ref32 = piq.fsim(f.float() / 255, r.float() / 255, data_range=1.0, chromatic=chromatic, reduction="none")
    assert (ours - ref32.double()).abs().max().item() < 1e-5


def test_fsim_chromatic_differs_from_grey(ihc: np.ndarray) -> None:
    real = ihc[:64, :64]
    fake = real.copy()
    fake[..., 0] = np.clip(fake[..., 0].astype(int) + 40, 0, 255)  # colour shift
    c = float(q.fsim(fake.transpose(2, 0, 1), real.transpose(2, 0, 1), chromatic=True)[0])
    g = float(q.fsim(fake.transpose(2, 0, 1), real.transpose(2, 0, 1), chromatic=False)[0])
    assert c < g


def test_fsim_downsampling_path_matches_piq(ihc: np.ndarray) -> None:
    """min side 384 -> piq pools by round(384 / 256) = 2; ours must do the same."""
    real = ihc[:384, :400]
    fake = _degrade(real, np.random.default_rng(3))[0]
    f, r = _nchw([fake]), _nchw([real])
    ours = q.fsim(f, r)
    ref = piq.fsim(f.double(), r.double(), data_range=255, reduction="none")
    assert (ours - ref).abs().max().item() < TOL_PIQ
    # pooling really happened: same as FSIM of the 2x2-average-pooled images (192x200, no further pooling)
    pooled = q.fsim(
        torch.nn.functional.avg_pool2d(f.double() / 255, 2), torch.nn.functional.avg_pool2d(r.double() / 255, 2)
    )
    assert (ours - pooled).abs().max().item() < 1e-12


def test_gmsd_matches_piq(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    f, r = _nchw(fakes), _nchw(reals)
    ours = q.gmsd(f, r)
    ref = piq.gmsd(f.double(), r.double(), data_range=255, reduction="none")
    assert (ours - ref).abs().max().item() < TOL_PIQ
    ref32 = piq.gmsd(f.float() / 255, r.float() / 255, data_range=1.0, reduction="none")
    assert (ours - ref32.double()).abs().max().item() < 1e-5


# ---------------------------------------------------------------------------
# shared CPM15 images (skipped when absent)
# ---------------------------------------------------------------------------
@pytest.mark.shared_data
def test_cpm15_against_skimage_and_piq() -> None:
    from skimage.io import imread

    paths = sorted(CPM15_IMAGES.glob("*.png"))[:2] if CPM15_IMAGES.is_dir() else []
    if not paths:
        pytest.skip(f"no CPM15 test images under {CPM15_IMAGES}")
    reals: list[np.ndarray] = []
    fakes: list[np.ndarray] = []
    for i, p in enumerate(paths):
        img = imread(p)[..., :3]
        if img.dtype != np.uint8 or min(img.shape[:2]) < 160:
            pytest.skip(f"unexpected CPM15 image {p.name}: {img.shape} {img.dtype}")
        real = np.ascontiguousarray(img[:128, :160])
        for fake in _degrade(real, np.random.default_rng(10 + i)):
            reals.append(real)
            fakes.append(fake)
    f, r = _nchw(fakes), _nchw(reals)
    ref_ssim = np.array([_sk_ssim(b, a, 255) for a, b in zip(fakes, reals)])
    np.testing.assert_allclose(q.ssim(f, r).numpy(), ref_ssim, atol=TOL_SKIMAGE, rtol=0)
    for norm in NORMS:
        ref = np.array([sk_nrmse(b, a, normalization=norm) for a, b in zip(fakes, reals)])
        np.testing.assert_allclose(q.nrmse(f, r, normalization=norm).numpy(), ref, rtol=1e-12)
    for chromatic in (True, False):
        ref_f = piq.fsim(f.double(), r.double(), data_range=255, chromatic=chromatic, reduction="none")
        assert (q.fsim(f, r, chromatic=chromatic) - ref_f).abs().max().item() < TOL_PIQ
    ref_g = piq.gmsd(f.double(), r.double(), data_range=255, reduction="none")
    assert (q.gmsd(f, r) - ref_g).abs().max().item() < TOL_PIQ


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch(ihc: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """8 pairs of 48x56 tiles: (fake, real) uint8 NCHW."""
    rng = np.random.default_rng(4)
    reals, fakes = [], []
    for k in range(8):
        real = ihc[40 * k : 40 * k + 48, 30 * k : 30 * k + 56]
        reals.append(real)
        fakes.append(_degrade(real, rng)[k % 3])
    return _nchw(fakes), _nchw(reals)


FUNCS = {
    "ssim": q.ssim,
    "ssim_y": lambda f, r: q.ssim(f, r, luminance=True),
    "fsim": q.fsim,
    "fsim_grey": lambda f, r: q.fsim(f, r, chromatic=False),
    "gmsd": q.gmsd,
    "nrmse": q.nrmse,
    "nrmse_minmax": lambda f, r: q.nrmse(f, r, normalization="min-max"),
    "nrmse_mean": lambda f, r: q.nrmse(f, r, normalization="MEAN"),
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_identity(batch: tuple[torch.Tensor, torch.Tensor], name: str) -> None:
    _, real = batch
    got = FUNCS[name](real, real.clone())
    want = 1.0 if name.startswith(("ssim", "fsim")) else 0.0
    assert torch.allclose(got, torch.full_like(got, want), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["ssim", "ssim_y", "fsim", "fsim_grey", "gmsd"])
def test_symmetry(batch: tuple[torch.Tensor, torch.Tensor], name: str) -> None:
    fake, real = batch
    a, b = FUNCS[name](fake, real), FUNCS[name](real, fake)
    assert torch.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(FUNCS))
def test_uint8_equals_float_over_255(batch: tuple[torch.Tensor, torch.Tensor], name: str) -> None:
    """uint8 uses data range 255, float uses 1.0: the metrics are scale-invariant under that convention."""
    fake, real = batch
    a = FUNCS[name](fake, real)
    b = FUNCS[name](fake.double() / 255, real.double() / 255)
    c = FUNCS[name](fake.float() / 255, real.float() / 255)
    assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert torch.allclose(a, c, rtol=0, atol=1e-5)  # float32 rounding of x / 255 only


@pytest.mark.parametrize("name", list(FUNCS))
def test_batch_equals_separate_calls(batch: tuple[torch.Tensor, torch.Tensor], name: str) -> None:
    fake, real = batch
    whole = FUNCS[name](fake, real)
    single = torch.cat([FUNCS[name](fake[i], real[i]) for i in range(fake.shape[0])])  # (3,H,W) promoted
    assert whole.shape == (8,)
    assert torch.allclose(whole, single, rtol=0, atol=1e-12)
    assert whole.std() > 0  # different pairs give different values


@pytest.mark.parametrize("name", list(FUNCS))
def test_chunking_does_not_change_results(
    batch: tuple[torch.Tensor, torch.Tensor], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, real = batch
    whole = FUNCS[name](fake, real)
    monkeypatch.setattr(q, "_CHUNK_ELEMS", 1)  # one image per chunk
    assert torch.allclose(whole, FUNCS[name](fake, real), rtol=0, atol=1e-12)


def test_numpy_input_equals_tensor(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    fake, real = batch
    for name, fn in FUNCS.items():
        assert torch.equal(fn(fake.numpy(), real.numpy()), fn(fake, real)), name


def test_quality_metrics_convenience(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    fake, real = batch
    out = q.quality_metrics(fake, real)
    assert list(out) == ["ssim", "fsim", "gmsd", "nrmse"]
    for name, values in out.items():
        assert torch.equal(values, FUNCS[name](fake, real))
    assert list(q.quality_metrics(fake, real, metrics=("nrmse",))) == ["nrmse"]
    with pytest.raises(ValueError, match="unknown quality metric"):
        q.quality_metrics(fake, real, metrics=("ssim", "psnr"))


def test_conventions_and_higher_is_better() -> None:
    assert q.HIGHER_IS_BETTER == {"ssim": True, "fsim": True, "gmsd": False, "nrmse": False}
    assert set(q.CONVENTIONS) == set(q.HIGHER_IS_BETTER)
    for name, conv in q.CONVENTIONS.items():
        assert conv["higher_is_better"] == q.HIGHER_IS_BETTER[name]
        assert "downsampling" in conv and "dtype" in conv
    json.dumps(q.CONVENTIONS)  # recordable with each result
    s = q.CONVENTIONS["ssim"]
    assert (s["win_size"], s["sigma"], s["K1"], s["K2"], s["crop"]) == (11, 1.5, 0.01, 0.03, 5)


# ---------------------------------------------------------------------------
# torchmetrics classes
# ---------------------------------------------------------------------------
CLASSES = [
    (q.SSIMMetric, {}, "ssim"),
    (q.SSIMMetric, {"luminance": True}, "ssim_y"),
    (q.FSIMMetric, {}, "fsim"),
    (q.FSIMMetric, {"chromatic": False}, "fsim_grey"),
    (q.GMSDMetric, {}, "gmsd"),
    (q.NRMSEMetric, {"normalization": "min-max"}, "nrmse_minmax"),
]


@pytest.mark.parametrize(("cls", "kwargs", "fname"), CLASSES)
def test_class_equals_functional_and_update_granularity(
    batch: tuple[torch.Tensor, torch.Tensor], cls: type, kwargs: dict, fname: str
) -> None:
    fake, real = batch
    ref = FUNCS[fname](fake, real)
    one = cls(**kwargs)
    one.update(fake, real)
    many = cls(**kwargs)
    for i in range(8):
        many.update(fake[i : i + 1], real[i : i + 1])
    a, b = one.compute(), many.compute()
    assert set(a) == {"mean", "std", "values"}
    assert torch.allclose(a["values"], ref, rtol=0, atol=1e-12)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-12)
    assert a["mean"].item() == pytest.approx(ref.mean().item(), abs=1e-12)
    assert a["std"].item() == pytest.approx(float(np.std(ref.numpy(), ddof=1)), abs=1e-12)
    assert isinstance(many.scores, list) and len(many.scores) == 8


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")
def test_class_attributes_single_image_std_and_reset(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    fake, real = batch
    for cls, name in [(q.SSIMMetric, "ssim"), (q.FSIMMetric, "fsim"), (q.GMSDMetric, "gmsd"), (q.NRMSEMetric, "nrmse")]:
        assert cls.higher_is_better is q.HIGHER_IS_BETTER[name]
        assert cls.is_differentiable is False and cls.full_state_update is False
    m = q.GMSDMetric()
    with pytest.raises(ValueError, match="before any update"):
        m.compute()
    m.update(fake[0], real[0])
    out = m.compute()
    assert out["values"].shape == (1,) and out["std"].item() == 0.0
    m.reset()
    with pytest.raises(ValueError, match="before any update"):
        m.compute()
    with pytest.raises(ValueError, match="normalization"):
        q.NRMSEMetric(normalization="l2")


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
def _u8(*shape: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _f(*shape: int) -> torch.Tensor:
    return torch.rand(shape, dtype=torch.float32, generator=torch.Generator().manual_seed(0))


def _with(x: torch.Tensor, value: float) -> torch.Tensor:
    y = x.clone()
    y[0, 0, 0, 0] = value
    return y


BAD = {
    "shape mismatch": (_u8(2, 3, 32, 32), _u8(2, 3, 32, 30), "shape mismatch"),
    "nan": (_with(_f(2, 3, 32, 32), float("nan")), _f(2, 3, 32, 32), "NaN or inf"),
    "inf": (_f(2, 3, 32, 32), _with(_f(2, 3, 32, 32), float("inf")), "NaN or inf"),
    "float above 1": (_with(_f(2, 3, 32, 32), 1.5), _f(2, 3, 32, 32), r"must lie in \[0, 1\]"),
    "float below 0": (_f(2, 3, 32, 32), _with(_f(2, 3, 32, 32), -0.1), r"must lie in \[0, 1\]"),
    "float 0-255": (_u8(2, 3, 32, 32).float(), _u8(2, 3, 32, 32).float(), r"must lie in \[0, 1\]"),
    "mixed dtypes": (_u8(2, 3, 32, 32), _f(2, 3, 32, 32), "mixed dtypes"),
    "2 dims": (_u8(32, 32), _u8(32, 32), "dims"),
    "5 dims": (_u8(1, 2, 3, 32, 32), _u8(1, 2, 3, 32, 32), "dims"),
    "1 channel": (_u8(2, 1, 32, 32), _u8(2, 1, 32, 32), "3 \\(RGB\\) channels"),
    "channels last": (_u8(2, 32, 32, 3), _u8(2, 32, 32, 3), "channels-last"),
    "mismatched counts": (_u8(3, 3, 32, 32), _u8(2, 3, 32, 32), "mismatched counts"),
    "empty batch": (_u8(0, 3, 32, 32), _u8(0, 3, 32, 32), "empty batch"),
    "int64 dtype": (_u8(2, 3, 32, 32).long(), _u8(2, 3, 32, 32).long(), "unsupported dtype"),
    "not an array": ([[0]], [[0]], "expected a torch.Tensor or numpy.ndarray"),
    "numpy int16": (np.zeros((2, 3, 32, 32), np.int16), np.zeros((2, 3, 32, 32), np.int16), "unsupported dtype"),
}


@pytest.mark.parametrize("fname", ["ssim", "fsim", "gmsd", "nrmse"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_value_error(case: str, fname: str) -> None:
    fake, real, msg = BAD[case]
    with pytest.raises(ValueError, match=msg) as info:
        FUNCS[fname](fake, real)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("fname", "size"), [("ssim", 10), ("fsim", 7), ("gmsd", 5)])
def test_smaller_than_window_raises(fname: str, size: int) -> None:
    with pytest.raises(ValueError, match="smaller than the"):
        FUNCS[fname](_u8(1, 3, size, 40), _u8(1, 3, size, 40))
    FUNCS[fname](_u8(1, 3, size + 1, 40), _u8(1, 3, size + 1, 40))  # smallest accepted size works


def test_nrmse_unknown_normalization() -> None:
    with pytest.raises(ValueError, match="unknown normalization"):
        q.nrmse(_u8(1, 3, 8, 8), _u8(1, 3, 8, 8), normalization="l2")


def test_class_update_validates() -> None:
    with pytest.raises(ValueError, match="mixed dtypes"):
        q.SSIMMetric().update(_u8(1, 3, 16, 16), _f(1, 3, 16, 16))
