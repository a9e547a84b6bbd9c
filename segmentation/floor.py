"""The segmentation floor: a classical nucleus segmenter that needs no training.

Table 2's "did the model learn anything" row, as ``mask-paint`` is Table 1's: a trained cell that
cannot beat it significantly on PQ learned nothing a threshold could not do (see
:mod:`gbench.reports.claims`, where such a cell's claims are ``untested: below the floor``).

Steps, per RGB tile (no parameter is fitted to any data set):

1. hematoxylin optical density, ``skimage.color.rgb2hed(image)[..., 0]``, smoothed by a Gaussian
   of ``sigma`` pixels;
2. Otsu's threshold (``skimage.filters.threshold_otsu``) on it: nuclei are the dense side; holes
   filled (``scipy.ndimage.binary_fill_holes``), components under ``min_area`` pixels removed
   (``skimage.morphology.remove_small_objects``);
3. split touching nuclei by a distance-transform watershed: markers at the local maxima of the
   Euclidean distance to the background (``skimage.feature.peak_local_max``, ``min_distance``
   pixels apart, one region per foreground component at least), flooded over the negative
   distance inside the mask (``skimage.segmentation.watershed``);
4. instances under ``min_area`` pixels are dropped again and the ids relabelled 1..N.

It does not fit :class:`gbench.segmentation.SegmenterEntry` (no network, no logits, no training),
so it is not in the segmenter registry: the grid scores it directly (:func:`score_floor`) on the
same test images as every trained cell, records it as model :data:`FLOOR_MODEL` with training set
:data:`FLOOR_TRAIN_SET`, and its records and observations sit beside the cells'.

Cost: 0.55 s for the 5 CPM-15 test tiles (392x459 to 808x1032) on one CPU core, segmentation
and scoring together, so seconds for a test split.

Example:
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 230, np.uint8); img[20:30, 20:30] = (60, 40, 120)
    >>> int(floor_segment(img).max())
    1
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from scipy import ndimage as ndi

from gbench.core.observations import FLOOR_SEGMENTER, FLOOR_TRAIN_SET
from gbench.metrics.instance import aggregate, instance_metrics

__all__ = ["FLOOR_MODEL", "FLOOR_TRAIN_SET", "FLOOR_METHOD", "FloorConfig", "floor_segment", "score_floor"]

#: Model key of the floor's records and observations (``reports.tables.DISPLAY_NAMES`` shows it as a floor);
#: its training-set key is :data:`FLOOR_TRAIN_SET` (``none``). Both live in :mod:`gbench.core.observations`.
FLOOR_MODEL: Final = FLOOR_SEGMENTER
#: One line on how the floor segments (recorded in its conventions).
FLOOR_METHOD: Final = ("no training: rgb2hed hematoxylin channel, Gaussian smoothing, Otsu threshold, holes filled, "
                       "small objects removed, distance-transform watershed (peak_local_max markers)")


@dataclass(frozen=True)
class FloorConfig:
    """Parameters of :func:`floor_segment`: fixed defaults, picked from five settings on the CPM-15
    *train* split (PQ 0.44 there; 0.52 on its 5 test tiles), never tuned on a test split.

    Attributes:
        sigma: Gaussian smoothing of the hematoxylin channel, pixels (0: none).
        min_area: Smallest nucleus kept, pixels.
        min_distance: Smallest distance between two watershed markers, pixels.
    """

    sigma: float = 2.0
    min_area: int = 30
    min_distance: int = 7

    def __post_init__(self) -> None:
        if not (self.sigma >= 0 and np.isfinite(self.sigma)):
            raise ValueError(f"sigma must be a non-negative number, got {self.sigma}")
        if self.min_area < 0 or self.min_distance < 1:
            raise ValueError(f"min_area must be >= 0 and min_distance >= 1, got {self.min_area}, {self.min_distance}")


def floor_segment(image: Any, config: FloorConfig = FloorConfig()) -> np.ndarray:
    """Nucleus instances of one RGB tile, without training (see the module docstring).

    Args:
        image: ``(H, W, 3)`` RGB, uint8 (or float in [0, 1]).
        config: The floor's parameters.

    Returns:
        ``(H, W)`` int32 instance map, 0 = background, ids 1..N.

    Raises:
        ValueError: not an ``(H, W, 3)`` image.
    """
    from skimage.color import rgb2hed
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import label
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import relabel_sequential, watershed

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"floor_segment needs an (H, W, 3) RGB image, got shape {img.shape}")
    rgb = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    hema = rgb2hed(np.clip(rgb, 0.0, 1.0))[..., 0]
    if config.sigma > 0:
        hema = gaussian(hema, sigma=config.sigma)
    if float(hema.max() - hema.min()) <= 1e-12:
        return np.zeros(img.shape[:2], np.int32)
    mask = hema > threshold_otsu(hema)
    mask = ndi.binary_fill_holes(mask)
    if config.min_area > 0:
        mask = remove_small_objects(mask, max_size=config.min_area - 1)
    if not mask.any():
        return np.zeros(img.shape[:2], np.int32)
    dist = ndi.distance_transform_edt(mask)
    components = label(mask)
    peaks = peak_local_max(dist, min_distance=config.min_distance, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    # a component without a peak (flat distance) still becomes one nucleus
    missing = np.setdiff1d(np.unique(components[mask]), np.unique(components[markers > 0]))
    nxt = len(peaks) + 1
    for c in missing:
        ys, xs = np.nonzero(components == c)
        markers[ys[len(ys) // 2], xs[len(xs) // 2]] = nxt
        nxt += 1
    inst = watershed(-dist, markers, mask=mask)
    if config.min_area > 0:
        sizes = np.bincount(inst.ravel())
        small = np.flatnonzero(sizes < config.min_area)
        inst[np.isin(inst, small[small > 0])] = 0
    return relabel_sequential(inst.astype(np.int32))[0].astype(np.int32)


def score_floor(dataset: Any, config: FloorConfig = FloorConfig()) -> dict[str, Any]:
    """The floor on every tile of ``dataset``, scored as a trained cell is
    (:func:`gbench.metrics.instance.instance_metrics` per tile, both aggregations).

    Args:
        dataset: Samples with ``name``, ``image`` (uint8 RGB) and ``instances`` (the test split).
        config: The floor's parameters.

    Returns:
        ``{"per_image": [{"name", dq, sq, pq, aji, aji_plus, tp, fp, ...}, ...], "mean": ...,
        "pooled": ..., "config": {...}, "method": FLOOR_METHOD}`` (the layout of
        :func:`gbench.segmentation.train.evaluate`).

    Raises:
        ValueError: an empty dataset.
    """
    rows = [{"name": s.name, **instance_metrics(floor_segment(s.image, config), s.instances)} for s in dataset]
    if not rows:
        raise ValueError("the test split is empty: nothing to score the floor on")
    return {"per_image": rows, "mean": aggregate(rows, mode="mean"), "pooled": aggregate(rows, mode="pooled"),
            "config": asdict(config), "method": FLOOR_METHOD}
