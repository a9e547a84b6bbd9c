"""Multi-focus stacks: the synthetic-cells built-in, the multifocus loader, the x6 augmentation."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gbench.core.errors import DataError
from gbench.data.multifocus import (
    AUGMENTATIONS,
    augment_stack,
    augmented,
    check_stack,
    load_multifocus,
    plane_labels,
    stack_array,
    write_stack,
)
from gbench.data.resolve import load_stacks
from gbench.data.synthetic_cells import synthetic_cells
from gbench.metrics.multifocus import focus_curve

# one torch thread per test, as under tests/generators/conftest.py (where these tests lived before)
pytestmark = pytest.mark.usefixtures("one_thread")


def _stack(seed: int = 0, planes: int = 11, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (planes, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("cell_type", ["siha", "cancer"])
def test_synthetic_cells_focus_peaks_at_i0(cell_type: str) -> None:
    stacks = stack_array(synthetic_cells(cell_type, "train", n=6))
    assert stacks.shape == (6, 11, 64, 64, 3) and stacks.dtype == np.uint8
    curve = focus_curve(stacks)
    assert (curve.argmax(1) == 5).all()  # every stack is sharpest at I0
    mean = curve.mean(0)
    # sharpness falls off on both sides of focus, and the stack ends are much blurrier
    assert (np.diff(mean[:6]) > 0).all() and (np.diff(mean[5:]) < 0).all()
    assert mean[0] < 0.6 * mean[5] and mean[-1] < 0.6 * mean[5]


def test_synthetic_cells_deterministic_split_and_types_differ() -> None:
    a = synthetic_cells("siha", "train", n=3, seed=0)
    b = synthetic_cells("siha", "train", n=5, seed=0)
    np.testing.assert_array_equal(a[2].stack, b[2].stack)  # n only lists more stacks
    assert not np.array_equal(a[0].stack, synthetic_cells("siha", "train", n=1, seed=1)[0].stack)
    test = synthetic_cells("siha", "test", n=3, seed=0)
    assert not any(np.array_equal(a[i].stack, test[j].stack) for i in range(3) for j in range(3))
    assert len(synthetic_cells("siha", "all", n=3)) == 6
    # cancer-like cells are larger with much larger nuclei (I0 luma thresholds)
    def areas(t: str) -> tuple[float, float]:
        y = stack_array(synthetic_cells(t, "train", n=8))[:, 5].astype(float).mean(-1)
        return float((y < 200).sum((1, 2)).mean()), float((y < 120).sum((1, 2)).mean())
    (cell_s, nuc_s), (cell_c, nuc_c) = areas("siha"), areas("cancer")
    assert cell_c > 1.15 * cell_s and nuc_c > 2 * nuc_s
    with pytest.raises(ValueError, match="unknown synthetic-cells type"):
        synthetic_cells("hela")
    ds = load_stacks("synthetic-cells:cancer", "test", n=1, size=32)
    assert ds[0].stack.shape == (11, 32, 32, 3) and ds[0].meta["cell_type"] == "cancer"


def test_loader_reads_tif_npy_and_png_folders(tmp_path) -> None:
    root = tmp_path / "cells"
    stacks = {name: _stack(i) for i, name in enumerate(["a", "b", "c"])}
    write_stack(root / "train" / "a.tif", stacks["a"])
    write_stack(root / "train" / "b.npy", stacks["b"])
    write_stack(root / "test" / "c", stacks["c"])  # folder of 11 PNGs
    (root / "train" / "manifest.csv").write_text("ignored\n")
    assert sorted(p.name for p in (root / "test" / "c").iterdir())[0] == "00.png"
    train = load_multifocus(root, "train")
    assert train.names == ["a", "b"]
    np.testing.assert_array_equal(train[0].stack, stacks["a"])
    np.testing.assert_array_equal(train[1].stack, stacks["b"])
    np.testing.assert_array_equal(load_multifocus(root, "test")[0].stack, stacks["c"])
    assert len(load_stacks(f"multifocus:{root}", "all")) == 3
    assert train[0].base.shape == (16, 16, 3) and train[0].planes == 11


def test_loader_errors_name_file_and_problem(tmp_path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    np.save(flat / "ten.npy", _stack(planes=10))
    with pytest.raises(DataError, match=r"ten\.npy: has 10 focus planes, expected 11"):
        load_multifocus(flat)[0]
    np.save(flat / "ten.npy", _stack().astype(np.float32))
    with pytest.raises(DataError, match="expected uint8 planes, got dtype float32"):
        load_multifocus(flat)[0]
    np.save(flat / "ten.npy", _stack(size=16))
    with pytest.raises(DataError, match="planes are 16x16 pixels, expected 64x64"):
        load_multifocus(flat, size=64)[0]
    with pytest.raises(DataError, match="holds a single split"):
        load_multifocus(flat, "train")
    folder = flat / "cellx"
    folder.mkdir()
    for k in range(9):
        Image.fromarray(_stack()[k]).save(folder / f"{k:02d}.png")
    with pytest.raises(DataError, match="holds 9 plane images, expected 11"):
        load_multifocus(flat)[0]
    with pytest.raises(DataError, match="bad.tif"):
        check_stack(np.zeros((11, 8, 8, 3, 2), np.uint8), tmp_path / "bad.tif")
    with pytest.raises(DataError, match="folder not found"):
        load_multifocus(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no focus stacks found"):
        load_multifocus(empty)
    with pytest.raises(DataError, match="no such folder"):
        load_stacks(tmp_path / "nowhere")


def test_augmentation_x6_transforms_every_plane_alike() -> None:
    s = _stack(3, size=8)
    outs = [augment_stack(s, k) for k in range(6)]
    assert len(AUGMENTATIONS) == 6
    assert len({o.tobytes() for o in outs}) == 6  # six different stacks
    for k, fn in enumerate([lambda p: p, lambda p: np.rot90(p, 1), lambda p: np.rot90(p, 2), lambda p: np.rot90(p, 3),
                            np.flipud, np.fliplr]):
        for z in range(11):
            np.testing.assert_array_equal(outs[k][z], fn(s[z]))
    ds = synthetic_cells("siha", "train", n=2, size=16)
    aug = augmented(ds)
    assert len(aug) == 12 and aug.names[7] == f"{ds.names[1]}@rot90"
    np.testing.assert_array_equal(aug[7].stack, augment_stack(ds[1].stack, 1))
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment_stack(s, "shear")
    assert plane_labels() == ["I-5", "I-4", "I-3", "I-2", "I-1", "I0", "I+1", "I+2", "I+3", "I+4", "I+5"]
