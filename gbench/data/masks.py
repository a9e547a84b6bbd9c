"""Random nucleus instance maps: nucleus-like polygons that touch and overlap.

A procedural mask generator after Hou et al., CVPR 2019 ("Robust histopathology image
analysis: to label or to synthesize?"), the generator Sharp-GAN uses to draw its S3k / S10k
mask sets: random star-shaped polygons of variable size, elongation and irregularity, placed
at random (optionally clustered along rings and bands), some allowed to overlap earlier ones.

Model of one nucleus:
    * area ``A`` ~ log-normal (``log_area_mean``, ``log_area_std`` are the mean and standard
      deviation of ``ln A``, ``A`` in pixels);
    * eccentricity ``e`` ~ Beta with mean ``ecc_mean`` and standard deviation ``ecc_std``; the
      ellipse has semi-axes ``a >= b`` with ``b / a = sqrt(1 - e**2)`` and ``pi * a * b = A``,
      and a uniform random orientation;
    * the ellipse radius ``r(theta)`` is multiplied by ``1 + sum_k c_k cos(k theta + phi_k)``
      for ``k = 2..5``, ``c_k ~ N(0, irregularity / sqrt(k))`` (a smooth random function of the
      angle), clipped to ``[0.55, 1.6]`` so the outline stays star-shaped around the centre;
    * the outline is a polygon of ``_N_VERTICES`` vertices rasterized with
      the nucleus's own bounding box (never the full image), all nuclei of an image at once;
      the result equals ``skimage.draw.polygon`` on the outline (``polygon_vertices``) up to
      pixels whose centres lie exactly on an edge.

Placement, one image:
    * density ``d`` (nuclei per 10,000 px) ~ Gamma with mean ``density_mean`` and standard
      deviation ``density_std``; the number of nuclei drawn is ``Poisson(d * H * W / 1e4)``;
    * a fraction ``clustering`` of the nuclei have centres on 1-3 random structures (rings,
      like glands, and bands, like epithelial layers or vessels) and are oriented along them;
      the others are uniform over the image;
    * each nucleus is allowed to overlap with probability ``overlap``; an overlapping nucleus is
      moved next to a random earlier nucleus so that the two really overlap, and it is painted
      over it (occlusion: later nuclei hide earlier ones). Any other nucleus may not share a
      pixel with earlier ones: it gets up to ``_TRIES`` random positions and is skipped when
      none is free. Touching (adjacent, not overlapping) happens naturally at high density;
    * a nucleus whose visible part is split by an occluder or by the image border keeps its
      largest 4-connected part, so every nucleus is one connected region (8-connected: a
      one-pixel polygon tip may hang on by a corner);
      nuclei left with fewer than ``min_pixels`` visible pixels are dropped;
    * the remaining ids are renumbered 1..n in drawing order.

Determinism: image ``k`` of ``seed`` is drawn from its own generator,
``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))`` (the ``k``-th child of
``SeedSequence(seed)``), so ``synthesize_instances(count, size, seed)[k]`` is the same array for
every ``count > k`` and every worker count.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from gbench.data.labels import relabel_sequential

__all__ = [
    "MaskStats",
    "DEFAULT_STATS",
    "synthesize_instances",
    "synthesize_instance_map",
    "iter_synthesize",
    "fit_mask_stats",
    "mask_statistics",
    "image_rng",
    "polygon_vertices",
]

_N_VERTICES = 28
_HARMONICS = np.arange(2, 6)
_TRIES = 12
_RADIUS_CLIP = (0.55, 1.6)
_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
_CAL_MAPS = 32  # maps per calibration draw in fit_mask_stats
_CAL_ROUNDS = 2


@dataclass(frozen=True)
class MaskStats:
    """Parameters of the nucleus mask generator (module docstring gives the model).

    Defaults describe H&E nuclei at 40x-like scale on 256x256 crops: areas mostly 80-600 px
    (median ~200 px), eccentricity ~0.7, ~7 nuclei per 10,000 px (~45 per 256x256 crop, ~14 %
    foreground), 15 % of nuclei overlapping a neighbour.

    Attributes:
        log_area_mean: mean of ln(area in px).
        log_area_std: standard deviation of ln(area).
        ecc_mean: mean eccentricity of the underlying ellipse, in (0, 1).
        ecc_std: standard deviation of the eccentricity (Beta distribution).
        irregularity: amplitude of the random radial perturbation (0 = exact ellipses;
            0.1 = mildly irregular; 0.3 = very irregular).
        density_mean: mean number of nuclei drawn per 10,000 px.
        density_std: standard deviation of the per-image density (Gamma distribution).
        overlap: probability that a nucleus is placed overlapping an earlier one, in [0, 1].
        clustering: fraction of nuclei placed along rings/bands instead of uniformly, in [0, 1].
        min_pixels: nuclei with fewer visible pixels are dropped.
    """

    log_area_mean: float = 5.3
    log_area_std: float = 0.45
    ecc_mean: float = 0.72
    ecc_std: float = 0.15
    irregularity: float = 0.08
    density_mean: float = 7.0
    density_std: float = 1.5
    overlap: float = 0.15
    clustering: float = 0.0
    min_pixels: int = 12

    def __post_init__(self) -> None:
        if not 0.0 < self.ecc_mean < 1.0:
            raise ValueError(f"ecc_mean must lie in (0, 1), got {self.ecc_mean}")
        if self.ecc_std < 0 or self.log_area_std < 0 or self.density_std < 0:
            raise ValueError("standard deviations must be non-negative")
        if self.irregularity < 0:
            raise ValueError("irregularity must be non-negative")
        if self.density_mean < 0:
            raise ValueError("density_mean must be non-negative")
        for name in ("overlap", "clustering"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")
        if self.min_pixels < 1:
            raise ValueError("min_pixels must be >= 1")

    @property
    def mean_area(self) -> float:
        """Mean nucleus area in px implied by the log-normal parameters."""
        return math.exp(self.log_area_mean + 0.5 * self.log_area_std**2)

    @property
    def median_area(self) -> float:
        return math.exp(self.log_area_mean)


DEFAULT_STATS = MaskStats()

_OVERRIDES = {f.name for f in fields(MaskStats)}


def _with_overrides(stats: MaskStats | None, overrides: dict[str, Any]) -> MaskStats:
    stats = DEFAULT_STATS if stats is None else stats
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - _OVERRIDES
    if unknown:
        raise TypeError(f"unknown MaskStats field(s): {', '.join(sorted(unknown))}")
    return replace(stats, **given) if given else stats


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    return h, w


def image_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of image ``index`` of ``seed``: the index-th child of ``SeedSequence(seed)``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


# ----------------------------------------------------------------------------------------------
# One image
# ----------------------------------------------------------------------------------------------


def _beta_params(mean: float, std: float) -> tuple[float, float] | None:
    var = std * std
    limit = mean * (1.0 - mean)
    if var <= 0:
        return None
    var = min(var, 0.95 * limit)
    k = limit / var - 1.0
    return mean * k, (1.0 - mean) * k


def _structures(rng: np.random.Generator, h: int, w: int) -> list[tuple[str, tuple[float, ...]]]:
    """1-3 random rings (gland-like) and bands (layers) for clustered nuclei."""
    out: list[tuple[str, tuple[float, ...]]] = []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            r = rng.uniform(0.12, 0.3) * min(h, w)
            cy, cx = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w)
            out.append(("ring", (cy, cx, r)))
        else:
            # a gently curved line through a random point at a random angle
            cy, cx = rng.uniform(0.15 * h, 0.85 * h), rng.uniform(0.15 * w, 0.85 * w)
            ang = rng.uniform(0, np.pi)
            amp = rng.uniform(0, 0.08) * min(h, w)
            freq = rng.uniform(0.5, 2.0) * 2 * np.pi / max(h, w)
            out.append(("band", (cy, cx, ang, amp, freq)))
    return out


def _structure_points(
    rng: np.random.Generator, structs: list, n: int, h: int, w: int, jitter: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (cy, cx) and tangent angles of ``n`` points on the structures."""
    cy = np.empty(n)
    cx = np.empty(n)
    tang = np.empty(n)
    which = rng.integers(0, len(structs), size=n)
    t = rng.random(n)
    nj = rng.normal(size=n) * jitter
    for i in range(n):
        kind, p = structs[which[i]]
        if kind == "ring":
            y0, x0, r = p
            th = 2 * np.pi * t[i]
            rr = r + nj[i]
            cy[i] = y0 + rr * np.sin(th)
            cx[i] = x0 + rr * np.cos(th)
            tang[i] = th + np.pi / 2
        else:
            y0, x0, ang, amp, freq = p
            span = 1.2 * max(h, w)
            s = (t[i] - 0.5) * span
            off = amp * np.sin(freq * s) + nj[i]
            ca, sa = np.cos(ang), np.sin(ang)
            cy[i] = y0 + s * sa + off * ca
            cx[i] = x0 + s * ca - off * sa
            slope = amp * freq * np.cos(freq * s)
            tang[i] = ang + np.arctan(slope)
    return cy, cx, tang


def _outline_radii(
    rng: np.random.Generator, n: int, stats: MaskStats
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per nucleus: major semi-axis, axis ratio, and (n, V) radial multipliers."""
    area = np.exp(rng.normal(stats.log_area_mean, stats.log_area_std, size=n))
    bp = _beta_params(stats.ecc_mean, stats.ecc_std)
    ecc = np.full(n, stats.ecc_mean) if bp is None else rng.beta(bp[0], bp[1], size=n)
    ecc = np.clip(ecc, 0.0, 0.985)
    q = np.sqrt(1.0 - ecc * ecc)  # b / a
    # the radial perturbation inflates the area by ~ (1 + sum c_k^2 / 2): compensate on average
    k = _HARMONICS
    amp = stats.irregularity / np.sqrt(k)
    coef = rng.normal(size=(n, k.size)) * amp
    phase = rng.uniform(0, 2 * np.pi, size=(n, k.size))
    theta = np.linspace(0.0, 2 * np.pi, _N_VERTICES, endpoint=False)
    pert = 1.0 + np.einsum("nk,nkv->nv", coef, np.cos(k[None, :, None] * theta + phase[:, :, None]))
    pert = np.clip(pert, *_RADIUS_CLIP)
    inflate = np.mean(pert * pert, axis=1)
    a = np.sqrt(area / (np.pi * q * inflate))
    return a, q, pert


def _vertices(
    a: np.ndarray, q: np.ndarray, orient: np.ndarray, pert: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Polar vertices of the outlines: angles (n, V) and radii (n, V).

    Vertex ``j`` lies at ellipse parameter ``theta_j = 2 pi j / V``; rotating the ellipse by
    ``orient`` puts it at polar angle ``theta_j + orient``, so the vertices are evenly spaced in
    angle around the centre.
    """
    theta = np.linspace(0.0, 2 * np.pi, _N_VERTICES, endpoint=False)
    ct, st = np.cos(theta), np.sin(theta)
    b = a * q
    r = (a * b)[:, None] / np.sqrt((b[:, None] * ct) ** 2 + (a[:, None] * st) ** 2) * pert
    return theta[None, :] + orient[:, None], r


def polygon_vertices(
    cy: float, cx: float, angles: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of a star-shaped outline (for ``skimage.draw.polygon``)."""
    return cy + radii * np.sin(angles), cx + radii * np.cos(angles)


def _rasterize(
    cy: np.ndarray, cx: np.ndarray, angles: np.ndarray, radii: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Rasterize all star-shaped polygons of an image, each into its own small box.

    Equivalent to ``skimage.draw.polygon`` on the outline (a pixel is inside when its centre is
    inside the polygon; pixel ``(r, c)`` has its centre at ``(r, c)``) but vectorized over the
    nuclei: because the polygon is star-shaped about its centre with vertices evenly spaced in
    angle, the ray from the centre through a pixel crosses exactly one edge, found from the
    pixel's angle, and the pixel is inside when it lies on the centre's side of that edge.
    Nuclei are processed in groups of similar size so that small ones get small boxes.

    Returns:
        ``masks`` (list of (S_i, S_i) bool boxes), ``r0``, ``c0`` (image row/column of each
        box's corner).
    """
    n, v = radii.shape
    half = np.ceil(radii.max(axis=1)).astype(np.int64) + 1
    half = ((half + 3) // 4) * 4  # buckets of 4 px
    fy = np.floor(cy)
    fx = np.floor(cx)
    ax = radii * np.cos(angles)
    ay = radii * np.sin(angles)
    ex = np.roll(ax, -1, axis=1) - ax
    ey = np.roll(ay, -1, axis=1) - ay
    # inside when cross(B - A, P - A) >= 0 (vertices counter-clockwise in (x, y)), i.e.
    # ex * py - ey * px >= ex * ay - ey * ax
    # the per-pixel work runs in float32 (about 1.5x faster; a pixel centre within ~1e-5 px of
    # an edge may fall on the other side than in float64)
    cc = (ex * ay - ey * ax).ravel().astype(np.float32)
    ex = ex.ravel().astype(np.float32)
    ey = ey.ravel().astype(np.float32)
    scale = np.float32(v / (2 * np.pi))
    masks: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    for hb in np.unique(half):
        idx = np.flatnonzero(half == hb)
        o = np.arange(-hb, hb + 1, dtype=np.float32)
        dy = o[None, :] - (cy[idx] - fy[idx]).astype(np.float32)[:, None]  # (k, S)
        dx = o[None, :] - (cx[idx] - fx[idx]).astype(np.float32)[:, None]
        phi = np.arctan2(dy[:, :, None], dx[:, None, :])
        phi -= angles[idx, :1, None].astype(np.float32)
        phi *= scale
        j = np.floor(phi).astype(np.int64) % v  # edge crossed by the ray through the pixel
        j += (idx * v)[:, None, None]
        inside = ex[j] * dy[:, :, None] - ey[j] * dx[:, None, :] >= cc[j]
        for k, i in enumerate(idx):
            masks[i] = inside[k]
    return masks, fy.astype(np.int64) - half, fx.astype(np.int64) - half


def _clip_box(r0: int, c0: int, m: np.ndarray, h: int, w: int):
    """Intersect a box mask with the image: (image slices, mask view) or None when outside."""
    hh, ww = m.shape
    y0, x0 = max(r0, 0), max(c0, 0)
    y1, x1 = min(r0 + hh, h), min(c0 + ww, w)
    if y0 >= y1 or x0 >= x1:
        return None
    sub = m[y0 - r0 : y1 - r0, x0 - c0 : x1 - c0]
    if not sub.any():
        return None
    return (slice(y0, y1), slice(x0, x1)), sub


def _synthesize(
    h: int, w: int, rng: np.random.Generator, stats: MaskStats
) -> tuple[np.ndarray, dict[str, Any]]:
    """One instance map and a record of how it was made."""
    if stats.density_std > 0 and stats.density_mean > 0:
        shape = (stats.density_mean / stats.density_std) ** 2
        dens = rng.gamma(shape, stats.density_mean / shape)
    else:
        dens = stats.density_mean
    n = int(rng.poisson(dens * h * w / 1e4))
    info: dict[str, Any] = {
        "density": float(dens),
        "drawn": n,
        "placed": 0,
        "skipped": 0,
        "overlapping": 0,
        "occluded": 0,
        "dropped": 0,
        "n": 0,
        "structures": [],
    }
    lab = np.zeros((h, w), dtype=np.int32)
    if n == 0:
        return lab, info

    a, q, pert = _outline_radii(rng, n, stats)
    orient = rng.uniform(0, np.pi, size=n)
    cy = rng.uniform(0, h, size=n)
    cx = rng.uniform(0, w, size=n)
    wants_overlap = rng.random(n) < stats.overlap
    clustered = rng.random(n) < stats.clustering
    structs: list = []
    if clustered.any():
        structs = _structures(rng, h, w)
        info["structures"] = structs
        idx = np.flatnonzero(clustered)
        jitter = 0.6 * a[idx]
        sy, sx, tang = _structure_points(rng, structs, idx.size, h, w, jitter)
        cy[idx], cx[idx] = sy, sx
        orient[idx] = tang + rng.normal(0, 0.25, size=idx.size)
    # pre-drawn retry positions and overlap offsets keep the stream independent of outcomes
    retry_y = rng.uniform(0, h, size=(n, _TRIES))
    retry_x = rng.uniform(0, w, size=(n, _TRIES))
    if clustered.any():
        # clustered nuclei retry along their structures
        ry, rx, _ = _structure_points(rng, structs, idx.size * _TRIES, h, w, np.repeat(jitter, _TRIES))
        retry_y[idx] = ry.reshape(idx.size, _TRIES)
        retry_x[idx] = rx.reshape(idx.size, _TRIES)
    partner_u = rng.random(n)
    off_ang = rng.uniform(0, 2 * np.pi, size=n)
    off_frac = rng.uniform(0.45, 0.85, size=n)

    angles, radii = _vertices(a, q, orient, pert)
    masks, box_r0, box_c0 = _rasterize(cy, cx, angles, radii)
    rmeans = radii.mean(axis=1)

    centres: list[tuple[float, float, float]] = []  # placed nuclei (cy, cx, mean radius)
    occluded_ids: set[int] = set()
    cut: set[int] = set()  # nuclei cropped by the image border
    where: dict[int, tuple[slice, slice]] = {}
    nid = 0
    for i in range(n):
        m = masks[i]
        r0 = int(box_r0[i])
        c0 = int(box_c0[i])
        ov = bool(wants_overlap[i]) and len(centres) > 0
        placed = None
        if ov:
            py, px, pr = centres[int(partner_u[i] * len(centres))]
            d = off_frac[i] * (pr + rmeans[i])
            sy = int(round(py + d * np.sin(off_ang[i]) - cy[i]))
            sx = int(round(px + d * np.cos(off_ang[i]) - cx[i]))
            clip = _clip_box(r0 + sy, c0 + sx, m, h, w)
            if clip is not None:
                placed = (cy[i] + sy, cx[i] + sx, clip)
        else:
            for t in range(_TRIES + 1):
                if t > 0:
                    sy = int(round(retry_y[i, t - 1] - cy[i]))
                    sx = int(round(retry_x[i, t - 1] - cx[i]))
                else:
                    sy = sx = 0
                clip = _clip_box(r0 + sy, c0 + sx, m, h, w)
                if clip is None:
                    continue
                sl, sub = clip
                if not lab[sl][sub].any():
                    placed = (cy[i] + sy, cx[i] + sx, clip)
                    break
        if placed is None:
            info["skipped"] += 1
            continue
        yy, xx, (sl, sub) = placed
        nid += 1
        region = lab[sl]
        if ov:
            under = region[sub]
            hit = np.unique(under[under > 0])
            if hit.size:
                info["overlapping"] += 1
                occluded_ids.update(int(v) for v in hit)
        region[sub] = nid
        where[nid] = sl
        if not (0 <= yy < h and 0 <= xx < w):
            # the part of a star-shaped nucleus inside the (convex) image stays star-shaped
            # around its centre as long as the centre is inside: only others may fall apart
            cut.add(nid)
        centres.append((yy, xx, float(rmeans[i])))
    info["placed"] = nid
    if nid == 0:
        return lab, info

    # occluded or cropped nuclei may fall apart: keep the largest 4-connected visible part
    info["occluded"] = len(occluded_ids)
    for j in sorted(occluded_ids | cut):
        sl = where[j]
        region = lab[sl]
        own = region == j
        cc, ncc = ndi.label(own, structure=_FOUR)
        if ncc > 1:
            sizes = np.bincount(cc.ravel())
            sizes[0] = 0
            region[own & (cc != int(np.argmax(sizes)))] = 0

    counts = np.bincount(lab.ravel(), minlength=nid + 1)
    keep = counts >= stats.min_pixels
    keep[0] = False
    info["dropped"] = int(nid - keep[1:].sum())
    lut = np.zeros(nid + 1, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    lab = lut[lab]
    info["n"] = int(keep.sum())
    return lab, info


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def synthesize_instance_map(
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    index: int = 0,
    *,
    stats: MaskStats | None = None,
    return_info: bool = False,
    **overrides: Any,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Image ``index`` of ``seed``: the same array as ``synthesize_instances(k, size, seed)[index]``.

    Args:
        size: side length or (H, W).
        seed: base seed.
        index: image number within the seed's stream.
        stats: generator parameters (``DEFAULT_STATS`` when None).
        return_info: also return a dict recording the drawing (``drawn``, ``placed``,
            ``skipped`` (no free position), ``overlapping`` (nuclei painted over earlier ones),
            ``occluded`` (nuclei partly hidden), ``dropped`` (under ``min_pixels``), ``n``,
            ``density``, ``structures``).
        **overrides: any ``MaskStats`` field (``density_mean=``, ``overlap=``, ...).

    Returns:
        (H, W) int32 instance map with ids 1..n (0 = background).
    """
    h, w = _size_hw(size)
    st = _with_overrides(stats, overrides)
    lab, info = _synthesize(h, w, image_rng(seed, index), st)
    return (lab, info) if return_info else lab


def synthesize_instances(
    count: int,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    *,
    stats: MaskStats | None = None,
    density: float | None = None,
    overlap: float | None = None,
    irregularity: float | None = None,
    clustering: float | None = None,
    start: int = 0,
    workers: int = 1,
    **overrides: Any,
) -> np.ndarray:
    """Random nucleus instance maps (module docstring gives the model).

    Args:
        count: number of maps.
        size: side length or (H, W).
        seed: base seed; image ``k`` depends only on ``(seed, start + k)`` and the parameters.
        stats: generator parameters (``DEFAULT_STATS`` when None).
        density: overrides ``stats.density_mean`` (nuclei per 10,000 px).
        overlap: overrides ``stats.overlap`` (probability a nucleus overlaps an earlier one).
        irregularity: overrides ``stats.irregularity``.
        clustering: overrides ``stats.clustering``.
        start: index of the first image in the seed's stream.
        workers: processes to draw with (results do not depend on it).
        **overrides: any other ``MaskStats`` field.

    Returns:
        (count, H, W) int32 array, ids 1..n per map.
    """
    h, w = _size_hw(size)
    out = np.zeros((int(count), h, w), dtype=np.int32)
    for k, m in enumerate(
        iter_synthesize(
            count,
            (h, w),
            seed,
            stats=stats,
            density_mean=density,
            overlap=overlap,
            irregularity=irregularity,
            clustering=clustering,
            start=start,
            workers=workers,
            **overrides,
        )
    ):
        out[k] = m
    return out


def _worker(args: tuple[int, int, int, int, MaskStats]) -> np.ndarray:
    h, w, seed, index, st = args
    lab, _ = _synthesize(h, w, image_rng(seed, index), st)
    return lab if lab.max(initial=0) >= 65535 else lab.astype(np.uint16)


def iter_synthesize(
    count: int,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    *,
    stats: MaskStats | None = None,
    start: int = 0,
    workers: int = 1,
    chunksize: int = 16,
    **overrides: Any,
) -> Iterator[np.ndarray]:
    """Yield ``count`` instance maps in order, optionally drawn by a pool of processes.

    The k-th map yielded is ``synthesize_instance_map(size, seed, start + k, stats=...)``
    whatever ``workers`` is.

    Args:
        count, size, seed, stats, start, **overrides: as in ``synthesize_instances``.
        workers: number of processes (1 = in this process; 0 or None = ``os.cpu_count()``).
        chunksize: maps handed to a worker at a time.

    Yields:
        (H, W) int32 instance maps.
    """
    h, w = _size_hw(size)
    st = _with_overrides(stats, overrides)
    count = int(count)
    if count < 0:
        raise ValueError("count must be non-negative")
    if not workers:
        workers = os.cpu_count() or 1
    if workers <= 1 or count < 2:
        for k in range(count):
            yield _synthesize(h, w, image_rng(seed, start + k), st)[0]
        return

    jobs = ((h, w, int(seed), start + k, st) for k in range(count))
    with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
        for lab in pool.imap(_worker, jobs, chunksize=chunksize):
            yield lab.astype(np.int32, copy=False)


# ----------------------------------------------------------------------------------------------
# Measuring real masks
# ----------------------------------------------------------------------------------------------


def _as_maps(source: Any) -> Iterator[np.ndarray]:
    if isinstance(source, np.ndarray):
        if source.ndim == 2:
            yield source
            return
        if source.ndim == 3:
            yield from source
            return
        raise ValueError(f"expected (H, W) or (N, H, W) instance maps, got shape {source.shape}")
    for item in source:
        inst = getattr(item, "instances", item)
        inst = np.asarray(inst)
        if inst.ndim != 2:
            raise ValueError(f"instance map must be 2-D, got shape {inst.shape}")
        yield inst


def _region_measures(lab: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Area and eccentricity of ids 1..n, vectorized (same definitions as ``regionprops``:
    eccentricity of the ellipse with the region's second central moments)."""
    flat = lab.ravel()
    fg = np.flatnonzero(flat)
    ids = flat[fg]
    rows, cols = np.divmod(fg, lab.shape[1])
    rows = rows.astype(np.float64)
    cols = cols.astype(np.float64)
    cnt = np.bincount(ids, minlength=n + 1).astype(np.float64)
    safe = np.maximum(cnt, 1.0)
    mr = np.bincount(ids, rows, n + 1) / safe
    mc = np.bincount(ids, cols, n + 1) / safe
    dr = rows - mr[ids]
    dc = cols - mc[ids]
    vrr = np.bincount(ids, dr * dr, n + 1) / safe
    vcc = np.bincount(ids, dc * dc, n + 1) / safe
    vrc = np.bincount(ids, dr * dc, n + 1) / safe
    half_tr = 0.5 * (vrr + vcc)
    disc = np.sqrt(np.maximum(0.25 * (vrr - vcc) ** 2 + vrc * vrc, 0.0))
    l1 = half_tr + disc
    l2 = np.maximum(half_tr - disc, 0.0)
    ecc = np.sqrt(np.clip(1.0 - np.divide(l2, l1, out=np.ones_like(l1), where=l1 > 0), 0.0, 1.0))
    return cnt[1:], ecc[1:]


def mask_statistics(source: Any) -> dict[str, Any]:
    """Per-nucleus measurements of instance maps, pooled over all maps (vectorized per map).

    Args:
        source: a ``Dataset`` (or any iterable) of ``Sample``s, an iterable of (H, W) integer
            arrays, or one (H, W) / (N, H, W) array.

    Returns:
        dict with ``areas`` and ``eccentricities`` (float arrays over the "clean" nuclei: clear
        of the image border and not touching another nucleus, as long as there are at least 20
        of them; else all nuclei clear of the border, or else all nuclei; eccentricity as in
        ``skimage.measure.regionprops``), ``all_areas``, ``count`` (nuclei), ``pixels``
        (total pixels), ``touching`` (nuclei 4-adjacent to another nucleus), ``per_image``
        (list of (nuclei, pixels)) and ``images``.
    """

    parts: dict[str, list[np.ndarray]] = {"a": [], "e": [], "border": [], "touch": []}
    per_image: list[tuple[int, int]] = []
    count = pixels = touching = 0
    for inst in _as_maps(source):
        pixels += inst.size
        lab, n = relabel_sequential(inst)
        per_image.append((n, inst.size))
        if n == 0:
            continue
        count += n
        border = np.zeros(n + 1, dtype=bool)
        for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
            border[edge] = True
        touch = np.zeros(n + 1, dtype=bool)
        for p, q in ((lab[1:], lab[:-1]), (lab[:, 1:], lab[:, :-1])):
            d = (p != q) & (p > 0) & (q > 0)
            touch[p[d]] = True
            touch[q[d]] = True
        touching += int(touch[1:].sum())
        area, ecc = _region_measures(lab, n)
        parts["a"].append(area)
        parts["e"].append(ecc)
        parts["border"].append(border[1:])
        parts["touch"].append(touch[1:])
    cat = lambda xs, dt=np.float64: np.concatenate(xs) if xs else np.zeros(0, dt)  # noqa: E731
    a, e = cat(parts["a"]), cat(parts["e"])
    border, touch = cat(parts["border"], bool), cat(parts["touch"], bool)
    sel = ~border & ~touch
    if sel.sum() < 20:
        sel = ~border
        if sel.sum() < 5:
            sel = np.ones(a.size, dtype=bool)
    return {
        "areas": a[sel],
        "eccentricities": e[sel],
        "all_areas": a,
        "count": count,
        "pixels": pixels,
        "touching": touching,
        "per_image": per_image,
        "images": len(per_image),
    }


def _calibration_draw(stats: MaskStats, seed: int) -> tuple[float, float]:
    """Touching fraction and kept fraction (visible / drawn nuclei) of a calibration draw.

    The draw uses a fixed density (no per-image spread) to keep its noise low; the kept
    fraction is a ratio over all drawn nuclei, far less noisy than a density.
    """
    st = replace(stats, density_std=0.0)
    maps = []
    drawn = kept = 0
    for k in range(_CAL_MAPS):
        lab, info = _synthesize(256, 256, image_rng(seed, k), st)
        maps.append(lab)
        drawn += info["drawn"]
        kept += info["n"]
    m = mask_statistics(maps)
    touch = m["touching"] / max(m["count"], 1)
    return touch, (kept / drawn if drawn else 1.0)


def fit_mask_stats(
    source: Any, *, base: MaskStats | None = None, calibrate: bool = True, seed: int = 0
) -> MaskStats:
    """Generator parameters whose masks resemble the given instance maps.

    Measures nucleus area (log-normal fit), eccentricity (mean, std), density (nuclei per
    10,000 px: mean and spread over images, with the spread expected from Poisson counts
    removed) and the fraction of nuclei that touch another nucleus. Area and eccentricity use
    nuclei clear of the image border and of other nuclei (``mask_statistics``): border crops
    and occluded nuclei are biased small. The overlap probability is
    set so that the generator reproduces the touching fraction: touching caused by chance at the
    fitted size and density is estimated from a calibration draw without overlap, then two
    more draws correct the overlap and the drawn density (nuclei lost to occlusion and
    crowding) so that the generated maps reproduce the measured touching fraction and visible
    density (``calibrate``; three draws of 32 maps of 256x256 from ``seed``, ``seed + 1``,
    ``seed + 2``, about 1 s in all). Without calibration the chance part is taken as zero and the density
    is the measured one.
    Irregularity, clustering and ``min_pixels`` are kept from ``base``.

    Args:
        source: a ``Dataset`` of ``Sample``s, an iterable of (H, W) integer arrays or Samples,
            or an (H, W) / (N, H, W) array.
        base: parameters that are not measured are taken from it (``DEFAULT_STATS``).
        calibrate: run the calibration draw for the overlap parameter.
        seed: seed of the calibration draw.

    Returns:
        A ``MaskStats``.
    """
    base = DEFAULT_STATS if base is None else base
    m = mask_statistics(source)
    per_image = m["per_image"]
    if m["count"] == 0:
        raise ValueError("no nuclei in the given instance maps")
    la = np.log(np.maximum(m["areas"], 1.0))
    ecc = m["eccentricities"]
    ecc_mean = float(np.clip(ecc.mean(), 0.05, 0.95))
    ecc_std = float(np.clip(ecc.std(), 0.0, 0.45))
    dens = np.array([c / p * 1e4 for c, p in per_image], dtype=np.float64)
    dens_mean = float(m["count"] / m["pixels"] * 1e4)
    if dens.size > 1:
        # remove the Poisson part of the spread: var(d) = var(true d) + E[d] * 1e4 / pixels
        pix = np.array([p for _, p in per_image], dtype=np.float64)
        poisson_var = float(np.mean(dens_mean * 1e4 / pix))
        dens_std = float(math.sqrt(max(dens.var(ddof=1) - poisson_var, 0.0)))
    else:
        dens_std = 0.0
    touch = m["touching"] / m["count"]
    fitted = replace(
        base,
        log_area_mean=float(la.mean()),
        log_area_std=float(la.std()),
        ecc_mean=ecc_mean,
        ecc_std=ecc_std,
        density_mean=dens_mean,
        density_std=dens_std,
    )
    chance = 0.0
    if calibrate:
        chance, _ = _calibration_draw(replace(fitted, overlap=0.0), seed)
    # an overlapping nucleus touches its partner, so about two nuclei touch per overlap event:
    # 1 - touch = (1 - chance) * (1 - overlap)^2
    rest = (1.0 - touch) / max(1.0 - chance, 1e-6)
    overlap = float(np.clip(1.0 - math.sqrt(min(max(rest, 0.0), 1.0)), 0.0, 1.0))
    fitted = replace(fitted, overlap=overlap)
    if calibrate:
        # the formula above is approximate, and nuclei lost to occlusion and crowding lower the
        # visible density: correct both from draws with the current parameters
        for it in range(_CAL_ROUNDS):
            t_syn, kept = _calibration_draw(fitted, seed + 1 + it)
            slope = max(2.0 * (1.0 - fitted.overlap) * (1.0 - chance), 0.25)
            fitted = replace(
                fitted,
                density_mean=float(dens_mean / max(kept, 1e-3)),
                overlap=float(np.clip(fitted.overlap + (touch - t_syn) / slope, 0.0, 1.0)),
            )
    return fitted
