"""Synthetic sets: determinism by seed, resume, manifest, refusal of a mismatched folder; the
Table 1 evaluation against the file-based quality scorer."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from gbench.core.errors import DataError
from gbench.data.io import read_image, read_label, write_png
from gbench.data.loaders import load_dataset
from gbench.data.masks import synthesize_instance_map
from gbench.pipelines.synthesis import file_sha256, synthesize
from gbench.generators.train import train_generator
from tests.cli.test_cli import run_cli
from tests.generators.test_train import TINY, tiles

# one torch thread per test, as under tests/generators/conftest.py (where these tests lived before)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-step sharp-gan (tiny) and a 3-step dummy, trained once for this module."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("gen")
    out = {}
    for name, ov in (("sharp-gan", TINY), ("dummy", {})):
        res = train_generator(name, "tiles", root / name, profile="smoke", seed=0, steps=3, overrides=ov,
                              progress=False, dataset=tiles(2))
        out[name] = res.checkpoint
    torch.set_num_threads(n)
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))}


def test_deterministic_and_resumable(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    ck = checkpoints["sharp-gan"]
    a = synthesize("sharp-gan", ck, 5, tmp_path / "a", seed=7, profile="smoke", batch_size=2, progress=False)
    b = synthesize("sharp-gan", ck, 5, tmp_path / "b", seed=7, profile="smoke", batch_size=2, progress=False)
    assert a.generated == 5 and a.images_per_s > 0 and a.generator_images_per_s > 0
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(da) == 10 and da == db  # same seed: byte-identical set

    # image k depends on (seed, k) only: a shorter set is a prefix, labels are the mask generator's maps
    c = synthesize("sharp-gan", ck, 3, tmp_path / "c", seed=7, profile="smoke", batch_size=2, progress=False)
    assert c.count == 3
    dc = _digest(tmp_path / "c")
    assert all(da[k] == v for k, v in dc.items())
    lab = read_label(tmp_path / "a" / "labels" / "sharp-gan-s7-000004.png")
    np.testing.assert_array_equal(lab, synthesize_instance_map(64, 7, 4))
    # another batch size: labels identical, images within one gray level (batched float rounding)
    d = synthesize("sharp-gan", ck, 5, tmp_path / "d", seed=7, profile="smoke", batch_size=5, progress=False)
    assert d.generated == 5
    for k in range(5):
        sid = f"sharp-gan-s7-{k:06d}"
        np.testing.assert_array_equal(read_label(tmp_path / "a" / "labels" / f"{sid}.png"),
                                      read_label(tmp_path / "d" / "labels" / f"{sid}.png"))
        ia = read_image(tmp_path / "a" / "images" / f"{sid}.png").astype(int)
        idd = read_image(tmp_path / "d" / "images" / f"{sid}.png").astype(int)
        assert np.abs(ia - idd).max() <= 1
    # another seed: other maps
    e = synthesize("sharp-gan", ck, 1, tmp_path / "e", seed=8, profile="smoke", progress=False)
    assert not np.array_equal(read_label(tmp_path / "e" / "labels" / "sharp-gan-s8-000000.png"),
                              read_label(tmp_path / "a" / "labels" / "sharp-gan-s7-000000.png"))
    assert e.count == 1

    # resume: an interrupted run (one image missing, another without its label) is completed
    (tmp_path / "b" / "images" / "sharp-gan-s7-000002.png").unlink()
    (tmp_path / "b" / "labels" / "sharp-gan-s7-000003.png").unlink()
    keep = (tmp_path / "b" / "images" / "sharp-gan-s7-000000.png").stat().st_mtime_ns
    r = synthesize("sharp-gan", ck, 5, tmp_path / "b", seed=7, profile="smoke", batch_size=2, progress=False)
    assert r.generated == 2 and _digest(tmp_path / "b") == da
    assert (tmp_path / "b" / "images" / "sharp-gan-s7-000000.png").stat().st_mtime_ns == keep
    # extending the set with a larger count keeps the first samples
    r = synthesize("sharp-gan", ck, 6, tmp_path / "b", seed=7, profile="smoke", batch_size=2, progress=False)
    assert r.generated == 1 and all(_digest(tmp_path / "b")[k] == v for k, v in da.items())

    # manifest, run.json, folder layout readable by the loader
    rows = list(csv.DictReader(open(tmp_path / "b" / "manifest.csv", encoding="utf-8")))
    assert [r["index"] for r in rows] == [str(k) for k in range(6)]
    assert {r["generator"] for r in rows} == {"sharp-gan"} and {r["seed"] for r in rows} == {"7"}
    assert {r["checkpoint_sha256"] for r in rows} == {file_sha256(ck)}
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["status"] == "complete" and run["settings"]["seed"] == 7 and run["count"] == 6
    assert "images_per_s" in run and run["provenance"]["profile"] == "smoke"
    ds = load_dataset(tmp_path / "b", split="all")
    assert len(ds) == 6 and ds[0].image.shape == (64, 64, 3) and ds[0].instances.max() > 0


def test_refuses_a_folder_of_another_set(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    ck = checkpoints["dummy"]
    synthesize("dummy", ck, 2, tmp_path / "s", seed=1, profile="smoke", progress=False)
    with pytest.raises(DataError, match="different seed"):
        synthesize("dummy", ck, 2, tmp_path / "s", seed=2, profile="smoke", progress=False)
    with pytest.raises(DataError, match="different generator"):
        synthesize("sharp-gan", checkpoints["sharp-gan"], 2, tmp_path / "s", seed=1, profile="smoke", progress=False)
    with pytest.raises(ValueError, match="holds generator 'dummy', not 'sharp-gan'"):
        synthesize("sharp-gan", ck, 2, tmp_path / "t", seed=1, profile="smoke", progress=False)
    with pytest.raises(ValueError, match="--count must be positive"):
        synthesize("dummy", ck, 0, tmp_path / "t", profile="smoke", progress=False)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read checkpoint"):
        synthesize("dummy", bad, 1, tmp_path / "t", profile="smoke", progress=False)


def test_cli_synthesize_with_fitted_masks(tmp_path: Path, checkpoints: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "S3k"
    code = run_cli(monkeypatch, "synthesize", "dummy", "--checkpoint", str(checkpoints["dummy"]), "--set-name", "S3k",
                   "--data", "synthetic-he", "--profile", "smoke", "--seed", "2", "--out", str(out))
    assert code == 0, capsys.readouterr().err
    assert "images/s" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["count"] == 6  # smoke S3k
    assert run["data"] == "synthetic-he" and run["settings"]["mask_stats"]["density_mean"] > 0
    assert len(list((out / "images").glob("*.png"))) == 6
    code = run_cli(monkeypatch, "synthesize", "dummy", "--checkpoint", str(checkpoints["dummy"]), "--profile", "smoke",
                   "--out", str(out))
    assert code == 2 and "--count N or --set-name" in capsys.readouterr().err


def test_evaluate_generator_matches_file_scoring(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    from gbench import generators
    from gbench.data.patches import grid_crops
    from gbench.pipelines.generator_eval import evaluate_generator
    from gbench.pipelines.quality import find_pairs, score_pairs

    ds = tiles(2, 80)
    recs = evaluate_generator("sharp-gan", checkpoints["sharp-gan"], ds, profile="smoke", seed=0, batch_size=3,
                              progress=False)
    assert len(recs) == 2 * 4  # 2x2 grid of 64-px crops per 80-px tile
    assert recs[0]["name"] == "t0@y0x0" and recs[1]["name"] == "t0@y0x16" and recs[0]["split"] == "test"
    assert {"ssim", "fsim", "gmsd", "nrmse", "checkpoint_sha256", "generator", "profile", "seed"} <= set(recs[0])
    # the same crops written as PNGs and scored by gbench.pipelines.quality give the same numbers
    module = generators.load(checkpoints["sharp-gan"], "sharp-gan")
    import torch

    for s in ds:
        for img, inst, (y, x) in grid_crops(s.image, s.instances, 64):
            fake = module.generate(torch.from_numpy(module.condition_map(inst))[None])[0]
            fake8 = (fake.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
            write_png(tmp_path / "fake" / f"{s.name}@y{y}x{x}.png", np.ascontiguousarray(fake8))
            write_png(tmp_path / "real" / f"{s.name}@y{y}x{x}.png", img)
    ref = score_pairs(find_pairs(tmp_path / "real", tmp_path / "fake"), progress=False).set_index("name")
    for r in recs:
        for m in ("ssim", "fsim", "gmsd", "nrmse"):
            assert abs(r[m] - ref.loc[r["name"], m]) < 1e-9, (r["name"], m)


def test_cli_quality_scores_several_generators(tmp_path: Path, checkpoints: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from gbench.pipelines.generator_eval import checkpoint_seed, evaluate_generator

    out = tmp_path / "q"
    assert run_cli(monkeypatch, "quality", "--generator", "sharp-gan", "--checkpoint", str(checkpoints["sharp-gan"]),
                   "--generator", "dummy", "--checkpoint", str(checkpoints["dummy"]), "--data", "synthetic-he",
                   "--profile", "smoke", "--seed", "1", "--out", str(out)) == 0
    recs = pd.read_csv(out / "records.csv")
    # each row carries its checkpoint's training seed (--seed only seeds the scoring)
    trained = {checkpoint_seed(checkpoints[g], -1) for g in ("dummy", "sharp-gan")}
    assert sorted(recs["model"].unique()) == ["dummy", "sharp-gan"] and set(recs["seed"]) == trained != {-1}
    direct = pd.DataFrame(evaluate_generator("dummy", checkpoints["dummy"], "synthetic-he", "smoke", 1, progress=False))
    got = recs[recs["model"] == "dummy"].set_index("metric")["value"]
    for m in ("ssim", "fsim", "gmsd", "nrmse"):
        assert got[m] == pytest.approx(direct[m].mean(), abs=1e-12)
    assert (recs["n"] == len(direct)).all()
    assert run_cli(monkeypatch, "quality", "--generator", "dummy", "--data", "synthetic-he") == 2
