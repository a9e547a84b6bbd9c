"""The common conventions of each paired quality metric, side by side (``gbench quality --conventions``).

The same image pairs give different SSIM under scikit-image's defaults, piq's, torchmetrics' and
Wang et al.'s MATLAB code, and papers rarely say which they used. Each entry of
:func:`catalogue` scores pairs under one convention, named after the library (and the installed
version) whose defaults it matches; where the library is installed the entry *calls that
library* with its defaults, so the number is the library's own. The gbench default of each metric
(:mod:`gbench.metrics.quality`) is marked ``default``.

SSIM
    ``skimage-defaults``  ``skimage.metrics.structural_similarity(real, fake, channel_axis=-1,
        data_range=255)``: 7x7 uniform window, sample covariance (ddof 1), RGB mean.
    ``wang-gaussian``     gbench's SSIM (:func:`gbench.metrics.quality.ssim`): Wang et al.'s 11x11
        Gaussian window, sigma 1.5, population covariance, no downsampling, RGB mean (= scikit-image
        with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``).
    ``piq-defaults``      ``piq.ssim(fake, real, data_range=1.)``: kernel 11, sigma 1.5, average
        pooling by ``max(1, round(min(H, W) / 256))`` first (``downsample=True``), RGB mean.
    ``torchmetrics-defaults``  ``torchmetrics.functional.structural_similarity_index_measure``:
        Gaussian 11, sigma 1.5, reflect padding then a 5-pixel crop, and ``data_range=None``:
        inferred as ``max(max - min)`` of the inputs; called per pair so a value does not depend
        on the rest of the batch.
    ``matlab-ssim.m``     Wang et al.'s reference ``ssim.m`` (2009 MATLAB code): grey image
        (MATLAB ``rgb2gray`` weights, rounded to uint8 as MATLAB does for uint8 input), a
        ``max(1, round(min(H, W) / 256))`` box filter with symmetric padding (``imfilter(...,
        'symmetric', 'same')``) and subsampling ``img(1:f:end, 1:f:end)``, Gaussian 11x11 sigma
        1.5 ``'valid'`` filtering, K = (0.01, 0.03), L = 255, mean of the map. MATLAB rounds
        halves away from zero. Written here (MATLAB is not a Python library); tested against
        scikit-image on the downsampled grey images.
FSIM (FSIMc: chromatic)
    ``piq-defaults``      ``piq.fsim(fake, real, data_range=1.)``: average pooling by
        ``max(1, round(min(H, W) / 256))`` first, as the authors' ``FeatureSIM.m``; gbench's FSIM
        follows this protocol.
    ``no-downsampling``   the same computation at full resolution (piq's own phase-congruency and
        gradient functions, without the pooling), as ports that skip the step do.
GMSD
    ``piq-defaults``      ``piq.gmsd(fake, real, data_range=1.)``: luma, always 2x2 average pooling
        (as the authors' MATLAB code); gbench's GMSD follows it.
    ``no-downsampling``   piq's GMSD core on the full-resolution luma.
NRMSE
    ``euclidean`` (scikit-image's default), ``min-max``, ``mean``: the normalisations of
    ``skimage.metrics.normalized_root_mse(real, fake, normalization=...)``, computed by
    :func:`gbench.metrics.quality.nrmse`.

Every function takes uint8 batches ``(N, 3, H, W)`` (synthetic first, real second) and returns a
float64 tensor ``(N,)``. The library entries get float32 images in [0, 1] (``/ 255``), as a user of
piq or torchmetrics passes them; gbench's own entries compute in float64.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
import piq
import torch
from piq.fsim import _construct_filters, _phase_congruency
from piq.functional import gradient_map, rgb2yiq, scharr_filter, similarity_map
from piq.gmsd import _gmsd
from scipy.signal import correlate2d
from skimage.metrics import structural_similarity
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from gbench.metrics.quality import nrmse, ssim

__all__ = ["Convention", "catalogue", "score_conventions", "conventions_table", "library_version",
           "matlab_ssim", "fsim_full_resolution", "gmsd_full_resolution"]


def library_version(dist: str) -> str:
    """The installed version of a distribution (``""`` when absent)."""

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class Convention:
    """One way to compute one metric.

    Attributes:
        metric: ``ssim``, ``fsim``, ``gmsd`` or ``nrmse``.
        key: short name (``skimage-defaults``, ``wang-gaussian`` ...).
        name: what it matches, with the library version (``scikit-image 0.26.0 defaults``).
        description: the settings, in words.
        fn: ``(fake uint8 (N, 3, H, W), real uint8 (N, 3, H, W)) -> float64 (N,)``.
        default: True for the convention gbench's own metric uses.
    """

    metric: str
    key: str
    name: str
    description: str
    fn: Callable[[Tensor, Tensor], Tensor]
    default: bool = False


def _f(x: Tensor) -> Tensor:
    """float32 in [0, 1]: what a user of piq / torchmetrics passes (their float64 paths are far slower
    on the CPU; the difference is ~1e-7, far below the differences between conventions)."""
    return x.to(torch.float32) / 255.0


def _np_hwc(x: Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).cpu().numpy()


# ---------------------------------------------------------------------------------------------- SSIM

def _ssim_skimage_defaults(fake: Tensor, real: Tensor) -> Tensor:
    f, r = _np_hwc(fake), _np_hwc(real)
    return torch.tensor([structural_similarity(ri, fi, channel_axis=-1, data_range=255) for fi, ri in zip(f, r)],
                        dtype=torch.float64)


def _exact(fn: Callable[..., Tensor]) -> dict[str, str]:
    """``precision="exact"`` where gbench's metric has a fast float32 path: conventions are float64."""

    return {"precision": "exact"} if "precision" in inspect.signature(fn).parameters else {}


def _ssim_ours(fake: Tensor, real: Tensor) -> Tensor:
    return ssim(fake, real, **_exact(ssim)).to(torch.float64).cpu()


def _ssim_piq(fake: Tensor, real: Tensor) -> Tensor:
    return piq.ssim(_f(fake), _f(real), data_range=1.0, reduction="none").to(torch.float64).cpu()


def _ssim_torchmetrics(fake: Tensor, real: Tensor) -> Tensor:
    f, r = _f(fake), _f(real)
    return torch.stack([tm_ssim(f[i:i + 1], r[i:i + 1], reduction="none").reshape(()) for i in range(len(f))]) \
        .to(torch.float64).cpu()


def _matlab_round(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _matlab_gray(x: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of uint8 ``(..., 3)``: weighted sum rounded back to uint8."""
    w = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.clip(np.floor(x.astype(np.float64) @ w + 0.5), 0, 255)


def _matlab_downsample(img: np.ndarray, f: int) -> np.ndarray:
    """``imfilter(img, ones(f)/f^2, 'symmetric', 'same')`` then ``img(1:f:end, 1:f:end)``."""
    if f == 1:
        return img
    c = (f + 1) // 2  # MATLAB's kernel centre, 1-based: floor((f + 1) / 2)
    before, after = c - 1, f - c
    p = np.pad(img, ((before, after), (before, after)), mode="symmetric")  # MATLAB 'symmetric' = numpy's
    cs = np.pad(p.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # box sums over p[i:i+f, j:j+f] from a summed table
    h, w = img.shape
    box = (cs[f:f + h, f:f + w] - cs[:h, f:f + w] - cs[f:f + h, :w] + cs[:h, :w]) / (f * f)
    return box[::f, ::f]


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', 11, 1.5)``."""
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def _filter2_valid(win: np.ndarray, img: np.ndarray) -> np.ndarray:
    return correlate2d(img, win, mode="valid")


def matlab_ssim(fake: Tensor, real: Tensor) -> Tensor:
    """SSIM as Wang et al.'s reference ``ssim.m`` computes it (see the module docstring)."""
    f8, r8 = _np_hwc(fake), _np_hwc(real)
    h, w = f8.shape[1:3]
    factor = max(1, _matlab_round(min(h, w) / 256))
    win = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for fi, ri in zip(f8, r8):
        x = _matlab_downsample(_matlab_gray(ri), factor)
        y = _matlab_downsample(_matlab_gray(fi), factor)
        if min(x.shape) < 11:
            raise ValueError(f"matlab ssim.m needs at least 11x11 pixels after downsampling by {factor}, "
                             f"got {x.shape[1]}x{x.shape[0]}")
        mu1, mu2 = _filter2_valid(win, x), _filter2_valid(win, y)
        s11 = _filter2_valid(win, x * x) - mu1 * mu1
        s22 = _filter2_valid(win, y * y) - mu2 * mu2
        s12 = _filter2_valid(win, x * y) - mu1 * mu2
        m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
        out.append(float(m.mean()))
    return torch.tensor(out, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------- FSIM

def _fsim_piq(fake: Tensor, real: Tensor) -> Tensor:
    return piq.fsim(_f(fake), _f(real), data_range=1.0, reduction="none").to(torch.float64).cpu()


def fsim_full_resolution(fake: Tensor, real: Tensor, chromatic: bool = True) -> Tensor:
    """piq's FSIMc without its average pooling (piq's own filters, phase congruency and maps)."""

    x, y = fake.to(torch.float32), real.to(torch.float32)
    x_yiq, y_yiq = rgb2yiq(x), rgb2yiq(y)
    x_lum, y_lum = x_yiq[:, :1], y_yiq[:, :1]
    filters = _construct_filters(x_lum, 4, 4, 6, 2, 0.55, 1.2)
    pc_x = _phase_congruency(x_lum, filters=filters, scales=4, orientations=4, k=2.0)
    pc_y = _phase_congruency(y_lum, filters=filters, scales=4, orientations=4, k=2.0)
    sch = scharr_filter(device=x_lum.device, dtype=x_lum.dtype)
    kernels = torch.stack([sch, sch.transpose(-1, -2)])
    pc = similarity_map(pc_x, pc_y, 0.85)
    gm = similarity_map(gradient_map(x_lum, kernels), gradient_map(y_lum, kernels), 160)
    pc_max = torch.where(pc_x > pc_y, pc_x, pc_y)
    score = gm * pc * pc_max
    if chromatic:
        s_i = similarity_map(x_yiq[:, 1:2], y_yiq[:, 1:2], 200)
        s_q = similarity_map(x_yiq[:, 2:], y_yiq[:, 2:], 200)
        score = score * torch.abs(s_i * s_q) ** 0.03
    return (score.sum(dim=[1, 2, 3]) / pc_max.sum(dim=[1, 2, 3])).to(torch.float64).cpu()


# ---------------------------------------------------------------------------------------------- GMSD

def _gmsd_piq(fake: Tensor, real: Tensor) -> Tensor:
    return piq.gmsd(_f(fake), _f(real), data_range=1.0, reduction="none").to(torch.float64).cpu()


def gmsd_full_resolution(fake: Tensor, real: Tensor) -> Tensor:
    """piq's GMSD core on the full-resolution luma (no 2x2 pooling)."""

    return _gmsd(rgb2yiq(_f(fake))[:, :1], rgb2yiq(_f(real))[:, :1]).reshape(-1).to(torch.float64).cpu()


# --------------------------------------------------------------------------------------------- NRMSE

def _nrmse(norm: str) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(fake: Tensor, real: Tensor) -> Tensor:
        return nrmse(fake, real, normalization=norm, **_exact(nrmse)).to(torch.float64).cpu()

    return fn


# ----------------------------------------------------------------------------------------- catalogue

def catalogue(metrics: Sequence[str] | None = None) -> list[Convention]:
    """The conventions of ``metrics`` (default: every metric with an entry), named with the installed
    library versions."""
    sk, pq, tm = library_version("scikit-image"), library_version("piq"), library_version("torchmetrics")
    gb = library_version("gbench") or "dev"
    entries = [
        Convention("ssim", "skimage-defaults", f"scikit-image {sk} defaults",
                   "7x7 uniform window, sample covariance, RGB mean, data range 255", _ssim_skimage_defaults),
        Convention("ssim", "wang-gaussian", f"Wang et al. Gaussian (gbench {gb}; = scikit-image gaussian_weights)",
                   "11x11 Gaussian sigma 1.5, population covariance, no downsampling, RGB mean", _ssim_ours, True),
        Convention("ssim", "piq-defaults", f"piq {pq} defaults",
                   "11x11 Gaussian sigma 1.5, avg-pool by max(1, round(min(H,W)/256)), RGB mean", _ssim_piq),
        Convention("ssim", "torchmetrics-defaults", f"torchmetrics {tm} defaults",
                   "11x11 Gaussian sigma 1.5, reflect pad + crop, data_range inferred per pair", _ssim_torchmetrics),
        Convention("ssim", "matlab-ssim.m", "Wang et al. ssim.m (MATLAB reference, 2009)",
                   "grey (rgb2gray), box-filter + subsample by max(1, round(min(H,W)/256)), 11x11 Gaussian valid",
                   matlab_ssim),
        Convention("fsim", "piq-defaults", f"piq {pq} defaults (= gbench, FeatureSIM.m)",
                   "FSIMc, avg-pool by max(1, round(min(H,W)/256))", _fsim_piq, True),
        Convention("fsim", "no-downsampling", f"piq {pq} without downsampling",
                   "FSIMc at full resolution", fsim_full_resolution),
        Convention("gmsd", "piq-defaults", f"piq {pq} defaults (= gbench, authors' MATLAB)",
                   "luma, 2x2 avg-pool, Prewitt, c = 170/255^2", _gmsd_piq, True),
        Convention("gmsd", "no-downsampling", f"piq {pq} without downsampling",
                   "luma at full resolution, Prewitt, c = 170/255^2", gmsd_full_resolution),
        Convention("nrmse", "euclidean", f"scikit-image {sk} default (euclidean)",
                   "||real - fake|| / ||real||", _nrmse("euclidean"), True),
        Convention("nrmse", "min-max", f"scikit-image {sk} normalization='min-max'",
                   "RMSE / (max(real) - min(real))", _nrmse("min-max")),
        Convention("nrmse", "mean", f"scikit-image {sk} normalization='mean'", "RMSE / mean(real)", _nrmse("mean")),
    ]
    if metrics is None:
        return entries
    unknown = sorted(set(metrics) - {c.metric for c in entries})
    if unknown:
        raise ValueError(f"no conventions for metric(s) {', '.join(unknown)}")
    return [c for c in entries if c.metric in metrics]


def score_conventions(fake: Tensor, real: Tensor, metrics: Sequence[str] | None = None,
                      conventions: Sequence[Convention] | None = None) -> dict[tuple[str, str], Tensor]:
    """Per-pair values under every convention: ``{(metric, key): float64 (N,)}``.

    Args:
        fake, real: uint8 ``(N, 3, H, W)`` of one size.
        metrics: which metrics' conventions (default: all; ignored when ``conventions`` is given).
        conventions: the entries to use (default :func:`catalogue` of ``metrics``).
    """
    if fake.dtype != torch.uint8 or real.dtype != torch.uint8 or fake.shape != real.shape or fake.ndim != 4:
        raise ValueError(f"conventions need uint8 batches (N, 3, H, W) of one shape, got {tuple(fake.shape)} "
                         f"{fake.dtype} and {tuple(real.shape)} {real.dtype}")
    return {(c.metric, c.key): c.fn(fake, real) for c in (conventions or catalogue(metrics))}


def conventions_table(per_pair: dict[tuple[str, str], Sequence[float]], entries: Sequence[Convention]) -> Any:
    """Side-by-side summary: one row per convention (``metric, convention, matches, mean, std, n,
    delta`` = mean minus the gbench default's mean of that metric, ``default``). A DataFrame."""

    rows = []
    values = {k: np.asarray(v.cpu().numpy() if isinstance(v, Tensor) else v, dtype=np.float64)
              for k, v in per_pair.items()}
    defaults = {c.metric: float(values[(c.metric, c.key)].mean()) for c in entries if c.default}
    for c in entries:
        v = values[(c.metric, c.key)]
        mean = float(v.mean())
        rows.append({"metric": c.metric, "convention": c.key, "matches": c.name, "mean": mean,
                     "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v)),
                     "delta": mean - defaults.get(c.metric, math.nan), "default": c.default,
                     "settings": c.description})
    return pd.DataFrame(rows)
