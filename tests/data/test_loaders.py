"""Loaders on small files written here in each native format, and on ../shared/data."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import tifffile
from PIL import Image

from gbench.data import detect_layout, load_dataset
from gbench.data.loaders import rasterize_polygons, read_monuseg_xml
from gbench.core.errors import DataError
from tests.conftest import random_disks


def _image(seed: int, shape: tuple[int, int] = (32, 40)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def write_cpm(root: Path, names: dict[str, list[str]], shape: tuple[int, int] = (32, 40)) -> None:
    for split, stems in names.items():
        (root / split / "Images").mkdir(parents=True)
        (root / split / "Labels").mkdir(parents=True)
        for i, stem in enumerate(stems):
            Image.fromarray(_image(i, shape)).save(root / split / "Images" / f"{stem}.png")
            scipy.io.savemat(root / split / "Labels" / f"{stem}.mat",
                             {"inst_map": random_disks(shape, 5, seed=i).astype(np.int32), "type_map": np.zeros(shape)})


def write_folder(root: Path, stems: list[str], fmt: str = "png", shape: tuple[int, int] = (32, 40)) -> dict[str, np.ndarray]:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    labels = {}
    for i, stem in enumerate(stems):
        Image.fromarray(_image(i, shape)).save(root / "images" / f"{stem}.png")
        lab = random_disks(shape, 6, seed=10 + i) * 300  # ids above 255: needs 16-bit or wider
        labels[stem] = lab
        if fmt == "png":
            Image.fromarray(lab.astype(np.uint16)).save(root / "labels" / f"{stem}.png")
        elif fmt == "tif":
            tifffile.imwrite(root / "labels" / f"{stem}.tif", lab.astype(np.int32))
        else:
            np.save(root / "labels" / f"{stem}.npy", lab.astype(np.int64))
    return labels


XML_TEMPLATE = """<Annotations MicronsPerPixel="0.252700"><Annotation Id="1"><Regions>
{regions}
</Regions></Annotation></Annotations>"""


def _region(rid: int, pts: list[tuple[float, float]]) -> str:
    verts = "".join(f'<Vertex X="{x}" Y="{y}"/>' for x, y in pts)
    return f'<Region Id="{rid}"><Attributes/><Vertices>{verts}</Vertices></Region>'


def write_monuseg(root: Path, stem: str = "TCGA-XX") -> None:
    root.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / f"{stem}.tif", _image(0, (30, 30)))
    big = [(2, 2), (20, 2), (20, 20), (2, 20)]       # 18 x 18 square, first in the file
    small = [(15, 15), (25, 15), (25, 25), (15, 25)]  # 10 x 10 square overlapping its corner
    (root / f"{stem}.xml").write_text(XML_TEMPLATE.format(regions=_region(1, big) + _region(2, small)))


# ------------------------------------------------------------------------------------------ cpm

def test_cpm_loader_splits_and_values(tmp_path: Path) -> None:
    write_cpm(tmp_path, {"train": ["a", "b"], "test": ["c"]})
    assert detect_layout(tmp_path) == "cpm"
    train = load_dataset(tmp_path, split="train")
    test = load_dataset(str(tmp_path), split="test")
    both = load_dataset(f"cpm:{tmp_path}", split="all")
    assert train.names == ["a", "b"] and test.names == ["c"] and both.names == ["a", "b", "c"]
    s = train[1]
    assert s.image.dtype == np.uint8 and s.image.shape == (32, 40, 3)
    assert s.instances.dtype == np.int32
    np.testing.assert_array_equal(s.instances, random_disks((32, 40), 5, seed=1))
    np.testing.assert_array_equal(s.image, _image(1))
    assert both[2].meta["split"] == "test"


def test_cpm_errors_name_the_file(tmp_path: Path) -> None:
    write_cpm(tmp_path, {"train": ["a", "b"]})
    with pytest.raises(DataError, match="split folder missing"):
        load_dataset(tmp_path, split="test")
    (tmp_path / "train" / "Labels" / "b.mat").unlink()
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path, split="train")
    assert "b.png" in str(err.value) and "without a label" in str(err.value) and "\n" not in str(err.value)


def test_mat_without_inst_map(tmp_path: Path) -> None:
    write_cpm(tmp_path, {"train": ["a"]})
    scipy.io.savemat(tmp_path / "train" / "Labels" / "a.mat", {"type_map": np.zeros((32, 40))})
    ds = load_dataset(tmp_path, split="train")
    with pytest.raises(DataError, match=r"a\.mat: no variable 'inst_map'.*type_map"):
        ds[0]


# ------------------------------------------------------------------------------------------ folder

@pytest.mark.parametrize("fmt", ["png", "tif", "npy"])
def test_folder_label_formats_and_train_test_layout(tmp_path: Path, fmt: str) -> None:
    labels = write_folder(tmp_path / "train", ["x1", "x2"], fmt)
    labels |= write_folder(tmp_path / "test", ["y1"], fmt)
    assert detect_layout(tmp_path) == "folder"
    ds = load_dataset(tmp_path, split="train")
    assert ds.names == ["x1", "x2"]
    for s in ds:
        np.testing.assert_array_equal(s.instances, labels[s.name])
        assert s.instances.dtype == np.int32
    assert load_dataset(tmp_path, split="all").names == ["x1", "x2", "y1"]


def test_flat_folder_with_and_without_split_csv(tmp_path: Path) -> None:
    write_folder(tmp_path, ["p", "q", "r"])
    assert load_dataset(tmp_path, split="all").names == ["p", "q", "r"]
    with pytest.raises(DataError, match="without split.csv"):
        load_dataset(tmp_path, split="train")
    with open(tmp_path / "split.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["name", "split"], ["p", "train"], ["q", "test"], ["r", "train"]])
    assert load_dataset(tmp_path, split="train").names == ["p", "r"]
    assert load_dataset(tmp_path, split="test").names == ["q"]


def test_folder_errors(tmp_path: Path) -> None:
    write_folder(tmp_path, ["p", "q"])
    # a label without an image
    np.save(tmp_path / "labels" / "orphan.npy", np.zeros((32, 40), np.int32))
    with pytest.raises(DataError, match=r"orphan\.npy: label without an image"):
        load_dataset(tmp_path, split="all")
    (tmp_path / "labels" / "orphan.npy").unlink()
    # shape mismatch
    np.save(tmp_path / "labels" / "q.npy", np.zeros((10, 10), np.int32))
    (tmp_path / "labels" / "q.png").unlink()
    ds = load_dataset(tmp_path, split="all")
    with pytest.raises(DataError, match=r"q\.npy: label shape \(10, 10\) does not match image shape \(32, 40\)"):
        ds[1]
    # float labels with fractions, negative labels
    np.save(tmp_path / "labels" / "q.npy", np.full((32, 40), 0.5))
    with pytest.raises(DataError, match=r"q\.npy: instance map must hold integer ids"):
        ds[1]
    np.save(tmp_path / "labels" / "q.npy", -np.ones((32, 40), np.int32))
    with pytest.raises(DataError, match=r"q\.npy: instance map has negative ids"):
        ds[1]
    # whole numbers stored as float are accepted (common in .mat files)
    np.save(tmp_path / "labels" / "q.npy", np.ones((32, 40), np.float64) * 3)
    assert ds[1].instances.max() == 3
    # unreadable image
    (tmp_path / "images" / "p.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"p\.png: cannot read file"):
        ds[0]


def test_missing_folder_and_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout"):
        load_dataset(tmp_path / "junk")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset(tmp_path, split="val")  # type: ignore[arg-type]


def test_named_real_dataset_not_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GBENCH_DATA", str(tmp_path))
    with pytest.raises(DataError, match="dataset 'cpm17' not found"):
        load_dataset("cpm17")
    write_cpm(tmp_path / "cpm17", {"train": ["a"], "test": ["b"]})
    ds = load_dataset("cpm17", split="test")
    assert ds.name == "cpm17" and ds.names == ["b"]


# ------------------------------------------------------------------------------------------ monuseg

def test_monuseg_rasterizes_and_resolves_overlap(tmp_path: Path) -> None:
    write_monuseg(tmp_path / "MoNuSegTestData")
    assert detect_layout(tmp_path) == "monuseg"
    ds = load_dataset(tmp_path, split="test")
    s = ds[0]
    assert s.image.shape == (30, 30, 3)
    # ids follow file order; the smaller nucleus keeps the overlap
    assert set(np.unique(s.instances)) == {0, 1, 2}
    assert s.instances[17, 17] == 2 and s.instances[5, 5] == 1
    assert (s.instances == 2).sum() == 11 * 11  # pixel centres inside or on a 10x10 square
    assert (s.instances == 1).sum() == 19 * 19 - 6 * 6  # the overlapped corner went to nucleus 2
    with pytest.raises(DataError, match="no MoNuSeg tiles in split 'train'"):
        load_dataset(tmp_path, split="train")


def test_monuseg_bad_xml_and_missing_pair(tmp_path: Path) -> None:
    write_monuseg(tmp_path)
    (tmp_path / "TCGA-XX.xml").write_text("<Annotations><Region")
    ds = load_dataset(f"monuseg:{tmp_path}", split="all")
    with pytest.raises(DataError, match=r"TCGA-XX\.xml: cannot parse XML"):
        ds[0]
    (tmp_path / "TCGA-XX.xml").unlink()
    (tmp_path / "other.xml").write_text(XML_TEMPLATE.format(regions=""))
    with pytest.raises(DataError, match=r"TCGA-XX\.tif: image without a annotation"):
        load_dataset(f"monuseg:{tmp_path}", split="all")


def test_rasterize_drops_fully_covered_polygon() -> None:
    outer = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    inst, dropped = rasterize_polygons([outer, outer.copy()], (12, 12))
    assert dropped == 1 and set(np.unique(inst)) == {0, 1}


# ------------------------------------------------------------------------------------------ real data

def test_shared_cpm15_matches_split_csv(shared_data: Path) -> None:
    rows = {r["name"]: r for r in csv.DictReader(open(shared_data / "cpm15" / "split.csv"))}
    for split in ("train", "test"):
        ds = load_dataset(shared_data / "cpm15", split=split)
        assert sorted(ds.names) == sorted(n for n, r in rows.items() if r["split"] == split)
        for s in ds[:2]:
            r = rows[s.name]
            assert s.shape == (int(r["height"]), int(r["width"]))
            assert len(np.unique(s.instances)) - 1 == int(r["n_nuclei"])


def test_shared_monuseg_region_counts(shared_data: Path) -> None:
    ds = load_dataset(shared_data / "monuseg", split="test")
    assert len(ds) == 2
    expected = {"TCGA-2Z-A9J9-01A-01-TS1": 575, "TCGA-A6-6782-01A-01-BS1": 441}
    for s in ds:
        regions = len(read_monuseg_xml(s.meta["label"]))
        assert regions == expected[s.name]
        n = len(np.unique(s.instances)) - 1
        assert n == regions - s.meta["dropped_polygons"] and n >= regions - 5
        assert s.image.shape == (1000, 1000, 3)
        assert 0.05 < (s.instances > 0).mean() < 0.6
