"""Ranges and the rest of issue 26: seeds, ``--set`` ranges and sizes that cannot fit in memory,
a flat real set equal to the fake set, a non-UTF-8 terminal, ``--generator`` given twice.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.options import OptionError, check_fits_memory, check_seed, parse_set_options
from tests.cli.test_cli import invoke


def _one_line_error(args: list[str], *fragments: str) -> str:
    res = invoke(*args)
    assert res.exit_code == 2, (args, res.stdout, res.stderr)
    err = res.stderr
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in res.stdout + err
    for frag in fragments:
        assert frag in err, (frag, err)
    return err


def _images(folder: Path, n: int = 3, value: int | None = None, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = (np.full((32, 32, 3), value, np.uint8) if value is not None
               else rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        Image.fromarray(arr).save(folder / f"{i}.png")
    return folder


# ----------------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("args, option", [
    (["quality", "--seed", str(2**63)], "--seed"),
    (["quality", "--seed", "-1"], "--seed"),
    (["quality", "--seed", str(2**32)], "--seed"),
    (["quality", "--data-seed", str(2**63)], "--data-seed"),
    (["train-gen", "dummy", "--data", "synthetic-he", "--out", "{tmp}/x", "--seed", str(2**63)], "--seed"),
    (["segment", "--data", "synthetic-he", "--seeds", f"0,{2**63}", "--out", "{tmp}/x"], "--seeds"),
    (["reproduce", "--data", "synthetic-he", "--seeds", f"{2**32}", "--out", "{tmp}/x"], "--seeds"),
])
def test_seeds_outside_0_to_2_32_are_refused(args: list[str], option: str, tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    _one_line_error(args, option, "2**32 - 1")
    assert not (tmp_path / "x").exists()


def test_the_largest_seed_is_accepted(tmp_path: Path) -> None:
    assert check_seed("--seed", 2**32 - 1) == 2**32 - 1
    with pytest.raises(OptionError, match="--seed"):
        check_seed("--seed", 2**32)
    # 2**32 - 1 passes the option check: the command fails later, on the missing folder
    err = _one_line_error(["quality", "--seed", str(2**32 - 1), "--real", str(tmp_path / "nope"), "--fake",
                           str(tmp_path / "nope")], "nope")
    assert "--seed" not in err


# ------------------------------------------------------------------------------ --set ranges


@pytest.mark.parametrize("item, fragment", [
    ("image_size=100000", "image_size must be between 32 and 2048"),
    ("image_size=16", "image_size must be between 32 and 2048"),
    ("ngf=0", "ngf must be between 1 and 1024"),
    ("lr=2", "lr must be between 0 and 1"),
    ("lambda_l1=-1", "lambda_l1 must be between 0 and"),
])
def test_set_values_outside_their_range_are_refused(item: str, fragment: str, tmp_path: Path) -> None:
    _one_line_error(["train-gen", "gan-dist", "--data", "synthetic-he", "--out", str(tmp_path / "x"), "--set", item],
                    f"--set {item}", fragment)
    assert not (tmp_path / "x").exists()


def test_set_ranges_in_lists_and_migan_options(tmp_path: Path) -> None:
    from gbench.generators.mi_gan import MIGANConfig

    with pytest.raises(OptionError, match=r"betas=\[0.5, 1.5\].*between 0 and"):
        parse_set_options(["betas=[0.5, 1.5]"], MIGANConfig, what="MI-GAN option")
    assert parse_set_options(["betas=[0.5, 0.9]", "n_critic=5"], MIGANConfig)["n_critic"] == 5


def test_sizes_that_cannot_fit_in_memory_are_refused() -> None:
    # 2048 x 2048 x 1024 channels: 4 float32 maps are 64 GiB
    with pytest.raises(OptionError, match=r"image_size=2048 ngf=1024.*64.0 GiB.*1.0 GiB"):
        check_fits_memory({"image_size": 2048, "ngf": 1024}, available=2**30)
    check_fits_memory({"image_size": 256, "ngf": 64}, available=2**30)  # 64 MiB: fits
    check_fits_memory({"beta": 0.5}, available=1)  # no size given: nothing to check


# --------------------------------------------------------------------------------- flat sets


def test_flat_real_set_equal_to_fake_scores_one(tmp_path: Path) -> None:
    real, fake = _images(tmp_path / "real", value=255), _images(tmp_path / "fake", value=255)
    res = invoke("quality", "--real", str(real), "--fake", str(fake), "--out", str(tmp_path / "q"))
    assert res.exit_code == 0, res.stderr
    import json

    meta = json.loads((tmp_path / "q" / "summary.json").read_text())
    assert meta["status"] == "ok" and meta["failure"] == ""
    by = {r["metric"]: r["mean"] for r in meta["summary"]}
    assert abs(by["ssim"] - 1.0) < 1e-6 and abs(by["fsim"] - 1.0) < 1e-6 and by["nrmse"] < 1e-6


def test_flat_fake_against_a_textured_real_set_still_fails() -> None:
    from gbench.metrics.failures import output_failure

    flat = np.full((4, 3, 16, 16), 1.0)
    textured = np.random.default_rng(0).random((4, 3, 16, 16))
    assert output_failure(flat, reference=flat) == ""
    assert output_failure(flat, reference=textured).startswith("near-constant outputs")
    assert output_failure(flat).startswith("near-constant outputs")


# ------------------------------------------------------------------------- non-UTF-8 terminal


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": ""}])
def test_an_ascii_terminal_gets_its_results(env: dict[str, str], tmp_path: Path) -> None:
    real, fake = _images(tmp_path / "real"), _images(tmp_path / "fake", seed=1)
    out = tmp_path / "q"
    full = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUTF8": "0", **env}
    res = subprocess.run([sys.executable, "-m", "gbench", "quality", "--real", str(real), "--fake", str(fake),
                          "--out", str(out)], capture_output=True, env=full, timeout=300)
    assert res.returncode == 0, res.stderr.decode("ascii", "replace")
    text = res.stdout.decode("ascii")  # nothing but ASCII reached the terminal
    assert "SSIM ^" in text and "NRMSE v" in text and "wrote" in text
    assert (out / "summary.json").is_file()


# ------------------------------------------------------------------------ --generator twice


def test_generator_given_twice_is_refused(tmp_path: Path) -> None:
    _one_line_error(["quality", "--generator", "dummy", "--checkpoint", "a.pt", "--generator", "dummy",
                     "--checkpoint", "b.pt", "--data", "synthetic-he", "--out", str(tmp_path / "x")],
                    "--generator dummy given twice")
    assert not (tmp_path / "x").exists()
