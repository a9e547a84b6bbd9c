"""The combined dataset cpm15+cpm17: the union of both loaders' splits, names prefixed by source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gbench.data import load_dataset
from gbench.data.loaders import concat_datasets
from gbench.core.errors import DataError
from tests.data.test_loaders import write_cpm


@pytest.fixture
def tiny_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_cpm(tmp_path / "cpm15", {"train": ["a", "b"], "test": ["c"]})
    write_cpm(tmp_path / "cpm17", {"train": ["a", "x", "y"], "test": ["c", "z"]}, shape=(24, 30))
    monkeypatch.setenv("GBENCH_DATA", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", ["cpm15+cpm17", "cpm15+17"])
def test_union_of_splits_with_prefixed_names(tiny_root: Path, name: str) -> None:
    train = load_dataset(name, "train")
    assert train.name == "cpm15+cpm17"
    assert train.names == ["cpm15_a", "cpm15_b", "cpm17_a", "cpm17_x", "cpm17_y"]
    test = load_dataset(name, "test")
    assert test.names == ["cpm15_c", "cpm17_c", "cpm17_z"]
    assert len(load_dataset(name, "all")) == 8
    # each sample is the source's own sample under its new name
    for prefix, stem in (("cpm15", "b"), ("cpm17", "x")):
        src = load_dataset(prefix, "train")
        ref = src[src.names.index(stem)]
        got = train[train.names.index(f"{prefix}_{stem}")]
        assert got.name == f"{prefix}_{stem}"
        np.testing.assert_array_equal(got.image, ref.image)
        np.testing.assert_array_equal(got.instances, ref.instances)
        assert got.meta["source"] == prefix and got.meta["source_name"] == stem
    assert train.info["loader"] == "combined" and set(train.info["parts"]) == {"cpm15", "cpm17"}


def test_missing_part_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cpm(tmp_path / "cpm15", {"train": ["a"], "test": ["c"]})
    monkeypatch.setenv("GBENCH_DATA", str(tmp_path))
    with pytest.raises(DataError, match="cpm17") as exc:
        load_dataset("cpm15+cpm17", "train")
    assert "\n" not in str(exc.value)


def test_duplicate_prefixes_are_refused(tiny_root: Path) -> None:
    ds = load_dataset("cpm15", "train")
    with pytest.raises(ValueError, match="twice"):
        concat_datasets([("p", ds), ("p", ds)], "dup", "train")


def test_shared_cpm15_as_both_halves(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """../shared/data/cpm15 linked as both cpm15 and cpm17 under a temporary $GBENCH_DATA."""
    for name in ("cpm15", "cpm17"):
        (tmp_path / name).symlink_to(shared_data / "cpm15", target_is_directory=True)
    monkeypatch.setenv("GBENCH_DATA", str(tmp_path))
    half = load_dataset("cpm15", "test")
    both = load_dataset("cpm15+cpm17", "test")
    assert len(both) == 2 * len(half) == 10
    assert both.names == [f"cpm15_{n}" for n in half.names] + [f"cpm17_{n}" for n in half.names]
    a, b = both[0], both[len(half)]
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.instances, b.instances)
    assert a.instances.max() > 0 and a.image.dtype == np.uint8
    assert len(load_dataset("cpm15+cpm17", "train")) == 2 * len(load_dataset("cpm15", "train"))
