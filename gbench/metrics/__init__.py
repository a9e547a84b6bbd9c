"""Metrics: image quality (SSIM, FSIM, GMSD, NRMSE) and nuclei instance metrics (DQ, SQ, PQ, AJI, AJI+).

Each is a function on batches plus a torchmetrics ``Metric`` class; every module exposes
``CONVENTIONS`` describing its protocol choices, recorded with every result.
"""
from gbench.metrics.instance import (
    AggregatedJaccardIndex,
    NucleiPQ,
    aggregate,
    aji,
    aji_plus,
    dq_sq_pq,
    instance_metrics,
)
from gbench.metrics.quality import (
    HIGHER_IS_BETTER,
    FSIMMetric,
    GMSDMetric,
    NRMSEMetric,
    SSIMMetric,
    fsim,
    gmsd,
    nrmse,
    quality_metrics,
    ssim,
)

__all__ = [
    "ssim", "fsim", "gmsd", "nrmse", "quality_metrics", "HIGHER_IS_BETTER",
    "SSIMMetric", "FSIMMetric", "GMSDMetric", "NRMSEMetric",
    "dq_sq_pq", "aji", "aji_plus", "instance_metrics", "aggregate", "NucleiPQ", "AggregatedJaccardIndex",
]
