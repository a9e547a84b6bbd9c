"""Fused CPU kernels (numba) of the fast FSIM's phase congruency.

On the CPU the float32 FSIM spends most of its time in element-wise passes over the log-Gabor responses
(products with the filters, amplitudes, sums over scales, the energy term), each of which torch runs as a
separate pass over memory. These kernels do each stage in one pass, compiled once (cached on disk by numba) and
vectorised by LLVM. The FFTs stay torch's. The arithmetic is the one of
:func:`gbench.metrics.quality._phase_congruency_block` (the torch path, kept for CUDA), in float32.

Layout: two real images x, y share one complex spectrum ``C = FFT(x + i y)`` (``spec``, (N, 2) float32: real,
imaginary). ``filter_responses`` writes ``C * Gs`` and ``-i C * Ga`` for the S scales of one orientation; their
inverse FFTs are ``even`` and ``odd``, (S, 2N) float32 with x and y interleaved (element ``2p`` is pixel ``p`` of
x, ``2p + 1`` of y). ``error_model="numpy"`` drops numba's zero-division checks, which would keep LLVM from
vectorising the loops; no kernel reduces across pixels, so every value is independent of the vector width.
"""
from __future__ import annotations

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}
_EPS = np.float32(np.finfo(np.float64).eps)  # the torch path adds float64 eps to float32 values; same here


@numba.njit(**_JIT)
def filter_responses(spec: np.ndarray, gs: np.ndarray, ga: np.ndarray, even_in: np.ndarray, odd_in: np.ndarray) -> None:
    """``even_in[s] = C * gs[s]`` and ``odd_in[s] = -i C * ga[s]`` (spec (N, 2), gs/ga (S, N), outputs (S, N, 2))."""
    n_scales, n = gs.shape
    for s in range(n_scales):
        g = gs[s]
        a = ga[s]
        e = even_in[s]
        o = odd_in[s]
        for j in range(n):
            re = spec[j, 0]
            im = spec[j, 1]
            e[j, 0] = re * g[j]
            e[j, 1] = im * g[j]
            o[j, 0] = im * a[j]
            o[j, 1] = -re * a[j]


@numba.njit(**_JIT)
def smallest_scale_power(even: np.ndarray, odd: np.ndarray, px: np.ndarray, py: np.ndarray) -> None:
    """|eo_0|^2 of the smallest scale, de-interleaved: ``px`` for x and ``py`` for y (each (N,))."""
    e = even[0]
    o = odd[0]
    for p in range(px.shape[0]):
        j = 2 * p
        px[p] = e[j] * e[j] + o[j] * o[j]
        py[p] = e[j + 1] * e[j + 1] + o[j + 1] * o[j + 1]


@numba.njit(**_JIT)
def accumulate_orientation(
    even: np.ndarray, odd: np.ndarray, tx: np.float32, ty: np.float32, num: np.ndarray, den: np.ndarray
) -> None:
    """Add one orientation's thresholded energy to ``num`` and its summed amplitudes to ``den`` (each (2N,)).

    With S = sum_s eo_s over the 4 scales: energy = (|S|^2 - sum_s |Im(eo_s) Re(S) - Re(eo_s) Im(S)|) /
    (|S| + eps), then ``max(energy - T, 0)`` with T = ``tx`` for x and ``ty`` for y; amplitude = sum_s |eo_s|.
    The scales are spelt out (FSIM's 4): LLVM vectorises only innermost loops, and a loop over the scales
    inside the pixel loop would keep the pixel loop scalar (5x slower).
    """
    e0, e1, e2, e3 = even[0], even[1], even[2], even[3]
    o0, o1, o2, o3 = odd[0], odd[1], odd[2], odd[3]
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for j in range(num.shape[0]):
        a0, a1, a2, a3 = e0[j], e1[j], e2[j], e3[j]
        b0, b1, b2, b3 = o0[j], o1[j], o2[j], o3[j]
        s_re = a0 + a1 + a2 + a3
        s_im = b0 + b1 + b2 + b3
        amp = np.sqrt(a0 * a0 + b0 * b0) + np.sqrt(a1 * a1 + b1 * b1)
        amp += np.sqrt(a2 * a2 + b2 * b2) + np.sqrt(a3 * a3 + b3 * b3)
        cross = abs(b0 * s_re - a0 * s_im) + abs(b1 * s_re - a1 * s_im)
        cross += abs(b2 * s_re - a2 * s_im) + abs(b3 * s_re - a3 * s_im)
        nrm2 = s_re * s_re + s_im * s_im
        energy = (nrm2 - cross) / (np.sqrt(nrm2) + _EPS)
        is_y = np.float32(j & 1)  # a blend, not a branch, so the loop vectorises; exact for 0 and 1
        threshold = tx * (one - is_y) + ty * is_y
        num[j] += max(energy - threshold, zero)
        den[j] += amp


@numba.njit(**_JIT)
def ratio(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:
    """``out = (num + eps) / (den + eps)``."""
    for j in range(out.shape[0]):
        out[j] = (num[j] + _EPS) / (den[j] + _EPS)
