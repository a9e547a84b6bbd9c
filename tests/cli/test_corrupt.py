"""Corrupt artefacts (checkpoints, mi-gan.pt, result.json, manifest.csv, run.json, records) give one
line naming the file and what is wrong, exit 2, through the command that consumes them."""
from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from gbench.core.profiles import SMOKE
from gbench.generators.mi_gan import MIGAN, config_for_profile, save_mi_gan
from gbench.generators.train import train_generator
from gbench.pipelines.synthesis import synthesize
from tests.cli.test_cli import run_cli
from tests.generators.test_train import tiles

pytestmark = pytest.mark.usefixtures("one_thread")

SEGMENT = ["segment", "--arch", "segnet", "--width", "0.125", "--max-steps", "1", "--val-fraction", "0",
           "--data", "synthetic-he", "--profile", "smoke", "--no-progress"]


def _torch_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


#: name -> how a file is spoiled (from its good bytes)
CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "garbage": lambda b: bytes(range(256)) * 4,
    "truncated": lambda b: b[: max(1, len(b) // 2)],
}
#: well-formed files of the wrong shape, per kind of artefact
WRONG_SHAPE: dict[str, bytes] = {
    "checkpoint": _torch_bytes([1, 2, 3]),
    "mi-gan": _torch_bytes({"generator": "mi-gan", "config": [1], "state": {}}),
    "json": b"[1, 2]\n",
    "records": b"a,b\n1,2\n",
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of each artefact, made once: a train-gen checkpoint, an MI-GAN file, a synthetic set, a
    one-cell segment grid (its result.json, records.csv and records.parquet)."""
    root = tmp_path_factory.mktemp("made")
    ck = train_generator("dummy", "tiles", root / "gen", profile="smoke", seed=0, steps=1, progress=False,
                         dataset=tiles(2)).checkpoint
    migan = save_mi_gan(MIGAN(config_for_profile(SMOKE), seed=0), root / "migan" / "mi-gan.pt")
    synthesize("dummy", ck, 6, root / "synth" / "S3k", profile="smoke", progress=False)
    mp = pytest.MonkeyPatch()
    assert run_cli(mp, *SEGMENT, "--out", str(root / "grid")) == 0
    return {"ck": ck, "migan": migan, "synth": root / "synth", "grid": root / "grid"}


def _check(code: int, err: str, path: Path) -> None:
    err = err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err, err
    for bad in ("AttributeError", "TypeError", "KeyError"):
        assert bad not in err, err


def _spoil(path: Path, how: str, kind: str) -> None:
    path.write_bytes(WRONG_SHAPE[kind] if how == "wrong-shape" else CORRUPTIONS[how](path.read_bytes()))


HOW = [*CORRUPTIONS, "wrong-shape"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("command", ["quality", "synthesize"])
def test_corrupt_checkpoint(how: str, command: str, made: dict[str, Path], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "last.pt"
    shutil.copy(made["ck"], bad)
    _spoil(bad, how, "checkpoint")
    if command == "quality":
        args = ["quality", "--generator", "dummy", "--checkpoint", str(bad), "--data", "synthetic-he", "--profile", "smoke"]
    else:
        args = ["synthesize", "dummy", "--checkpoint", str(bad), "--out", str(tmp_path / "s"), "--count", "1",
                "--profile", "smoke"]
    code = run_cli(monkeypatch, *args)
    _check(code, capsys.readouterr().err, bad)


@pytest.mark.parametrize("how", HOW)
def test_corrupt_migan(how: str, made: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    bad = run / "mi-gan.pt"
    shutil.copy(made["migan"], bad)
    _spoil(bad, how, "mi-gan")
    code = run_cli(monkeypatch, "sample-mi-gan", str(run), "--out", str(tmp_path / "o"), "--count", "1", "--profile", "smoke")
    _check(code, capsys.readouterr().err, bad)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", ["result.json", "cell.json", "grid.json"])
def test_corrupt_grid_files(how: str, name: str, made: dict[str, Path], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid"
    shutil.copytree(made["grid"], grid)
    bad = grid / name if name == "grid.json" else grid / "segnet" / "R" / "binary" / "seed0" / name
    _spoil(bad, how, "json")
    code = run_cli(monkeypatch, *SEGMENT, "--out", str(grid), "--resume")
    _check(code, capsys.readouterr().err, bad)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", ["manifest.csv", "run.json"])
def test_corrupt_synthetic_set(how: str, name: str, made: dict[str, Path], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    synth = tmp_path / "synth"
    shutil.copytree(made["synth"], synth)
    bad = synth / "S3k" / name
    if name == "manifest.csv" and how == "wrong-shape":
        bad.write_text("sample_id,image_path,label_path\nx,images/nope.png,labels/nope.png\n")
    else:
        _spoil(bad, how, "json")
    if name == "run.json" and how == "wrong-shape":
        pytest.skip("a run.json that is valid JSON but no object carries no status: the set is not checked by it")
    code = run_cli(monkeypatch, *SEGMENT, "--train", "S3k", "--synthetic", str(synth), "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    _check(code, err, synth / "S3k" if name == "manifest.csv" and how in ("truncated", "wrong-shape") else bad)
    # synthesize --resume on the spoilt set: refused too, naming the file
    if how != "wrong-shape":
        code = run_cli(monkeypatch, "synthesize", "dummy", "--checkpoint", str(made["ck"]), "--out", str(synth / "S3k"),
                       "--count", "6", "--resume", "--profile", "smoke")
        err = capsys.readouterr().err
        if code != 0:  # a truncated manifest is rewritten by the resume (its samples are all there)
            _check(code, err, synth / "S3k")


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", ["records.csv", "records.parquet", "records.manifest.json"])
def test_corrupt_records(how: str, name: str, made: dict[str, Path], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid"
    shutil.copytree(made["grid"], grid)
    bad = grid / name
    if not bad.exists():
        pytest.skip(f"{name} not written here (no pyarrow)")
    _spoil(bad, how, "json" if name.endswith(".json") else "records")
    target = grid / "records.parquet" if name == "records.parquet" else grid / "records.csv"
    code = run_cli(monkeypatch, "report", str(target), "--out", str(tmp_path / "rep"))
    err = capsys.readouterr().err
    if name == "records.manifest.json":  # the manifest only vouches for the CSV: a warning, the report runs
        assert code == 0, err
        assert "Traceback" not in err
        return
    _check(code, err, bad)
