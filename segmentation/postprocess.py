"""From a segmenter's output maps to an instance map, for each target.

* ``binary`` (Sharp-GAN's setting): foreground = probability > ``threshold``, instances =
  connected components (``connectivity`` 4 or 8). Touching nuclei merge.
* ``contour``: markers = connected components of (inside probability > ``marker_threshold``);
  foreground = 1 - background probability > ``threshold``; the markers are grown back over the
  foreground by a watershed on the negated inside probability (``skimage.segmentation.watershed``
  with ``mask``), so each boundary pixel joins the nucleus whose interior it borders. Foreground
  components without a marker become instances of their own.
* ``distance``: foreground = foreground probability > ``threshold``; markers = connected
  components of (distance > ``marker_threshold``) (``markers="threshold"``) or the regional
  maxima of height ``h`` of the distance (``markers="h-maxima"``,
  ``skimage.morphology.h_maxima``); a marker-controlled watershed on the negated distance inside
  the foreground gives the instances. Foreground components without a marker become instances.

In every mode instances smaller than ``min_area`` pixels are removed afterwards (set to
background, never merged) and ids are relabelled 1..n. The parameters that apply to a target
(:meth:`PostprocessConfig.params`) are stored with every result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from gbench.data.labels import relabel_sequential

__all__ = ["PostprocessConfig", "postprocess", "binary_instances", "contour_instances", "distance_instances"]


@dataclass(frozen=True)
class PostprocessConfig:
    """Post-processing parameters.

    Attributes:
        threshold: foreground probability threshold (strictly greater counts as foreground).
        min_area: instances with fewer pixels are removed (0 keeps all).
        connectivity: 4 or 8, for connected components.
        marker_threshold: ``contour``: inside probability above which a pixel seeds a marker;
            ``distance`` with ``markers="threshold"``: predicted distance above which it does.
        markers: ``distance`` only: ``threshold`` or ``h-maxima``.
        h: ``distance`` with ``markers="h-maxima"``: minimal height of a maximum.
    """

    threshold: float = 0.5
    min_area: int = 10
    connectivity: int = 4
    marker_threshold: float = 0.5
    markers: Literal["threshold", "h-maxima"] = "threshold"
    h: float = 0.15

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if not 0.0 <= self.marker_threshold < 1.0:
            raise ValueError(f"marker_threshold must be in [0, 1), got {self.marker_threshold}")
        if self.min_area < 0:
            raise ValueError(f"min_area must be >= 0, got {self.min_area}")
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {self.connectivity}")
        if self.markers not in ("threshold", "h-maxima"):
            raise ValueError(f"markers must be 'threshold' or 'h-maxima', got {self.markers!r}")
        if not 0.0 < self.h < 1.0:
            raise ValueError(f"h must be in (0, 1), got {self.h}")

    def params(self, target: str) -> dict[str, Any]:
        """The parameters that apply to ``target``, with the method's name, for records."""
        base: dict[str, Any] = {"threshold": self.threshold, "min_area": self.min_area,
                                "connectivity": self.connectivity}
        if target == "binary":
            return {"method": "connected-components", **base}
        if target == "contour":
            return {"method": "inside-markers+watershed", **base, "marker_threshold": self.marker_threshold}
        if target == "distance":
            out = {"method": "distance-watershed", **base, "markers": self.markers}
            if self.markers == "threshold":
                out["marker_threshold"] = self.marker_threshold
            else:
                out["h"] = self.h
            return out
        raise ValueError(f"unknown target {target!r}")


def _structure(connectivity: int) -> np.ndarray:
    return ndi.generate_binary_structure(2, 1 if connectivity == 4 else 2)


def _finish(inst: np.ndarray, min_area: int) -> np.ndarray:
    lab, n = relabel_sequential(inst)
    if min_area > 0 and n:
        area = np.bincount(lab.ravel(), minlength=n + 1)
        keep = area >= min_area
        keep[0] = False
        lab = np.where(keep[lab], lab, 0)
        lab, _ = relabel_sequential(lab)
    return lab.astype(np.int32)


def _check_map(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) map, got shape {a.shape}")
    return a


def binary_instances(prob: np.ndarray, config: PostprocessConfig = PostprocessConfig()) -> np.ndarray:
    """Connected components of the thresholded foreground probability.

    Args:
        prob: (H, W) foreground probability in [0, 1].
        config: post-processing parameters (``threshold``, ``connectivity``, ``min_area``).

    Returns:
        (H, W) int32 instance map, ids 1..n.
    """
    p = _check_map(prob, "prob")
    lab, _ = ndi.label(p > config.threshold, structure=_structure(config.connectivity))
    return _finish(lab, config.min_area)


def _grow(markers: np.ndarray, fg: np.ndarray, relief: np.ndarray, connectivity: int) -> np.ndarray:
    """Watershed of ``relief`` from ``markers`` inside ``fg``; unmarked fg components added."""

    markers = np.where(fg, markers, 0)
    conn = 1 if connectivity == 4 else 2
    inst = watershed(relief, markers, connectivity=conn, mask=fg) if markers.any() else np.zeros(fg.shape, np.int32)
    rest, n_rest = ndi.label(fg & (inst == 0), structure=_structure(connectivity))
    if n_rest:
        inst = np.where(rest > 0, rest + int(inst.max()), inst)
    return inst


def contour_instances(probs: np.ndarray, config: PostprocessConfig = PostprocessConfig()) -> np.ndarray:
    """Instances from 3-class probabilities (background, inside, boundary).

    Args:
        probs: (3, H, W) class probabilities.
        config: ``threshold`` (foreground = 1 - p_background > threshold), ``marker_threshold``
            (markers = components of p_inside > marker_threshold), ``connectivity``, ``min_area``.

    Returns:
        (H, W) int32 instance map, ids 1..n.
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 3 or p.shape[0] != 3:
        raise ValueError(f"contour probabilities must be (3, H, W), got shape {p.shape}")
    fg = (1.0 - p[0]) > config.threshold
    markers, _ = ndi.label((p[1] > config.marker_threshold) & fg, structure=_structure(config.connectivity))
    return _finish(_grow(markers, fg, -p[1], config.connectivity), config.min_area)


def distance_instances(fg_prob: np.ndarray, dist: np.ndarray,
                       config: PostprocessConfig = PostprocessConfig()) -> np.ndarray:
    """Marker-controlled watershed of a regressed distance-to-boundary map.

    Args:
        fg_prob: (H, W) foreground probability.
        dist: (H, W) predicted per-nucleus normalised distance to the boundary, in [0, 1].
        config: ``threshold``, ``markers`` (``threshold`` with ``marker_threshold``, or
            ``h-maxima`` with ``h``), ``connectivity``, ``min_area``.

    Returns:
        (H, W) int32 instance map, ids 1..n.
    """
    p = _check_map(fg_prob, "fg_prob")
    d = _check_map(dist, "dist")
    if p.shape != d.shape:
        raise ValueError(f"fg_prob and dist differ in shape: {p.shape} vs {d.shape}")
    fg = p > config.threshold
    d = np.where(fg, d, 0.0).astype(np.float64)
    if config.markers == "threshold":
        seeds = d > config.marker_threshold
    else:
        seeds = h_maxima(d, config.h).astype(bool) & fg
    markers, _ = ndi.label(seeds, structure=_structure(config.connectivity))
    return _finish(_grow(markers, fg, -d, config.connectivity), config.min_area)


def postprocess(target: str, maps: np.ndarray, config: PostprocessConfig = PostprocessConfig()) -> np.ndarray:
    """Instance map from one image's output maps (``Target.maps`` of a single image).

    Args:
        target: ``binary`` (maps (1, H, W)), ``contour`` ((3, H, W)) or ``distance`` ((2, H, W):
            foreground probability, distance).
        maps: the image's maps as a numpy array.
        config: parameters.

    Returns:
        (H, W) int32 instance map, ids 1..n.
    """
    m = np.asarray(maps)
    want = {"binary": 1, "contour": 3, "distance": 2}
    if target not in want:
        raise ValueError(f"unknown target {target!r} (known: {', '.join(want)})")
    if m.ndim != 3 or m.shape[0] != want[target]:
        raise ValueError(f"target {target!r} needs maps of shape ({want[target]}, H, W), got {m.shape}")
    if target == "binary":
        return binary_instances(m[0], config)
    if target == "contour":
        return contour_instances(m, config)
    return distance_instances(m[0], m[1], config)
