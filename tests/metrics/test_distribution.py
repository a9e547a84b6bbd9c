"""Distribution metrics (FID, KID, precision/recall, density/coverage) and their feature extractors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gbench.core.errors import DataError
from gbench.metrics.distribution import (CI_METHOD, DistributionAccumulator, density_coverage, distribution_metrics,
                                         fid, kid, precision_recall)
from gbench.metrics.features import (INCEPTION_FILE, MissingWeightsError, RandomConvExtractor, build_extractor,
                                     file_sha256, inception_cache_path)

ATOL_F64 = 1e-8


def _exact_gaussian(rng: np.random.Generator, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n samples whose sample mean and unbiased sample covariance are exactly ``mean`` and ``cov``."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample cov -> identity
    return z @ np.linalg.cholesky(cov).T + mean


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T


def test_fid_of_a_set_against_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(40, 8))
    assert abs(fid(x, x)) < ATOL_F64
    y = np.random.default_rng(1).normal(size=(40, 8))
    assert fid(y, x) > 0.1  # and not zero for different sets


def test_fid_of_gaussian_feature_sets_matches_the_closed_form() -> None:
    rng = np.random.default_rng(2)
    d = 5
    m1, m2 = rng.normal(size=d), rng.normal(size=d) + 1.0
    a1, a2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a1 @ a1.T + 0.1 * np.eye(d), a2 @ a2.T + 0.1 * np.eye(d)
    x, y = _exact_gaussian(rng, 200, m1, s1), _exact_gaussian(rng, 150, m2, s2)
    r1 = _sqrtm_psd(s1)
    closed = float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * _sqrtm_psd(r1 @ s2 @ r1)))
    assert fid(y, x) == pytest.approx(closed, rel=1e-9)
    # diagonal covariances: |m1 - m2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    x = _exact_gaussian(rng, 100, np.zeros(3), np.diag(v1))
    y = _exact_gaussian(rng, 120, np.full(3, 2.0), np.diag(v2))
    assert fid(y, x) == pytest.approx(12.0 + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum(), rel=1e-9)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_full_set_and_subsets() -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 4)), rng.normal(size=(7, 4)) + 0.3
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    yy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    xy = sum(k(x[i], y[j]) for i in range(9) for j in range(7)) / (9 * 7)
    assert kid(y, x) == pytest.approx((xx + yy - 2 * xy, 0.0), rel=1e-10)
    # equal sizes: the full-set value equals torchmetrics' KID with one subset of everything
    y8 = rng.normal(size=(9, 4))
    tm = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=1, subset_size=9)
    tm.inception.num_features = 4
    tm.update(torch.as_tensor(x), real=True)
    tm.update(torch.as_tensor(y8), real=False)
    assert kid(y8, x)[0] == pytest.approx(float(tm.compute()[0]), rel=1e-9)
    # subsets: seeded, the caller's RNG untouched
    state = torch.random.get_rng_state()
    a, b = kid(y, x, subsets=20, subset_size=5, seed=0), kid(y, x, subsets=20, subset_size=5, seed=0)
    assert a == b and a[1] > 0
    assert torch.equal(state, torch.random.get_rng_state())


def _two_clusters(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Real: clusters A (around 0) and B (around 100); synthetic: A exactly, plus C (around -100)."""
    a = rng.normal(size=(10, 3))
    b = rng.normal(size=(10, 3)) + 100.0
    c = rng.normal(size=(10, 3)) - 100.0
    return np.concatenate([a, b]), np.concatenate([a, c])


def test_precision_recall_density_coverage_on_known_overlap() -> None:
    rng = np.random.default_rng(4)
    real, fake = _two_clusters(rng)
    # half of each set lies in the other's manifold
    assert precision_recall(fake, real, k=3) == pytest.approx((0.5, 0.5))
    # copies of real points: each lies strictly inside exactly k real balls (itself + its k-1 nearest)
    # over all copies: k * 10 incidences / (k * 20) = 0.5; half of the real balls hold a copy
    assert density_coverage(fake, real, k=5) == pytest.approx((0.5, 0.5))
    assert precision_recall(real, real) == (1.0, 1.0) and density_coverage(real, real) == (1.0, 1.0)
    # disjoint sets: nothing in anything
    far = real + 1000.0
    assert precision_recall(far, real) == (0.0, 0.0) and density_coverage(far, real) == (0.0, 0.0)
    # mode collapse: every synthetic sample at one real point -> high precision, low recall and coverage
    collapsed = np.repeat(real[:1], 20, axis=0) + rng.normal(scale=1e-6, size=(20, 3))
    p, r = precision_recall(collapsed, real)
    d, c = density_coverage(collapsed, real)
    assert p == 1.0 and r <= 0.2 and c <= 0.3
    with pytest.raises(ValueError, match="at least 4 samples"):
        precision_recall(fake, real[:3])


def test_precision_recall_against_torch_fidelity() -> None:
    prc = pytest.importorskip("torch_fidelity.metric_prc")
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) * 1.3 + 0.4
    # torch-fidelity's convention: features_1 synthetic, features_2 real
    ref = prc.calculate_precision_recall_full(torch.as_tensor(fake), torch.as_tensor(real), neighborhood=3)
    assert precision_recall(fake, real, k=3) == pytest.approx(ref, abs=1e-6)  # its mean is float32; 1/30 steps


def test_density_coverage_against_the_papers_formulas() -> None:
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(25, 4)), rng.normal(size=(18, 4)) + 0.5
    k = 5
    dist = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))  # noqa: E731
    radius = np.sort(dist(real, real), axis=1)[:, k]
    inside = dist(fake, real) < radius[None]
    assert density_coverage(fake, real, k) == pytest.approx((inside.sum() / (k * 18), inside.any(0).mean()))


def test_distribution_metrics_and_accumulator_record_their_protocol() -> None:
    rng = np.random.default_rng(7)
    imgs_r = rng.integers(0, 256, (8, 24, 24, 3), dtype=np.uint8)
    imgs_f = np.clip(imgs_r.astype(int) + 40, 0, 255).astype(np.uint8)
    ext = RandomConvExtractor(seed=0, device="cpu")
    acc = DistributionAccumulator(ext, kid_subset_size=4, kid_subsets=5)
    acc.update(imgs_r[:5], real=True)
    acc.update(imgs_r[5:], real=True)
    acc.update(imgs_f, real=False)
    res = acc.compute()
    assert set(res.values) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    assert res.n_real == res.n_fake == 8
    c = res.conventions
    assert c["extractor"] == "random-conv" and c["n_real"] == 8 and c["ci_method"].startswith("95% basic bootstrap")
    assert set(c["intervals"]) == {"fid", "kid", "precision", "recall", "density", "coverage"} and res.bootstrap is not None  # issue 24
    assert "not comparable with published FID" in c["note"] and c["resize"].startswith("bilinear")
    real_f, fake_f = acc.features()
    assert res.values == distribution_metrics(fake_f, real_f, kid_subsets=5, kid_subset_size=4)
    with pytest.raises(ValueError, match="unknown distribution metric"):
        distribution_metrics(fake_f, real_f, metrics=["is"])


def test_random_conv_extractor_is_seeded_and_batch_independent() -> None:
    imgs = np.random.default_rng(8).integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    a = RandomConvExtractor(seed=0, device="cpu")
    f = a.features(imgs)
    assert f.shape == (6, 112) and f.dtype == np.float64
    np.testing.assert_allclose(a.features(imgs, batch_size=1), f, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(RandomConvExtractor(seed=0, device="cpu").features(imgs), f)
    assert not np.allclose(RandomConvExtractor(seed=1, device="cpu").features(imgs), f)
    with pytest.raises(ValueError, match="uint8"):
        a.features(imgs.astype(np.float32))


def test_inception_missing_weights_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty cache
    with pytest.raises(MissingWeightsError) as err:
        build_extractor("inception")
    msg = str(err.value)
    assert "\n" not in msg and INCEPTION_FILE in msg and str(inception_cache_path()) in msg
    assert "--weights" in msg and "downloads nothing" in msg
    with pytest.raises(MissingWeightsError, match="none.pth"):
        build_extractor("inception", tmp_path / "none.pth")
    with pytest.raises(ValueError, match="unknown feature extractor 'clip'"):
        build_extractor("clip")
    with pytest.raises(ValueError, match="no weights file"):
        build_extractor("random-conv", tmp_path / "x.pth")


def test_inception_extractor_shape_with_a_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch-fidelity's network with random weights saved to a file: the loading path and the shapes."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    cls = fe.FeatureExtractorInceptionV3
    with monkeypatch.context() as m:  # build it once without any weights to get a full state dict
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(cls, "load_state_dict", lambda self, *a, **k: None)
        torch.manual_seed(0)
        net = cls("inception-v3-compat", ["2048"])
    path = tmp_path / INCEPTION_FILE
    torch.save(net.state_dict(), path)
    ext = build_extractor("inception", path, device="cpu")
    feats = ext.features(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    info = ext.info()
    assert info["weights_sha256"] == file_sha256(path) and info["comparable_with_published_fid"]
    assert "299x299" in info["resize"]
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "bad.pth")
    with pytest.raises(DataError, match="do not fit"):
        build_extractor("inception", tmp_path / "bad.pth")


def test_timm_extractor_from_a_local_file(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False).eval()  # a tiny model, with its classifier
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    ext = build_extractor("timm:test_resnet", path, device="cpu")
    imgs = np.random.default_rng(1).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    feats = ext.features(imgs)
    assert feats.shape == (3, model.num_features) and np.isfinite(feats).all()
    # the features are the model's pooled pre-logits (the classifier was dropped, nothing else)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=ext.size, mode=ext.interpolation, antialias=True).clamp(0, 1)
    with torch.no_grad():
        ref = model.forward_head(model.forward_features((x - ext.mean) / ext.std), pre_logits=True)
    np.testing.assert_allclose(feats, ref.double().numpy(), rtol=1e-4, atol=1e-5)
    info = ext.info()
    assert info["extractor"] == "timm:test_resnet" and info["weights_sha256"] == file_sha256(path)
    assert not info["comparable_with_published_fid"]
    with pytest.raises(ValueError, match="needs --weights"):
        build_extractor("timm:test_resnet")
    with pytest.raises(MissingWeightsError, match="missing.pth"):
        build_extractor("timm:test_resnet", tmp_path / "missing.pth")
    with pytest.raises(DataError, match="do not fit timm:test_vit"):
        build_extractor("timm:test_vit", path)
    with pytest.raises(ValueError, match="unknown timm model 'test_resnett'"):
        build_extractor("timm:test_resnett", path)
