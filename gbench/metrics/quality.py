"""Full-reference image quality metrics: SSIM, FSIM(c), GMSD and NRMSE.

Every metric compares a synthesized image (``fake``) with its reference
(``real``) and returns one value per image pair. All functions take batches of
shape ``(N, 3, H, W)`` (a single ``(3, H, W)`` image is promoted to ``N = 1``)
as torch tensors or numpy arrays, either ``uint8`` in 0..255 or floating point
in [0, 1]; ``fake`` and ``real`` must be of the same kind. The result is a
float64 tensor of shape ``(N,)`` on the input's device.

Two paths compute the same protocol, chosen by ``precision``:

``"fast"`` (default)
    float32 on the CPU or CUDA. Separable filters are applied as such (the
    SSIM Gaussian as a banded matrix product down the columns and a depthwise
    convolution along the rows, Prewitt/Scharr gradients as shifted sums), the
    FSIM log-Gabor filtering is done in the FFT domain (on the CPU the
    element-wise stages around the FFTs are fused numba kernels,
    :mod:`gbench.metrics._fsim_cpu`), NRMSE is a pair of norms. On the CPU it works on one image (pair) at a time so that every
    intermediate stays in cache, which also makes each value independent of the
    rest of the batch; on CUDA on large chunks (TF32 disabled). Agrees with
    ``"exact"`` within 1e-5 absolute (SSIM, FSIM, GMSD; ~2e-7 typical) and
    1e-6 relative (NRMSE; ~1e-8 typical), asserted in the tests. The hardest
    case measured for SSIM is flat bright regions far from the image mean
    with slight noise (e.g. half black, half 250 with noise of sd 2): up to
    ~7e-6, from float32 cancellation in the local variances.
``"exact"``
    float64, vectorised over the batch (split into chunks only to bound
    memory); reproduces scikit-image / piq to ~1e-15 (tests at 1e-8). Use it
    to compare with those libraries or to resolve differences below ~1e-5.

The precision is part of what a value means: record ``conventions(metric,
precision)`` (``CONVENTIONS`` holds those of the default path) with it.

Conventions (also exposed, machine-readable, as :data:`CONVENTIONS` and
:func:`conventions` so that each result can record the protocol and the
precision it was computed under):

SSIM
    Wang et al. (2004) settings, bit-for-bit the protocol of
    ``skimage.metrics.structural_similarity(real, fake, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=-1,
    data_range=...)``: separable Gaussian window with sigma 1.5 truncated at
    3.5 sigma (radius ``int(3.5 * 1.5 + 0.5) = 5``, window 11 x 11), K1 = 0.01,
    K2 = 0.03, population (co)variances, data range 255 for uint8 input and 1.0
    for float input. The SSIM map is averaged over the region scikit-image keeps
    after cropping ``(win_size - 1) // 2 = 5`` pixels from every border, i.e.
    over the pixels whose whole 11 x 11 window lies inside the image, and then
    averaged over the R, G, B channels. Boundary handling: scikit-image filters
    with ``scipy.ndimage`` mode ``'reflect'`` (half-sample symmetric,
    ``d c b a | a b c d``), but because the window radius equals the crop width
    and the Gaussian is separable, no padded value ever reaches a pixel that
    survives the crop. We therefore filter with a "valid" correlation (no
    padding at all), which is exactly equivalent for the reported mean (agrees
    with scikit-image to ~1e-15). ``luminance=True`` computes SSIM on the
    ITU-R BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (same data range)
    instead of per RGB channel. No downsampling (unlike ``piq.ssim``'s default).
    Because the constants scale with the data range (C = (K * L)^2), SSIM is
    invariant to a common rescaling of both images and of L, so a uint8 batch
    and the same batch divided by 255 give the same value (to ~1e-15).

FSIM / FSIMc
    Zhang et al. (2011), reproducing ``piq.fsim`` (piq 0.8.0, itself a port of
    the authors' MATLAB ``FeatureSIM.m``) in float64: images are rescaled to
    0..255, average-pooled with kernel = stride = ``max(1, round(min(H, W) /
    256))`` (Python ``round``, i.e. ties to even, as piq; MATLAB uses a 'same'
    average filter + subsampling and rounds ties up, so numbers can differ from
    the MATLAB code when that factor is > 1), converted to YIQ; phase congruency
    on Y with 4 scales x 4 orientations of log-Gabor filters (min wavelength 6,
    multiplier 2, sigma_f 0.55, delta_theta 1.2, k = 2, Butterworth low-pass
    cutoff 0.45 order 15, noise threshold divided by 1.7; the noise median is
    ``torch.median``'s *lower* median, as piq); gradient magnitude with the
    Scharr operator (/16) and zero padding; T1 = 0.85, T2 = 160; pooling is
    ``sum(S_PC * S_G * PC_max) / sum(PC_max)`` over the whole map. FSIMc
    (default, ``chromatic=True``) multiplies by ``|S_I * S_Q| ** 0.03`` with
    T3 = T4 = 200 (piq takes the absolute value where MATLAB takes the real part
    of a complex power). ``chromatic=False`` gives grey-level FSIM on Y.

GMSD
    Xue et al. (2014), reproducing ``piq.gmsd`` (piq 0.8.0) in float64: images
    are rescaled to [0, 1], reduced to YIQ luma Y, zero-padded at the bottom and
    right by one pixel when H or W is odd, always downsampled by 2 with a 2 x 2
    average pool (as the authors' MATLAB code), gradient magnitude with the
    Prewitt operator (/3) and zero padding, GMS map with c = 170 / 255**2, and
    the population standard deviation of the GMS map as the score.

NRMSE
    ``||real - fake||_2 / ||real||_2`` over all pixels and channels of an image
    (scikit-image's default ``'euclidean'`` normalisation; ``real`` is the
    reference, ``image_true`` in scikit-image). ``normalization='min-max'`` gives
    ``RMSE / (max(real) - min(real))`` and ``'mean'`` gives
    ``RMSE / mean(real)``, max/min/mean taken over all channels of the image.
    The value is invariant to the input scale (uint8 vs float / 255). A constant
    (or all-zero) reference gives ``inf`` (or ``nan`` when ``fake == real``),
    exactly as scikit-image does.

Directions and labels live in the metric registry
(:data:`gbench.core.metric_specs.METRICS`): SSIM and FSIM higher is better, GMSD
and NRMSE lower; ``CONVENTIONS[m]["higher_is_better"]`` is read from there.

References:
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
    assessment: from error visibility to structural similarity", IEEE TIP 13(4),
    600-612, 2004.
    L. Zhang, L. Zhang, X. Mou, D. Zhang, "FSIM: a feature similarity index for
    image quality assessment", IEEE TIP 20(8), 2378-2386, 2011.
    W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient magnitude similarity
    deviation: a highly efficient perceptual image quality index", IEEE TIP
    23(2), 684-695, 2014.
    S. Kastryulin et al., "PyTorch Image Quality: metrics for image quality
    assessment", 2022 (piq, https://github.com/photosynthesis-team/piq).
"""
from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, Final, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gbench.core.metric_specs import higher_is_better, metric_names, metric_spec

__all__ = [
    "CONVENTIONS",
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "conventions",
    "fsim",
    "gmsd",
    "nrmse",
    "quality_metrics",
    "ssim",
]

ImageBatch = Union[Tensor, np.ndarray]
Precision = Literal["fast", "exact"]

# ---------------------------------------------------------------------------
# protocol constants
# ---------------------------------------------------------------------------
_SSIM_SIGMA: Final = 1.5
_SSIM_TRUNCATE: Final = 3.5  # scikit-image's choice for gaussian_weights=True
_SSIM_RADIUS: Final = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # 5, as scipy.ndimage
_SSIM_WIN: Final = 2 * _SSIM_RADIUS + 1  # 11
_SSIM_K1: Final = 0.01
_SSIM_K2: Final = 0.03
_BT601: Final = (0.299, 0.587, 0.114)

_YIQ: Final = (
    (0.299, 0.587, 0.114),
    (0.5959, -0.2746, -0.3213),
    (0.2115, -0.5227, 0.3112),
)
_FSIM_SCALES: Final = 4
_FSIM_ORIENT: Final = 4
_FSIM_MIN_LEN: Final = 6
_FSIM_MULT: Final = 2
_FSIM_SIGMA_F: Final = 0.55
_FSIM_DTHETA: Final = 1.2
_FSIM_K: Final = 2.0
_FSIM_LP_CUTOFF: Final = 0.45
_FSIM_LP_ORDER: Final = 15
_FSIM_T: Final = (0.85, 160.0, 200.0, 200.0)  # T1 (PC), T2 (GM), T3 (I), T4 (Q)
_FSIM_LAMBDA: Final = 0.03
_FSIM_MIN_SIZE: Final = 8

_GMSD_T: Final = 170.0 / 255.0**2
_GMSD_MIN_SIZE: Final = 6  # 3x3 Prewitt on the 2x-downsampled image

_NRMSE_NORMS: Final = ("euclidean", "min-max", "mean")

# Working-set budget (float64 elements, 32 MiB) of one vectorised chunk of the exact path: bounds memory
# and keeps the shift-and-add filtering cache-resident. Chunks only split the batch; results do not depend on it.
_CHUNK_ELEMS: Final = 1 << 22

PRECISIONS: Final = ("fast", "exact")
DEFAULT_PRECISION: Final[Precision] = "fast"
# Fast path chunking (float32 elements of working set per chunk). On the CPU a chunk is one image (pair): every
# intermediate then fits in the core's cache, and each image's value is computed alone, so it does not depend on
# which other images share the batch. On CUDA chunks are large, to keep the device busy.
_FAST_CHUNK_ELEMS_CPU: Final = 1
_FAST_CHUNK_ELEMS_CUDA: Final = 1 << 26

# The protocol of each metric (identical for both precisions); see conventions() for what is recorded.
_PROTOCOL: Final[dict[str, dict[str, Any]]] = {
    "ssim": {
        "reference": "Wang et al. 2004; skimage.metrics.structural_similarity",
        "matches": "skimage.metrics.structural_similarity(real, fake, gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False, channel_axis=-1, data_range=L)",
        "window": "gaussian, separable",
        "sigma": _SSIM_SIGMA,
        "truncate": _SSIM_TRUNCATE,
        "win_size": _SSIM_WIN,
        "K1": _SSIM_K1,
        "K2": _SSIM_K2,
        "data_range": "255 for uint8 input, 1.0 for float input in [0, 1]",
        "covariance": "population (use_sample_covariance=False)",
        "boundary": "valid filtering; equals scikit-image's reflect-padded filtering followed by its crop",
        "crop": (_SSIM_WIN - 1) // 2,
        "pooling": "mean of the SSIM map over the cropped region, then mean over channels",
        "channels": "R, G, B separately then averaged (luminance=True: BT.601 Y = 0.299R+0.587G+0.114B)",
        "downsampling": "none",
        "higher_is_better": higher_is_better("ssim"),
    },
    "fsim": {
        "reference": "Zhang et al. 2011; port of piq.fsim (piq 0.8.0)",
        "matches": "piq.fsim(fake, real, data_range=L, chromatic=..., reduction='none')",
        "chromatic_default": True,
        "rescale": "to 0..255",
        "downsampling": "avg_pool2d, kernel=stride=max(1, round(min(H, W) / 256)), Python round (ties to even)",
        "colour_space": "YIQ (piq matrix); PC and GM on Y; I, Q for FSIMc",
        "scales": _FSIM_SCALES,
        "orientations": _FSIM_ORIENT,
        "min_wavelength": _FSIM_MIN_LEN,
        "mult": _FSIM_MULT,
        "sigma_f": _FSIM_SIGMA_F,
        "delta_theta": _FSIM_DTHETA,
        "k": _FSIM_K,
        "lowpass": {"cutoff": _FSIM_LP_CUTOFF, "order": _FSIM_LP_ORDER},
        "noise_threshold_divisor": 1.7,
        "noise_median": "lower median (torch.median), as piq",
        "gradient": "Scharr / 16, zero padding",
        "T1": _FSIM_T[0],
        "T2": _FSIM_T[1],
        "T3": _FSIM_T[2],
        "T4": _FSIM_T[3],
        "lambda": _FSIM_LAMBDA,
        "chromatic_term": "|S_I * S_Q| ** lambda (abs, as piq)",
        "pooling": "sum(S_PC * S_G [* chroma] * PC_max) / sum(PC_max) over the whole map",
        "min_size": _FSIM_MIN_SIZE,
        "higher_is_better": higher_is_better("fsim"),
    },
    "gmsd": {
        "reference": "Xue et al. 2014; port of piq.gmsd (piq 0.8.0)",
        "matches": "piq.gmsd(fake, real, data_range=L, reduction='none')",
        "rescale": "to [0, 1]",
        "channels": "YIQ luma Y = 0.299R+0.587G+0.114B",
        "downsampling": "always x2: zero-pad bottom/right by 1 if H or W odd, then 2x2 avg_pool2d stride 2",
        "gradient": "Prewitt / 3, zero padding",
        "c": _GMSD_T,
        "pooling": "population standard deviation of the GMS map",
        "min_size": _GMSD_MIN_SIZE,
        "higher_is_better": higher_is_better("gmsd"),
    },
    "nrmse": {
        "reference": "skimage.metrics.normalized_root_mse",
        "matches": "skimage.metrics.normalized_root_mse(real, fake, normalization=...)",
        "normalization_default": "euclidean",
        "normalizations": {
            "euclidean": "||real - fake||_2 / ||real||_2",
            "min-max": "rmse / (max(real) - min(real))",
            "mean": "rmse / mean(real)",
        },
        "support": "all pixels and channels of each image",
        "scale": "invariant (uint8 and float/255 agree)",
        "downsampling": "none",
        "higher_is_better": higher_is_better("nrmse"),
    },
}

_PRECISION_NOTES: Final[dict[str, dict[str, str]]] = {
    "exact": {
        "ssim": "float64; separable Gaussian by shift-and-add 'valid' correlation",
        "fsim": "float64; log-Gabor filtering as one batched FFT product",
        "gmsd": "float64",
        "nrmse": "float64",
    },
    "fast": {
        "ssim": "float32; each image channel is first centred on its own mean rounded to an integer (0..255 scale: "
        "exact for uint8, and it keeps the moment maps small), moment maps (x+y, x-y and their squares) filtered "
        "by the separable Gaussian as a banded matrix product (vertical) and a depthwise convolution "
        "(horizontal); the SSIM formula evaluated in the equivalent sum/difference form",
        "fsim": "float32; log-Gabor responses by FFT per orientation and scale (two images per complex transform), "
        "noise threshold from the same lower median, energy as |S| - sum_s |Im(eo_s conj(S))| / |S| "
        "(algebraically piq's expression), on the CPU the element-wise stages as fused numba kernels; Scharr "
        "gradients as separable shifts",
        "gmsd": "float32; luma and 2x2 average pooling as one stride-2 convolution, Prewitt gradients, population "
        "standard deviation",
        "nrmse": "float32 (real - fake exact for uint8 input), sums of squares accumulated row by row and combined "
        "in float64",
    },
}
_FAST_AGREEMENT: Final = {
    "ssim": "within 1e-5 absolute of precision='exact' (tested)",
    "fsim": "within 1e-5 absolute of precision='exact' (tested)",
    "gmsd": "within 1e-5 absolute of precision='exact' (tested)",
    "nrmse": "within 1e-6 relative of precision='exact' (tested)",
}


def conventions(metric: str, precision: Precision = DEFAULT_PRECISION) -> dict[str, Any]:
    """The conventions to record with a value of ``metric`` computed at ``precision``.

    Args:
        metric: ``'ssim'``, ``'fsim'``, ``'gmsd'`` or ``'nrmse'``.
        precision: ``'fast'`` (float32, the default of every function here) or ``'exact'`` (float64).

    Returns:
        A new JSON-serialisable dict: the metric's protocol plus ``precision``, ``dtype``,
        ``precision_notes`` (how the path computes) and, for ``'fast'``, its ``agreement`` with ``'exact'``.

    Raises:
        ValueError: On an unknown metric or precision.
    """
    if metric not in _PROTOCOL:
        raise ValueError(f"unknown quality metric {metric!r}; choose from {', '.join(_PROTOCOL)}")
    precision = _check_precision(precision)
    out = dict(_PROTOCOL[metric])
    out["precision"] = precision
    out["dtype"] = "float32" if precision == "fast" else "float64"
    out["precision_notes"] = _PRECISION_NOTES[precision][metric]
    if precision == "fast":
        out["agreement"] = _FAST_AGREEMENT[metric]
    return out


def _check_precision(precision: object) -> str:
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


# What results record: the conventions of the default (fast) path; conventions(m, "exact") for precision="exact".
CONVENTIONS: Final[dict[str, dict[str, Any]]] = {m: conventions(m, DEFAULT_PRECISION) for m in _PROTOCOL}


# ---------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------
def _as_tensor(x: object, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 and x.dtype.kind != "f":
            raise ValueError(f"{name}: unsupported dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]")
        return torch.from_numpy(np.ascontiguousarray(x))
    raise ValueError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _prepare(fake: ImageBatch, real: ImageBatch, min_size: int, metric: str) -> tuple[Tensor, Tensor, float]:
    """Validate a (fake, real) pair.

    Returns:
        The (N, 3, H, W) tensors in their original dtype (converted to float64 chunk by
        chunk by the callers, to bound memory) and the data range (255.0 or 1.0).
    """
    tensors = []
    for name, x in (("fake", fake), ("real", real)):
        t = _as_tensor(x, name)
        if t.dtype != torch.uint8 and not t.is_floating_point():
            raise ValueError(f"{name}: unsupported dtype {t.dtype}; expected uint8 (0..255) or float in [0, 1]")
        if t.ndim == 3:
            t = t.unsqueeze(0)
        elif t.ndim != 4:
            raise ValueError(f"{name}: expected shape (N, 3, H, W) or (3, H, W), got {tuple(t.shape)} ({t.ndim} dims)")
        if t.shape[1] != 3:
            hint = " (channels-last? permute to channels-first)" if t.shape[-1] == 3 else ""
            raise ValueError(f"{name}: expected 3 (RGB) channels in dim 1, got shape {tuple(t.shape)}{hint}")
        tensors.append(t)
    f, r = tensors
    if (f.dtype == torch.uint8) != (r.dtype == torch.uint8):
        raise ValueError(
            f"mixed dtypes: fake is {f.dtype} and real is {r.dtype}; pass both as uint8 (0..255) or both as float in [0, 1]"
        )
    if f.shape[0] != r.shape[0]:
        raise ValueError(f"mismatched counts: fake has {f.shape[0]} images, real has {r.shape[0]}")
    if f.shape[0] == 0:
        raise ValueError("empty batch: fake and real contain 0 images")
    if f.shape != r.shape:
        raise ValueError(f"shape mismatch: fake {tuple(f.shape)} vs real {tuple(r.shape)}")
    if f.device != r.device:
        raise ValueError(f"device mismatch: fake on {f.device}, real on {r.device}")
    h, w = f.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(f"images of {h}x{w} are smaller than the {metric} window: need at least {min_size}x{min_size}")
    if f.dtype == torch.uint8:
        return f, r, 255.0
    for name, t in (("fake", f), ("real", r)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf values")
        lo, hi = (float(v) for v in torch.aminmax(t))
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: float images must lie in [0, 1], got values in [{lo:.6g}, {hi:.6g}]")
    return f, r, 1.0


def _chunks(f: Tensor, r: Tensor, elems_per_image: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield float64 (fake, real) chunks of the batch whose working set stays below ``_CHUNK_ELEMS``."""
    n = f.shape[0]
    step = max(1, _CHUNK_ELEMS // max(1, elems_per_image))
    for start in range(0, n, step):
        s = slice(start, min(n, start + step))
        yield f[s].to(torch.float64), r[s].to(torch.float64)


def _luma(x: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) BT.601 / YIQ luma."""
    return (_BT601[0] * x[:, 0] + _BT601[1] * x[:, 1] + _BT601[2] * x[:, 2]).unsqueeze(1)


# ---------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _gaussian_taps(sigma: float, radius: int) -> tuple[float, ...]:
    # scipy.ndimage._gaussian_kernel1d: exp(-0.5 x^2 / sigma^2), normalised to sum 1.
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return tuple(float(v) for v in phi / phi.sum())


def _valid_correlate(x: Tensor, taps: Sequence[float], dim: int) -> Tensor:
    """1-D 'valid' correlation of ``x`` with ``taps`` along ``dim`` (shift-and-add, float64)."""
    k = len(taps)
    n = x.shape[dim] - k + 1
    out = x.narrow(dim, 0, n) * taps[0]
    for i in range(1, k):
        out.add_(x.narrow(dim, i, n), alpha=taps[i])
    return out


def _ssim_per_image(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """Mean SSIM over the cropped map and over channels, for (B, C, H, W) float64 inputs."""
    taps = _gaussian_taps(_SSIM_SIGMA, _SSIM_RADIUS)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    stack = torch.stack((x, y, x * x, y * y, x * y), dim=0)  # (5, B, C, H, W)
    filt = _valid_correlate(_valid_correlate(stack, taps, -2), taps, -1)
    ux, uy, uxx, uyy, uxy = filt.unbind(0)
    uxuy = ux * uy
    ux2 = ux * ux
    uy2 = uy * uy
    vx = uxx - ux2
    vy = uyy - uy2
    vxy = uxy - uxuy
    s = ((2.0 * uxuy + c1) * (2.0 * vxy + c2)) / ((ux2 + uy2 + c1) * (vx + vy + c2))
    return s.mean(dim=(-2, -1)).mean(dim=-1)


def ssim(
    fake: ImageBatch, real: ImageBatch, *, luminance: bool = False, precision: Precision = DEFAULT_PRECISION
) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image pair, scikit-image protocol.

    Gaussian window sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03, population
    covariance, data range 255 (uint8) or 1.0 (float), mean over the map cropped
    by 5 pixels on each border, averaged over R, G, B. No downsampling. See the
    module docstring / ``CONVENTIONS["ssim"]``.

    Args:
        fake: Synthesized images, (N, 3, H, W) or (3, H, W); uint8 or float in [0, 1].
        real: Reference images, same shape and kind as ``fake``.
        luminance: If True, compute SSIM on BT.601 luma Y instead of per RGB channel.
        precision: ``'fast'`` (float32, default) or ``'exact'`` (float64, scikit-image to ~1e-15); see the
            module docstring and :func:`conventions`.

    Returns:
        Float64 tensor of shape (N,) with one SSIM value per pair (1 for identical images).

    Raises:
        ValueError: On invalid input (type, dtype, dims, channels, shape or count
            mismatch, empty batch, NaN/inf, float outside [0, 1], mixed uint8/float,
            images smaller than 11 x 11) or an unknown precision.

    References:
        Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4):600-612, 2004;
        ``skimage.metrics.structural_similarity``.
    """
    precision = _check_precision(precision)
    f, r, data_range = _prepare(fake, real, _SSIM_WIN, "SSIM")
    if precision == "fast":
        return _ssim_fast(f, r, data_range, luminance)
    c = 1 if luminance else 3
    parts = []
    with torch.no_grad():
        for fc, rc in _chunks(f, r, 12 * c * f.shape[-2] * f.shape[-1]):
            if luminance:
                fc, rc = _luma(fc), _luma(rc)
            parts.append(_ssim_per_image(fc, rc, data_range))
    return torch.cat(parts)


# ---------------------------------------------------------------------------
# FSIM
# ---------------------------------------------------------------------------
def _centred_grid(n: int) -> Tensor:
    # piq.functional.get_meshgrid's normalised frequency coordinates.
    if n % 2:
        return torch.arange(-(n - 1) / 2, n / 2, dtype=torch.float64) / (n - 1)
    return torch.arange(-n / 2, n / 2, dtype=torch.float64) / n


@functools.lru_cache(maxsize=8)
def _fsim_bank(h: int, w: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Log-Gabor filter bank for an h x w image (CPU, float64).

    Returns:
        filters (O, S, h, w) in the (unshifted) frequency domain, and per-orientation
        constants em_n, sum_an2 and sum_ai_aj (each (O,)) used for noise estimation.
    """
    gx, gy = torch.meshgrid(_centred_grid(h), _centred_grid(w), indexing="ij")
    radius = torch.sqrt(gx**2 + gy**2)
    theta = torch.atan2(-gy, gx)
    lowpass = torch.fft.ifftshift(1.0 / (1.0 + (radius / _FSIM_LP_CUTOFF) ** (2 * _FSIM_LP_ORDER)))
    radius = torch.fft.ifftshift(radius)
    theta = torch.fft.ifftshift(theta)
    radius[0, 0] = 1.0
    sin_t, cos_t = torch.sin(theta), torch.cos(theta)

    radial = []
    for s in range(_FSIM_SCALES):
        omega0 = 1.0 / (_FSIM_MIN_LEN * _FSIM_MULT**s)
        g = torch.exp(-(torch.log(radius / omega0) ** 2) / (2 * math.log(_FSIM_SIGMA_F) ** 2)) * lowpass
        g[0, 0] = 0.0
        radial.append(g)
    theta_sigma = math.pi / (_FSIM_ORIENT * _FSIM_DTHETA)
    angular = []
    for o in range(_FSIM_ORIENT):
        a = o * math.pi / _FSIM_ORIENT
        ds = sin_t * math.cos(a) - cos_t * math.sin(a)
        dc = cos_t * math.cos(a) + sin_t * math.sin(a)
        dtheta = torch.abs(torch.atan2(ds, dc))
        angular.append(torch.exp(-(dtheta**2) / (2 * theta_sigma**2)))
    filters = torch.stack(angular)[:, None] * torch.stack(radial)[None]  # (O, S, h, w)

    em_n = (filters[:, 0] ** 2).sum(dim=(-2, -1))
    spatial = torch.fft.ifft2(filters).real * math.sqrt(h * w)
    sum_an2 = (spatial**2).sum(dim=(1, 2, 3))
    sum_ai_aj = torch.zeros(_FSIM_ORIENT, dtype=torch.float64)
    for s in range(_FSIM_SCALES - 1):
        sum_ai_aj = sum_ai_aj + (spatial[:, s : s + 1] * spatial[:, s + 1 :]).sum(dim=(1, 2, 3))
    return filters, em_n, sum_an2, sum_ai_aj


def _phase_congruency(lum: Tensor) -> Tensor:
    """Phase congruency (Kovesi PC_2, as FSIM/piq) of (B, H, W) float64 luma -> (B, H, W)."""
    b, h, w = lum.shape
    eps = torch.finfo(torch.float64).eps
    filters, em_n, sum_an2, sum_ai_aj = (t.to(lum.device) for t in _fsim_bank(h, w))
    eo = torch.fft.ifft2(torch.fft.fft2(lum)[:, None, None] * filters)  # (B, O, S, H, W) complex
    even, odd = eo.real, eo.imag
    amp = torch.sqrt(even**2 + odd**2)
    sum_e = even.sum(dim=2, keepdim=True)
    sum_o = odd.sum(dim=2, keepdim=True)
    norm = torch.sqrt(sum_e**2 + sum_o**2) + eps
    mean_e, mean_o = sum_e / norm, sum_o / norm
    energy = (even * mean_e + odd * mean_o - torch.abs(even * mean_o - odd * mean_e)).sum(dim=2)  # (B, O, H, W)

    # Noise compensation from the smallest scale (Rayleigh model), per image and orientation.
    e2 = (amp[:, :, 0] ** 2).reshape(b, _FSIM_ORIENT, h * w)
    median_e2n = torch.median(e2, dim=-1).values  # lower median, as piq
    noise_power = (-median_e2n / math.log(0.5)) / em_n
    noise_energy2 = 2 * noise_power * sum_an2 + 4 * noise_power * sum_ai_aj
    tau = torch.sqrt(noise_energy2 / 2)
    threshold = (tau * math.sqrt(math.pi / 2) + _FSIM_K * torch.sqrt((2 - math.pi / 2) * tau**2)) / 1.7
    energy = torch.clamp_min(energy - threshold[:, :, None, None], 0.0)
    return (energy.sum(dim=1) + eps) / (amp.sum(dim=(1, 2)) + eps)


def _gradient_magnitude(x: Tensor, kx: Tensor) -> Tensor:
    """|grad| of (B, 1, H, W) with the 3x3 kernel ``kx`` and its transpose, zero padding."""
    kernels = torch.stack((kx, kx.t()))[:, None]
    g = F.conv2d(x, kernels, padding=1)
    return torch.sqrt((g**2).sum(dim=1, keepdim=True))


def _similarity(a: Tensor, b: Tensor, c: float) -> Tensor:
    return (2.0 * a * b + c) / (a**2 + b**2 + c)


def _fsim_per_image(x: Tensor, y: Tensor, chromatic: bool) -> Tensor:
    """FSIM(c) of (B, 3, H, W) float64 images in 0..255 (already pooled)."""
    m = torch.tensor(_YIQ, dtype=torch.float64, device=x.device)
    xq = torch.einsum("kc,bchw->bkhw", m, x)
    yq = torch.einsum("kc,bchw->bkhw", m, y)
    pc_x, pc_y = _phase_congruency(torch.cat((xq[:, 0], yq[:, 0])))[:, None].chunk(2)
    scharr = torch.tensor([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]], dtype=torch.float64, device=x.device)
    scharr = scharr / 16
    gm_x = _gradient_magnitude(xq[:, :1], scharr)
    gm_y = _gradient_magnitude(yq[:, :1], scharr)
    t1, t2, t3, t4 = _FSIM_T
    pc_max = torch.maximum(pc_x, pc_y)
    score = _similarity(gm_x, gm_y, t2) * _similarity(pc_x, pc_y, t1) * pc_max
    if chromatic:
        s_i = _similarity(xq[:, 1:2], yq[:, 1:2], t3)
        s_q = _similarity(xq[:, 2:3], yq[:, 2:3], t4)
        score = score * torch.abs(s_i * s_q) ** _FSIM_LAMBDA
    return score.sum(dim=(1, 2, 3)) / pc_max.sum(dim=(1, 2, 3))


def fsim(
    fake: ImageBatch, real: ImageBatch, *, chromatic: bool = True, precision: Precision = DEFAULT_PRECISION
) -> Tensor:
    """Feature similarity index FSIMc (default) or FSIM per image pair, piq 0.8.0 protocol.

    Reproduces ``piq.fsim`` (``precision='exact'``: in float64) including its pooling: the images are
    average-pooled by ``max(1, round(min(H, W) / 256))`` before phase congruency
    and gradient similarity are computed (as the authors' MATLAB code), so values
    match piq and the published numbers. See ``CONVENTIONS["fsim"]``.

    Args:
        fake: Synthesized images, (N, 3, H, W) or (3, H, W); uint8 or float in [0, 1].
        real: Reference images, same shape and kind as ``fake``.
        chromatic: FSIMc (uses the YIQ chroma channels I, Q) if True, grey FSIM on Y if False.
        precision: ``'fast'`` (float32, default) or ``'exact'`` (float64, piq to ~1e-16).

    Returns:
        Float64 tensor of shape (N,) (1 for identical images; can exceed 1 slightly
        when ``fake`` has more contrast than ``real``).

    Raises:
        ValueError: On invalid input (see :func:`ssim`), or images smaller than 8 x 8.

    References:
        Zhang, Zhang, Mou, Zhang, IEEE TIP 20(8):2378-2386, 2011; ``piq.fsim`` (0.8.0).
    """
    precision = _check_precision(precision)
    f, r, data_range = _prepare(fake, real, _FSIM_MIN_SIZE, "FSIM")
    k = max(1, round(min(f.shape[-2:]) / 256))  # Python round (ties to even), as piq
    if precision == "fast":
        return _fsim_fast(f, r, data_range, chromatic, k)
    parts = []
    with torch.no_grad():
        # working set per image: 2 x O*S complex responses plus real work arrays, at pooled size
        for fc, rc in _chunks(f, r, 160 * (f.shape[-2] // k) * (f.shape[-1] // k) + 6 * f.shape[-2] * f.shape[-1]):
            if data_range != 255.0:
                fc = fc / data_range * 255.0
                rc = rc / data_range * 255.0
            if k > 1:
                fc = F.avg_pool2d(fc, k)
                rc = F.avg_pool2d(rc, k)
            parts.append(_fsim_per_image(fc, rc, chromatic))
    return torch.cat(parts)


# ---------------------------------------------------------------------------
# GMSD
# ---------------------------------------------------------------------------
def gmsd(fake: ImageBatch, real: ImageBatch, *, precision: Precision = DEFAULT_PRECISION) -> Tensor:
    """Gradient magnitude similarity deviation per image pair, piq 0.8.0 protocol.

    Reproduces ``piq.gmsd`` (``precision='exact'``: in float64) including its pooling: luma Y, always
    downsampled by 2 with a 2 x 2 average pool (zero-padding odd sizes), Prewitt
    gradients, c = 170 / 255**2, population standard deviation of the GMS map (as
    the authors' MATLAB code). See ``CONVENTIONS["gmsd"]``.

    Args:
        fake: Synthesized images, (N, 3, H, W) or (3, H, W); uint8 or float in [0, 1].
        real: Reference images, same shape and kind as ``fake``.
        precision: ``'fast'`` (float32, default) or ``'exact'`` (float64, piq to ~1e-16).

    Returns:
        Float64 tensor of shape (N,); 0 for identical images, lower is better.

    Raises:
        ValueError: On invalid input (see :func:`ssim`), or images smaller than 6 x 6.

    References:
        Xue, Zhang, Mou, Bovik, IEEE TIP 23(2):684-695, 2014; ``piq.gmsd`` (0.8.0).
    """
    precision = _check_precision(precision)
    f, r, data_range = _prepare(fake, real, _GMSD_MIN_SIZE, "GMSD")
    if precision == "fast":
        return _gmsd_fast(f, r, data_range)
    prewitt = torch.tensor([[-1.0, 0.0, 1.0]] * 3, dtype=torch.float64, device=f.device) / 3
    pad = max(f.shape[-2] % 2, f.shape[-1] % 2)
    parts = []
    with torch.no_grad():
        for fc, rc in _chunks(f, r, 10 * f.shape[-2] * f.shape[-1]):
            y = torch.cat((_luma(fc), _luma(rc)), dim=1) / data_range  # (B, 2, H, W)
            if pad:
                y = F.pad(y, (0, pad, 0, pad))
            y = F.avg_pool2d(y, kernel_size=2, stride=2)
            b, _, h, w = y.shape
            g = _gradient_magnitude(y.reshape(b * 2, 1, h, w), prewitt).reshape(b, 2, h, w)
            gms = _similarity(g[:, 0], g[:, 1], _GMSD_T)
            parts.append(torch.sqrt(((gms - gms.mean(dim=(1, 2), keepdim=True)) ** 2).mean(dim=(1, 2))))
    return torch.cat(parts)


# ---------------------------------------------------------------------------
# NRMSE
# ---------------------------------------------------------------------------
def nrmse(
    fake: ImageBatch, real: ImageBatch, *, normalization: str = "euclidean", precision: Precision = DEFAULT_PRECISION
) -> Tensor:
    """Normalised root mean squared error of ``fake`` w.r.t. the reference ``real``.

    ``'euclidean'`` (default): ``||real - fake|| / ||real||``; ``'min-max'``:
    ``rmse / (max(real) - min(real))``; ``'mean'``: ``rmse / mean(real)``; all
    over every pixel and channel of the image, as
    ``skimage.metrics.normalized_root_mse(real, fake, normalization=...)``.

    Args:
        fake: Synthesized images, (N, 3, H, W) or (3, H, W); uint8 or float in [0, 1].
        real: Reference images, same shape and kind as ``fake``.
        normalization: ``'euclidean'``, ``'min-max'`` or ``'mean'`` (case-insensitive).
        precision: ``'fast'`` (float32 with float64 accumulation, default) or ``'exact'`` (float64).

    Returns:
        Float64 tensor of shape (N,); 0 for identical images, lower is better. A
        constant/black reference gives inf (nan if also identical), like scikit-image.

    Raises:
        ValueError: On invalid input (see :func:`ssim`) or unknown normalization.

    References:
        ``skimage.metrics.normalized_root_mse``.
    """
    norm = str(normalization).lower()
    if norm not in _NRMSE_NORMS:
        raise ValueError(f"unknown normalization {normalization!r}; expected one of {', '.join(_NRMSE_NORMS)}")
    precision = _check_precision(precision)
    f, r, _ = _prepare(fake, real, 1, "NRMSE")
    if precision == "fast":
        return _nrmse_fast(f, r, norm)
    parts = []
    with torch.no_grad():
        for fc, rc in _chunks(f, r, 4 * f[0].numel()):
            rf = rc.flatten(1)
            err = torch.linalg.vector_norm(rf - fc.flatten(1), dim=1)  # = sqrt(n) * rmse
            if norm == "euclidean":
                parts.append(err / torch.linalg.vector_norm(rf, dim=1))  # sqrt(n) cancels
                continue
            rmse = err / math.sqrt(rf.shape[1])
            if norm == "min-max":
                lo, hi = torch.aminmax(rf, dim=1)
                parts.append(rmse / (hi - lo))
            else:
                parts.append(rmse / rf.mean(dim=1))
    return torch.cat(parts)


# ---------------------------------------------------------------------------
# fast path (float32) shared helpers
# ---------------------------------------------------------------------------
def _fast_batches(f: Tensor, r: Tensor, elems_per_image: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield contiguous (fake, real) chunks, in their input dtype, for the float32 path (``_FAST_CHUNK_ELEMS_*``)."""
    n = f.shape[0]
    budget = _FAST_CHUNK_ELEMS_CUDA if f.device.type == "cuda" else _FAST_CHUNK_ELEMS_CPU
    step = max(1, budget // max(1, elems_per_image))
    for start in range(0, n, step):
        yield f[start : start + step].contiguous(), r[start : start + step].contiguous()


@contextlib.contextmanager
def _full_float32(device: torch.device) -> Iterator[None]:
    """Full float32 matmuls/convolutions on CUDA for the duration (no TF32 or lower); other settings are kept."""
    if device.type != "cuda":
        yield
        return
    matmul_precision = torch.get_float32_matmul_precision()
    conv_tf32 = torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = conv_tf32
        torch.set_float32_matmul_precision(matmul_precision)


def _lower_median_pairs(x: Tensor) -> Tensor:
    """Lower median over the pixels of (B, H, W, 2) interleaved image pairs -> (B, 2) on ``x``'s device."""
    b = x.shape[0]
    flat = x.reshape(b, -1, 2)
    k = (flat.shape[1] - 1) // 2
    if x.device.type == "cpu":  # introselect on each strided column: several times faster than torch.median
        arr = flat.numpy()
        return torch.tensor([[np.partition(arr[i, :, j], k)[k] for j in range(2)] for i in range(b)])
    return torch.kthvalue(flat, k + 1, dim=1).values


def _shift_gradient(y: Tensor, weights: tuple[float, float]) -> Tensor:
    """|grad| of (B, H, W) float32 with a separable 3x3 operator and zero padding.

    The operator is ``outer((a, b, a), (-1, 0, 1))`` (x) and its transpose (y) for ``weights = (a, b)``, i.e.
    F.conv2d's cross-correlation with Scharr/16 (3, 10, 3 / 16) or Prewitt/3 (1, 1, 1 / 3); the sign does not
    matter for the magnitude.
    """
    a, b = weights
    p = F.pad(y, (1, 1, 1, 1))
    sv = torch.add(p[:, :-2], p[:, 2:]).mul_(a).add_(p[:, 1:-1], alpha=b)  # (B, H, W + 2): smoothed across rows
    gx = torch.sub(sv[:, :, 2:], sv[:, :, :-2])
    sh = torch.add(p[:, :, :-2], p[:, :, 2:]).mul_(a).add_(p[:, :, 1:-1], alpha=b)  # (B, H + 2, W)
    gy = torch.sub(sh[:, 2:], sh[:, :-2])
    return gx.mul_(gx).addcmul_(gy, gy).sqrt_()


def _similarity_fast(a: Tensor, b: Tensor, c: float) -> Tensor:
    """(2ab + c) / (a^2 + b^2 + c), in fewer passes than :func:`_similarity`."""
    num = torch.mul(a, b).mul_(2.0).add_(c)
    return num.div_(torch.mul(a, a).addcmul_(b, b).add_(c))


# Fast SSIM: rows of output per block of the banded vertical filter; candidates tried in order (a divisor of the
# output height avoids padding; otherwise the first is used with zero padding).
_SSIM_BANDS: Final = (6, 5, 4, 7, 3, 8)


@functools.lru_cache(maxsize=16)
def _ssim_fast_consts(c: int, band: int, device: torch.device) -> tuple[Tensor, ...]:
    """Float32 constants of the fast SSIM for ``c`` channels: see :func:`_ssim_fast_chunk`."""
    k = _SSIM_WIN
    taps = torch.tensor(_gaussian_taps(_SSIM_SIGMA, _SSIM_RADIUS), dtype=torch.float32)
    tv = torch.zeros(band, band + k - 1)
    for i in range(band):
        tv[i, i : i + k] = taps
    wh = taps.view(1, 1, 1, k).repeat(4 * c, 1, 1, 1)
    eye, zero = torch.eye(c), torch.zeros(c, c)

    def blocks(rows: list[list[Tensor]]) -> Tensor:
        return torch.cat([torch.cat(row, 1) for row in rows], 0)

    # (x, y) -> maps (s, d, s, d) with s = x + y, d = x - y; the last two are squared in place afterwards.
    mix = blocks([[eye, eye, eye, eye], [eye, -eye, eye, -eye]])
    # Rows of the output: luminance numerator, denominator, contrast-structure numerator, denominator (c each);
    # columns: filtered (us, ud, uss, udd) for wu, (us^2, ud^2) for wq.
    wu = blocks([[zero, zero, zero, zero], [zero, zero, zero, zero], [zero, zero, eye, -eye], [zero, zero, eye, eye]])
    wq = blocks([[eye, -eye], [eye, eye], [-eye, eye], [-eye, -eye]])
    return tuple(t.to(device) for t in (tv, wh, mix, wu, wq))


class _SSIMFast:
    """Fast SSIM of (B, c, H, W) chunks of one shape, reusing its buffers from chunk to chunk.

    With s = x + y and d = x - y (after centring each channel on its rounded mean: variances and covariances
    are unchanged, the means are restored exactly) and means/variances taken under the Gaussian window,
    4 mu_x mu_y = mu_s^2 - mu_d^2, 2 (mu_x^2 + mu_y^2) = mu_s^2 + mu_d^2, 4 s_xy = P - Q and
    2 (s_x^2 + s_y^2) = P + Q with P = var(s), Q = var(d); SSIM is then

        (mu_s^2 - mu_d^2 + 2 C1) (P - Q + 2 C2) / ((mu_s^2 + mu_d^2 + 2 C1) (P + Q + 2 C2)),

    exactly the scikit-image formula. Four maps per channel are filtered (s, d, s^2, d^2), channels-last; the four
    factors are two matrix products of the filtered maps and of their squares.
    """

    def __init__(self, b: int, c: int, h: int, w: int, device: torch.device) -> None:
        k = _SSIM_WIN
        self.b, self.c, self.h, self.w = b, c, h, w
        self.hp, self.wp = h - k + 1, w - k + 1
        self.band = next((v for v in _SSIM_BANDS if self.hp % v == 0), _SSIM_BANDS[0])
        self.nb = -(-self.hp // self.band)
        self.tv, self.wh, self.mix, self.wu_const, self.wq_const = _ssim_fast_consts(c, self.band, device)
        rows = self.nb * self.band + k - 1
        m = self.hp * self.wp
        self.xy = torch.empty(b, 2 * c, h, w, device=device)
        self.maps = torch.zeros(b, rows, w, 4 * c, device=device)  # rows beyond h stay 0 (padding of the last band)
        self.v = torch.empty(b, self.nb, self.band, w * 4 * c, device=device)
        self.sq = torch.ones(b, m, 2 * c + 1, device=device)  # squares of (us, ud), then a column of ones
        self.lm = torch.empty(b, 4 * c, m, device=device)
        self.wq = torch.empty(b, 4 * c, 2 * c + 1, device=device)
        self.wq[..., : 2 * c] = self.wq_const
        self.idx = torch.arange(c, device=device)
        self.blk = self.maps.view(b, rows, w * 4 * c).as_strided(
            (b, self.nb, self.band + k - 1, w * 4 * c), (rows * w * 4 * c, self.band * w * 4 * c, w * 4 * c, 1)
        )

    def __call__(self, fc: Tensor, rc: Tensor, data_range: float, luminance: bool) -> Tensor:
        b, c, h, w = self.b, self.c, self.h, self.w
        xy = self.xy
        if luminance:
            torch.cat((_luma(fc.to(torch.float32)), _luma(rc.to(torch.float32))), 1, out=xy)
        else:
            xy[:, :c].copy_(fc)
            xy[:, c:].copy_(rc)
        if data_range != 255.0:
            xy.mul_(255.0 / data_range)
        m = xy.mean(dim=(2, 3), keepdim=True).round_()
        xy.sub_(m)
        maps = self.maps[:, :h].view(b, h * w, 4 * c)
        torch.matmul(xy.view(b, 2 * c, h * w).transpose(1, 2), self.mix, out=maps)
        maps[..., 2 * c :].square_()
        torch.matmul(self.tv, self.blk, out=self.v)  # vertical pass: banded matrix times overlapping row blocks
        v = self.v.view(b, self.nb * self.band, w, 4 * c)[:, : self.hp]
        u = F.conv2d(v.permute(0, 3, 1, 2), self.wh, groups=4 * c)  # horizontal pass, channels-last
        u = u.permute(0, 2, 3, 1).reshape(b, self.hp * self.wp, 4 * c)
        sq = self.sq
        torch.mul(u[..., : 2 * c], u[..., : 2 * c], out=sq[..., : 2 * c])
        mean = m.view(b, 2 * c)
        ms = mean[:, :c] + mean[:, c:]
        md = mean[:, :c] - mean[:, c:]
        idx = self.idx
        wu = self.wu_const.expand(b, 4 * c, 4 * c).clone()
        wu[:, idx, idx] = 2 * ms
        wu[:, idx, c + idx] = -2 * md
        wu[:, c + idx, idx] = 2 * ms
        wu[:, c + idx, c + idx] = 2 * md
        wq = self.wq
        wq[:, :c, 2 * c] = ms * ms - md * md + 2 * (_SSIM_K1 * 255.0) ** 2
        wq[:, c : 2 * c, 2 * c] = ms * ms + md * md + 2 * (_SSIM_K1 * 255.0) ** 2
        wq[:, 2 * c :, 2 * c] = 2 * (_SSIM_K2 * 255.0) ** 2
        lm = self.lm
        if b == 1:  # plain matrix products (bmm would copy the transposed operands)
            torch.mm(wu[0], u[0].t(), out=lm[0])
            lm[0].addmm_(wq[0], sq[0].t())
        else:
            torch.bmm(wu, u.transpose(1, 2), out=lm)
            lm.baddbmm_(wq, sq.transpose(1, 2))
        nd = lm[:, : 2 * c] * lm[:, 2 * c :]  # (luminance x contrast-structure) numerators, then denominators
        return nd[:, :c].div_(nd[:, c:]).sum(dim=(1, 2)).to(torch.float64) / (c * self.hp * self.wp)


def _ssim_fast(f: Tensor, r: Tensor, data_range: float, luminance: bool) -> Tensor:
    parts = []
    c = 1 if luminance else 3
    run: _SSIMFast | None = None
    with torch.no_grad(), _full_float32(f.device):
        for fc, rc in _fast_batches(f, r, 8 * f[0].numel()):
            if run is None or run.b != fc.shape[0]:
                run = _SSIMFast(fc.shape[0], c, fc.shape[-2], fc.shape[-1], f.device)
            parts.append(run(fc, rc, data_range, luminance))
    return torch.cat(parts)


@functools.lru_cache(maxsize=8)
def _fsim_filter_parts(h: int, w: int) -> tuple[Tensor, Tensor, tuple[float, ...]]:
    """Float32 log-Gabor bank for the fast FSIM and the per-orientation noise-threshold factors (CPU).

    Returns:
        The symmetric and antisymmetric parts ``(G(k) +- G(-k)) / 2`` of every filter, each (O, S, h, w)
        float32, and per orientation the factor ``f_o`` with threshold ``T_o = f_o * sqrt(median(|eo_o,0|^2))``:
        with ``tau = sqrt(noise_power * (sum_an2 + 2 sum_ai_aj))`` and ``noise_power = median / ln 2 / em_n``,
        ``T = (tau sqrt(pi/2) + k sqrt((2 - pi/2) tau^2)) / 1.7`` as in :func:`_phase_congruency`.
    """
    filters, em_n, sum_an2, sum_ai_aj = _fsim_bank(h, w)
    mirrored = torch.roll(torch.flip(filters, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # G(-k)
    gs = ((filters + mirrored) / 2).to(torch.float32)
    ga = ((filters - mirrored) / 2).to(torch.float32)
    scale = (math.sqrt(math.pi / 2) + _FSIM_K * math.sqrt(2 - math.pi / 2)) / 1.7
    factors = tuple(
        math.sqrt((float(a) + 2 * float(c)) / (-math.log(0.5)) / float(e)) * scale
        for e, a, c in zip(em_n, sum_an2, sum_ai_aj)
    )
    return gs, ga, factors


@functools.lru_cache(maxsize=8)
def _fsim_bank_fast(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor, tuple[float, ...]]:
    """:func:`_fsim_filter_parts` for the torch path: each part (O, S, h, w, 2) on ``device``, the real filter
    duplicated for the real and imaginary part of a spectrum."""
    gs, ga, factors = _fsim_filter_parts(h, w)
    dup = [part[..., None].expand(*part.shape, 2).contiguous().to(device) for part in (gs, ga)]
    return dup[0], dup[1], factors


def _phase_congruency_pairs(lum_x: Tensor, lum_y: Tensor) -> Tensor:
    """Phase congruency of two (B, H, W) float32 luma stacks -> (B, H, W, 2) (last dim: x, y); as
    :func:`_phase_congruency`.

    Two real images share each complex FFT. With C = FFT(x + i y) and each filter split into its symmetric and
    antisymmetric parts G = Gs + Ga, IFFT(C Gs) = even_x + i even_y and IFFT(-i C Ga) = odd_x + i odd_y, where
    even + i odd is the complex response of :func:`_phase_congruency`. Every later step then works on the (x, y)
    pairs interleaved, with plain element-wise operations. On the CPU one pair and one orientation at a time
    (the working set of a 256 x 256 pair stays in cache) with fused numba kernels for the element-wise stages
    (:func:`_phase_congruency_cpu`), on CUDA the whole chunk in torch (:func:`_phase_congruency_block`). With S = sum_s eo_s, piq's
    energy sum_s (Re(eo_s) m_e + Im(eo_s) m_o - |Re(eo_s) m_o - Im(eo_s) m_e|), where m = S / (|S| + eps),
    equals (|S|^2 - sum_s |Im(eo_s) Re(S) - Re(eo_s) Im(S)|) / (|S| + eps).
    """
    if lum_x.device.type != "cpu":
        return _phase_congruency_block(lum_x, lum_y)
    kernels = _fsim_cpu_kernels()
    if kernels is not None:
        return _phase_congruency_cpu(lum_x, lum_y, kernels)
    return torch.cat([_phase_congruency_block(lum_x[i : i + 1], lum_y[i : i + 1]) for i in range(lum_x.shape[0])])


@functools.lru_cache(maxsize=1)
def _fsim_cpu_kernels() -> ModuleType | None:
    """The numba kernels of :mod:`gbench.metrics._fsim_cpu`, or None (with one warning) where numba cannot load
    or cache them; FSIM then runs the torch path one pair at a time (same values to float32 rounding, ~2x slower)."""
    try:
        from gbench.metrics import _fsim_cpu
    except (ImportError, RuntimeError, OSError) as exc:  # numba missing, or no writable cache location
        warnings.warn(f"FSIM: numba kernels unavailable ({exc}); using the slower torch path", stacklevel=3)
        return None
    return _fsim_cpu


def _fsim_bank_cpu(h: int, w: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """:func:`_fsim_filter_parts` as (O, S, h * w) float32 numpy views for the numba kernels."""
    gs, ga, factors = _fsim_filter_parts(h, w)
    shape = (_FSIM_ORIENT, _FSIM_SCALES, h * w)
    return gs.reshape(shape).numpy(), ga.reshape(shape).numpy(), factors


def _phase_congruency_cpu(lum_x: Tensor, lum_y: Tensor, kernels: ModuleType) -> Tensor:
    """:func:`_phase_congruency_block` on the CPU, one pair at a time, with the fused ``kernels``
    (:mod:`gbench.metrics._fsim_cpu`) for the element-wise stages; the FFTs stay torch's."""
    b, h, w = lum_x.shape
    n = h * w
    gs, ga, factors = _fsim_bank_cpu(h, w)
    spec = torch.view_as_real(torch.fft.fft2(torch.complex(lum_x, lum_y), norm="forward")).reshape(b, n, 2)
    even_in = torch.empty(_FSIM_SCALES, h, w, dtype=torch.complex64)
    odd_in = torch.empty_like(even_in)
    even_in_np, odd_in_np = (torch.view_as_real(t).view(_FSIM_SCALES, n, 2).numpy() for t in (even_in, odd_in))
    out = torch.empty(b, h, w, 2)
    out_np = out.view(b, 2 * n).numpy()
    num, den = np.empty(2 * n, np.float32), np.empty(2 * n, np.float32)
    px, py = np.empty(n, np.float32), np.empty(n, np.float32)
    kth = (n - 1) // 2  # lower median
    spec_np = spec.numpy()
    for i in range(b):
        num.fill(0.0)
        den.fill(0.0)
        for o in range(_FSIM_ORIENT):
            kernels.filter_responses(spec_np[i], gs[o], ga[o], even_in_np, odd_in_np)
            even_np = torch.view_as_real(torch.fft.ifft2(even_in, norm="forward")).view(_FSIM_SCALES, 2 * n).numpy()
            odd_np = torch.view_as_real(torch.fft.ifft2(odd_in, norm="forward")).view(_FSIM_SCALES, 2 * n).numpy()
            # noise model from the smallest scale: T = f_o sqrt(lower median of |eo_0|^2), per image
            kernels.smallest_scale_power(even_np, odd_np, px, py)
            px.partition(kth)
            py.partition(kth)
            tx, ty = (np.float32(np.sqrt(np.float32(v[kth])) * np.float32(factors[o])) for v in (px, py))
            kernels.accumulate_orientation(even_np, odd_np, tx, ty, num, den)
        kernels.ratio(num, den, out_np[i])
    return out


def _phase_congruency_block(lum_x: Tensor, lum_y: Tensor) -> Tensor:
    b, h, w = lum_x.shape
    eps = float(torch.finfo(torch.float64).eps)
    gs2, ga2, factors = _fsim_bank_fast(h, w, lum_x.device)
    num = lum_x.new_zeros(b, h, w, 2)
    den = lum_x.new_zeros(b, h, w, 2)
    work = lum_x.new_empty(b, _FSIM_SCALES, h, w, 2)
    # "forward" normalisation: the inverse transforms are then unscaled (same values, one pass fewer)
    spec = torch.view_as_real(torch.fft.fft2(torch.complex(lum_x, lum_y), norm="forward"))[:, None]  # (B,1,H,W,2)
    spec_rot = torch.stack((spec[..., 1], spec[..., 0].neg()), dim=-1)  # -i C
    for o in range(_FSIM_ORIENT):
        even = torch.view_as_real(torch.fft.ifft2(torch.view_as_complex(spec * gs2[o]), norm="forward"))
        odd = torch.view_as_real(torch.fft.ifft2(torch.view_as_complex(spec_rot * ga2[o]), norm="forward"))
        amp = torch.mul(even, even, out=work).addcmul_(odd, odd)  # |eo|^2, (B, S, H, W, 2)
        # noise model from the smallest scale: T = f_o sqrt(lower median of |eo_0|^2), per image
        threshold = _lower_median_pairs(amp[:, 0]).sqrt_().mul_(factors[o]).view(b, 1, 1, 2)
        den.add_(amp.sqrt_().sum(dim=1))
        s_re, s_im = even.sum(dim=1, keepdim=True), odd.sum(dim=1, keepdim=True)  # S = sum_s eo_s
        nrm2 = torch.mul(s_re, s_re).addcmul_(s_im, s_im)
        cross = torch.mul(odd, s_re, out=work).addcmul_(even, s_im, value=-1.0).abs_().sum(dim=1, keepdim=True)
        norm = nrm2.sqrt().add_(eps)
        energy = cross.neg_().add_(nrm2).div_(norm)[:, 0]  # (|S|^2 - cross) / (|S| + eps)
        num.add_(energy.sub_(threshold).clamp_(min=0.0))
    return num.add_(eps).div_(den.add_(eps))


_SCHARR_W: Final = (3.0 / 16, 10.0 / 16)
_PREWITT_W: Final = (1.0 / 3, 1.0 / 3)


def _fsim_fast_chunk(xy: Tensor, chromatic: bool) -> Tensor:
    """FSIM(c) of a (2, B, 3, H, W) float32 stack of (fake, real) images in 0..255 (already pooled) -> (B,)."""
    _, b, _, h, w = xy.shape
    yiq_m = torch.tensor(_YIQ, dtype=torch.float32, device=xy.device)
    yiq = torch.matmul(yiq_m, xy.view(2 * b, 3, h * w)).view(2 * b, 3, h, w)
    lum = yiq[:, 0].contiguous()
    pc = _phase_congruency_pairs(lum[:b], lum[b:])
    gm = _shift_gradient(lum, _SCHARR_W)
    t1, t2, t3, t4 = _FSIM_T
    pc_x, pc_y = pc[..., 0], pc[..., 1]
    pc_max = torch.maximum(pc_x, pc_y)
    score = _similarity_fast(gm[:b], gm[b:], t2).mul_(_similarity_fast(pc_x, pc_y, t1)).mul_(pc_max)
    if chromatic:
        s_i = _similarity_fast(yiq[:b, 1], yiq[b:, 1], t3)
        s_q = _similarity_fast(yiq[:b, 2], yiq[b:, 2], t4)
        score.mul_(s_i.mul_(s_q).abs_().pow_(_FSIM_LAMBDA))
    return score.sum(dim=(1, 2)).to(torch.float64) / pc_max.sum(dim=(1, 2)).to(torch.float64)


def _fsim_fast(f: Tensor, r: Tensor, data_range: float, chromatic: bool, k: int) -> Tensor:
    parts = []
    hk, wk = f.shape[-2] // k, f.shape[-1] // k
    xy: Tensor | None = None
    with torch.no_grad(), _full_float32(f.device):
        for fc, rc in _fast_batches(f, r, 48 * hk * wk + 6 * f.shape[-2] * f.shape[-1]):
            if xy is None or xy.shape[1] != fc.shape[0]:
                xy = torch.empty(2, *fc.shape, device=f.device)
            xy[0].copy_(fc)
            xy[1].copy_(rc)
            if data_range != 255.0:
                xy.mul_(255.0 / data_range)
            stack = xy if k == 1 else F.avg_pool2d(xy.flatten(0, 1), k).unflatten(0, (2, fc.shape[0]))
            parts.append(_fsim_fast_chunk(stack, chromatic))
    return torch.cat(parts)


def _gmsd_fast(f: Tensor, r: Tensor, data_range: float) -> Tensor:
    h, w = f.shape[-2:]
    pad = max(h % 2, w % 2)
    # BT.601 luma, 1 / data_range and the 2x2 average in one stride-2 convolution
    weight = torch.tensor(_BT601, dtype=torch.float32, device=f.device).view(1, 3, 1, 1)
    weight = weight.expand(1, 3, 2, 2) / (4.0 * data_range)
    parts = []
    with torch.no_grad(), _full_float32(f.device):
        for fc, rc in _fast_batches(f, r, 8 * f[0].numel()):
            b = fc.shape[0]
            x = torch.cat((fc, rc)).to(torch.float32)
            if pad:
                x = F.pad(x, (0, pad, 0, pad))
            y = F.conv2d(x, weight, stride=2)[:, 0]  # (2B, H/2, W/2)
            g = _shift_gradient(y, _PREWITT_W)
            gms = _similarity_fast(g[:b], g[b:], _GMSD_T)
            parts.append(torch.std(gms.flatten(1), dim=1, correction=0).to(torch.float64))
    return torch.cat(parts)


def _nrmse_fast(f: Tensor, r: Tensor, norm: str) -> Tensor:
    n, _, h, w = f.shape
    parts = []
    buf: Tensor | None = None
    with torch.no_grad():
        for fc, rc in _fast_batches(f, r, 4 * f[0].numel()):
            b = fc.shape[0]
            if buf is None or buf.shape[0] != b:
                buf = torch.empty(b, 2, 3, h, w, device=f.device)
            buf[:, 0].copy_(rc)
            buf[:, 1].copy_(fc)
            buf[:, 1].sub_(buf[:, 0])  # real - fake: exact for uint8 input
            # sums of squares: float32 along rows (short, accurate), rows combined in float64
            rows = buf.view(b, 2, 3 * h, w)
            ss = torch.linalg.vector_norm(rows, dim=-1).to(torch.float64).square_().sum(dim=-1)  # (B, 2)
            if norm == "euclidean":
                parts.append(torch.sqrt(ss[:, 1] / ss[:, 0]))
                continue
            rmse = torch.sqrt(ss[:, 1] / (3 * h * w))
            if norm == "min-max":
                lo, hi = torch.aminmax(rows[:, 0].reshape(b, -1), dim=1)
                parts.append(rmse / (hi.to(torch.float64) - lo.to(torch.float64)))
            else:
                total = rows[:, 0].sum(dim=-1, dtype=torch.float64).sum(dim=-1)
                parts.append(rmse / (total / (3 * h * w)))
    return torch.cat(parts)


# ---------------------------------------------------------------------------
# several at once
# ---------------------------------------------------------------------------
def quality_metrics(
    fake: ImageBatch,
    real: ImageBatch,
    metrics: Sequence[str] = metric_names("quality"),
    *,
    precision: Precision = DEFAULT_PRECISION,
) -> dict[str, Tensor]:
    """Compute several quality metrics (default conventions) on the same batch.

    The metrics are those of kind ``quality`` in the registry (:data:`gbench.core.metric_specs.METRICS`);
    each is called as ``fn(fake, real, precision=precision)``.

    Args:
        fake: Synthesized images, (N, 3, H, W) or (3, H, W); uint8 or float in [0, 1].
        real: Reference images, same shape and kind as ``fake``.
        metrics: Registered quality metric names (default: all, ``'ssim'``, ``'fsim'``, ``'gmsd'``, ``'nrmse'``).
        precision: ``'fast'`` (float32, default) or ``'exact'`` (float64); record ``conventions(m, precision)``.

    Returns:
        Dict name -> float64 tensor (N,) of per-image values, in the order requested.

    Raises:
        ValueError: On an unknown or empty metric list, an unknown precision, or invalid input.
    """
    precision = _check_precision(precision)
    known = metric_names("quality")
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not metrics:
        raise ValueError(f"metrics: empty list; choose from {', '.join(known)}")
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise ValueError(f"unknown quality metric(s) {unknown}; choose from {', '.join(known)}")
    return {m: metric_spec(m).function()(fake, real, precision=precision) for m in metrics}
