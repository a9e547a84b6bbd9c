"""Evaluation of synthetic multi-focus stacks against real ones (MI-GAN leaves this as future work).

Three families, each comparing the distribution of real stacks with that of synthetic ones
(unpaired: the sets may differ in size):

Per-plane distribution distances (FID, KID)
    Features of every plane ``I-5 .. I+5`` from a fixed extractor; FID and KID are computed
    plane by plane (real plane ``k`` vs synthetic plane ``k``) and over all planes pooled.

    - ``random-conv`` (default, offline): a fixed, randomly initialised 3-layer conv net
      (widths 16, 32, 64, kernel 3, stride 2, LeakyReLU 0.2, He-normal weights drawn from
      ``torch.Generator().manual_seed(seed)``), input resized to 64x64 and scaled to [-1, 1],
      features = the spatial mean of each layer's activations (112 dimensions: few enough for
      per-plane covariances of small cell sets, and ``sqrtm`` stays cheap). It needs no
      download and is deterministic, but its numbers are **not comparable with published FID /
      KID** (which use Inception-v3 pool3 features); every record says so in its ``note``.
    - ``inception-v3``: torchvision's Inception-v3 with weights from a file the user supplies
      (``inception_weights=PATH``; nothing is downloaded), 2048-d pool features of images
      resized to 299x299 (bilinear) and ImageNet-normalised. torchvision's ImageNet weights
      are not the TF-Inception port used by the reference FID code (pytorch-fid,
      torch-fidelity), so values are close to but not identical with published FID; the
      note says this as well.

    Any extractor of :mod:`gbench.metrics.features` (``inception``: torch-fidelity's FID network;
    ``timm:NAME``) works here too (``--extractor``, its file in ``--inception-weights``).

    FID and KID are the code of ``gbench quality`` (:mod:`gbench.metrics.distribution`):
    FID (Heusel et al. 2017) through torchmetrics' ``FrechetInceptionDistance`` (unbiased
    covariances, float64, the trace of the square root from the eigenvalues of ``S_r S_f``);
    KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
    ``k(x, y) = (x.y / d + 1)^3``, every sample once when both sets fit in ``kid_subset_size``,
    else torchmetrics' ``KernelInceptionDistance`` over ``kid_subsets`` subsets (seeded by ``seed``).

Focus curve
    Sharpness of each plane: the variance of the Laplacian (Pech-Pacheco et al. 2000) of the
    luma ``Y = 0.299 R + 0.587 G + 0.114 B`` in [0, 1], 4-neighbour kernel, over the pixels
    whose 3x3 neighbourhood lies inside the image. Per stack a curve over the planes; compared
    via the mean curves normalised to peak 1 (``focus_curve_l1``: mean absolute difference per
    plane), the plane of the mean curve's peak (``focus_peak_real`` / ``focus_peak_fake``,
    as offsets -5..+5) and the share of stacks peaking at I0 (``focus_peak_at_i0_fake``).

Inter-plane consistency
    SSIM between successive planes (``I-5/I-4`` .. ``I+4/I+5``) of each stack
    (:func:`gbench.metrics.quality.ssim`: Wang et al. settings, 11x11 Gaussian window, RGB mean).
    Real and synthetic distributions are compared per plane pair and pooled by their means
    and the 1-Wasserstein distance (``scipy.stats.wasserstein_distance``) between them.

References:
    M. Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium. NeurIPS 2017. M. Binkowski et al. Demystifying MMD GANs. ICLR 2018.
    J. L. Pech-Pacheco et al. Diatom autofocusing in brightfield microscopy. ICPR 2000.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from scipy import linalg
from scipy.stats import wasserstein_distance
from torchvision.models import inception_v3

from gbench.core.errors import DataError
from gbench.data.multifocus import plane_labels
from gbench.metrics.distribution import fid
from gbench.metrics.distribution import kid as distribution_kid
from gbench.metrics.features import RandomConvExtractor, build_extractor, extract
from gbench.metrics.focus import focus_curve, mean_curve_l1, variance_of_laplacian
from gbench.metrics.quality import ssim

__all__ = [
    "NOT_COMPARABLE", "CONVENTIONS", "fid_from_features", "kid_from_features", "gaussian_stats", "frechet_distance",
    "RandomConvFeatures", "InceptionFeatures", "get_extractor", "focus_curve", "variance_of_laplacian",
    "interplane_ssim", "plane_features", "evaluate_multifocus", "MultifocusResult",
]

#: The note attached to every FID/KID value from the offline extractor.
NOT_COMPARABLE = "not comparable with published FID/KID (offline random-conv features, not Inception-v3)"
_INCEPTION_NOTE = ("torchvision Inception-v3 pool features with user-supplied weights; close to but not "
                   "identical with published FID (TF-Inception port)")

CONVENTIONS: dict[str, Any] = {
    "fid": "gbench.metrics.distribution.fid: torchmetrics FrechetInceptionDistance on extracted features "
           "(unbiased covariances, float64)",
    "kid": "gbench.metrics.distribution.kid: unbiased MMD^2, kernel (x.y/d + 1)^3, all samples once or "
           "torchmetrics KernelInceptionDistance subsets",
    "focus": "variance of the 4-neighbour Laplacian of BT.601 luma in [0,1], valid region",
    "interplane_ssim": "SSIM (gbench.metrics.quality.ssim) of successive planes, data range 255",
    "extractors": {"random-conv": "3 conv layers 16/32/64 k3 s2, He-normal from seed, mean-pooled, 112-d, 64x64 input",
                   "inception-v3": "torchvision inception_v3 pool 2048-d, 299x299 bilinear, ImageNet normalisation"},
}


# ----------------------------------------------------------------------------------------- FID / KID


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``ddof=1``) of ``(N, D)`` features, float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors (N, D), got shape {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))`` with scipy's ``sqrtm`` (from Gaussian statistics)."""

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if isinstance(covmean, tuple):  # older scipy returned (sqrtm, errest) with disp=False
        covmean = covmean[0]
    if not np.isfinite(covmean).all():
        off = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + off) @ (sigma2 + off))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    """FID between two feature sets ``(N_f, D)`` and ``(N_r, D)``: :func:`gbench.metrics.distribution.fid`."""

    return fid(fake, real)


def kid_from_features(fake: np.ndarray, real: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """KID (unbiased polynomial-kernel MMD^2): mean and standard deviation over subsets,
    :func:`gbench.metrics.distribution.kid` (every sample once, std 0, when both sets fit one subset)."""
    return distribution_kid(fake, real, subsets, subset_size, seed)


# ------------------------------------------------------------------------------------------ features


class RandomConvFeatures:
    """Offline feature extractor (numpy in, numpy out) around
    :class:`gbench.metrics.features.RandomConvExtractor` (see the module docstring).

    Args:
        seed: weight seed (the same seed gives the same features everywhere).
        widths: channels of the three conv layers.
        input_size: side images are resized to.
        device: where to run (None: CUDA when available).
    """

    name = "random-conv"
    comparable_with_published_fid = False
    note = NOT_COMPARABLE

    def __init__(self, seed: int = 0, widths: tuple[int, ...] = (16, 32, 64), input_size: int = 64,
                 device: str | None = None) -> None:
        self.module = RandomConvExtractor(seed=seed, widths=widths, input_size=input_size, device=device)
        self.seed, self.input_size, self.dim = self.module.seed, self.module.input_size, self.module.num_features
        self.num_features = self.dim
        self.device = self.module.device

    def describe(self) -> str:
        return self.module.describe()

    def info(self) -> dict[str, Any]:
        return {**self.module.info(), "note": self.note}

    def __call__(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 -> ``(N, dim)`` float64."""
        return self.module.features(np.asarray(images), batch_size=batch_size)


class InceptionFeatures:
    """Inception-v3 pool features (2048-d) with weights from a user-supplied file; no download.

    Args:
        weights: path of a torchvision ``inception_v3`` state dict (e.g. ``inception_v3_google-*.pth``).
        device: where to run (None: CUDA when available).

    Raises:
        DataError: the file is missing or does not fit torchvision's Inception-v3.
    """

    name = "inception-v3"
    comparable_with_published_fid = False
    note = _INCEPTION_NOTE
    dim = 2048

    def __init__(self, weights: str | Path, device: str | None = None) -> None:

        path = Path(weights).expanduser()
        if not path.is_file():
            raise DataError(path, "Inception-v3 weights file not found (gbench never downloads weights; pass a local file)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(path, f"cannot read Inception-v3 weights ({type(exc).__name__}: {exc})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise DataError(path, f"weights do not fit torchvision's Inception-v3 ({str(exc).splitlines()[0]})") from None
        net.fc = torch.nn.Identity()
        self.path = path
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.net = net.to(self.device).eval()

    def describe(self) -> str:
        return f"inception-v3({self.path.name})"

    def __call__(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        mean = torch.tensor([0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(self.device)
                x = x.permute(0, 3, 1, 2).float().div(255.0)
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
                out.append(self.net((x - mean) / std).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim))


def get_extractor(name: str = "random-conv", *, seed: int = 0, inception_weights: str | Path | None = None,
                  device: str | None = None) -> Any:
    """A feature extractor by name: ``random-conv``, ``inception-v3`` (torchvision, requires
    ``inception_weights``) or any :func:`gbench.metrics.features.build_extractor` spec
    (``inception``: torch-fidelity's FID network; ``timm:NAME``), ``inception_weights`` then being
    its weights file."""
    if name == "random-conv":
        return RandomConvFeatures(seed=seed, device=device)
    if name == "inception-v3":
        if inception_weights is None:
            raise ValueError("the inception-v3 extractor needs a local weights file (--inception-weights PATH); "
                             "gbench does not download weights. The offline default is random-conv.")
        return InceptionFeatures(inception_weights, device=device)
    if name == "inception" or name.startswith("timm:"):
        return build_extractor(name, inception_weights, seed=seed, device=device)
    raise ValueError(f"unknown feature extractor {name!r} (known: random-conv, inception-v3, inception, timm:NAME)")


def plane_features(stacks: np.ndarray, extractor: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Features of every plane: ``(N, P, H, W, 3)`` uint8 -> ``(N, P, D)`` float64."""

    n, p = stacks.shape[:2]
    flat = stacks.reshape(n * p, *stacks.shape[2:])
    f = extract(extractor, flat)
    return f.reshape(n, p, -1)


# ----------------------------------------------------------------------------------- focus and SSIM


def _ssim_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of image pairs ``(M, H, W, 3)`` uint8 -> (M,) float64."""
    ta = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
    tb = torch.from_numpy(np.ascontiguousarray(b)).permute(0, 3, 1, 2)
    return ssim(tb, ta).double().cpu().numpy()


def interplane_ssim(stacks: np.ndarray) -> np.ndarray:
    """SSIM between successive planes: ``(N, P, H, W, 3)`` uint8 -> ``(N, P - 1)``."""
    s = np.asarray(stacks)
    if s.ndim != 5 or s.shape[-1] != 3 or s.dtype != np.uint8:
        raise ValueError(f"interplane_ssim needs uint8 stacks (N, P, H, W, 3), got {s.shape} {s.dtype}")
    n, p = s.shape[:2]
    if p < 2:
        raise ValueError("interplane_ssim needs at least 2 planes")
    a = s[:, :-1].reshape(n * (p - 1), *s.shape[2:])
    b = s[:, 1:].reshape(n * (p - 1), *s.shape[2:])
    return _ssim_pairs(a, b).reshape(n, p - 1)


# ----------------------------------------------------------------------------------------- evaluation


@dataclass
class MultifocusResult:
    """Everything :func:`evaluate_multifocus` computed.

    Attributes:
        rows: tidy rows ``{"metric", "plane", "value", "n", "extractor", "note"}``.
        focus_real, focus_fake: ``(N, P)`` focus curves.
        ssim_real, ssim_fake: ``(N, P - 1)`` inter-plane SSIM.
        extractor: description of the feature extractor.
        comparable_with_published_fid: False for the offline extractor.
    """

    rows: list[dict[str, Any]]
    focus_real: np.ndarray
    focus_fake: np.ndarray
    ssim_real: np.ndarray
    ssim_fake: np.ndarray
    extractor: str
    comparable_with_published_fid: bool
    info: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str, plane: str = "all") -> float:
        for r in self.rows:
            if r["metric"] == metric and r["plane"] == plane:
                return float(r["value"])
        raise KeyError(f"no {metric!r} for plane {plane!r}")


def evaluate_multifocus(fake: np.ndarray, real: np.ndarray, *, extractor: Any = None, kid_subsets: int = 100,
                        kid_subset_size: int = 1000, seed: int = 0, progress: bool = False) -> MultifocusResult:
    """Compare synthetic stacks with real ones: per-plane FID/KID, focus curve, inter-plane SSIM.

    The argument order of every gbench metric: the generated (predicted) side first, the
    reference second.

    Args:
        fake: ``(N_f, P, H, W, 3)`` uint8.
        real: ``(N_r, P, H, W, 3)`` uint8, same ``P``, ``H``, ``W`` as ``fake``.
        extractor: a callable ``(M, H, W, 3) uint8 -> (M, D)`` with ``name``/``note``/``describe()``
            (default :class:`RandomConvFeatures` with ``seed``).
        kid_subsets, kid_subset_size: KID subsets.
        seed: extractor and KID-subset seed.
        progress: print stage names with rich.

    Returns:
        A :class:`MultifocusResult`; ``rows`` carries one value per (metric, plane) with
        planes named ``I-5`` .. ``I+5``, pairs ``I-5/I-4`` .., or ``all``.

    Raises:
        ValueError: shapes or dtypes that do not match, fewer than 2 stacks on a side.
    """
    real = np.asarray(real)
    fake = np.asarray(fake)
    for name, s in (("real", real), ("fake", fake)):
        if s.ndim != 5 or s.shape[-1] != 3 or s.dtype != np.uint8:
            raise ValueError(f"{name} stacks must be uint8 (N, P, H, W, 3), got {s.shape} {s.dtype}")
        if len(s) < 2:
            raise ValueError(f"{name}: need at least 2 stacks for FID/KID, got {len(s)}")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real stacks are {real.shape[1:]} but synthetic stacks are {fake.shape[1:]} (planes, H, W, 3)")
    ext = extractor if extractor is not None else RandomConvFeatures(seed=seed)
    note = getattr(ext, "note", "")
    ext_name = ext.describe() if hasattr(ext, "describe") else getattr(ext, "name", type(ext).__name__)
    labels = plane_labels(real.shape[1])
    nr, nf = len(real), len(fake)
    rows: list[dict[str, Any]] = []

    def add(metric: str, plane: str, value: float, n: int, with_note: bool = False) -> None:
        rows.append({"metric": metric, "plane": plane, "value": float(value), "n": int(n),
                     "extractor": ext_name if with_note else "", "note": note if with_note else ""})

    def say(msg: str) -> None:
        if progress:
            Console(stderr=True).print(f"[dim]multifocus:[/] {msg}")

    say(f"features ({ext_name}) of {nr} real and {nf} synthetic stacks x {real.shape[1]} planes")
    fr = plane_features(real, ext)
    ff = plane_features(fake, ext)
    for k, lab in enumerate(labels):
        add("fid", lab, fid_from_features(ff[:, k], fr[:, k]), min(nr, nf), True)
        kid, _ = kid_from_features(ff[:, k], fr[:, k], kid_subsets, kid_subset_size, seed)
        add("kid", lab, kid, min(nr, nf), True)
    pr, pf = fr.reshape(-1, fr.shape[-1]), ff.reshape(-1, ff.shape[-1])
    add("fid", "all", fid_from_features(pf, pr), min(len(pr), len(pf)), True)
    kid, kid_std = kid_from_features(pf, pr, kid_subsets, kid_subset_size, seed)
    add("kid", "all", kid, min(len(pr), len(pf)), True)
    add("kid_std", "all", kid_std, min(len(pr), len(pf)), True)

    say("focus curves")
    cr, cf = focus_curve(real), focus_curve(fake)
    mr, mf = cr.mean(0), cf.mean(0)
    for k, lab in enumerate(labels):
        add("focus_real", lab, mr[k], nr)
        add("focus_fake", lab, mf[k], nf)
    half = real.shape[1] // 2
    add("focus_curve_l1", "all", mean_curve_l1(cf, cr), min(nr, nf))
    add("focus_peak_real", "all", int(np.argmax(mr)) - half, nr)
    add("focus_peak_fake", "all", int(np.argmax(mf)) - half, nf)
    add("focus_peak_at_i0_real", "all", float(np.mean(np.argmax(cr, 1) == half)), nr)
    add("focus_peak_at_i0_fake", "all", float(np.mean(np.argmax(cf, 1) == half)), nf)

    say("inter-plane SSIM")
    sr, sf = interplane_ssim(real), interplane_ssim(fake)
    for k in range(sr.shape[1]):
        lab = f"{labels[k]}/{labels[k + 1]}"
        add("interplane_ssim_real", lab, sr[:, k].mean(), nr)
        add("interplane_ssim_fake", lab, sf[:, k].mean(), nf)
        add("interplane_ssim_w1", lab, wasserstein_distance(sr[:, k], sf[:, k]), min(nr, nf))
    add("interplane_ssim_real", "all", sr.mean(), nr)
    add("interplane_ssim_fake", "all", sf.mean(), nf)
    add("interplane_ssim_w1", "all", wasserstein_distance(sr.ravel(), sf.ravel()), min(nr, nf))
    return MultifocusResult(rows, cr, cf, sr, sf, ext_name, bool(getattr(ext, "comparable_with_published_fid", False)),
                            {"n_real": nr, "n_fake": nf, "planes": int(real.shape[1]), "size": list(real.shape[2:4])})
