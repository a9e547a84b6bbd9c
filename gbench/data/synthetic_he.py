"""The built-in ``synthetic-he`` dataset: procedurally rendered H&E-like tiles with exact labels.

Each tile is rendered in stain space and converted to RGB with the Beer-Lambert law:

1. nuclei: an instance map from ``gbench.data.masks`` (H&E defaults, part of the nuclei
   clustered along gland-like rings and bands, touching and overlapping);
2. layout: white lumen inside the rings, a few irregular white gaps and thin clefts between
   fibre bundles, a pale cytoplasm halo around nuclei;
3. concentrations: eosin ``C_E`` with a fibrous texture (noise stretched along a fibre
   direction at two scales, then warped so fibres wave), a loose fibrillar network and grain; hematoxylin ``C_H`` inside nuclei with per-nucleus intensity,
   granular chromatin, a darker rim (nuclear membrane, also between touching nuclei) and
   optional nucleoli, plus a faint hematoxylin haze elsewhere;
4. optics: slight Gaussian blur with a spatially varying out-of-focus part, per-tile stain
   vectors jittered in optical-density space and per-tile stain amounts,
   ``OD = C_H * h + C_E * e + od_background``, ``RGB = 255 * exp(-OD)``, and mild sensor
   noise.

The label is exact: a pixel belongs to nucleus ``k`` iff ``instances == k``, and nuclear stain
is laid down on exactly those pixels (blur spreads it by about a pixel, as a microscope does).

Defaults are tuned on CPM-15 training tiles: stroma about (205-225, 120-155, 160-180) RGB and
nuclei about (115-175, 55-105, 95-145) RGB on average.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from gbench.data.conditioning import contour_map
from gbench.data.masks import DEFAULT_STATS, MaskStats, _size_hw, _synthesize
from gbench.data.types import Dataset, Sample

__all__ = [
    "HE_STATS",
    "STAIN_H",
    "STAIN_E",
    "DEFAULT_COUNTS",
    "render_tile",
    "synthetic_he",
    "tile_seed",
]

#: Mask parameters of the tiles: default nuclei with some clustering along rings and bands.
HE_STATS = replace(DEFAULT_STATS, clustering=0.35, overlap=0.15, irregularity=0.1)

#: Unit optical-density vectors (natural log, RGB) of hematoxylin and eosin, estimated on CPM-15.
STAIN_H = np.array([0.60, 0.72, 0.35]) / np.linalg.norm([0.60, 0.72, 0.35])
STAIN_E = np.array([0.21, 0.82, 0.53]) / np.linalg.norm([0.21, 0.82, 0.53])

#: Default number of tiles per split.
DEFAULT_COUNTS = {"train": 24, "test": 8}
_SPLIT_KEY = {"train": 0, "test": 1}


# ----------------------------------------------------------------------------------------------
# Noise fields
# ----------------------------------------------------------------------------------------------


def _freqs(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return fy, fx


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    s = x.std()
    return x / s if s > 0 else x


@lru_cache(maxsize=64)
def _interp(n: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights interpolating linearly from a grid of step ``step`` (grid point
    ``i`` at output coordinate ``(i - 1) * step``) to output pixels ``0..n-1``."""
    pos = np.arange(n) / step + 1.0
    i0 = np.floor(pos).astype(np.int64)
    return i0, pos - i0


def _upsample(small: np.ndarray, h: int, w: int, step: int) -> np.ndarray:
    iy, ty = _interp(h, step)
    ix, tx = _interp(w, step)
    rows = small[iy] * (1.0 - ty)[:, None] + small[iy + 1] * ty[:, None]
    return rows[:, ix] * (1.0 - tx) + rows[:, ix + 1] * tx


def _lowpass_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth zero-mean unit-variance noise with correlation length ``scale`` px.

    Large scales are drawn on a coarser grid (step ~ scale / 3) and interpolated linearly.
    """
    step = max(1, int(scale // 3))
    hs, ws = -(-h // step) + 3, -(-w // step) + 3
    fy, fx = _freqs(hs, ws)
    spec = np.fft.rfft2(rng.standard_normal((hs, ws)))
    spec *= np.exp(-2 * (np.pi * scale / step) ** 2 * (fy**2 + fx**2))
    small = np.fft.irfft2(spec, s=(hs, ws))
    if step == 1:
        return _unit(small[:h, :w])
    return _unit(_upsample(small, h, w, step))


def _oriented_filter(fy: np.ndarray, fx: np.ndarray, ang: float, length: float, width: float) -> np.ndarray:
    """Gaussian transfer function stretching noise along direction ``ang`` (fibres of about
    ``length`` px and ``width`` px)."""
    par = fx * np.cos(ang) + fy * np.sin(ang)  # frequency along the fibre
    perp = -fx * np.sin(ang) + fy * np.cos(ang)
    return np.exp(-2 * np.pi**2 * ((length * par) ** 2 + (width * perp) ** 2))


def _fibres(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Collagen texture: (fine fibrils, coarse bundles), each zero-mean unit-variance.

    Noise is stretched along a main direction (two scales: thin fibrils and thick bundles),
    then the plane is warped by a smooth random displacement so the fibres wave and bend.
    """
    pad = 24
    hp, wp = h + 2 * pad, w + 2 * pad
    ang = rng.uniform(0, np.pi)
    # one complex white noise carries both textures (real part: fibrils, imaginary: bundles)
    noise = rng.standard_normal((hp, wp)) + 1j * rng.standard_normal((hp, wp))
    spec = np.fft.fft2(noise)
    fyc = np.fft.fftfreq(hp)[:, None]
    fxc = np.fft.fftfreq(wp)[None, :]
    filt_f = _oriented_filter(fyc, fxc, ang + rng.normal(0, 0.1), rng.uniform(7, 12), rng.uniform(0.8, 1.1))
    filt_c = _oriented_filter(fyc, fxc, ang, rng.uniform(16, 30), rng.uniform(2.2, 3.5))
    # symmetric real filters keep real noise real: filter each part separately through the
    # Hermitian split spec = R + iI with R, I the spectra of the real and imaginary parts
    r_spec = 0.5 * (spec + np.conj(np.roll(np.flip(spec), 1, axis=(0, 1))))
    i_spec = -0.5j * (spec - np.conj(np.roll(np.flip(spec), 1, axis=(0, 1))))
    both = np.fft.ifft2(r_spec * filt_f + 1j * (i_spec * filt_c))
    amp = rng.uniform(4, 9)
    dy = _lowpass_noise(rng, h, w, rng.uniform(22, 40)) * amp
    dx = _lowpass_noise(rng, h, w, rng.uniform(22, 40)) * amp
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = np.stack([np.clip(yy + dy + pad, 0, hp - 1), np.clip(xx + dx + pad, 0, wp - 1)])
    warped = ndi.map_coordinates(both, coords, order=1)
    return _unit(warped.real), _unit(warped.imag)


def _mesh(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Loose fibrillar network in [0, 1]: thin lines along zero crossings of band-pass noise."""
    fy, fx = _freqs(h, w)
    f2 = fy**2 + fx**2
    spec = np.fft.rfft2(rng.standard_normal((h, w)))
    band = np.exp(-2 * np.pi**2 * 1.2**2 * f2) - np.exp(-2 * np.pi**2 * 3.5**2 * f2)
    bp = _unit(np.fft.irfft2(spec * band, s=(h, w)))
    return np.exp(-((bp / 0.3) ** 2))


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _rng(seed: int | np.random.SeedSequence) -> np.random.Generator:
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    return np.random.default_rng(ss)


def _lumen(
    rng: np.random.Generator, h: int, w: int, structures: list, nuclei: np.ndarray, r_nuc: float
) -> np.ndarray:
    """Soft white-space map in [0, 1]: lumen inside rings plus irregular gaps."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    wobble = _lowpass_noise(rng, h, w, 10) + 0.35 * _lowpass_noise(rng, h, w, 2.5)
    soft = np.zeros((h, w))
    for kind, p in structures:
        if kind != "ring":
            continue
        cy, cx, r = p
        inner = r - 1.6 * r_nuc
        if inner < 4:
            continue
        d = np.hypot(yy - cy, xx - cx) + 3.0 * wobble
        soft = np.maximum(soft, np.clip((inner - d) / 1.5, 0, 1))
    # irregular gaps (tears, vessels, fat): low-frequency noise above a random level
    gaps = _lowpass_noise(rng, h, w, rng.uniform(10, 20)) + 0.3 * wobble
    level = rng.uniform(1.7, 2.8)
    soft = np.maximum(soft, np.clip((gaps - level) / 0.12, 0, 1))
    # keep white space clear of nuclei and their cytoplasm
    near = ndi.binary_dilation(nuclei, iterations=3)
    soft[near] = 0.0
    return ndi.gaussian_filter(soft, 0.6)


def _nuclear_stain(
    rng: np.random.Generator, lab: np.ndarray, n: int, amount: float
) -> np.ndarray:
    """Hematoxylin concentration of the nuclei (0 outside them)."""
    h, w = lab.shape
    fg = lab > 0
    out = np.zeros((h, w))
    if n == 0:
        return out
    # per nucleus: intensity (hyperchromatic .. pale), rim strength, granularity
    inten = rng.lognormal(0.0, 0.18, size=n + 1) * amount
    rim_w = rng.uniform(0.1, 0.55, size=n + 1)
    gran = rng.uniform(0.18, 0.4, size=n + 1)
    # chromatin: fine granules and coarser clumps
    fine = ndi.gaussian_filter(rng.standard_normal((h, w)), 0.7)
    fine /= fine.std() + 1e-12
    clump = _lowpass_noise(rng, h, w, 2.2)
    chrom = 0.65 * fine + 0.55 * clump
    # distance to the nucleus outline (the shared outline of touching nuclei included)
    inner = fg & ~contour_map(lab).astype(bool)
    d = ndi.distance_transform_edt(inner)
    rim = np.exp(-d / 1.3)
    ids = lab[fg]
    val = inten[ids] * (1.0 + gran[ids] * chrom[fg]) * (1.0 - 0.25 * rim_w[ids] + rim_w[ids] * rim[fg])
    out[fg] = val
    # nucleoli: a small dark dot in some nuclei, near the centroid
    cnt = np.bincount(ids, minlength=n + 1).astype(np.float64)
    rows, cols = np.nonzero(fg)
    cy = np.bincount(ids, weights=rows, minlength=n + 1) / np.maximum(cnt, 1)
    cx = np.bincount(ids, weights=cols, minlength=n + 1) / np.maximum(cnt, 1)
    has = (rng.random(n + 1) < 0.3) & (cnt >= 60)
    has[0] = False
    jy = rng.normal(0, 1.2, size=n + 1)
    jx = rng.normal(0, 1.2, size=n + 1)
    dots = np.zeros((h, w))
    for k in np.flatnonzero(has):
        y, x = int(round(cy[k] + jy[k])), int(round(cx[k] + jx[k]))
        if 0 <= y < h and 0 <= x < w and lab[y, x] == k:
            dots[y, x] = 1.0
    if dots.any():
        dots = ndi.gaussian_filter(dots, 0.9) * (2 * np.pi * 0.81)
        out += np.where(fg, 0.8 * amount * dots, 0.0)
    return np.clip(out, 0, None)


def _jitter_stain(rng: np.random.Generator, v: np.ndarray, sd: float) -> np.ndarray:
    u = np.clip(v + rng.normal(0, sd, size=3), 0.02, None)
    return u / np.linalg.norm(u)


def _render(h: int, w: int, rng: np.random.Generator, stats: MaskStats) -> tuple[np.ndarray, np.ndarray]:
    lab, info = _synthesize(h, w, rng, stats)
    n = int(lab.max(initial=0))
    fg = lab > 0
    r_nuc = float(np.sqrt(stats.median_area / np.pi))

    # per-tile staining protocol: stain amounts and colours
    e_amt = rng.uniform(0.6, 0.95)
    h_amt = rng.uniform(0.55, 1.0)
    stain_h = _jitter_stain(rng, STAIN_H, 0.04)
    stain_e = _jitter_stain(rng, STAIN_E, 0.035)

    # eosin: stroma with fibres, white clefts between bundles, slow density variation
    fine, coarse = _fibres(rng, h, w)
    slow = _lowpass_noise(rng, h, w, 40)
    ce = e_amt * (1.0 + 0.15 * fine + 0.2 * coarse + 0.12 * slow)
    cleft_level = rng.uniform(0.9, 1.5)
    cleft = np.clip((-(coarse + 0.45 * fine) - cleft_level) / 0.35, 0, 1)
    ce *= 1.0 - 0.85 * cleft
    # loose fibrillar network (weight varies per tile: dense collagen .. loose stroma) and grain
    mesh_w = rng.uniform(0.1, 0.55)
    ce *= 1.0 - mesh_w * _mesh(rng, h, w) * (0.6 + 0.4 * np.clip(0.5 - 0.5 * coarse, 0, 1))
    grain = ndi.gaussian_filter(rng.standard_normal((h, w)), 0.6)
    ce *= 1.0 + 0.1 * grain / (grain.std() + 1e-12)
    # cytoplasm halo around nuclei: a little denser eosin and some hematoxylin
    halo_d = ndi.distance_transform_edt(~fg) if n else np.full((h, w), np.inf)
    halo = np.exp(-np.maximum(halo_d - 0.5, 0) / 3.0) * (~fg)
    ce *= 1.0 + 0.12 * halo
    white = _lumen(rng, h, w, info["structures"], fg, r_nuc)
    ce *= 1.0 - 0.95 * white

    # hematoxylin: nuclei plus a faint haze (and cytoplasm tint)
    ch = _nuclear_stain(rng, lab, n, h_amt)
    haze = (0.05 + 0.025 * _lowpass_noise(rng, h, w, 6)) * (1.0 - 0.9 * white)
    ch += np.where(fg, 0.0, np.clip(haze + 0.08 * halo, 0, None))
    # nuclei carry the eosin of the tissue they sit in (a smooth level, no fibres)
    ce = np.clip(np.where(fg, e_amt * (1.0 + 0.1 * slow), ce), 0, None)

    # optics: slight blur with out-of-focus patches
    sigma = rng.uniform(0.25, 0.5)
    conc = np.stack([ch, ce])
    sharp = ndi.gaussian_filter(conc, (0, sigma, sigma))
    soft = ndi.gaussian_filter(conc, (0, sigma + 0.8, sigma + 0.8))
    focus = np.clip(0.5 + 0.6 * _lowpass_noise(rng, h, w, 50) - rng.uniform(0.2, 0.7), 0, 1)
    conc = sharp * (1 - focus) + soft * focus

    od_bg = np.abs(rng.normal(0.03, 0.01, size=3))  # glass, mounting medium, illumination
    od = conc[0, ..., None] * stain_h + conc[1, ..., None] * stain_e + od_bg
    rgb = 255.0 * np.exp(-od)
    rgb += rng.normal(0, 1.8, size=rgb.shape)  # sensor noise
    img = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return img, lab


def render_tile(
    size: int | tuple[int, int] = 256,
    seed: int | np.random.SeedSequence = 0,
    stats: MaskStats | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one H&E-like tile with its exact nucleus instance map.

    Args:
        size: side length or (H, W) in pixels (40x-like scale: nuclei ~10-25 px across).
        seed: integer seed (or ``SeedSequence``); the tile is a pure function of
            ``(size, seed, stats)``.
        stats: nucleus mask parameters (``HE_STATS`` when None).

    Returns:
        ``(image, instances)``: (H, W, 3) uint8 RGB and (H, W) int32 with ids 1..n.
    """
    h, w = _size_hw(size)
    return _render(h, w, _rng(seed), HE_STATS if stats is None else stats)


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


def tile_seed(seed: int, split: str, index: int) -> int:
    """Seed of tile ``index`` of ``split``: independent streams per split, never shared."""
    if split not in _SPLIT_KEY:
        raise ValueError(f"split must be one of {sorted(_SPLIT_KEY)}, got {split!r}")
    ss = np.random.SeedSequence(int(seed), spawn_key=(0x4845, _SPLIT_KEY[split], int(index)))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


@lru_cache(maxsize=128)
def _cached(h: int, w: int, tseed: int, stats: MaskStats) -> tuple[np.ndarray, np.ndarray]:
    img, lab = _render(h, w, _rng(tseed), stats)
    img.setflags(write=False)
    lab.setflags(write=False)
    return img, lab


def synthetic_he(
    split: str = "train",
    n: int | None = None,
    size: int | tuple[int, int] = 256,
    seed: int = 0,
    stats: MaskStats | None = None,
) -> Dataset:
    """The ``synthetic-he`` dataset: deterministic H&E-like tiles, rendered lazily.

    Tile ``k`` of a split is ``render_tile(size, tile_seed(seed, split, k), stats)`` whatever
    ``n`` is, so a split of ``n`` tiles is a prefix of any larger one; train and test tiles
    come from different seed streams and never coincide. Rendered tiles are cached (LRU, keyed
    on size, tile seed and stats). Images and instance maps of samples are read-only arrays.

    Args:
        split: ``train``, ``test`` or ``all`` (train tiles then test tiles, named
            ``train/he_0000``, ``test/he_0000``, ...).
        n: tiles per split (``DEFAULT_COUNTS``: train 24, test 8).
        size: tile side or (H, W).
        seed: dataset seed.
        stats: nucleus mask parameters (``HE_STATS`` when None).

    Returns:
        A ``Dataset`` named ``synthetic-he`` with samples ``he_0000``, ``he_0001``, ...
    """
    h, w = _size_hw(size)
    st = HE_STATS if stats is None else stats
    if split == "all":
        splits = ["train", "test"]
    elif split in _SPLIT_KEY:
        splits = [split]
    else:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if n is not None and n < 0:
        raise ValueError("n must be non-negative")
    index: dict[str, tuple[str, int]] = {}
    names: list[str] = []
    for sp in splits:
        count = DEFAULT_COUNTS[sp] if n is None else int(n)
        for k in range(count):
            name = f"he_{k:04d}" if len(splits) == 1 else f"{sp}/he_{k:04d}"
            index[name] = (sp, k)
            names.append(name)

    def load(name: str) -> Sample:
        try:
            sp, k = index[name]
        except KeyError:
            raise KeyError(f"no sample {name!r} in synthetic-he/{split}") from None
        ts = tile_seed(seed, sp, k)
        img, lab = _cached(h, w, ts, st)
        meta: dict[str, Any] = {
            "dataset": "synthetic-he",
            "split": sp,
            "index": k,
            "seed": seed,
            "tile_seed": ts,
            "magnification": "40x",
            "synthetic": True,
        }
        return Sample(name=name, image=img, instances=lab, meta=meta)

    info = {
        "loader": "gbench.data.synthetic_he.synthetic_he",
        "split": split,
        "n": n,
        "size": (h, w),
        "seed": seed,
        "stats": asdict(st),
    }
    return Dataset("synthetic-he", split, names, load, info)
