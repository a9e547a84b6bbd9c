"""The Sharp-GAN sharpness loss (Eq. 4-5) against a literal per-pixel implementation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gbench.generators.sharp_gan import sharpness_loss, sharpness_map

ATOL = 1e-10


def literal_sharpness(contour: np.ndarray, image: np.ndarray, lam: float) -> float:
    """Eq. 4-5 written out pixel by pixel, as in the paper: batch mean of (1/mn) sum_{c != 0} S."""
    n, _, m, w = image.shape
    total = 0.0
    for b in range(n):
        g = 0.299 * image[b, 0] + 0.587 * image[b, 1] + 0.114 * image[b, 2]
        acc = 0.0
        for i in range(m):
            for j in range(w):
                if contour[b, i, j] == 0:
                    continue
                s = 0.0
                for p in range(i - 1, i + 2):
                    for q in range(j - 1, j + 2):
                        if (p, q) == (i, j) or not (0 <= p < m and 0 <= q < w):
                            continue
                        dist = abs(p - i) + abs(q - j)
                        s += math.exp(-((g[i, j] - g[p, q]) ** 2) / (2 * lam ** 2)) / dist
                acc += s
        total += acc / (m * w)
    return total / n


@pytest.mark.parametrize("lam", [0.05, 0.1, 0.7])
@pytest.mark.parametrize("shape", [(2, 7, 9), (3, 1, 5), (1, 4, 1), (2, 2, 2)])
def test_matches_literal_implementation(lam: float, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(hash((lam, shape)) % 2**32)
    n, h, w = shape
    image = rng.random((n, 3, h, w))
    # non-binary contour values: any non-zero value marks a contour pixel (the value is not a weight)
    contour = rng.choice([0.0, 0.0, 1.0, 0.5, 3.0], size=(n, h, w))
    got = sharpness_loss(torch.from_numpy(contour)[:, None], torch.from_numpy(image), lam)
    assert got.dtype == torch.float64 and got.ndim == 0
    assert abs(float(got) - literal_sharpness(contour, image, lam)) < ATOL
    # (N, H, W) contours are accepted too
    got3 = sharpness_loss(torch.from_numpy(contour), torch.from_numpy(image), lam)
    assert float(got3) == float(got)


def test_hand_computed_flat_image() -> None:
    # a flat image: every neighbour term is exp(0) = 1, so S = sum of 1/dist over neighbours inside
    image = torch.full((1, 3, 5, 6), 0.4, dtype=torch.float64)
    contour = torch.zeros(1, 5, 6, dtype=torch.float64)
    contour[0, 2, 3] = 1  # interior: 4 * 1 + 4 * 1/2 = 6
    contour[0, 0, 0] = 1  # corner: 2 * 1 + 1 * 1/2 = 2.5
    contour[0, 0, 3] = 1  # top edge: 3 * 1 + 2 * 1/2 = 4
    smap = sharpness_map(contour, image, 0.1)
    assert smap[0, 2, 3] == 6.0 and smap[0, 0, 0] == 2.5 and smap[0, 0, 3] == 4.0
    assert float(smap.sum()) == 12.5
    assert abs(float(sharpness_loss(contour, image, 0.1)) - 12.5 / 30) < ATOL
    # no contour, no loss
    assert float(sharpness_loss(torch.zeros_like(contour), image, 0.1)) == 0.0


def test_a_sharp_step_edge_scores_lower_than_a_flat_one() -> None:
    h = w = 8
    contour = torch.zeros(1, 1, h, w, dtype=torch.float64)
    contour[..., 1:-1, 3] = 1  # interior rows of the column left of a vertical step
    flat = torch.full((1, 3, h, w), 0.5, dtype=torch.float64)
    step = flat.clone()
    step[..., :, 4:] = 0.9  # a 0.4 step: the right-hand neighbours (weights 1, 1/2, 1/2) score exp(-8)
    expect_step = (4 + math.exp(-0.16 / 0.02) * (1 + 0.5 + 0.5)) * (h - 2) / (h * w)
    assert abs(float(sharpness_loss(contour, flat, 0.1)) - 6 * (h - 2) / (h * w)) < ATOL
    assert abs(float(sharpness_loss(contour, step, 0.1)) - expect_step) < ATOL


def _local_contrast(img: torch.Tensor, on: torch.Tensor) -> float:
    """Mean |g(i,j) - g(p,q)| over contour pixels and their 8 neighbours (inside the image)."""
    g = 0.299 * img[0, 0] + 0.587 * img[0, 1] + 0.114 * img[0, 2]
    h, w = g.shape
    diffs = []
    for i, j in on.nonzero().tolist():
        for p in range(max(0, i - 1), min(h, i + 2)):
            for q in range(max(0, j - 1), min(w, j + 2)):
                if (p, q) != (i, j):
                    diffs.append(abs(float(g[i, j] - g[p, q])))
    return float(np.mean(diffs))


def test_gradient_descent_raises_contour_contrast() -> None:
    gen = torch.Generator().manual_seed(0)
    h = w = 16
    inst = torch.zeros(h, w, dtype=torch.long)
    inst[4:12, 4:12] = 1
    inner = torch.zeros_like(inst)
    inner[5:11, 5:11] = 1
    on = (inst == 1) & (inner == 0)  # contour: nucleus pixels with a 4-neighbour outside it
    contour = on.to(torch.float64)[None, None]
    # a blurry, low-contrast nucleus: 0.05 darker than the background, plus a little noise
    base = torch.where(inst == 1, 0.45, 0.5).to(torch.float64)
    image = (base + 0.005 * torch.randn(1, 3, h, w, generator=gen, dtype=torch.float64)).requires_grad_(True)
    ring = torch.zeros(h, w, dtype=torch.bool)
    ring[3:13, 3:13] = True
    ring &= inst == 0  # background pixels touching the nucleus

    def edge(img: torch.Tensor) -> float:
        g = 0.299 * img[0, 0] + 0.587 * img[0, 1] + 0.114 * img[0, 2]
        return float(g[ring].mean() - g[on].mean())

    with torch.no_grad():
        before = (float(sharpness_loss(contour, image, 0.1)), _local_contrast(image, on), edge(image))
    opt = torch.optim.SGD([image], lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        sharpness_loss(contour, image, 0.1).backward()
        opt.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    with torch.no_grad():
        after = (float(sharpness_loss(contour, image, 0.1)), _local_contrast(image, on), edge(image))
    assert after[0] < 0.5 * before[0]  # the loss falls ...
    assert after[1] > 3 * before[1]  # ... because contour pixels move away from their neighbours
    assert after[2] > 2 * before[2]  # and the nucleus boundary itself gets darker against the background
    # the gradient is zero away from the contour and its neighbours
    image.grad = None
    sharpness_loss(contour, image, 0.1).backward()
    near = torch.nn.functional.max_pool2d(contour, 3, 1, 1)[0, 0].bool()
    assert torch.all(image.grad[0][:, ~near] == 0)
    assert torch.any(image.grad[0][:, near] != 0)


def test_bad_input() -> None:
    img = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="image must be"):
        sharpness_loss(torch.zeros(2, 8, 8), torch.rand(2, 8, 8), 0.1)
    with pytest.raises(ValueError, match="does not match"):
        sharpness_loss(torch.zeros(2, 8, 7), img, 0.1)
    with pytest.raises(ValueError, match="contour must be"):
        sharpness_loss(torch.zeros(2, 2, 8, 8), img, 0.1)
    with pytest.raises(ValueError, match="lam must be positive"):
        sharpness_loss(torch.zeros(2, 8, 8), img, 0.0)
