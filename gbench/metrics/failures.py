"""Failed-run checks: a run that did not learn is reported as ``failed``, never as a number.

Two checks, each returning ``""`` when the run looks sane and otherwise a one-line description of
the check that caught it (stored as the ``failure`` of its records and observations, with
``status = "failed"``):

* :func:`segmentation_failure` -- from a segmenter's per-image results on the test split
  (``n_pred`` and ``n_true``, the numbers of predicted and true nuclei of each image, as
  :func:`gbench.metrics.instance.instance_stats` reports them):

  - **no foreground**: ``n_pred == 0`` on every test image (an all-background predictor scores
    PQ 0 and would otherwise enter tables as 0.000);
  - **one blob per image**: ``n_pred <= 1`` on every test image whose truth has several nuclei
    (a predictor that marks the whole tissue, or one region, as a single nucleus). Checked only
    when at least one test image has ``n_true > 1``.

* :func:`generator_failure` -- from a training history and/or a batch of generated images:

  - **non-finite losses**: any loss in the history is NaN or +-inf (the first one is named, with
    its step);
  - **non-finite outputs**: the batch holds NaN or inf;
  - **near-constant across the batch**: the mean over pixels and channels of the per-pixel
    standard deviation across the N samples is below :data:`CONSTANT_STD` (= 1/255 in [0, 1]
    units, i.e. less than one grey level of an 8-bit image): the generator produces the same
    image whatever its input (needs N >= 2 samples from different inputs);
  - **constant images**: every image of the batch has a spatial standard deviation below
    :data:`CONSTANT_STD` in every channel (each output is a flat colour).

* :func:`multifocus_failure` -- from a batch of generated focus stacks (MI-GAN), beside the
  checks above:

  - **collapsed across samples**: the mean per-pixel standard deviation across the N stacks
    (all planes, all channels) is below :data:`COLLAPSE_RATIO` (a quarter) of the real set's
    (when a real set is given; else below :data:`CONSTANT_STD`): the generator draws (almost)
    the same cell whatever its noise;
  - **no focus peak**: the mean focus curve (variance of the Laplacian per plane,
    :func:`gbench.metrics.multifocus.focus_curve`) peaks more than :data:`PEAK_TOLERANCE` (one)
    plane away from the middle plane I0, or is flat: its peak is less than
    :data:`PEAK_RATIO` (1.5) times the smaller of its two end planes' values, or fewer than
    :data:`PEAK_SHARE` (half) of the stacks are each sharpest within I0 +-1 (real stacks: all;
    stacks with their planes shuffled: about 3 in 11).

  Outputs are (N, C, H, W) or (N, H, W, C) arrays or tensors (C in 1..4; the channel axis is
  the one of size <= 4, axis 1 when both are) or (N, H, W) single-channel batches. Floating
  outputs are taken in [0, 1] units, integer ones are divided by their dtype's maximum
  (uint8: 255).

This module imports neither torch nor any model code (a torch tensor is converted through its
``detach().cpu().numpy()``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np

from gbench.metrics.focus import focus_curve

__all__ = ["CONSTANT_STD", "NON_LOSS_COLUMNS", "COLLAPSE_RATIO", "PEAK_TOLERANCE", "PEAK_RATIO", "PEAK_SHARE", "segmentation_failure",
           "generator_failure", "history_failure", "output_failure", "multifocus_failure", "stack_diversity"]

#: Standard-deviation floor (in [0, 1] image units) below which outputs count as constant: one
#: grey level of an 8-bit image.
CONSTANT_STD: Final[float] = 1.0 / 255.0
#: A set of focus stacks is collapsed when its diversity is below this share of the real set's.
COLLAPSE_RATIO: Final[float] = 0.25
#: Planes the mean focus curve's peak may lie away from I0.
PEAK_TOLERANCE: Final[int] = 1
#: The focus peak must be this many times the sharpness of the blurrier end plane.
PEAK_RATIO: Final[float] = 1.5
#: At least this share of the stacks must be sharpest within I0 +- PEAK_TOLERANCE.
PEAK_SHARE: Final[float] = 0.5
#: History columns that are not losses (never checked for NaN/inf).
NON_LOSS_COLUMNS: Final[frozenset[str]] = frozenset({"step", "epoch", "lr", "time", "wall_time_s"})


def _rows(table: Any) -> list[Mapping[str, Any]]:
    """Rows of a DataFrame / list of mappings as a list of mappings."""
    if table is None:
        return []
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return list(table.to_dict("records"))
    return [dict(r) for r in table]


def segmentation_failure(per_image_rows: Iterable[Mapping[str, Any]] | Any) -> str:
    """The failed check of a segmenter's test-split results, or ``""`` when none fires.

    Args:
        per_image_rows: one row per test image (dicts or a DataFrame) with ``n_pred`` (predicted
            nuclei) and, for the one-blob check, ``n_true`` (true nuclei).

    Returns:
        ``""``, or e.g. ``"no foreground predicted on the test split (0 nuclei on 14 images)"``.

    Raises:
        ValueError: a row lacks ``n_pred``.

    Example:
        >>> segmentation_failure([{"n_pred": 0, "n_true": 5}, {"n_pred": 0, "n_true": 3}])
        'no foreground predicted on the test split (0 nuclei on 2 images)'
        >>> segmentation_failure([{"n_pred": 4, "n_true": 5}])
        ''
    """
    rows = _rows(per_image_rows)
    if not rows:
        return "no test images were evaluated"
    if any("n_pred" not in r for r in rows):
        raise ValueError("per-image results lack the n_pred column (predicted nuclei per image)")
    n_pred = np.array([float(r["n_pred"]) for r in rows])
    if np.all(n_pred == 0):
        return f"no foreground predicted on the test split (0 nuclei on {len(rows)} images)"
    if all("n_true" in r for r in rows):
        n_true = np.array([float(r["n_true"]) for r in rows])
        several = n_true > 1
        if several.any() and np.all(n_pred[several] <= 1):
            return (f"one component or fewer predicted per image on every test image with several nuclei "
                    f"({int(several.sum())} images, {int(n_true[several].sum())} true nuclei)")
    return ""


def history_failure(history: Iterable[Mapping[str, Any]] | Any) -> str:
    """``"loss NAME is nan at step K"`` for the first non-finite loss of a history, else ``""``.

    Every numeric column except :data:`NON_LOSS_COLUMNS` counts as a loss.
    """
    for i, row in enumerate(_rows(history)):
        for key, value in row.items():
            if key in NON_LOSS_COLUMNS:
                continue
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if not np.isfinite(v):
                step = row.get("step", i + 1)
                try:
                    step = int(step)
                except (TypeError, ValueError):
                    pass
                return f"loss {key} is {v} at step {step}"
    return ""


def _as_batch(outputs: Any) -> np.ndarray:
    """(N, C, H, W) float64 in [0, 1] units from an array / tensor batch."""
    if hasattr(outputs, "detach"):
        outputs = outputs.detach().cpu().numpy()
    a = np.asarray(outputs)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(f"generated outputs must be a batch (N, C, H, W), (N, H, W, C) or (N, H, W), got shape {a.shape}")
    if a.shape[1] > 4 and a.shape[-1] <= 4:
        a = np.moveaxis(a, -1, 1)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    if a.dtype == bool:
        return a.astype(np.float64)
    return a.astype(np.float64)


def output_failure(outputs: Any, threshold: float = CONSTANT_STD, reference: Any = None) -> str:
    """The failed check of a batch of generated images (see the module docstring), or ``""``.

    Args:
        outputs: the generated batch.
        threshold: the standard-deviation floor, in [0, 1] units.
        reference: the real images the outputs stand for (same layout), or None. A real set that
            is itself near-constant across the batch (or made of flat images) makes the same
            finding in the outputs faithful, not a failure: a flat, all-white real set scored
            against an identical fake set is a perfect score, never "failed".
    """
    a = _as_batch(outputs)
    n = a.shape[0]
    if n == 0:
        return "no generated outputs to check"
    if not np.all(np.isfinite(a)):
        return f"generated outputs contain NaN/inf ({int((~np.isfinite(a)).sum())} values)"
    ref = None if reference is None else _as_batch(reference)
    if ref is not None and (ref.shape[0] == 0 or not np.all(np.isfinite(ref))):
        ref = None
    if n >= 2:
        across = float(a.std(axis=0).mean())
        ref_across = float(ref.std(axis=0).mean()) if ref is not None and ref.shape[0] >= 2 else None
        if across < threshold and not (ref_across is not None and ref_across < threshold):
            return (f"near-constant outputs across the batch (mean per-pixel std across {n} samples "
                    f"{across:.2g} < {threshold:.2g})")
    within = a.reshape(n, a.shape[1], -1).std(axis=2).max(axis=1)
    if np.all(within < threshold):
        if ref is not None and np.all(ref.reshape(ref.shape[0], ref.shape[1], -1).std(axis=2).max(axis=1) < threshold):
            return ""  # the real images are flat too
        return f"constant output images (spatial std < {threshold:.2g} in every channel of all {n} images)"
    return ""


def generator_failure(history: Iterable[Mapping[str, Any]] | Any = None, outputs: Any = None) -> str:
    """The failed check of a generator run, or ``""``: non-finite losses, then degenerate outputs.

    Args:
        history: training losses, one row per step (``engine.FitResult.history``, ``history.csv``
            as a DataFrame); None skips the check.
        outputs: generated images for a fixed batch of *different* inputs (N, C, H, W) /
            (N, H, W, C) / (N, H, W); None skips the check.

    Returns:
        ``""`` or a one-line reason, e.g. ``"loss g_gan is nan at step 12"``.

    Example:
        >>> generator_failure(history=[{"step": 1, "l1": 0.5}, {"step": 2, "l1": float("nan")}])
        'loss l1 is nan at step 2'
        >>> generator_failure(outputs=np.full((4, 3, 8, 8), 0.5))
        'near-constant outputs across the batch (mean per-pixel std across 4 samples 0 < 0.0039)'
    """
    if history is not None:
        msg = history_failure(history)
        if msg:
            return msg
    if outputs is not None:
        return output_failure(outputs)
    return ""


def stack_diversity(stacks: Any) -> float:
    """Mean over pixels, planes and channels of the per-pixel standard deviation across the stacks.

    ``(N, P, H, W, 3)`` stacks (uint8 in grey levels; float taken as they are). 0 for a set of
    identical stacks; needs N >= 2.
    """
    a = np.asarray(stacks.detach().cpu().numpy() if hasattr(stacks, "detach") else stacks, dtype=np.float64)
    if a.ndim != 5 or a.shape[0] < 2:
        raise ValueError(f"stack_diversity needs at least 2 stacks (N, P, H, W, C), got shape {a.shape}")
    return float(a.std(axis=0).mean())


def multifocus_failure(stacks: Any, real: Any = None, history: Iterable[Mapping[str, Any]] | Any = None, *,
                       collapse_ratio: float = COLLAPSE_RATIO, peak_tolerance: int = PEAK_TOLERANCE,
                       peak_ratio: float = PEAK_RATIO, peak_share: float = PEAK_SHARE) -> str:
    """The failed check of a multi-focus generator (MI-GAN) run, or ``""`` (see the module docstring).

    Args:
        stacks: generated stacks ``(N, P, H, W, 3)`` uint8 from N different noise vectors.
        real: real stacks of the same geometry (the diversity reference); None uses the absolute
            floor :data:`CONSTANT_STD` (one grey level).
        history: training losses (NaN/inf check), or None.
        collapse_ratio, peak_tolerance, peak_ratio, peak_share: the thresholds.

    Returns:
        ``""`` or one line, e.g. ``"collapsed samples: diversity 1.3 grey levels < 0.25 x the real
        set's 16.7"`` or ``"no focus peak: the mean focus curve peaks at I-5 (I0 +-1 expected)"``.

    Example:
        >>> flat = np.full((4, 11, 16, 16, 3), 128, np.uint8)
        >>> multifocus_failure(flat)
        'collapsed samples: diversity 0 grey levels (identical stacks)'
    """

    if history is not None:
        msg = history_failure(history)
        if msg:
            return msg
    a = np.asarray(stacks.detach().cpu().numpy() if hasattr(stacks, "detach") else stacks)
    if a.ndim != 5 or a.shape[-1] != 3:
        raise ValueError(f"focus stacks must be (N, P, H, W, 3), got shape {a.shape}")
    if a.shape[0] == 0:
        return "no generated stacks to check"
    if not np.all(np.isfinite(a)):
        return f"generated stacks contain NaN/inf ({int((~np.isfinite(a)).sum())} values)"
    if a.shape[0] >= 2:
        div = stack_diversity(a)
        if real is not None:
            ref = stack_diversity(real)
            if div < collapse_ratio * ref:
                return (f"collapsed samples: diversity {div:.3g} grey levels < {collapse_ratio:g} x the real set's "
                        f"{ref:.3g} (per-pixel std across {a.shape[0]} stacks)")
        elif div < CONSTANT_STD * 255:
            return (f"collapsed samples: diversity {div:.3g} grey levels" +
                    (" (identical stacks)" if div == 0 else f" < {CONSTANT_STD * 255:g}"))
    p = a.shape[1]
    if p >= 3:
        curve = focus_curve(a.astype(np.uint8) if a.dtype != np.uint8 else a).mean(axis=0)  # (ints: grey levels)
        half = p // 2
        peak = int(np.argmax(curve))
        label = f"I{peak - half:+d}" if peak != half else "I0"
        ends = float(min(curve[0], curve[-1]))
        if not float(curve[peak]) >= peak_ratio * ends or float(curve[peak]) <= 0:
            return (f"no focus peak: the mean focus curve is flat (peak {float(curve[peak]):.3g} at {label} < "
                    f"{peak_ratio:g} x the blurrier end plane's {ends:.3g})")
        if abs(peak - half) > peak_tolerance:
            return f"no focus peak: the mean focus curve peaks at {label} (I0 +-{peak_tolerance} expected)"
        curves = focus_curve(a.astype(np.uint8) if a.dtype != np.uint8 else a)
        share = float(np.mean(np.abs(np.argmax(curves, axis=1) - half) <= peak_tolerance))
        if share < peak_share:
            return (f"no focus peak: only {share:.0%} of the stacks are sharpest within I0 +-{peak_tolerance} "
                    f"(at least {peak_share:.0%} expected)")
    return ""
