"""Distribution metrics of a synthetic set against a real one, on features of a chosen extractor.

Unpaired: the two sets may differ in size. Every function takes the synthetic set first and the real
set second, ``fn(fake, real)`` (the order of every gbench metric function, see
:mod:`gbench.core.metric_specs`, which also holds each metric's direction and label). Features come from
:mod:`gbench.metrics.features` (``inception``, ``timm:NAME``, ``random-conv``); each is
extracted once and then fed to every metric, so FID, KID, precision/recall and density/coverage
of one run all see the same vectors.

FID (Heusel et al. 2017)
    torchmetrics' ``FrechetInceptionDistance`` with a pass-through feature module (the features
    are already extracted): ``|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``, unbiased
    covariances, float64 sums, the trace of the square root from the eigenvalues of
    ``S_r S_f`` (torchmetrics' formula).
KID (Binkowski et al. 2018)
    The unbiased MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``. When both
    sets fit in one subset (``kid_subset_size >= max(N_r, N_f)``) every sample is used once
    (the unbiased estimate for unequal sizes); otherwise torchmetrics'
    ``KernelInceptionDistance`` averages ``kid_subsets`` subsets of
    ``min(kid_subset_size, N_r, N_f)`` samples per side, its random subsets drawn under
    ``torch.random.fork_rng`` seeded with ``seed`` (the caller's global RNG is left as it was).
    The std over subsets is reported as ``kid_std`` (a spread of the subset estimates, not a CI).
Precision / recall (Kynkaanniemi et al. 2019)
    The real manifold is the union of balls around every real feature with radius its distance
    to its ``k``-th nearest real neighbour (``k = 3``); precision is the share of synthetic
    samples inside it (distance ``<=`` radius, as the reference code and torch-fidelity), recall
    the share of real samples inside the synthetic manifold built the same way.
Density / coverage (Naeem et al. 2020)
    With real balls of the ``k``-NN radius (``k = 5``): density = ``1 / (k M)`` times the number
    of (synthetic sample, real ball) incidences, coverage = the share of real balls holding at
    least one synthetic sample (strict ``<``, as the reference ``prdc`` code). Density is 1 in
    expectation for matched distributions and can exceed 1 (samples crowding dense real
    regions); coverage <= 1.

All are set statistics: there is no per-image value and so no per-image confidence interval.
Their 95% interval comes from a seeded bootstrap over the images of both sets, reusing the
extracted features (:mod:`gbench.metrics.distribution_ci`; :class:`DistributionAccumulator` runs it
with ``ci_resamples``, default 200, and its records carry the method as ``ci_method``); without
it the records say ``ci_method`` = :data:`CI_METHOD`. Directions: FID, KID lower is better;
precision, recall, density, coverage higher is better.

References:
    M. Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium. NeurIPS 2017. M. Binkowski et al. Demystifying MMD GANs. ICLR 2018.
    T. Kynkaanniemi et al. Improved Precision and Recall Metric for Assessing Generative Models.
    NeurIPS 2019. M. F. Naeem et al. Reliable Fidelity and Diversity Metrics for Generative
    Models. ICML 2020.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance, poly_kernel

from gbench.core.metric_specs import metric_names
from gbench.metrics.distribution_ci import DEFAULT_SET_RESAMPLES, bootstrap_set_metrics
from gbench.metrics.features import extract

__all__ = ["DISTRIBUTION_METRICS", "CONVENTIONS", "CI_METHOD", "fid", "kid", "precision_recall",
           "density_coverage", "distribution_metrics", "DistributionAccumulator", "DistributionResult"]

#: The metrics :func:`distribution_metrics` returns (``kid_std`` aside): the registry's distribution metrics.
DISTRIBUTION_METRICS: Final[tuple[str, ...]] = metric_names("distribution")
#: ``ci_method`` of every distribution record.
CI_METHOD: Final = "set statistic: no per-image CI"
CONVENTIONS: Final[dict[str, str]] = {
    "fid": "torchmetrics FrechetInceptionDistance on extracted features (unbiased covariances, float64, "
           "eigenvalue trace of sqrt(S_r S_f))",
    "kid": "unbiased MMD^2, kernel (x.y/d + 1)^3; all samples once when both sets fit one subset, else torchmetrics "
           "KernelInceptionDistance subsets (seeded)",
    "precision": "Kynkaanniemi et al. 2019: share of synthetic samples in the real k-NN balls (<=)",
    "recall": "Kynkaanniemi et al. 2019: share of real samples in the synthetic k-NN balls (<=)",
    "density": "Naeem et al. 2020: synthetic-in-real-ball incidences / (k M) (<)",
    "coverage": "Naeem et al. 2020: share of real k-NN balls holding a synthetic sample (<)",
}


class _PassThrough(nn.Module):
    """The ``feature`` module handed to torchmetrics when the features are already extracted."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_features(x: Any, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.ndim != 2:
        raise ValueError(f"{what}: features must be (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what}: features hold NaN or inf")
    return t


def _pair(real: Any, fake: Any, least: int, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    r, f = _as_features(real, "real"), _as_features(fake, "synthetic")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"{metric}: feature dimensions differ ({r.shape[1]} real, {f.shape[1]} synthetic)")
    if len(r) < least or len(f) < least:
        raise ValueError(f"{metric} needs at least {least} samples per side, got {len(r)} real and {len(f)} synthetic")
    return r, f


def fid(fake: Any, real: Any) -> float:
    """FID between feature sets ``(N_f, D)`` (synthetic) and ``(N_r, D)`` (real) (torchmetrics, float64).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> abs(fid(x, x)) < 1e-8
        True
    """

    r, f = _pair(real, fake, 2, "FID")
    metric = FrechetInceptionDistance(feature=_PassThrough(r.shape[1]), reset_real_features=True)
    metric.set_dtype(torch.float64)
    metric.update(r, real=True)
    metric.update(f, real=False)
    return float(metric.compute())


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    m, n = len(x), len(y)
    kxx, kyy, kxy = poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid(fake: Any, real: Any, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and std over subsets (std 0 when every sample is used once; see the module docstring)."""

    r, f = _pair(real, fake, 2, "KID")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    if subset_size >= len(r) and subset_size >= len(f):
        return _mmd2_unbiased(r, f), 0.0
    m = min(subset_size, len(r), len(f))
    with warnings.catch_warnings():  # "will save all extracted features": they are in memory already
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_PassThrough(r.shape[1]), subsets=subsets, subset_size=m)
    metric.update(r, real=True)
    metric.update(f, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances computed directly (not via matrix products): exactly symmetric, 0 to
    itself, so a sample on the boundary of a ball is in or out the same way from both sides."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every row of ``x`` to its ``k``-th nearest other row."""
    return _cdist(x, x).kthvalue(k + 1, dim=1).values


def precision_recall(fake: Any, real: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with ``k``-NN balls."""
    r, f = _pair(real, fake, k + 1, f"precision/recall (k={k})")
    d = _cdist(f, r)  # (M, N)
    precision = (d <= _kth_radius(r, k)[None, :]).any(dim=1).double().mean()
    recall = (d.T <= _kth_radius(f, k)[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def density_coverage(fake: Any, real: Any, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with ``k``-NN balls around the real samples."""
    r, f = _pair(real, fake, k + 1, f"density/coverage (k={k})")
    inside = _cdist(f, r) < _kth_radius(r, k)[None, :]  # (M, N): synthetic j in real ball i
    density = inside.double().sum() / (k * len(f))
    coverage = inside.any(dim=0).double().mean()
    return float(density), float(coverage)


def distribution_metrics(fake: Any, real: Any, *, k_pr: int = 3, k_dc: int = 5, kid_subsets: int = 100,
                         kid_subset_size: int = 1000, seed: int = 0,
                         metrics: Sequence[str] = DISTRIBUTION_METRICS) -> dict[str, float]:
    """FID, KID (+ ``kid_std``), precision, recall, density, coverage of two feature sets.

    Args:
        fake, real: ``(N_f, D)`` and ``(N_r, D)`` features (synthetic first).
        k_pr, k_dc: neighbourhood sizes of precision/recall and density/coverage.
        kid_subsets, kid_subset_size, seed: KID subsets.
        metrics: which to compute (a subset of :data:`DISTRIBUTION_METRICS`).

    Raises:
        ValueError: shapes that do not match, too few samples for a metric (the metric is named).
    """
    unknown = [m for m in metrics if m not in DISTRIBUTION_METRICS]
    if unknown:
        raise ValueError(f"unknown distribution metric(s) {', '.join(unknown)} (known: "
                         f"{', '.join(DISTRIBUTION_METRICS)})")
    out: dict[str, float] = {}
    if "fid" in metrics:
        out["fid"] = fid(fake, real)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kid(fake, real, kid_subsets, kid_subset_size, seed)
    if "precision" in metrics or "recall" in metrics:
        p, r = precision_recall(fake, real, k_pr)
        out.update({m: v for m, v in (("precision", p), ("recall", r)) if m in metrics})
    if "density" in metrics or "coverage" in metrics:
        d, c = density_coverage(fake, real, k_dc)
        out.update({m: v for m, v in (("density", d), ("coverage", c)) if m in metrics})
    return out


@dataclass
class DistributionResult:
    """Values and the protocol they were made under.

    Attributes:
        values: ``{metric: value}`` (with ``kid_std``).
        conventions: JSON-able: the extractor's :meth:`~gbench.metrics.features.FeatureExtractor.info`,
            the sample counts, ``k`` values, KID subsets and the metric conventions.
        n_real, n_fake: sample counts.
    """

    values: dict[str, float]
    conventions: dict[str, Any]
    n_real: int
    n_fake: int
    note: str = ""
    bootstrap: Any = None  # gbench.metrics.distribution_ci.SetBootstrap: intervals and replicates, or None


@dataclass
class DistributionAccumulator:
    """Stream images batch by batch, keep only their features; :meth:`compute` the metrics.

    Args:
        extractor: a :class:`gbench.metrics.features.FeatureExtractor` (or any callable mapping
            uint8 ``(N, H, W, 3)`` to ``(N, D)`` with ``info()``).
        k_pr, k_dc, kid_subsets, kid_subset_size, seed: see :func:`distribution_metrics`.
        ci_resamples: Resamples of the set-statistic bootstrap (95% intervals, seeded with ``seed``;
            :func:`gbench.metrics.distribution_ci.bootstrap_set_metrics`); 0: no intervals.
    """

    extractor: Callable[..., Any]
    k_pr: int = 3
    k_dc: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    metrics: Sequence[str] = DISTRIBUTION_METRICS
    ci_resamples: int = DEFAULT_SET_RESAMPLES
    _real: list[np.ndarray] = field(default_factory=list)
    _fake: list[np.ndarray] = field(default_factory=list)

    def update(self, images: np.ndarray, real: bool) -> None:
        """Add uint8 images ``(N, H, W, 3)`` to the real or the synthetic side."""

        (self._real if real else self._fake).append(extract(self.extractor, np.asarray(images)))

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        dim = int(getattr(self.extractor, "num_features", 0))
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros((0, dim))  # noqa: E731
        return cat(self._real), cat(self._fake)

    def compute(self) -> DistributionResult:
        real, fake = self.features()
        values = distribution_metrics(fake, real, k_pr=self.k_pr, k_dc=self.k_dc, kid_subsets=self.kid_subsets,
                                      kid_subset_size=self.kid_subset_size, seed=self.seed, metrics=self.metrics)
        info = self.extractor.info() if hasattr(self.extractor, "info") else {"extractor": type(self.extractor).__name__}
        conv = {**info, "n_real": int(len(real)), "n_fake": int(len(fake)), "k_precision_recall": self.k_pr,
                "k_density_coverage": self.k_dc, "kid_subsets": self.kid_subsets,
                "kid_subset_size": int(min(self.kid_subset_size, len(real), len(fake)))
                if self.kid_subset_size < max(len(real), len(fake)) else "all samples once",
                "kid_seed": self.seed, "ci_method": CI_METHOD,
                "metrics": {m: CONVENTIONS[m] for m in self.metrics}}
        boot = None
        if self.ci_resamples:
            boot = bootstrap_set_metrics(fake, real, list(self.metrics), values=values, n_resamples=self.ci_resamples,
                                         seed=self.seed, k_pr=self.k_pr, k_dc=self.k_dc)
            conv["ci_method"] = boot.method
            conv["intervals"] = {m: list(v) for m, v in boot.intervals.items()}
        return DistributionResult(values, conv, int(len(real)), int(len(fake)), str(info.get("note", "")), boot)
