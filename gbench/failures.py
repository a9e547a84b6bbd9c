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

__all__ = ["CONSTANT_STD", "NON_LOSS_COLUMNS", "segmentation_failure", "generator_failure", "history_failure",
           "output_failure"]

#: Standard-deviation floor (in [0, 1] image units) below which outputs count as constant: one
#: grey level of an 8-bit image.
CONSTANT_STD: Final[float] = 1.0 / 255.0
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


def output_failure(outputs: Any, threshold: float = CONSTANT_STD) -> str:
    """The failed check of a batch of generated images (see the module docstring), or ``""``."""
    a = _as_batch(outputs)
    n = a.shape[0]
    if n == 0:
        return "no generated outputs to check"
    if not np.all(np.isfinite(a)):
        return f"generated outputs contain NaN/inf ({int((~np.isfinite(a)).sum())} values)"
    if n >= 2:
        across = float(a.std(axis=0).mean())
        if across < threshold:
            return (f"near-constant outputs across the batch (mean per-pixel std across {n} samples "
                    f"{across:.2g} < {threshold:.2g})")
    within = a.reshape(n, a.shape[1], -1).std(axis=2).max(axis=1)
    if np.all(within < threshold):
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
