"""Images made elsewhere: ``maps export`` -> images drawn by a plain numpy function -> ``quality --data
--fake`` gives the in-process generator's numbers and test-set hash; units; unpaired distribution metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gbench.core.observations import hash_test_set, load_observations
from gbench.core.records import load_records
from tests.cli.test_cli import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE = ("--profile", "smoke")


@pytest.fixture(scope="module")
def mask_paint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A mask-paint checkpoint fitted to the smoke synthetic-he training split, and its two colours."""
    import torch

    from gbench import generators
    from gbench.generators.train import train_generator

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = train_generator("mask-paint", "synthetic-he", tmp_path_factory.mktemp("mp") / "run", profile="smoke",
                              seed=0, progress=False)
    finally:
        torch.set_num_threads(n)
    colours = generators.load(res.checkpoint, "mask-paint").colours().numpy()
    return Path(res.checkpoint), colours


def paint(binary: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """A generator outside gbench, in plain numpy: background / nucleus colours on the binary map
    (0 or 255), quantized to 8 bits (round half up)."""
    c = colours.astype(np.float32)
    rgb = np.where((binary > 127)[..., None], c[1], c[0]).astype(np.float32)
    return np.floor(np.clip(rgb, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def draw_folder(maps: Path, out: Path, colours: np.ndarray) -> list[str]:
    out.mkdir(parents=True)
    names = []
    for f in sorted((maps / "binary").glob("*.png")):
        Image.fromarray(paint(np.asarray(Image.open(f)), colours)).save(out / f.name)
        names.append(f.stem)
    return names


def test_round_trip_equals_the_in_process_generator(tmp_path: Path, mask_paint: tuple[Path, np.ndarray],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, colours = mask_paint
    maps = tmp_path / "maps"
    assert run_cli(monkeypatch, "maps", "export", "--data", "synthetic-he", *SMOKE, "--out", str(maps)) == 0
    names = draw_folder(maps, tmp_path / "fake", colours)
    assert len(names) == 3 and all("@y" in n for n in names)

    folder, inproc = tmp_path / "q_folder", tmp_path / "q_gen"
    assert run_cli(monkeypatch, "quality", "--data", "synthetic-he", *SMOKE, "--fake", str(tmp_path / "fake"),
                   "--label", "numpy-paint", "--out", str(folder)) == 0
    assert run_cli(monkeypatch, "quality", "--generator", "mask-paint", "--checkpoint", str(ckpt),
                   "--data", "synthetic-he", *SMOKE, "--out", str(inproc)) == 0
    a, b = load_records(folder / "records.csv"), load_records(inproc / "records.csv")
    assert set(a["model"]) == {"numpy-paint"} and set(b["model"]) == {"mask-paint"}
    # the same keys but the model: the folder row sits beside the generator's in Table 1
    for key in ("train_set", "profile", "seed", "dataset", "split", "data_seed", "test_set", "status"):
        assert set(a[key].astype(str)) == set(b[key].astype(str)), key
    meta = json.loads((maps / "maps.json").read_text())
    assert set(a["test_set"]) == {meta["test_set"]}
    va, vb = a.set_index("metric")["value"], b.set_index("metric")["value"]
    for m in ("ssim", "fsim", "gmsd", "nrmse"):
        assert va[m] == vb[m], m  # exactly the in-process numbers
    oa, ob = load_observations(folder / "records.csv"), load_observations(inproc / "records.csv")
    assert list(oa["image"]) == list(ob["image"]) and list(oa["unit"]) == list(ob["unit"])
    assert (oa[["ssim", "fsim", "gmsd", "nrmse"]].to_numpy() == ob[["ssim", "fsim", "gmsd", "nrmse"]].to_numpy()).all()
    capsys.readouterr()

    # compare pairs the folder row with the built-in generator's row
    assert run_cli(monkeypatch, "compare", str(folder / "records.csv"), str(inproc / "records.csv"),
                   "--a", "model=numpy-paint", "--b", "model=mask-paint", "--csv", str(tmp_path / "cmp.csv")) == 0
    cmp = pd.read_csv(tmp_path / "cmp.csv")
    assert set(cmp["metric"]) == {"ssim", "fsim", "gmsd", "nrmse"} and np.allclose(cmp["diff"], 0.0)

    # and the floor test of Table 1 runs between them (mask-paint is the floor)
    from gbench.reports.tables import pivot_by_kind

    recs = pd.concat([a, b], ignore_index=True)
    obs = pd.concat([oa, ob], ignore_index=True)
    tables = pivot_by_kind(recs, obs)
    notes = " ".join(" ".join(t.notes) for t in tables)
    assert "not tested" not in notes


def test_folder_route_refuses_wrong_folders(tmp_path: Path, mask_paint: tuple[Path, np.ndarray],
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, colours = mask_paint
    maps = tmp_path / "maps"
    assert run_cli(monkeypatch, "maps", "export", "--data", "synthetic-he", *SMOKE, "--out", str(maps)) == 0
    fake = tmp_path / "fake"
    names = draw_folder(maps, fake, colours)
    capsys.readouterr()
    args = ("quality", "--data", "synthetic-he", *SMOKE, "--fake", str(fake))

    (fake / f"{names[0]}.png").rename(tmp_path / "aside.png")  # a crop without its image
    assert run_cli(monkeypatch, *args, "--out", str(tmp_path / "q1")) == 2
    err = capsys.readouterr().err
    assert "1 of the 3 test crops" in err and names[0] in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q1" / "records.csv").exists()
    (tmp_path / "aside.png").rename(fake / f"{names[0]}.png")

    Image.new("RGB", (64, 64)).save(fake / "stranger.png")  # an image that is no test crop
    assert run_cli(monkeypatch, *args, "--out", str(tmp_path / "q2")) == 2
    assert "not test crops" in capsys.readouterr().err and not (tmp_path / "q2" / "records.csv").exists()
    (fake / "stranger.png").unlink()

    Image.new("RGB", (32, 64)).save(fake / f"{names[1]}.png")  # wrong size
    assert run_cli(monkeypatch, *args, "--out", str(tmp_path / "q3")) == 2
    assert "differs from its test crop" in capsys.readouterr().err
    assert not (tmp_path / "q3" / "records.csv").exists()

    # another profile cuts other crops: refused, naming the export command
    Image.fromarray(paint(np.asarray(Image.open(maps / "binary" / f"{names[1]}.png")), colours)).save(
        fake / f"{names[1]}.png")
    assert run_cli(monkeypatch, "quality", "--data", "synthetic-he", "--profile", "demo", "--fake", str(fake)) == 2
    assert "gbench maps export" in capsys.readouterr().err


def test_units_image_tile_and_csv(tmp_path: Path, mask_paint: tuple[Path, np.ndarray]) -> None:
    from gbench.core.errors import DataError
    from gbench.pipelines.quality import run_quality_data

    _, colours = mask_paint
    # a dataset of two 80-px tiles: a 2x2 grid of 64-px crops each (8 crops, 2 tiles)
    from tests.generators.test_train import tiles

    ds = tiles(2, 80)
    from gbench.pipelines.maps import export_maps

    export_maps(ds, tmp_path / "maps", profile="smoke")
    draw_folder(tmp_path / "maps", tmp_path / "fake", colours)
    by_tile = run_quality_data(ds, tmp_path / "fake", None, profile="smoke", progress=False)
    assert len(by_tile.per_image) == 8 and set(by_tile.observations["unit"]) == {"t0", "t1"}
    assert set(by_tile.summary["units"]) == {2}
    by_image = run_quality_data(ds, tmp_path / "fake", None, profile="smoke", units="image", progress=False)
    assert by_image.observations["unit"].nunique() == 8
    assert set(by_image.summary["units"]) == {8}
    # the same means, other intervals
    assert np.allclose(by_image.records["value"], by_tile.records["value"])
    assert not np.allclose(by_image.records["ci_low"], by_tile.records["ci_low"])

    names = list(by_tile.per_image["name"])
    csv = tmp_path / "units.csv"
    pd.DataFrame({"name": names, "unit": ["left" if n.endswith("x0") else "right" for n in names]}).to_csv(csv, index=False)
    by_csv = run_quality_data(ds, tmp_path / "fake", None, profile="smoke", units=csv, progress=False)
    assert sorted(by_csv.observations["unit"].unique()) == ["left", "right"]
    pd.DataFrame({"name": names[:-1], "unit": "u"}).to_csv(csv, index=False)
    with pytest.raises(DataError, match="1 image\\(s\\) not listed"):
        run_quality_data(ds, tmp_path / "fake", None, profile="smoke", units=csv, progress=False)
    with pytest.raises(ValueError, match="--units"):
        run_quality_data(ds, tmp_path / "fake", None, profile="smoke", units="tiles", progress=False)


def test_folder_pairs_units_and_streaming_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from gbench.pipelines.quality import run_quality

    rng = np.random.default_rng(0)
    for side in ("real", "fake"):
        (tmp_path / side).mkdir()
        for name in ("a@y0x0", "a@y0x32", "b@y0x0", "c"):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / side / f"{name}.png")
    res = run_quality(tmp_path / "real", tmp_path / "fake", None, progress=False)
    assert sorted(res.observations["unit"].unique()) == ["a", "b", "c"]
    files = sorted((tmp_path / "real").glob("*.png"))
    assert set(res.records["test_set"]) == {hash_test_set((p.stem, p.read_bytes(), b"") for p in files)}
    res = run_quality(tmp_path / "real", tmp_path / "fake", None, progress=False, units="image")
    assert res.observations["unit"].nunique() == 4
    assert run_cli(monkeypatch, "quality", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                   "--units", "grid") == 2
    assert "--units must be tile, image or an existing CSV" in capsys.readouterr().err


def test_unpaired_any_counts_against_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from gbench.data.io import read_image
    from gbench.metrics.distribution import distribution_metrics
    from gbench.metrics.features import build_extractor, extract

    rng = np.random.default_rng(1)
    real, fake = tmp_path / "real", tmp_path / "fake" / "images"
    real.mkdir()
    fake.mkdir(parents=True)
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(real / f"r{i}.png")
    for i in range(10):
        Image.fromarray(rng.integers(60, 200, (32, 32, 3), dtype=np.uint8)).save(fake / f"s{i}.png")
    # paired: refused, naming the partner problem
    assert run_cli(monkeypatch, "quality", "--real", str(real), "--fake", str(tmp_path / "fake")) == 2
    assert "without a synthetic partner" in capsys.readouterr().err
    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--real", str(real), "--fake", str(tmp_path / "fake"), "--unpaired",
                   "--extractor", "random-conv", "--stain", "--label", "mine", "--batch-size", "4",
                   "--out", str(out)) == 0
    recs = load_records(out / "records.csv")
    got = recs.set_index("metric")["value"]
    assert set(got.index) >= {"fid", "kid", "precision", "recall", "density", "coverage"}
    assert set(recs["n"]) == {10} and set(recs["n_images"].astype(int)) == {7} and set(recs["model"]) == {"mine"}
    # the reference: the library's distribution metrics on the features of all images at once
    ext = build_extractor("random-conv", None, seed=0)
    fr = extract(ext, np.stack([read_image(p) for p in sorted(real.glob("*.png"))]))
    ff = extract(ext, np.stack([read_image(p) for p in sorted(fake.glob("*.png"))]))
    ref = distribution_metrics(ff, fr, seed=0)
    for m in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert got[m] == pytest.approx(ref[m], rel=1e-6, abs=1e-9), m
    assert (out / "stain.csv").is_file() and json.loads((out / "summary.json").read_text())["n_real"] == 7

    # --real takes a dataset name: its split's Table 1 crops (smoke train: 6 tiles of 64 px)
    capsys.readouterr()
    assert run_cli(monkeypatch, "quality", "--real", "synthetic-he", "--split", "train", *SMOKE, "--fake",
                   str(tmp_path / "fake"), "--unpaired", "--extractor", "random-conv", "--out",
                   str(tmp_path / "q2")) == 0
    recs2 = load_records(tmp_path / "q2" / "records.csv")
    assert set(recs2["n_images"].astype(int)) == {6} and set(recs2["dataset"]) == {"synthetic-he"}
    # fewer than 6 on a side: one line, nothing written
    assert run_cli(monkeypatch, "quality", "--real", "synthetic-he", *SMOKE, "--fake", str(tmp_path / "fake"),
                   "--unpaired", "--extractor", "random-conv", "--out", str(tmp_path / "q3")) == 2
    assert "at least 6 per side" in capsys.readouterr().err and not (tmp_path / "q3" / "records.csv").exists()
    assert run_cli(monkeypatch, "quality", "--real", str(real), "--fake", str(tmp_path / "fake"), "--unpaired") == 2
    assert "need pairs" in capsys.readouterr().err


def test_folder_row_distribution_metrics_equal_the_in_process_ones(tmp_path: Path,
                                                                  mask_paint: tuple[Path, np.ndarray]) -> None:
    """With --extractor the folder row's FID/KID/... equal the in-process generator's (same crops, same batches)."""
    from gbench.metrics.features import build_extractor
    from gbench.pipelines.diagnostics import Diagnostics
    from gbench.pipelines.generator_eval import generator_quality
    from gbench.pipelines.maps import export_maps
    from gbench.pipelines.quality import run_quality_data
    from tests.generators.test_train import tiles

    ckpt, colours = mask_paint
    ds = tiles(3, 100)  # 12 crops of 64 px
    export_maps(ds, tmp_path / "maps", profile="smoke")
    draw_folder(tmp_path / "maps", tmp_path / "fake", colours)
    ext = build_extractor("random-conv", None, seed=0)
    folder = run_quality_data(ds, tmp_path / "fake", None, profile="smoke", extractor=ext, stain=True,
                              progress=False, label="numpy-paint")
    inproc = generator_quality("mask-paint", ckpt, ds, "smoke", progress=False, batch_size=16,
                               diagnostics=Diagnostics(ext, stain=True, batch_size=16))
    a = folder.records.set_index("metric")["value"]
    b = inproc.records.set_index("metric")["value"]
    assert set(a.index) == set(b.index) >= {"fid", "kid", "precision", "recall", "density", "coverage", "ssim"}
    for m in a.index:
        assert a[m] == pytest.approx(b[m], rel=1e-9, abs=1e-12), m
    pd.testing.assert_frame_equal(folder.diagnostics["stain"], inproc.diagnostics["stain"])
