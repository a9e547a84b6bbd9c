"""Stain statistics: H and E distributions inside and outside nuclei, Wasserstein-1 between sets."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance
from skimage.color import rgb2hed

from gbench.metrics.stain import BINS, RANGE_MAX, StainHistograms, stain_distances


def _set(seed: int = 0, n: int = 3, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Pink background with purple discs (nuclei) and their instance maps."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    imgs = np.empty((n, size, size, 3), np.uint8)
    labels = np.zeros((n, size, size), np.int32)
    for i in range(n):
        imgs[i] = np.clip(rng.normal((235, 170, 205), 8, (size, size, 3)), 0, 255)
        for k in range(1, 4):
            rr, cc = disk(tuple(rng.integers(6, size - 6, 2)), 4, shape=(size, size))
            labels[i, rr, cc] = k
            imgs[i, rr, cc] = np.clip(rng.normal((90, 60, 150), 8, (len(rr), 3)), 0, 255)
    return imgs, labels


def _shift_stain(imgs: np.ndarray, factor: float) -> np.ndarray:
    """Scale the hematoxylin optical density (a stronger H stain), back to RGB."""
    from skimage.color import hed2rgb

    hed = rgb2hed(imgs)
    hed[..., 0] *= factor
    return (np.clip(hed2rgb(hed), 0, 1) * 255 + 0.5).astype(np.uint8)


def test_identical_sets_have_zero_distance_and_a_shift_is_seen() -> None:
    imgs, labels = _set()
    same = StainHistograms()
    same.update(imgs, True, labels)
    same.update(imgs, False, labels)
    d = stain_distances(same)
    assert set(zip(d.channel, d.region)) == {(c, r) for c in ("hematoxylin", "eosin")
                                             for r in ("nuclei", "background", "all")}
    assert (d["w1"] == 0).all()
    shifted = StainHistograms()
    shifted.update(imgs, True, labels)
    shifted.update(_shift_stain(imgs, 1.6), False, labels)
    s = stain_distances(shifted).set_index(["channel", "region"])
    assert s.loc[("hematoxylin", "nuclei"), "w1"] > 0.02
    assert s.loc[("hematoxylin", "nuclei"), "mean_synthetic"] > s.loc[("hematoxylin", "nuclei"), "mean_real"]
    # the histogram distance is within one bin width of the pixel-level one
    h_real = np.clip(rgb2hed(imgs)[..., 0][labels > 0], 0, RANGE_MAX)
    h_fake = np.clip(rgb2hed(_shift_stain(imgs, 1.6))[..., 0][labels > 0], 0, RANGE_MAX)
    assert s.loc[("hematoxylin", "nuclei"), "w1"] == pytest.approx(wasserstein_distance(h_real, h_fake),
                                                                   abs=RANGE_MAX / BINS)


def test_without_labels_only_the_whole_image_and_batches_add_up() -> None:
    imgs, labels = _set(1)
    h = StainHistograms()
    h.update(imgs, True)
    h.update(imgs[0], False)  # one (H, W, 3) image at a time
    h.update(imgs[1:], False)
    d = stain_distances(h)
    assert list(d.region.unique()) == ["all"] and (d["w1"] == 0).all()
    assert int(d.pixels_real.iloc[0]) == imgs.shape[0] * 32 * 32
    with pytest.raises(ValueError, match="no synthetic images"):
        one = StainHistograms()
        one.update(imgs, True)
        stain_distances(one)
    with pytest.raises(ValueError, match="uint8 RGB"):
        h.update(imgs.astype(np.float32), True)
