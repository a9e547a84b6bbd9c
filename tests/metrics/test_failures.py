"""Failed-run checks (gbench.metrics.failures): they catch degenerate runs and leave normal ones alone."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from gbench.metrics.failures import CONSTANT_STD, generator_failure, segmentation_failure
from gbench.metrics.instance import instance_metrics
from tests.conftest import random_disks


def _per_image(preds: list[np.ndarray], truths: list[np.ndarray]) -> list[dict]:
    return [{"name": f"img{i}", **instance_metrics(p, t)} for i, (t, p) in enumerate(zip(truths, preds))]


@pytest.fixture
def truths() -> list[np.ndarray]:
    return [random_disks((64, 64), n=8, seed=s) for s in range(5)]


def test_module_does_not_import_torch() -> None:
    code = "import sys, gbench.metrics.failures; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_all_background_prediction_is_flagged(truths: list[np.ndarray]) -> None:
    rows = _per_image([np.zeros_like(t) for t in truths], truths)
    msg = segmentation_failure(rows)
    assert msg.startswith("no foreground predicted")
    assert "5 images" in msg
    assert segmentation_failure(pd.DataFrame(rows)) == msg


def test_one_blob_per_image_is_flagged(truths: list[np.ndarray]) -> None:
    # the whole foreground (the union of the nuclei, dilated) as one instance per image
    blobs = [ndimage.binary_dilation(t > 0, iterations=6).astype(np.int32) for t in truths]
    rows = _per_image(blobs, truths)
    assert all(r["n_pred"] == 1 and r["n_true"] > 1 for r in rows)
    assert segmentation_failure(rows).startswith("one component or fewer")


def test_normal_segmentation_is_not_flagged(truths: list[np.ndarray]) -> None:
    # a slightly eroded truth: imperfect but real instances
    preds = []
    for t in truths:
        p = t.copy()
        p[ndimage.binary_erosion(t > 0, iterations=1) == 0] = 0
        preds.append(p)
    assert segmentation_failure(_per_image(preds, truths)) == ""
    # one image without predictions among good ones is a bad prediction, not a failed run
    rows = _per_image(preds, truths)
    rows[0] = {**rows[0], "n_pred": 0}
    assert segmentation_failure(rows) == ""
    # one blob on some images only: not every image
    rows = _per_image(preds, truths)
    rows[1] = {**rows[1], "n_pred": 1}
    assert segmentation_failure(rows) == ""


def test_single_nucleus_truth_does_not_trigger_one_blob_check() -> None:
    rows = [{"n_true": 1, "n_pred": 1}, {"n_true": 0, "n_pred": 1}]
    assert segmentation_failure(rows) == ""


def test_segmentation_failure_bad_input() -> None:
    assert segmentation_failure([]) == "no test images were evaluated"
    with pytest.raises(ValueError, match="n_pred"):
        segmentation_failure([{"n_true": 3}])


def test_nan_loss_history_is_flagged() -> None:
    hist = [{"step": k, "g_gan": 0.7, "l1": 0.3} for k in range(1, 6)]
    assert generator_failure(history=hist) == ""
    hist[3] = {**hist[3], "g_gan": float("nan")}
    assert generator_failure(history=hist) == "loss g_gan is nan at step 4"
    hist[3] = {**hist[3], "g_gan": math.inf}
    assert generator_failure(history=pd.DataFrame(hist)) == "loss g_gan is inf at step 4"


def test_non_loss_columns_are_not_checked() -> None:
    assert generator_failure(history=[{"step": 1, "lr": float("nan"), "l1": 0.2}]) == ""


def _normal_outputs(n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, size=(n, 3, 16, 16))


def test_constant_output_generator_is_flagged() -> None:
    # the same (textured) image whatever the input: mode collapse
    one = _normal_outputs(1)[0]
    collapsed = np.repeat(one[None], 6, axis=0)
    assert generator_failure(outputs=collapsed).startswith("near-constant outputs across the batch")
    # a tiny jitter (well below one grey level) is still collapse
    jitter = collapsed + np.random.default_rng(1).normal(0, 0.1 / 255, collapsed.shape)
    assert generator_failure(outputs=jitter).startswith("near-constant outputs across the batch")
    # flat images of different colours: not the same image, but each one constant
    flat = np.broadcast_to(np.linspace(0, 1, 6)[:, None, None, None], (6, 3, 16, 16)).copy()
    assert generator_failure(outputs=flat).startswith("constant output images")
    # NaN outputs
    bad = _normal_outputs()
    bad[0, 0, 0, 0] = np.nan
    assert "NaN" in generator_failure(outputs=bad)


def test_normal_generator_is_not_flagged() -> None:
    out = _normal_outputs()
    assert generator_failure(history=[{"step": 1, "l1": 0.2}], outputs=out) == ""
    # channels-last uint8 and single-channel layouts
    u8 = (out.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    assert generator_failure(outputs=u8) == ""
    assert generator_failure(outputs=out[:, 0]) == ""
    assert generator_failure(outputs=(u8 // 255 * 0 + 128).astype(np.uint8)).startswith("near-constant")
    assert CONSTANT_STD == pytest.approx(1 / 255)


def test_torch_tensor_outputs() -> None:
    torch = pytest.importorskip("torch")
    out = torch.from_numpy(_normal_outputs()).float()
    assert generator_failure(outputs=out) == ""
    assert generator_failure(outputs=torch.zeros(4, 3, 8, 8)).startswith("near-constant")


def test_bad_output_shape() -> None:
    with pytest.raises(ValueError, match="batch"):
        generator_failure(outputs=np.zeros((8, 8)))
