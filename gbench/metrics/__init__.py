"""Metrics: image quality (SSIM, FSIM, GMSD, NRMSE), nuclei instance metrics (DQ, SQ, PQ, AJI, AJI+),
distribution metrics (FID, KID, precision, recall, density, coverage) and multi-focus metrics.

Each metric is a function ``fn(pred, ref)`` (the evaluated side first, the reference second)
registered, with its direction, label and conventions, in :data:`gbench.core.metric_specs.METRICS`;
every module exposes ``CONVENTIONS`` describing its protocol choices, recorded with every result.
"""
import importlib
from typing import Any

_INSTANCE = ("dq_sq_pq", "aji", "aji_plus", "instance_metrics", "aggregate")
_QUALITY = ("ssim", "fsim", "gmsd", "nrmse", "quality_metrics")
__all__ = [*_QUALITY, *_INSTANCE]


def __getattr__(name: str) -> Any:
    """The package's names load their module on first use, so the torch-free modules of this
    package (``failures``, ``stain``) import without torch (tests/metrics/test_failures.py)."""
    if name in _INSTANCE:
        return getattr(importlib.import_module("gbench.metrics.instance"), name)
    if name in _QUALITY:
        return getattr(importlib.import_module("gbench.metrics.quality"), name)
    raise AttributeError(f"module 'gbench.metrics' has no attribute {name!r}")
