"""``gbench maps export`` / ``maps sample`` and ``synthesize --masks``: the exported crops are the ones
Table 1 scores, the maps are gbench's conditioning functions, sampling is deterministic."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.profiles import get_profile
from gbench.data.conditioning import binary_mask, contour_map, distance_map
from gbench.data.io import read_image, read_label
from tests.cli.test_cli import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


def _check_maps(root: Path, name: str, inst: np.ndarray) -> None:
    lab = read_label(root / "labels" / f"{name}.png")
    assert np.array_equal(lab, inst)
    assert np.array_equal(np.asarray(Image.open(root / "binary" / f"{name}.png")), binary_mask(inst) * 255)
    assert np.array_equal(np.asarray(Image.open(root / "contour" / f"{name}.png")), contour_map(inst) * 255)
    dist = np.load(root / "distance" / f"{name}.npy")
    assert dist.dtype == np.float32 and np.array_equal(dist, distance_map(inst))


def test_export_writes_the_table1_crops(tmp_path: Path) -> None:
    from gbench.data.patches import grid_crops
    from gbench.data.resolve import split_hash
    from gbench.pipelines.maps import export_maps, table1_crops
    from tests.generators.test_train import tiles

    ds = tiles(2, 80)  # a 2x2 grid of 64-px crops per tile under smoke
    res = export_maps(ds, tmp_path / "m", profile="smoke")
    assert res.count == 8
    rows = list(csv.DictReader((tmp_path / "m" / "manifest.csv").open()))
    assert [r["name"] for r in rows] == [f"t{i}@y{y}x{x}" for i in range(2) for y in (0, 16) for x in (0, 16)]
    for s in ds:
        for img, inst, (y, x) in grid_crops(s.image, s.instances, 64):
            name = f"{s.name}@y{y}x{x}"
            assert np.array_equal(read_image(tmp_path / "m" / "images" / f"{name}.png"), img)
            _check_maps(tmp_path / "m", name, inst)
    meta = json.loads((tmp_path / "m" / "maps.json").read_text())
    assert meta["crop_size"] == 64 and meta["profile"] == "smoke" and meta["count"] == 8
    assert not any(p.name.startswith(".maps-staging") for p in (tmp_path / "m").iterdir())

    # the test-set hash is split_hash's, computed one tile at a time
    smoke = get_profile("smoke")
    tc = table1_crops("synthetic-he", smoke)
    assert tc.test_set == split_hash("synthetic-he", "test", smoke, 0)
    assert table1_crops("synthetic-he", smoke, data_seed=1).test_set == split_hash("synthetic-he", "test", smoke, 1)
    # a second export into the same folder is refused, the first left whole
    with pytest.raises(Exception, match="already holds"):
        export_maps(ds, tmp_path / "m", profile="smoke")
    assert json.loads((tmp_path / "m" / "maps.json").read_text()) == meta


def test_export_names_are_evaluate_generators(tmp_path: Path) -> None:
    """The crop names (and so the units) of the export and of the in-process route agree."""
    import torch

    from gbench import generators
    from gbench.generators.train import train_generator
    from gbench.pipelines.generator_eval import evaluate_generator
    from gbench.pipelines.maps import export_maps
    from tests.generators.test_train import tiles

    torch.set_num_threads(1)
    res = train_generator("mask-paint", "tiles", tmp_path / "mp", profile="smoke", seed=0, steps=1, progress=False,
                          dataset=tiles(2))
    ds = tiles(3, 100)
    recs = evaluate_generator("mask-paint", res.checkpoint, ds, profile="smoke", progress=False)
    export_maps(ds, tmp_path / "m", profile="smoke")
    rows = list(csv.DictReader((tmp_path / "m" / "manifest.csv").open()))
    assert [r["name"] for r in rows] == [r["name"] for r in recs]
    assert [r["tile"] for r in rows] == [r["tile"] for r in recs]
    assert json.loads((tmp_path / "m" / "maps.json").read_text())["test_set"] == recs[0]["test_set"]
    assert generators.load(res.checkpoint, "mask-paint").conditioning == "binary-mask"


def test_cli_sample_is_fitted_and_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from gbench.data.masks import fit_mask_stats, synthesize_instance_map
    from gbench.data.resolve import resolve_dataset

    args = ("maps", "sample", "--data", "synthetic-he", "--profile", "smoke", "--count", "3", "--seed", "5")
    assert run_cli(monkeypatch, *args, "--out", str(tmp_path / "a")) == 0
    assert run_cli(monkeypatch, *args, "--out", str(tmp_path / "b")) == 0

    def digest(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for sub in ("labels", "binary", "distance", "contour") for p in sorted((root / sub).iterdir())}

    da = digest(tmp_path / "a")
    assert len(da) == 12 and da == digest(tmp_path / "b")
    meta = json.loads((tmp_path / "a" / "maps.json").read_text())
    assert meta["kind"] == "sample" and meta["size"] == 64 and meta["seed"] == 5
    stats = fit_mask_stats(resolve_dataset("synthetic-he", "train", get_profile("smoke"), 0), seed=5)
    for k in range(3):
        _check_maps(tmp_path / "a", f"mask-s5-{k:06d}", synthesize_instance_map(64, 5, k, stats=stats))
    assert run_cli(monkeypatch, *args[:-4], "--count", "0", "--out", str(tmp_path / "c")) == 2
    assert "--count must be positive" in capsys.readouterr().err and not (tmp_path / "c" / "maps.json").exists()


def test_synthesize_from_own_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from gbench import generators
    from gbench.generators.train import train_generator
    from tests.generators.test_train import tiles

    torch.set_num_threads(1)
    ckpt = train_generator("mask-paint", "tiles", tmp_path / "mp", profile="smoke", seed=0, steps=1, progress=False,
                           dataset=tiles(2)).checkpoint
    assert run_cli(monkeypatch, "maps", "sample", "--data", "synthetic-he", "--profile", "smoke", "--count", "3",
                   "--out", str(tmp_path / "masks")) == 0
    out = tmp_path / "set"
    assert run_cli(monkeypatch, "synthesize", "mask-paint", "--checkpoint", str(ckpt), "--masks",
                   str(tmp_path / "masks"), "--profile", "smoke", "--out", str(out)) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["mask_names"] == [f"mask-s0-{k:06d}" for k in range(3)] and run["settings"]["size"] == 64
    module = generators.load(ckpt, "mask-paint")
    for k, name in enumerate(run["mask_names"]):
        sid = f"mask-paint-s0-{k:06d}"
        inst = read_label(tmp_path / "masks" / "labels" / f"{name}.png")
        assert np.array_equal(read_label(out / "labels" / f"{sid}.png"), inst)
        want = module.generate(torch.from_numpy(module.condition_map(inst))[None])[0]
        want8 = (want.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(read_image(out / "images" / f"{sid}.png"), want8)
    capsys.readouterr()
    # more samples than masks, --masks with --data, a missing folder: one line each, nothing written
    for extra, msg in ((("--count", "4"), "fewer than the 4 samples"), (("--data", "synthetic-he"), "give one of them")):
        assert run_cli(monkeypatch, "synthesize", "mask-paint", "--checkpoint", str(ckpt), "--masks",
                       str(tmp_path / "masks"), "--profile", "smoke", *extra, "--out", str(tmp_path / "x")) == 2
        assert msg in capsys.readouterr().err
        assert not (tmp_path / "x" / "manifest.csv").exists()
    assert run_cli(monkeypatch, "synthesize", "mask-paint", "--checkpoint", str(ckpt), "--masks",
                   str(tmp_path / "nope"), "--profile", "smoke", "--out", str(tmp_path / "y")) == 2
    assert "--masks: no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("side", [40, 64, 80, 100, 130])
def test_crop_names_from_tile_shapes(side: int) -> None:
    """The names listed from the tile shapes (no second pass over the tiles) are those the crops carry."""
    import dataclasses

    from gbench.pipelines.maps import table1_crops
    from tests.generators.test_train import tiles

    tc = table1_crops(tiles(2, side), "smoke")
    assert tc.tile_shapes == ((side, side), (side, side))
    walked = [c.name for c in tc.crops()]
    assert tc.names() == walked
    assert dataclasses.replace(tc, tile_shapes=None).names() == walked
