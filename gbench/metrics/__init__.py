"""Metrics: image quality (SSIM, FSIM, GMSD, NRMSE) and nuclei instance metrics (DQ, SQ, PQ, AJI, AJI+).

Each is a function on batches plus a torchmetrics ``Metric`` class; every module exposes
``CONVENTIONS`` describing its protocol choices, recorded with every result.
"""
import importlib
from typing import Any

_INSTANCE = ("dq_sq_pq", "aji", "aji_plus", "instance_metrics", "aggregate", "NucleiPQ", "AggregatedJaccardIndex")
_QUALITY = ("ssim", "fsim", "gmsd", "nrmse", "quality_metrics", "HIGHER_IS_BETTER", "SSIMMetric", "FSIMMetric",
            "GMSDMetric", "NRMSEMetric")
__all__ = [*_QUALITY, *_INSTANCE]


def __getattr__(name: str) -> Any:
    """The package's names load their module on first use, so the torch-free modules of this
    package (``failures``, ``stain``) import without torch (tests/metrics/test_failures.py)."""
    if name in _INSTANCE:
        return getattr(importlib.import_module("gbench.metrics.instance"), name)
    if name in _QUALITY:
        return getattr(importlib.import_module("gbench.metrics.quality"), name)
    raise AttributeError(f"module 'gbench.metrics' has no attribute {name!r}")
