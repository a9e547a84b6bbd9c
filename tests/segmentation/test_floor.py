"""The segmentation floor (issue 24): a classical segmenter with no training, scored like a trained cell."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from gbench.core.observations import FLOOR_SEGMENTER, FLOOR_TRAIN_SET
from gbench.metrics.instance import instance_metrics
from gbench.segmentation.floor import FLOOR_MODEL, FloorConfig, floor_segment, score_floor
from tests.conftest import random_disks


def he_like(inst: np.ndarray, seed: int = 0) -> np.ndarray:
    """An H&E-looking RGB tile of an instance map: purple nuclei on pink, a little noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((*inst.shape, 3), np.float64)
    img[:] = (235, 200, 220)
    img[inst > 0] = (90, 50, 140)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_floor_finds_separate_nuclei() -> None:
    inst = np.zeros((96, 96), np.int32)
    from skimage.draw import disk

    for k, (cy, cx) in enumerate([(20, 20), (20, 60), (60, 30), (70, 75)], start=1):
        inst[disk((cy, cx), 8, shape=inst.shape)] = k
    pred = floor_segment(he_like(inst))
    assert pred.dtype == np.int32 and pred.shape == inst.shape
    res = instance_metrics(pred, inst)
    assert res["n_pred"] == 4 and res["pq"] > 0.8


def test_floor_splits_touching_nuclei_and_handles_blank_tiles() -> None:
    from skimage.draw import disk

    inst = np.zeros((64, 96), np.int32)
    inst[disk((32, 34), 12, shape=inst.shape)] = 1
    inst[disk((32, 56), 12, shape=inst.shape)] = 2  # overlapping: one foreground blob
    pred = floor_segment(he_like(inst))
    assert len(np.unique(pred)) - 1 == 2  # the distance watershed splits them
    assert floor_segment(np.full((32, 32, 3), 200, np.uint8)).max() == 0  # nothing to find
    with pytest.raises(ValueError, match="RGB"):
        floor_segment(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="min_distance"):
        FloorConfig(min_distance=0)


def test_floor_is_deterministic_and_scored_like_a_cell() -> None:
    class S:
        def __init__(self, i: int) -> None:
            self.name, self.instances = f"t{i}", random_disks((64, 64), n=6, seed=i, rmin=5, rmax=8)
            self.image = he_like(self.instances, i)

    ds = [S(i) for i in range(3)]
    a, b = score_floor(ds), score_floor(ds)
    assert a["per_image"] == b["per_image"] and a["pooled"]["pq"] > 0.3
    assert [r["name"] for r in a["per_image"]] == ["t0", "t1", "t2"] and a["config"]["min_distance"] == 7
    assert FLOOR_MODEL == FLOOR_SEGMENTER


def test_run_floor_writes_records_beside_the_grid(tmp_path: Path) -> None:
    from gbench.core.observations import load_observations
    from gbench.core.profiles import get_profile
    from gbench.core.records import load_records
    from gbench.pipelines.segmentation_grid import run_floor, table_frame

    prof = get_profile("smoke")
    res = run_floor(data="synthetic-he", profile=prof, out=tmp_path, target="binary")
    recs = load_records(tmp_path / "records.csv")
    obs = load_observations(tmp_path / "records.csv")
    assert set(recs["model"]) == {FLOOR_SEGMENTER} and set(recs["train_set"]) == {FLOOR_TRAIN_SET}
    assert set(recs["aggregation"]) == {"mean", "pooled"} and len(recs) == 10
    assert len(obs) == prof.data.builtin_test and (obs["target"] == "binary").all()
    assert res.row["train_label"] == "(floor)" and (tmp_path / "floor" / "binary" / "data0" / "result.json").is_file()
    # a cell that learned nothing, beside it: marked below the floor in Table 2
    cell = dict(res.row, arch="unet", train_set="R", train_label="R", **{f"pq_{a}": 0.0 for a in ("mean", "pooled")})
    frame = table_frame([cell, res.row], aggregation="mean")
    assert frame.set_index("arch").loc["unet", "below_floor"]
    assert not frame.set_index("arch").loc[FLOOR_SEGMENTER, "below_floor"]


@pytest.mark.shared_data
def test_floor_on_the_real_cpm15_test_tiles(shared_data: Path) -> None:
    """PQ clearly above 0 on the 5 real CPM-15 test tiles (0.52 with the defaults), in seconds."""
    from gbench.data.loaders import load_dataset

    root = shared_data / "cpm15"
    if not (root / "test").is_dir():
        pytest.skip("CPM-15 not under ../shared/data")
    ds = load_dataset(f"cpm:{root}", split="test")
    t0 = time.perf_counter()
    res = score_floor(ds)
    spent = time.perf_counter() - t0
    assert len(res["per_image"]) == 5
    assert res["mean"]["pq"] > 0.4 and res["pooled"]["pq"] > 0.4, res["mean"]
    assert min(r["pq"] for r in res["per_image"]) > 0.2  # every tile, not one lucky one
    assert spent < 20.0  # about 0.6 s on one core
