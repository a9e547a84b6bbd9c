"""Stain statistics of real vs synthetic H&E images: hematoxylin and eosin inside and outside nuclei.

A generator can match SSIM and still paint the wrong stain. Each image is unmixed into
hematoxylin (H) and eosin (E) optical densities with scikit-image's ``rgb2hed`` (Ruifrok &
Johnston colour deconvolution, scikit-image's H&E-DAB stain matrix; the DAB channel is
ignored). The pixel values of each channel are pooled over a set, per region:

- ``nuclei``: pixels of an instance (label > 0), ``background``: the rest, when nucleus labels
  are known (the generator form always has them; the folder form uses ``labels/`` or
  ``masks/`` beside the images when present);
- ``all``: every pixel (always).

Real and synthetic distributions are compared with the 1-Wasserstein distance (earth mover's
distance, in optical-density units: how far, on average, the stain values must move to turn one
distribution into the other; 0 for identical sets) via ``scipy.stats.wasserstein_distance``
on fixed-bin histograms (:data:`BINS` bins over ``[0, RANGE_MAX]``, every value of an 8-bit RGB
image lies there; the bin centres weighted by the counts, so the distance is exact for the
binned values and within one bin width, ``RANGE_MAX / BINS``, of the pixel-level distance).
Histograms stream: sets of any size use constant memory.

References:
    A. C. Ruifrok, D. A. Johnston. Quantification of histochemical staining by color
    deconvolution. Analytical and Quantitative Cytology and Histology 23 (2001).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance
from skimage.color import rgb2hed

__all__ = ["CHANNELS", "REGIONS", "BINS", "RANGE_MAX", "CONVENTIONS", "stain_channels", "StainHistograms",
           "stain_distances"]

CHANNELS: Final[tuple[str, ...]] = ("hematoxylin", "eosin")
REGIONS: Final[tuple[str, ...]] = ("nuclei", "background", "all")
BINS: Final = 400
#: Upper end of the histograms: rgb2hed of any 8-bit colour lies in [0, 1.88] (H) and [0, 1.14] (E).
RANGE_MAX: Final = 2.0
CONVENTIONS: Final[dict[str, str]] = {
    "unmixing": "skimage.color.rgb2hed (Ruifrok & Johnston H&E-DAB matrix), channels H and E, optical density",
    "regions": "nuclei = instance label > 0, background = label 0 (when labels are known), all = every pixel",
    "distance": f"scipy.stats.wasserstein_distance of {BINS}-bin histograms over [0, {RANGE_MAX}] (bin centres, "
                "count weights)",
}


def stain_channels(images: np.ndarray) -> np.ndarray:
    """H and E optical densities: uint8 ``(..., H, W, 3)`` -> float ``(..., H, W, 2)``."""

    a = np.asarray(images)
    if a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"stain statistics need uint8 RGB images (..., H, W, 3), got {a.shape} {a.dtype}")
    return rgb2hed(a)[..., :2]


def _edges() -> np.ndarray:
    return np.linspace(0.0, RANGE_MAX, BINS + 1)


@dataclass
class StainHistograms:
    """Per (side, channel, region) histograms, filled batch by batch.

    ``counts[(side, channel, region)]`` is an ``int64 (BINS,)`` array; ``side`` is ``real`` or
    ``synthetic``.
    """

    counts: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=lambda: {"real": 0, "synthetic": 0})
    labelled: dict[str, int] = field(default_factory=lambda: {"real": 0, "synthetic": 0})

    def update(self, images: np.ndarray, real: bool, labels: np.ndarray | None = None) -> None:
        """Add uint8 images ``(N, H, W, 3)`` (or one ``(H, W, 3)``) and optional instance labels
        ``(N, H, W)`` (> 0 inside a nucleus)."""
        imgs = np.asarray(images)
        if imgs.ndim == 3:
            imgs = imgs[None]
            labels = None if labels is None else np.asarray(labels)[None]
        side = "real" if real else "synthetic"
        hed = stain_channels(imgs)
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != imgs.shape[:3]:
                raise ValueError(f"labels {labels.shape} do not match images {imgs.shape[:3]}")
            inside = labels > 0
        edges = _edges()
        for c, channel in enumerate(CHANNELS):
            values = np.clip(hed[..., c], 0.0, RANGE_MAX)
            parts = {"all": values.ravel()}
            if labels is not None:
                parts["nuclei"] = values[inside]
                parts["background"] = values[~inside]
            for region, v in parts.items():
                key = (side, channel, region)
                hist = np.histogram(v, bins=edges)[0].astype(np.int64)
                self.counts[key] = self.counts.get(key, np.zeros(BINS, np.int64)) + hist
        self.images[side] += len(imgs)
        if labels is not None:
            self.labelled[side] += len(imgs)

    def regions(self) -> list[str]:
        """The regions both sides have for every image (``nuclei``/``background`` only when all are labelled)."""
        full = all(self.labelled[s] == self.images[s] > 0 for s in ("real", "synthetic"))
        return list(REGIONS) if full else ["all"]

    def centres(self) -> np.ndarray:
        e = _edges()
        return (e[:-1] + e[1:]) / 2


def stain_distances(hist: StainHistograms) -> Any:
    """One row per (channel, region): ``w1`` (real vs synthetic), the mean and standard deviation of
    each side, pixel counts. A pandas DataFrame.

    Raises:
        ValueError: a side has no images.
    """

    for side in ("real", "synthetic"):
        if hist.images[side] == 0:
            raise ValueError(f"stain statistics: no {side} images")
    x = hist.centres()
    rows = []
    for channel in CHANNELS:
        for region in hist.regions():
            r, f = hist.counts[("real", channel, region)], hist.counts[("synthetic", channel, region)]
            if r.sum() == 0 or f.sum() == 0:
                rows.append({"channel": channel, "region": region, "w1": float("nan"), "mean_real": float("nan"),
                             "mean_synthetic": float("nan"), "std_real": float("nan"),
                             "std_synthetic": float("nan"), "pixels_real": int(r.sum()),
                             "pixels_synthetic": int(f.sum())})
                continue
            mr, mf = float((x * r).sum() / r.sum()), float((x * f).sum() / f.sum())
            rows.append({"channel": channel, "region": region,
                         "w1": float(wasserstein_distance(x, x, u_weights=r, v_weights=f)),
                         "mean_real": mr, "mean_synthetic": mf,
                         "std_real": float(np.sqrt((r * (x - mr) ** 2).sum() / r.sum())),
                         "std_synthetic": float(np.sqrt((f * (x - mf) ** 2).sum() / f.sum())),
                         "pixels_real": int(r.sum()), "pixels_synthetic": int(f.sum())})
    return pd.DataFrame(rows)
