"""Tests for gbench.metrics.quality against scikit-image and piq, plus properties and input validation."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import piq
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import normalized_root_mse as sk_nrmse
from skimage.metrics import structural_similarity as sk_ssim

from gbench.core.metric_specs import metric_names, metric_spec
from gbench.metrics import quality as q

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CPM15_IMAGES = SHARED_DATA / "cpm15" / "test" / "Images"
BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quality.py"

TOL_SKIMAGE = 1e-8  # spec: 1e-4, measured ~1e-15
TOL_PIQ = 1e-8  # spec: 1e-5 (float64 piq); measured ~1e-16
TOL_FAST = 1e-5  # precision="fast" (float32) vs exact, absolute (SSIM, FSIM, GMSD); measured ~2e-7
TOL_FAST_NRMSE = 1e-6  # relative; measured ~1e-8
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
    ours = q.ssim(_nchw(fakes), _nchw(reals), precision="exact")
    ref = np.array([_sk_ssim(r, f, 255) for f, r in zip(fakes, reals)])
    assert ours.dtype == torch.float64 and ours.shape == (len(fakes),)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL_SKIMAGE)
    assert np.ptp(ref) > 0.1  # the cases really differ


def test_ssim_matches_skimage_float(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    f32 = [(f / 255.0).astype(np.float32) for f in fakes]
    r32 = [(r / 255.0).astype(np.float32) for r in reals]
    ours = q.ssim(_nchw(f32), _nchw(r32), precision="exact")
    # we compute in float64, so compare with scikit-image on the same values in float64
    ref = np.array([_sk_ssim(r.astype(np.float64), f.astype(np.float64), 1.0) for f, r in zip(f32, r32)])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL_SKIMAGE)


def test_ssim_luminance_matches_skimage_on_y(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    ours = q.ssim(_nchw(fakes), _nchw(reals), luminance=True, precision="exact")
    ref = np.array([_sk_ssim(_y(r), _y(f), 255, channel_axis=None) for f, r in zip(fakes, reals)])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=TOL_SKIMAGE)
    assert not np.allclose(ours.numpy(), q.ssim(_nchw(fakes), _nchw(reals), precision="exact").numpy(), atol=1e-4)


@pytest.mark.parametrize("size", [(11, 11), (12, 17), (23, 11)])
def test_ssim_borders_match_skimage_on_noise(size: tuple[int, int]) -> None:
    """Pure noise at (near-)minimum size: any boundary-handling difference would show here."""
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    fake = np.clip(real + rng.normal(0, 40, real.shape), 0, 255).astype(np.uint8)
    ours = float(q.ssim(_nchw([fake]), _nchw([real]), precision="exact")[0])
    assert abs(ours - _sk_ssim(real, fake, 255)) < TOL_SKIMAGE


@pytest.mark.parametrize("normalization", NORMS)
def test_nrmse_matches_skimage(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]], normalization: str) -> None:
    fakes, reals = crop_pairs
    ours = q.nrmse(_nchw(fakes), _nchw(reals), normalization=normalization, precision="exact")
    ref = np.array([sk_nrmse(r, f, normalization=normalization) for f, r in zip(fakes, reals)])
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_nrmse_reference_is_real() -> None:
    """NRMSE is not symmetric; the denominator comes from ``real`` (skimage's image_true)."""
    rng = np.random.default_rng(2)
    real = rng.integers(100, 200, (3, 16, 16), dtype=np.uint8)
    fake = (real // 2).astype(np.uint8)
    got = float(q.nrmse(fake, real, precision="exact")[0])
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
    ours = q.fsim(f, r, chromatic=chromatic, precision="exact")
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
    ours = q.fsim(f, r, precision="exact")
    ref = piq.fsim(f.double(), r.double(), data_range=255, reduction="none")
    assert (ours - ref).abs().max().item() < TOL_PIQ
    # pooling really happened: same as FSIM of the 2x2-average-pooled images (192x200, no further pooling)
    pooled = q.fsim(
        torch.nn.functional.avg_pool2d(f.double() / 255, 2),
        torch.nn.functional.avg_pool2d(r.double() / 255, 2),
        precision="exact",
    )
    assert (ours - pooled).abs().max().item() < 1e-12


def test_gmsd_matches_piq(crop_pairs: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    fakes, reals = crop_pairs
    f, r = _nchw(fakes), _nchw(reals)
    ours = q.gmsd(f, r, precision="exact")
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
    np.testing.assert_allclose(q.ssim(f, r, precision="exact").numpy(), ref_ssim, atol=TOL_SKIMAGE, rtol=0)
    np.testing.assert_allclose(q.ssim(f, r).numpy(), ref_ssim, atol=TOL_FAST, rtol=0)
    for norm in NORMS:
        ref = np.array([sk_nrmse(b, a, normalization=norm) for a, b in zip(fakes, reals)])
        np.testing.assert_allclose(q.nrmse(f, r, normalization=norm, precision="exact").numpy(), ref, rtol=1e-12)
        np.testing.assert_allclose(q.nrmse(f, r, normalization=norm).numpy(), ref, rtol=TOL_FAST_NRMSE)
    for chromatic in (True, False):
        ref_f = piq.fsim(f.double(), r.double(), data_range=255, chromatic=chromatic, reduction="none")
        assert (q.fsim(f, r, chromatic=chromatic, precision="exact") - ref_f).abs().max().item() < TOL_PIQ
        assert (q.fsim(f, r, chromatic=chromatic) - ref_f).abs().max().item() < TOL_FAST
    ref_g = piq.gmsd(f.double(), r.double(), data_range=255, reduction="none")
    assert (q.gmsd(f, r, precision="exact") - ref_g).abs().max().item() < TOL_PIQ
    assert (q.gmsd(f, r) - ref_g).abs().max().item() < TOL_FAST


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


_SPECS = {
    "ssim": (q.ssim, {}),
    "ssim_y": (q.ssim, {"luminance": True}),
    "fsim": (q.fsim, {}),
    "fsim_grey": (q.fsim, {"chromatic": False}),
    "gmsd": (q.gmsd, {}),
    "nrmse": (q.nrmse, {}),
    "nrmse_minmax": (q.nrmse, {"normalization": "min-max"}),
    "nrmse_mean": (q.nrmse, {"normalization": "MEAN"}),
}


def _fn(name: str, precision: str | None = None):  # noqa: ANN202 - a metric call with fixed options
    fn, kwargs = _SPECS[name]
    extra = {} if precision is None else {"precision": precision}
    return lambda f, r: fn(f, r, **kwargs, **extra)


FUNCS = {name: _fn(name) for name in _SPECS}  # default precision ("fast")
PRECISIONS = ("exact", "fast")
TOL_PROP = {"exact": 1e-12, "fast": 1e-6}  # float64 vs float32 rounding of properties that hold exactly


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", list(FUNCS))
def test_identity(batch: tuple[torch.Tensor, torch.Tensor], name: str, precision: str) -> None:
    _, real = batch
    got = _fn(name, precision)(real, real.clone())
    want = 1.0 if name.startswith(("ssim", "fsim")) else 0.0
    assert got.dtype == torch.float64
    assert torch.allclose(got, torch.full_like(got, want), rtol=0, atol=TOL_PROP[precision])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", ["ssim", "ssim_y", "fsim", "fsim_grey", "gmsd"])
def test_symmetry(batch: tuple[torch.Tensor, torch.Tensor], name: str, precision: str) -> None:
    fake, real = batch
    fn = _fn(name, precision)
    a, b = fn(fake, real), fn(real, fake)
    assert torch.allclose(a, b, rtol=0, atol=TOL_PROP[precision])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", list(FUNCS))
def test_uint8_equals_float_over_255(batch: tuple[torch.Tensor, torch.Tensor], name: str, precision: str) -> None:
    """uint8 uses data range 255, float uses 1.0: the metrics are scale-invariant under that convention."""
    fake, real = batch
    fn = _fn(name, precision)
    a = fn(fake, real)
    b = fn(fake.double() / 255, real.double() / 255)
    c = fn(fake.float() / 255, real.float() / 255)
    tol = TOL_PROP[precision] if precision == "exact" else TOL_FAST
    assert torch.allclose(a, b, rtol=0, atol=tol)
    assert torch.allclose(a, c, rtol=0, atol=1e-5)  # float32 rounding of x / 255 only


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", list(FUNCS))
def test_batch_equals_separate_calls(batch: tuple[torch.Tensor, torch.Tensor], name: str, precision: str) -> None:
    """Each image's value does not depend on the other images of the call (fast path: one image per CPU chunk)."""
    fake, real = batch
    fn = _fn(name, precision)
    whole = fn(fake, real)
    single = torch.cat([fn(fake[i], real[i]) for i in range(fake.shape[0])])  # (3,H,W) promoted
    assert whole.shape == (8,)
    assert torch.allclose(whole, single, rtol=0, atol=1e-12)
    assert whole.std() > 0  # different pairs give different values


@pytest.mark.parametrize("name", list(FUNCS))
def test_chunking_does_not_change_results(
    batch: tuple[torch.Tensor, torch.Tensor], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, real = batch
    exact, fast = _fn(name, "exact"), _fn(name, "fast")
    whole, whole_fast = exact(fake, real), fast(fake, real)
    with monkeypatch.context() as mp:
        mp.setattr(q, "_CHUNK_ELEMS", 1)  # exact path: one image per chunk
        assert torch.allclose(whole, exact(fake, real), rtol=0, atol=1e-12)
    # fast path: the whole batch in one chunk (the batched code the CUDA path runs) agrees with one image at a time
    monkeypatch.setattr(q, "_FAST_CHUNK_ELEMS_CPU", 1 << 40)
    batched = fast(fake, real)
    assert torch.allclose(whole_fast, batched, rtol=0, atol=1e-6)
    assert torch.allclose(whole, batched, rtol=1e-6 if name.startswith("nrmse") else 0, atol=TOL_FAST)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_numpy_input_equals_tensor(batch: tuple[torch.Tensor, torch.Tensor], precision: str) -> None:
    fake, real = batch
    cl = torch.channels_last
    for name in FUNCS:
        fn = _fn(name, precision)
        want = fn(fake, real)
        assert torch.equal(fn(fake.numpy(), real.numpy()), want), name
        # any memory layout (e.g. HWC images permuted to CHW) gives the same values, up to summation order
        other = fn(fake.contiguous(memory_format=cl), real.contiguous(memory_format=cl))
        assert torch.allclose(other, want, rtol=0, atol=TOL_PROP[precision]), name


def test_quality_metrics_convenience(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    fake, real = batch
    out = q.quality_metrics(fake, real)
    assert list(out) == ["ssim", "fsim", "gmsd", "nrmse"]
    for name, values in out.items():
        assert torch.equal(values, FUNCS[name](fake, real))
    exact = q.quality_metrics(fake, real, precision="exact")
    for name, values in exact.items():
        assert torch.equal(values, _fn(name, "exact")(fake, real))
        assert not torch.equal(values, out[name]) or name == "nrmse"  # really another path
    assert list(q.quality_metrics(fake, real, metrics=("nrmse",))) == ["nrmse"]
    with pytest.raises(ValueError, match="unknown quality metric"):
        q.quality_metrics(fake, real, metrics=("ssim", "psnr"))
    with pytest.raises(ValueError, match="unknown precision"):
        q.quality_metrics(fake, real, precision="double")


def test_conventions_and_higher_is_better() -> None:
    assert set(q.CONVENTIONS) == set(metric_names("quality")) == {"ssim", "fsim", "gmsd", "nrmse"}
    for name, conv in q.CONVENTIONS.items():
        assert conv["higher_is_better"] is metric_spec(name).higher_is_better is (name in ("ssim", "fsim"))
        assert metric_spec(name).protocol() is conv
        assert "downsampling" in conv and "dtype" in conv
    json.dumps(q.CONVENTIONS)  # recordable with each result
    s = q.CONVENTIONS["ssim"]
    assert (s["win_size"], s["sigma"], s["K1"], s["K2"], s["crop"]) == (11, 1.5, 0.01, 0.03, 5)


def test_conventions_record_precision() -> None:
    """Every recorded convention says which path made the numbers; the protocol is the same for both."""
    assert q.DEFAULT_PRECISION == "fast" and q.PRECISIONS == ("fast", "exact")
    path_keys = {"precision", "dtype", "precision_notes", "agreement"}
    for name, conv in q.CONVENTIONS.items():
        assert (conv["precision"], conv["dtype"]) == ("fast", "float32")
        assert "1e-" in conv["agreement"]
        exact = q.conventions(name, "exact")
        assert (exact["precision"], exact["dtype"]) == ("exact", "float64") and "agreement" not in exact
        assert {k: v for k, v in conv.items() if k not in path_keys} == {
            k: v for k, v in exact.items() if k not in path_keys
        }
        assert q.conventions(name) == conv
        json.dumps(exact)
    with pytest.raises(ValueError, match="unknown precision"):
        q.conventions("ssim", "half")
    with pytest.raises(ValueError, match="unknown quality metric"):
        q.conventions("psnr")


# ---------------------------------------------------------------------------
# precision="fast" (float32, default) against precision="exact" (float64)
# ---------------------------------------------------------------------------
def _benchmark_pairs(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark's own structured pairs (benchmarks/bench_quality.py make_pairs), as uint8 NCHW."""
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH_SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fakes, reals = bench.make_pairs(n, size, seed)
    return _nchw(list(fakes)), _nchw(list(reals))


def _histology_like(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Near-white background with stained blobs and independent noise: float32's hardest realistic case for SSIM."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blob = (((yy - size // 3) ** 2 + (xx - size // 2) ** 2) < (size // 4) ** 2).float()
    tissue = torch.stack([240 - 90 * blob, 240 - 150 * blob, 240 - 60 * blob])[None].repeat(n, 1, 1, 1)

    def noisy() -> torch.Tensor:
        return (tissue + torch.randn(tissue.shape, generator=g) * 2).clamp(0, 255).round().to(torch.uint8)

    return noisy(), noisy()


@pytest.fixture(scope="module")
def precision_sets() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    fb, rb = _benchmark_pairs(6, 256)  # the benchmark's setting (--size 256), batched
    fo, ro = _benchmark_pairs(4, 161, seed=1)
    g = torch.Generator().manual_seed(5)
    noise_r = torch.randint(0, 256, (3, 3, 61, 77), generator=g, dtype=torch.uint8)
    noise_f = torch.randint(0, 256, (3, 3, 61, 77), generator=g, dtype=torch.uint8)
    close_f = (noise_r.float() + torch.randn(noise_r.shape, generator=g) * 20).clamp(0, 255).round().to(torch.uint8)
    hf, hr = _histology_like(3, 96, seed=3)
    return {
        "benchmark 256": (fb, rb),
        "benchmark odd 97x161": (fo[:, :, :97].contiguous(), ro[:, :, :97].contiguous()),
        "random independent": (noise_f, noise_r),
        "random correlated": (close_f, noise_r),
        "benchmark float32": (fb[:3].float() / 255, rb[:3].float() / 255),
        "histology-like": (hf, hr),
    }


@pytest.mark.parametrize("name", list(_SPECS))
def test_fast_matches_exact(precision_sets: dict[str, tuple[torch.Tensor, torch.Tensor]], name: str) -> None:
    """Spec: fast within 1e-5 absolute of exact (SSIM, FSIM, GMSD), 1e-6 relative (NRMSE); measured ~2e-7 / ~1e-8."""
    fast, exact = _fn(name, "fast"), _fn(name, "exact")
    for label, (f, r) in precision_sets.items():
        a, b = fast(f, r), exact(f, r)
        assert a.dtype == torch.float64 and a.shape == b.shape == (f.shape[0],), label
        assert torch.isfinite(b).all(), label
        if name.startswith("nrmse"):
            rel = ((a - b).abs() / b.abs().clamp_min(1e-300)).max().item()  # identical pairs: 0 == 0
            assert rel < TOL_FAST_NRMSE, (label, rel)
        else:
            assert (a - b).abs().max().item() < TOL_FAST, (label, (a - b).abs().max().item())
    f, r = precision_sets["benchmark 256"]
    assert exact(f, r).std() > 0.01  # the pairs really differ


@pytest.mark.parametrize(("h", "w"), [(64, 64), (37, 50)])
def test_fsim_cpu_kernels_match_torch_path(h: int, w: int) -> None:
    """The CPU's fused numba phase congruency equals the torch path (CUDA's), run here on the CPU, to float32
    rounding, per image: structured luma (with flat patches, where the noise threshold bites) and noise."""
    g = torch.Generator().manual_seed(h)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    disc = (((yy - h // 2) ** 2 + (xx - w // 3) ** 2) < (min(h, w) // 4) ** 2).float()
    lum_x = torch.stack([200 - 120 * disc, torch.rand(h, w, generator=g) * 255, torch.full((h, w), 128.0)])
    lum_y = lum_x + torch.randn(lum_x.shape, generator=g) * torch.tensor([3.0, 40.0, 0.0]).view(3, 1, 1)
    kernels = q._fsim_cpu_kernels()
    assert kernels is not None  # numba is a dependency: the CPU runs the kernels
    ours = q._phase_congruency_cpu(lum_x, lum_y, kernels)
    ref = q._phase_congruency_block(lum_x, lum_y)
    assert ours.shape == ref.shape == (3, h, w, 2) and ours.dtype == torch.float32
    assert (ours - ref).abs().max().item() < 1e-5
    assert ours[:2].std() > 0.05  # real structure, not all-zero maps
    # one pair at a time: a pair's map does not depend on the rest of the batch
    assert torch.equal(q._phase_congruency_cpu(lum_x[1:2], lum_y[1:2], kernels)[0], ours[1])


def test_fsim_without_numba_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where numba cannot load, FSIM warns and runs the torch path per pair: same values to float32 rounding."""
    fb, rb = _benchmark_pairs(2, 64)
    with_kernels = q.fsim(fb, rb)
    q._fsim_cpu_kernels.cache_clear()
    # the import then fails as it would without numba
    monkeypatch.setitem(sys.modules, "gbench.metrics._fsim_cpu", None)
    monkeypatch.delattr(sys.modules["gbench.metrics"], "_fsim_cpu", raising=False)
    try:
        with pytest.warns(UserWarning, match="numba kernels unavailable"):
            without = q.fsim(fb, rb)
    finally:
        q._fsim_cpu_kernels.cache_clear()
    assert (with_kernels - without).abs().max().item() < 1e-6
    assert with_kernels.max().item() < 0.99  # degraded pairs: a real comparison, not two perfect scores


def test_fast_fsim_downsampling_path(ihc: np.ndarray) -> None:
    """min side 384: both paths pool by 2 before phase congruency."""
    real = ihc[:384, :400]
    fake = _degrade(real, np.random.default_rng(3))[1]
    f, r = _nchw([fake]), _nchw([real])
    for chromatic in (True, False):
        a = q.fsim(f, r, chromatic=chromatic)
        b = q.fsim(f, r, chromatic=chromatic, precision="exact")
        assert (a - b).abs().max().item() < TOL_FAST


def test_fast_path_keeps_float32_on_cuda_and_restores_settings() -> None:
    """TF32 (10-bit mantissa) would break the 1e-5 agreement: disabled while the fast path runs, then restored."""

    class FakeCuda:
        type = "cuda"

    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    try:
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        with q._full_float32(FakeCuda()):  # type: ignore[arg-type]
            assert torch.get_float32_matmul_precision() == "highest" and not torch.backends.cudnn.allow_tf32
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(_SPECS))
def test_fast_on_cuda_matches_exact(precision_sets: dict[str, tuple[torch.Tensor, torch.Tensor]], name: str) -> None:
    fast, exact = _fn(name, "fast"), _fn(name, "exact")
    for label, (f, r) in precision_sets.items():
        a = fast(f.cuda(), r.cuda())
        assert a.device.type == "cuda", label
        b = exact(f, r)
        diff = (a.cpu() - b).abs()
        if name.startswith("nrmse"):
            diff = diff / b.abs().clamp_min(1e-300)
        assert diff.max().item() < (TOL_FAST_NRMSE if name.startswith("nrmse") else TOL_FAST), label


@pytest.mark.parametrize("name", ["ssim", "fsim", "gmsd", "nrmse"])
def test_unknown_precision_raises(name: str) -> None:
    with pytest.raises(ValueError, match="unknown precision 'float64'; expected one of fast, exact"):
        getattr(q, name)(_u8(1, 3, 16, 16), _u8(1, 3, 16, 16), precision="float64")


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

