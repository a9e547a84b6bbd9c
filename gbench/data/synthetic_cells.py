"""Built-in ``synthetic-cells``: procedurally rendered multi-focus cervical-cell-like stacks.

Each stack is one cell (cytoplasm, nucleus, chromatin granules) rendered in bright field by
Beer-Lambert absorption, ``I = background * exp(-OD)``, and imaged at ``P`` focus points
(default 11: ``I-5 .. I+5``). The cell lies in the focal plane of ``I0``; plane ``k`` is the
in-focus transmittance blurred by a Gaussian point spread function whose width grows with the
distance to focus,

    sigma_k = sqrt(sigma_0^2 + (rate * |k|)^2)            (pixels, at a 64-pixel cell image),

plus a defocus halo whose sign follows the side of focus (above focus the rim brightens, below
it darkens, as under partially coherent bright-field illumination), and camera noise. Focus
therefore really varies along the stack: sharpness (variance of the Laplacian) peaks at ``I0``.

Two cell types exercise MI-GAN's transfer learning (SiHa cells -> cancer cells):

- ``siha`` ("SiHa-like"): round to oval cells, moderate size, a central round nucleus,
  fine chromatin, blue-green cytoplasm.
- ``cancer`` ("cancer-like"): larger and more variable, irregular outlines, elongated and
  off-centre nuclei with a high nucleus/cytoplasm ratio, dark coarse chromatin
  (hyperchromasia), pinker cytoplasm.

The set is deterministic: stack ``i`` of split ``s`` is drawn from
``SeedSequence([seed, type_code, split_code, i])``, so the train and test splits are fixed and
disjoint, and ``n`` only changes how many stacks are listed.

Set sizes follow the paper's transfer setting: MI-GAN1 is trained on 1,100 SiHa cells, MI-GAN2
on 541 cancer cells, "about half" (before the x6 augmentation). :data:`PAPER_COUNTS` holds those
numbers; every profile keeps the cancer set about half the SiHa set
(:meth:`gbench.core.profiles.Profile.migan_count`), and so do the defaults here (:data:`DEFAULT_COUNTS`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from gbench.data.multifocus import PLANES, SPLITS, FocusStack
from gbench.data.types import Dataset

__all__ = ["CellStats", "CELL_TYPES", "render_cell", "synthetic_cells", "DEFAULT_COUNTS", "PAPER_COUNTS",
           "cell_type_of"]

#: Training cells of the MI-GAN paper before augmentation: 1,100 SiHa (MI-GAN1), 541 cancer (MI-GAN2).
PAPER_COUNTS: dict[str, int] = {"siha": 1100, "cancer": 541}
#: Stacks per cell type and split when ``n`` is not given (cancer about half of SiHa, as in the paper).
DEFAULT_COUNTS: dict[str, dict[str, int]] = {"siha": {"train": 64, "test": 16}, "cancer": {"train": 32, "test": 8}}


def cell_type_of(name: str) -> str:
    """``synthetic-cells`` / ``synthetic-cells:siha`` -> ``siha``; ``synthetic-cells:cancer`` -> ``cancer``."""
    text = str(name)
    if text != "synthetic-cells" and not text.startswith("synthetic-cells:"):
        raise ValueError(f"{name!r} is not a built-in synthetic-cells name")
    cell_type = text.partition(":")[2] or "siha"
    if cell_type not in CELL_TYPES:
        raise ValueError(f"unknown synthetic-cells type {cell_type!r} (known: {', '.join(CELL_TYPES)})")
    return cell_type


@dataclass(frozen=True)
class CellStats:
    """Shape, size, colour and optics statistics of one synthetic cell type.

    Lengths are fractions of the image side; ranges are ``(low, high)`` of a uniform draw.

    Attributes:
        label: human-readable name.
        cyto_radius: mean cytoplasm radius.
        cyto_aspect: cytoplasm elongation (major / minor axis).
        cyto_irregularity: amplitude of the random radial harmonics of the cytoplasm outline.
        nc_ratio: nucleus radius / cytoplasm radius.
        nuc_aspect: nucleus elongation.
        nuc_irregularity: amplitude of the nucleus outline harmonics.
        nuc_offset: largest nucleus offset from the cell centre, as a fraction of the cytoplasm radius.
        cyto_od: optical density (R, G, B) of the cytoplasm.
        nuc_od: optical density (R, G, B) of the nucleus.
        chromatin_scale: correlation length of the chromatin texture (fraction of the side).
        chromatin_contrast: relative OD modulation of the chromatin texture.
        granules: number of dark chromatin granules (range).
        defocus_rate: PSF width growth per plane (pixels at a 64-pixel image).
    """

    label: str
    cyto_radius: tuple[float, float]
    cyto_aspect: tuple[float, float]
    cyto_irregularity: float
    nc_ratio: tuple[float, float]
    nuc_aspect: tuple[float, float]
    nuc_irregularity: float
    nuc_offset: float
    cyto_od: tuple[float, float, float]
    nuc_od: tuple[float, float, float]
    chromatin_scale: float
    chromatin_contrast: float
    granules: tuple[int, int]
    defocus_rate: tuple[float, float]


CELL_TYPES: dict[str, CellStats] = {
    "siha": CellStats(
        label="SiHa-like", cyto_radius=(0.24, 0.31), cyto_aspect=(1.0, 1.3), cyto_irregularity=0.04,
        nc_ratio=(0.35, 0.48), nuc_aspect=(1.0, 1.2), nuc_irregularity=0.03, nuc_offset=0.15,
        cyto_od=(0.38, 0.20, 0.16), nuc_od=(0.85, 0.95, 0.45), chromatin_scale=0.02,
        chromatin_contrast=0.35, granules=(4, 10), defocus_rate=(0.75, 0.95),
    ),
    "cancer": CellStats(
        label="cancer-like", cyto_radius=(0.26, 0.38), cyto_aspect=(1.1, 1.7), cyto_irregularity=0.10,
        nc_ratio=(0.50, 0.70), nuc_aspect=(1.1, 1.6), nuc_irregularity=0.08, nuc_offset=0.30,
        cyto_od=(0.18, 0.34, 0.26), nuc_od=(1.15, 1.30, 0.65), chromatin_scale=0.035,
        chromatin_contrast=0.55, granules=(10, 22), defocus_rate=(0.75, 0.95),
    ),
}
_TYPE_CODE = {k: zlib.crc32(k.encode()) for k in CELL_TYPES}
_SPLIT_CODE = {"train": 0, "test": 1}
_BACKGROUND = np.array([236.0, 234.0, 240.0])


def _outline_radius(theta: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """1 + a random sum of radial harmonics 2..5 (a smooth, star-convex outline)."""
    r = np.ones_like(theta)
    for h in range(2, 6):
        r += amplitude * rng.normal() / h ** 0.5 * np.cos(h * theta + rng.uniform(0, 2 * np.pi))
    return r


def _soft_shape(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float, aspect: float, angle: float,
                irregularity: float, edge: float, rng: np.random.Generator) -> np.ndarray:
    """Soft (0..1) mask of a rotated, elongated, star-convex blob."""
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    a, b = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    rho = np.hypot(u / a, v / b)
    theta = np.arctan2(v / b, u / a)
    bound = _outline_radius(theta, rng, irregularity)
    return 1.0 / (1.0 + np.exp(-(bound - rho) * radius / edge))


def render_cell(cell_type: str, rng: np.random.Generator, size: int = 64, planes: int = PLANES) -> np.ndarray:
    """Render one multi-focus stack ``(planes, size, size, 3)`` uint8 of a ``cell_type`` cell."""
    if cell_type not in CELL_TYPES:
        raise ValueError(f"unknown cell type {cell_type!r} (known: {', '.join(CELL_TYPES)})")
    if size < 16:
        raise ValueError(f"synthetic-cells needs size >= 16, got {size}")
    if planes < 1 or planes % 2 != 1:
        raise ValueError(f"planes must be a positive odd number (I0 in the middle), got {planes}")
    st = CELL_TYPES[cell_type]
    scale = size / 64.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c0 = (size - 1) / 2.0
    cy, cx = c0 + rng.normal(0, 0.03 * size), c0 + rng.normal(0, 0.03 * size)
    r_cyto = rng.uniform(*st.cyto_radius) * size
    cyto = _soft_shape(yy, xx, cy, cx, r_cyto, rng.uniform(*st.cyto_aspect), rng.uniform(0, np.pi),
                       st.cyto_irregularity, 0.8 * scale, rng)
    r_nuc = rng.uniform(*st.nc_ratio) * r_cyto
    off = rng.uniform(0, st.nuc_offset) * r_cyto
    phi = rng.uniform(0, 2 * np.pi)
    nuc = _soft_shape(yy, xx, cy + off * np.sin(phi), cx + off * np.cos(phi), r_nuc, rng.uniform(*st.nuc_aspect),
                      rng.uniform(0, np.pi), st.nuc_irregularity, 0.6 * scale, rng)
    nuc = nuc * cyto  # the nucleus sits inside the cell
    # textures: low-frequency cytoplasm variation, chromatin noise and granules
    cyto_tex = ndimage.gaussian_filter(rng.normal(size=(size, size)), 4 * scale)
    cyto_tex /= cyto_tex.std() + 1e-12
    chrom = ndimage.gaussian_filter(rng.normal(size=(size, size)), max(0.6, st.chromatin_scale * size))
    chrom /= chrom.std() + 1e-12
    gran = np.zeros((size, size))
    ys, xs = np.nonzero(nuc > 0.5)
    if len(ys):
        for _ in range(int(rng.integers(st.granules[0], st.granules[1] + 1))):
            j = int(rng.integers(len(ys)))
            gran[ys[j], xs[j]] += rng.uniform(0.5, 1.0)
        gran = ndimage.gaussian_filter(gran, 0.8 * scale) * (2 * np.pi * (0.8 * scale) ** 2)
    jitter = rng.uniform(0.85, 1.15)
    cyto_od = np.asarray(st.cyto_od) * rng.uniform(0.85, 1.15, 3) * jitter
    nuc_od = np.asarray(st.nuc_od) * rng.uniform(0.9, 1.1, 3) * jitter
    od_c = cyto * (1.0 + 0.12 * cyto_tex)
    od_n = nuc * np.clip(1.0 + st.chromatin_contrast * chrom + 0.8 * gran, 0.2, None)
    od = od_c[..., None] * cyto_od + od_n[..., None] * nuc_od
    transmittance = np.exp(-od)  # (H, W, 3), 1 = background
    # imaging at each focus plane: depth-dependent Gaussian PSF + signed defocus halo + noise
    half = planes // 2
    rate = rng.uniform(*st.defocus_rate) * scale
    sigma0 = 0.35 * scale
    halo = rng.uniform(0.15, 0.25)
    out = np.empty((planes, size, size, 3), dtype=np.uint8)
    bg = _BACKGROUND * rng.uniform(0.97, 1.02)
    for p in range(planes):
        k = p - half
        sigma = float(np.hypot(sigma0, rate * k))
        blurred = ndimage.gaussian_filter(transmittance, (sigma, sigma, 0), mode="nearest")
        if k:
            wide = ndimage.gaussian_filter(transmittance, (1.8 * sigma + 0.5, 1.8 * sigma + 0.5, 0), mode="nearest")
            blurred = blurred + halo * np.sign(k) * min(abs(k), 3) / 3 * (blurred - wide)
            blurred *= 1.0 + 0.01 * k  # slight illumination change along the stack
        img = bg * blurred + rng.normal(0, 1.5, (size, size, 3))
        out[p] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def synthetic_cells(cell_type: str = "siha", split: Literal["train", "test", "all"] = "train",
                    n: int | None = None, size: int = 64, seed: int = 0, planes: int = PLANES) -> Dataset:
    """The built-in multi-focus cell set ``synthetic-cells:<cell_type>``.

    Args:
        cell_type: ``siha`` or ``cancer``.
        split: ``train``, ``test`` or ``all`` (train then test).
        n: stacks per split (default :data:`DEFAULT_COUNTS` of the cell type).
        size: plane side in pixels (the paper's cells are 64x64).
        seed: base seed; the same seed gives the same stacks.
        planes: focus planes (odd; 11 = ``I-5 .. I+5``).

    Returns:
        A lazy :class:`~gbench.data.types.Dataset` of :class:`~gbench.data.multifocus.FocusStack`.

    Raises:
        ValueError: unknown cell type or split, bad size, planes or ``n``.
    """
    if cell_type not in CELL_TYPES:
        raise ValueError(f"unknown synthetic-cells type {cell_type!r} (known: {', '.join(CELL_TYPES)}); "
                         "write synthetic-cells:siha or synthetic-cells:cancer")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 16:
        raise ValueError(f"synthetic-cells needs size >= 16, got {size}")
    if planes < 1 or planes % 2 != 1:
        raise ValueError(f"planes must be a positive odd number, got {planes}")
    splits = ("train", "test") if split == "all" else (split,)
    keys: dict[str, tuple[str, int]] = {}
    for s in splits:
        count = DEFAULT_COUNTS[cell_type][s] if n is None else n
        for i in range(count):
            keys[f"{cell_type}-{s}-{i:05d}"] = (s, i)

    def load(key: str) -> FocusStack:
        s, i = keys[key]
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _TYPE_CODE[cell_type], _SPLIT_CODE[s], i]))
        stack = render_cell(cell_type, rng, size=size, planes=planes)
        return FocusStack(key, stack, {"cell_type": cell_type, "split": s, "index": i, "seed": seed})

    info = {"loader": "synthetic-cells", "cell_type": cell_type, "label": CELL_TYPES[cell_type].label,
            "size": size, "planes": planes, "seed": seed, "n": n}
    return Dataset(f"synthetic-cells:{cell_type}", split, list(keys), load, info)  # type: ignore[arg-type]
