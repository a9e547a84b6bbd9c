"""Shared fixtures: tiny seeded instance maps and the location of ../shared/data."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as gbench/__init__.py: no spinning threads

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

ATOL_F64 = 1e-8
ATOL_F32 = 1e-5


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def random_disks(shape: tuple[int, int] = (64, 64), n: int = 8, seed: int = 0,
                 rmin: int = 3, rmax: int = 8) -> np.ndarray:
    """An instance map of ``n`` possibly overlapping disks (later disks on top), ids 1..n."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    inst = np.zeros(shape, dtype=np.int32)
    for k in range(1, n + 1):
        r = int(rng.integers(rmin, rmax + 1))
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        rr, cc = disk((cy, cx), r, shape=shape)
        inst[rr, cc] = k
    return inst


@pytest.fixture
def disks() -> np.ndarray:
    return random_disks()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run the test on one torch thread: on a busy 2-core machine two OpenMP threads per tiny
    convolution spend most of their time waiting for each other."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
