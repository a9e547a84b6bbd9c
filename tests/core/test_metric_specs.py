"""The metric registry (gbench.core.metric_specs): every registered metric runs through its kind's
smoke path on tiny inputs, and its registered direction holds on a constructed better/worse pair."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torchmetrics import Metric

from gbench.core import metric_specs as ms
from gbench.core import records
from gbench.core.metric_specs import METRIC_KINDS, METRICS, MetricSpec, metric_spec
from gbench.metrics.instance import dq_sq_pq
from gbench.metrics.quality import quality_metrics
from gbench.reports.tables import arrow


def _quality() -> tuple[Any, Any, Any]:
    """(reference, better, worse) image batches (N, 3, H, W) uint8: identical vs noisy."""
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    noise = torch.randint(-60, 61, real.shape, generator=g, dtype=torch.int16)
    worse = (real.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
    return real, real.clone(), worse


def _instance() -> tuple[Any, Any, Any]:
    """(true, better, worse) instance maps: a perfect prediction vs one with a shrunk nucleus, a
    missed nucleus and a false positive."""
    true = np.zeros((32, 32), np.int32)
    true[2:10, 2:10], true[14:20, 4:12], true[22:30, 20:28] = 1, 2, 3
    worse = true.copy()
    worse[2:10, 2:10] = 0
    worse[3:10, 3:10] = 1  # IoU 49/64: still matched, SQ < 1
    worse[22:30, 20:28] = 0  # missed
    worse[2:6, 24:30] = 9  # false positive
    return true, true.copy(), worse


def _distribution() -> tuple[Any, Any, Any]:
    """(real, better, worse) feature sets: a second draw of the same distribution vs a shifted one."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 4))
    return real, rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 3.0


def _stacks(profile: list[float], rng: np.random.Generator) -> np.ndarray:
    """Stacks (4, P, 16, 16, 3) uint8 whose texture amplitude (sharpness) follows ``profile``."""
    noise = rng.normal(size=(4, 1, 16, 16, 1))
    x = 128 + 100 * np.asarray(profile)[None, :, None, None, None] * noise
    return np.repeat(np.clip(x, 0, 255).astype(np.uint8), 3, axis=-1)


def _multifocus() -> tuple[Any, Any, Any]:
    """(real, better, worse) stacks: the same focus profile (peak at I0) vs a peak at the first plane."""
    rng = np.random.default_rng(0)
    peak_mid = [0.2, 0.5, 1.0, 0.5, 0.2]
    return _stacks(peak_mid, rng), _stacks(peak_mid, rng), _stacks([1.0, 0.5, 0.2, 0.1, 0.05], rng)


#: One smoke input builder per metric kind: ``() -> (reference, better, worse)``.
PAIRS: dict[str, Callable[[], tuple[Any, Any, Any]]] = {
    "quality": _quality, "instance": _instance, "distribution": _distribution, "multifocus": _multifocus,
}


def _value(spec: MetricSpec, pred: Any, ref: Any) -> float:
    out = spec.compute(pred, ref)
    if isinstance(out, torch.Tensor):  # per-image values of a paired metric
        assert out.dtype == torch.float64 and out.shape == (len(pred),)
        return float(out.mean())
    assert isinstance(out, float), f"{spec.name}: {spec.fn} returned {type(out).__name__}, not a float"
    return out


def test_every_kind_has_a_smoke_path() -> None:
    assert set(PAIRS) == set(METRIC_KINDS)
    assert {s.kind for s in METRICS} <= set(METRIC_KINDS)


@pytest.mark.parametrize("spec", METRICS, ids=[s.name for s in METRICS])
def test_registered_metric_runs_and_its_direction_holds(spec: MetricSpec) -> None:
    assert spec.name == spec.name.lower() and spec.label and metric_spec(spec.name) is spec
    assert callable(spec.function())
    json.dumps(spec.protocol(), default=str)  # recordable with every value
    cls = spec.metric_class()
    assert cls is None or issubclass(cls, Metric)
    ref, better, worse = PAIRS[spec.kind]()
    b, w = _value(spec, better, ref), _value(spec, worse, ref)
    assert math.isfinite(b) and math.isfinite(w)
    if spec.higher_is_better:
        assert b > w, f"{spec.name}: higher is better, yet the better pair scores {b} <= {w}"
    else:
        assert b < w, f"{spec.name}: lower is better, yet the better pair scores {b} >= {w}"


def test_identical_inputs_score_best() -> None:
    real, same, _ = _quality()
    values = quality_metrics(same, real)
    assert list(values) == list(ms.metric_names("quality"))
    for m, v in values.items():
        assert torch.allclose(v, torch.full_like(v, 1.0 if ms.higher_is_better(m) else 0.0), atol=1e-5), m
    true, perfect, _ = _instance()
    assert all(metric_spec(m).compute(perfect, true) == 1.0 for m in ms.metric_names("instance"))


def test_directions_labels_and_order_come_from_the_registry() -> None:
    assert ms.metric_names("quality") == ("ssim", "fsim", "gmsd", "nrmse")
    assert ms.metric_names("instance", paper=True) == ("dq", "sq", "pq", "aji")
    assert [ms.direction(m) for m in ("ssim", "gmsd", "pq", "fid", "coverage", "focus_curve_l1")] == [
        "higher", "lower", "higher", "lower", "higher", "lower"]
    assert ms.metric_label("aji_plus") == "AJI+" and ms.metric_label("made_up") == "MADE_UP"
    assert ms.direction("made_up") is None and ms.direction("made_up", "unknown") == "unknown"
    assert arrow("ssim") == "↑" and arrow("nrmse") == "↓" and arrow("made_up") == ""
    assert ms.sort_metrics(["zz", "pq", "ssim", "aa", "fid"]) == ["ssim", "pq", "fid", "aa", "zz"]
    with pytest.raises(KeyError, match="no known better direction"):
        ms.higher_is_better("made_up")
    with pytest.raises(KeyError, match="not registered"):
        metric_spec("made_up")
    with pytest.raises(ValueError, match="unknown metric kind"):
        ms.metric_names("image")
    # records and the statistics re-export the registry's functions, they keep no copy
    assert records.higher_is_better is ms.higher_is_better and records.metric_label is ms.metric_label
    assert records.sort_metrics is ms.sort_metrics


def test_output_index_and_reference_resolution() -> None:
    true, _, worse = _instance()
    assert tuple(metric_spec(m).compute(worse, true) for m in ("dq", "sq", "pq")) == dq_sq_pq(worse, true)
    assert metric_spec("ssim").protocol()["win_size"] == 11
    with pytest.raises(ValueError, match="module:attribute"):
        ms.resolve("gbench.metrics.quality.ssim")


def test_registry_imports_no_metric_code() -> None:
    code = ("import sys; import gbench.core.metric_specs, gbench.core.records, gbench.core.stats; "
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('gbench.metrics')); "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
