"""A failed MI-GAN run (collapsed samples, no focus peak) is flagged failed: constructed sets."""
from __future__ import annotations

import numpy as np
import pytest

from gbench.data.multifocus import stack_array
from gbench.data.resolve import load_stacks
from gbench.metrics.failures import multifocus_failure, stack_diversity

# one torch thread per test, as under tests/generators/conftest.py (where these tests lived before)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return stack_array(load_stacks("synthetic-cells:siha", "train", n=10, size=32))


@pytest.fixture(scope="module")
def test_real() -> np.ndarray:
    return stack_array(load_stacks("synthetic-cells:siha", "test", n=10, size=32))


def test_real_stacks_pass(real: np.ndarray, test_real: np.ndarray) -> None:
    assert multifocus_failure(test_real, real) == ""
    assert multifocus_failure(test_real) == ""


def test_collapsed_set_is_flagged(real: np.ndarray, test_real: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    one = np.repeat(test_real[:1], 10, axis=0).astype(np.int16)
    collapsed = np.clip(one + rng.integers(-2, 3, one.shape), 0, 255).astype(np.uint8)  # the same cell, camera noise
    assert stack_diversity(collapsed) < 0.25 * stack_diversity(real)
    msg = multifocus_failure(collapsed, real)
    assert msg.startswith("collapsed samples") and "real set's" in msg
    # the failed run: 1.3 grey levels against 16.7
    assert multifocus_failure(np.repeat(test_real[:1], 4, axis=0)) == \
        "collapsed samples: diversity 0 grey levels (identical stacks)"
    # half the real diversity is not a collapse
    mixed = np.concatenate([test_real[:5], test_real[:5]])
    assert multifocus_failure(mixed, real) == ""


def test_set_without_a_focus_peak_is_flagged(real: np.ndarray, test_real: np.ndarray) -> None:
    flat = np.repeat(test_real[:, :1], 11, axis=1)  # every plane the blurred I-5: no focus structure
    msg = multifocus_failure(flat, real)
    assert msg.startswith("no focus peak") and "flat" in msg
    rolled = np.roll(test_real, -5, axis=1)  # the sharp plane moved to I-5
    msg = multifocus_failure(rolled, real)
    assert msg == "no focus peak: the mean focus curve peaks at I-5 (I0 +-1 expected)"
    shifted = np.roll(test_real, 1, axis=1)  # peak at I+1: still within tolerance
    assert multifocus_failure(shifted, real) == ""


def test_nan_losses_and_bad_shapes() -> None:
    stacks = np.zeros((2, 11, 8, 8, 3), np.uint8)
    assert multifocus_failure(stacks, history=[{"step": 3, "loss_d": float("nan")}]) == "loss loss_d is nan at step 3"
    with pytest.raises(ValueError, match="focus stacks"):
        multifocus_failure(np.zeros((2, 8, 8, 3), np.uint8))
    assert multifocus_failure(np.zeros((0, 11, 8, 8, 3), np.uint8)) == "no generated stacks to check"
