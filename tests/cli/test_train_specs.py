"""Training sets without traps, experiments as files (issue 23): named synthetic sets, --data
required, one checkpoint per finished cell, --config TOML equal to the command line, user profiles."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.cli.test_cli import run_cli
from tests.segmentation.test_sets import write_synthetic_set

#: One tiny cell: SegNet at 1/8 width, 2 steps on the smoke profile.
TINY = ["--arch", "segnet", "--width", "0.125", "--max-steps", "2", "--profile", "smoke", "--no-progress"]


@pytest.fixture(scope="module")
def mysynth2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_set(tmp_path_factory.mktemp("sets") / "mysynth2", 5, size=32)


@pytest.fixture(scope="module")
def cli_run(mysynth2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "o"
    mp = pytest.MonkeyPatch()
    code = run_cli(mp, "segment", "--data", "synthetic-he", "--train", "R+mysynth2", "--synthetic",
                   f"mysynth2={mysynth2}", *TINY, "--out", str(out))
    assert code == 0
    return out


def _cell(out: Path, spec: str = "R+mysynth2") -> Path:
    return out / "segnet" / spec / "binary" / "seed0"


def test_named_set_trains_on_all_its_images(cli_run: Path) -> None:
    """``--train R+mysynth2`` is R plus every image of the set named mysynth2 (not 2 images of 'mysynth')."""
    result = json.loads((_cell(cli_run) / "result.json").read_text())
    parts = {p["part"]: p for p in result["train_parts"]}
    assert parts["mysynth2"]["images"] == 5 and parts["R"]["images"] == 6  # smoke: 6 built-in train tiles
    row = pd.read_csv(cli_run / "results.csv").iloc[0]
    assert row["train_label"] == "R+mysynth2" and row["n_synthetic"] == 5 and row["n_real"] == 6


def test_finished_cell_keeps_one_checkpoint(cli_run: Path) -> None:
    ckpts = sorted(p.name for p in (_cell(cli_run) / "checkpoints").iterdir())
    assert ckpts == ["best.pt"]  # the weights scored; last.pt (for resuming) is gone once the result is written


def test_run_json_records_the_resolved_options_and_profile(cli_run: Path, mysynth2: Path) -> None:
    run = json.loads((cli_run / "run.json").read_text())
    assert run["command"] == "segment" and run["config_file"] is None
    assert run["options"]["data"] == "synthetic-he" and run["options"]["max_steps"] == 2
    assert run["sources"]["data"] == "command line" and run["sources"]["target"] == "default"
    assert run["synthetic_sets"]["named"] == {"mysynth2": str(mysynth2)}
    assert run["profile"]["name"] == "smoke" and run["profile"]["segmenters"]["segnet"]["max_steps"] == 4


def test_config_file_equals_the_command_line(cli_run: Path, mysynth2: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "experiment.toml"
    cfg.write_text(f"""
data = "synthetic-he"
train = ["R+mysynth2"]
arch = "segnet"
width = 0.125
max-steps = 7          # the command line's --max-steps 2 wins
profile = "smoke"
progress = false

[synthetic]
mysynth2 = "{mysynth2}"
""")
    out = tmp_path / "o"
    assert run_cli(monkeypatch, "segment", "--config", str(cfg), "--max-steps", "2", "--out", str(out)) == 0
    a = json.loads((cli_run / "run.json").read_text())
    b = json.loads((out / "run.json").read_text())
    strip = {"out", "config"}
    assert {k: v for k, v in a["options"].items() if k not in strip} == \
           {k: v for k, v in b["options"].items() if k not in strip}
    assert a["profile"] == b["profile"]
    assert b["config_file"] == str(cfg)
    assert b["sources"]["max_steps"] == "command line" and b["sources"]["data"] == "config file"
    ra, rb = (pd.read_csv(o / "results.csv").iloc[0] for o in (cli_run, out))
    for col in ("train_label", "n_train", "steps_done", "pq_mean", "aji_mean", "test_set"):
        assert ra[col] == rb[col], col


def _one_line_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], out: Path,
                     *args: str) -> str:
    assert run_cli(monkeypatch, *args, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()  # nothing written
    return err


BAD: dict[str, tuple[list[str], list[str]]] = {
    "missing-data": (["segment", "--train", "R", *TINY], ["--data is required", "--data synthetic-he"]),
    "unknown-set": (["segment", "--data", "synthetic-he", "--train", "R+mysynth", "--synthetic", "mysynth2={set}",
                     *TINY], ["unknown training set 'mysynth'", "did you mean 'mysynth2'", "--synthetic mysynth=DIR"]),
    "unnamed-set": (["segment", "--data", "synthetic-he", "--train", "R+mysynth2", *TINY],
                    ["unknown training set 'mysynth2'"]),
    "ambiguous-name": (["segment", "--data", "synthetic-he", "--train", "R+S3k", "--synthetic", "S3k={set}", *TINY],
                       ["'S3k' is ambiguous"]),
    "ambiguous-case": (["segment", "--data", "synthetic-he", "--train", "R+s3k", *TINY], ["did you mean S3k"]),
    "count-on-R": (["segment", "--data", "synthetic-he", "--train", "R:3", *TINY], ["R is the whole train split"]),
    "too-small": (["segment", "--data", "synthetic-he", "--train", "mysynth2:50", "--synthetic", "mysynth2={set}",
                   *TINY], ["mysynth2", "holds 5 images", "mysynth2:50 asks for 50"]),
    "reproduce-missing-data": (["reproduce", "--profile", "smoke"], ["--data is required"]),
    "reproduce-unknown-set": (["reproduce", "--data", "synthetic-he", "--profile", "smoke", "--train", "R+mine"],
                              ["unknown training set 'mine'"]),
    "reproduce-too-small": (["reproduce", "--data", "synthetic-he", "--profile", "smoke", "--train", "R+mine:9",
                             "--synthetic", "mine={set}"], ["holds 5 images", "mine:9 asks for 9"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_specs_fail_in_one_line(case: str, mysynth2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    args, wants = BAD[case]
    err = _one_line_exit_2(monkeypatch, capsys, tmp_path / "o", *[a.replace("{set}", str(mysynth2)) for a in args])
    for want in wants:
        assert want in err, err


@pytest.mark.parametrize("body,wants", [
    ("maxsteps = 3", ["experiment.toml", "unknown key 'maxsteps'", "did you mean 'max-steps'"]),
    ("max-steps = 'three'", ["experiment.toml", "key 'max-steps'", "expected an integer"]),
    ("train = [1, 2]", ["key 'train'", "array of strings"]),
    ("progress = 1", ["key 'progress'", "boolean"]),
    ("data = ", ["experiment.toml", "not valid TOML"]),
])
def test_bad_config_names_file_and_key(body: str, wants: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "experiment.toml"
    cfg.write_text(body + "\n")
    err = _one_line_exit_2(monkeypatch, capsys, tmp_path / "o", "segment", "--config", str(cfg), *TINY)
    for want in wants:
        assert want in err, err


def test_user_profile_errors_name_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    prof = tmp_path / "my.toml"
    prof.write_text('extends = "smoke"\n[segmenters.segnet]\nmax_step = 3\n')
    err = _one_line_exit_2(monkeypatch, capsys, tmp_path / "o", "segment", "--data", "synthetic-he",
                           "--profile", str(prof))
    assert "my.toml" in err and "unknown key 'max_step'" in err and "max_steps" in err


def test_user_profile_reaches_the_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user profile's field (segnet width and steps) is what the cell trains with, and run.json holds it."""
    prof = tmp_path / "tiny.toml"
    prof.write_text('extends = "smoke"\n[segmenters.segnet]\nmax_steps = 1\nmodel = { width = 0.125 }\n')
    out = tmp_path / "o"
    assert run_cli(monkeypatch, "segment", "--data", "synthetic-he", "--arch", "segnet", "--profile", str(prof),
                   "--no-progress", "--out", str(out)) == 0
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["profile"] == "tiny" and row["steps_done"] == 1
    run: dict[str, Any] = json.loads((out / "run.json").read_text())
    assert run["profile"]["name"] == "tiny" and run["profile"]["segmenters"]["segnet"]["max_steps"] == 1


def test_quality_takes_a_config_file_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text('metric = ["ssim"]\nbatch-size = "x"\n')
    err = _one_line_exit_2(monkeypatch, capsys, tmp_path / "o", "quality", "--config", str(cfg))
    assert "q.toml: key 'batch-size': expected an integer" in err


def test_reproduce_trains_on_a_named_set(mysynth2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``reproduce --synthetic mine=DIR --train R+mine:3``: no Sharp-GAN needed (no S3k/S10k), the cell reads the
    first 3 images of the user's set, and run.json holds the resolved options."""
    out = tmp_path / "r"
    assert run_cli(monkeypatch, "reproduce", "--data", "synthetic-he", "--profile", "smoke", "--generator",
                   "mask-paint", "--arch", "segnet", "--seeds", "0", "--train", "R+mine:3", "--synthetic",
                   f"mine={mysynth2}", "--out", str(out)) == 0
    (result,) = out.glob("stages/segment-segnet-R-and-mine_3-seed0/*/segnet/R+mine@3/binary/seed0/result.json")
    parts = {p["part"]: p["images"] for p in json.loads(result.read_text())["train_parts"]}
    assert parts == {"R": 6, "mine:3": 3}
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "reproduce" and run["synthetic_sets"]["named"] == {"mine": str(mysynth2)}
