"""Per-image observation tables: building, validation, paths, round trip, test-set hash."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbench.core.observations import (load_observations, make_observations, obs_key_columns, observations_path,
                                      save_observations, hash_test_set)
from gbench.core.errors import DataError


def _rows(n: int = 3) -> list[dict]:
    return [{"name": f"img{i}", "pq": 0.5 + 0.1 * i, "dq": 0.7, "tp": 3 + i, "fp": 1, "fn": 2, "iou_sum": 2.4}
            for i in range(n)]


def test_make_save_load_round_trip(tmp_path) -> None:
    obs = make_observations("segmentation", "unet", _rows(), train_set="R", profile="smoke", seed=1,
                            dataset="synthetic-he", split="test", test_set="abc", target="binary", data_seed=0)
    assert list(obs["image"]) == ["img0", "img1", "img2"] and (obs["unit"] == obs["image"]).all()
    assert obs_key_columns(obs) == ["kind", "model", "train_set", "profile", "seed", "dataset", "split",
                                    "target", "data_seed"]
    path = save_observations(obs, tmp_path / "records.csv")
    assert path == tmp_path / "observations.csv"
    back = load_observations(tmp_path / "records.csv")
    pd.testing.assert_frame_equal(back, obs, check_dtype=False)
    assert back["pq"].tolist() == pytest.approx([0.5, 0.6, 0.7], abs=0)


def test_paths_and_missing(tmp_path) -> None:
    assert observations_path(tmp_path / "a" / "records.csv") == tmp_path / "a" / "observations.csv"
    assert observations_path(tmp_path / "table.csv") == tmp_path / "table.observations.csv"
    assert load_observations(tmp_path / "records.csv") is None
    with pytest.raises(DataError, match="observations.csv"):
        load_observations(tmp_path / "records.csv", required=True)


def test_refusals(tmp_path) -> None:
    with pytest.raises(ValueError, match="aggregation"):
        make_observations("segmentation", "unet", _rows(), train_set="R", profile="smoke", seed=0, dataset="d",
                          split="test", aggregation="mean")
    dup = _rows(2) + _rows(1)
    with pytest.raises(ValueError, match="same experiment and image"):
        make_observations("segmentation", "unet", dup, train_set="R", profile="smoke", seed=0, dataset="d",
                          split="test")
    (tmp_path / "observations.csv").write_text("kind,model\nquality,x\n")
    with pytest.raises(DataError, match="missing column"):
        load_observations(tmp_path)


def test_hash_depends_on_content_not_order() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.zeros((4, 4), np.int32)
    h1 = hash_test_set([("x", a, b), ("y", a + 1, b)])
    h2 = hash_test_set([("y", a + 1, b), ("x", a, b)])
    assert h1 == h2 and len(h1) == 16
    b2 = b.copy()
    b2[0, 0] = 1
    assert hash_test_set([("x", a, b2), ("y", a + 1, b)]) != h1
    assert hash_test_set([("x", a, b)]) != h1
