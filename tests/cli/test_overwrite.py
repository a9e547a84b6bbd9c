"""``--overwrite`` deletes only what gbench wrote, never an input (issue 26).

Each case of the issue's list that lost data, run through the command line: the output folder is
refused before anything is touched (exit 2, one line naming both paths), and every input is left
byte for byte as it was. Then the manifest rules of :mod:`gbench.core.outputs`: only files the
manifest lists are deleted, a folder without one is never emptied, a killed run is settled.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.outputs import MANIFEST_NAME, claim_output_folder, read_manifest
from tests.cli.test_bad_inputs import snapshot
from tests.cli.test_cli import invoke
from tests.data.test_loaders import write_folder


def _images(folder: Path, n: int = 2, seed: int = 0, value: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) if value is None else np.full((32, 32, 3), value,
                                                                                              np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")
    return folder


def _refused(args: list[str], guarded: list[Path], *fragments: str) -> str:
    before = [snapshot(p) for p in guarded]
    res = invoke(*args)
    assert res.exit_code == 2, (args, res.stdout, res.stderr)
    err = res.stderr
    assert "Traceback" not in res.stdout + err
    assert len(err.strip().splitlines()) == 1, err
    for frag in fragments:
        assert frag in err, (frag, err)
    assert [snapshot(p) for p in guarded] == before, "an input or the folder changed"
    return err


@pytest.fixture()
def exp(tmp_path: Path) -> Path:
    _images(tmp_path / "exp" / "real", seed=0)
    _images(tmp_path / "exp" / "fake", seed=1)
    return tmp_path / "exp"


# ----------------------------------------------------------------------- the cases


def test_quality_out_containing_both_inputs_is_refused(exp: Path) -> None:
    err = _refused(["quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out", str(exp),
                    "--overwrite"], [exp], "contains the input", str(exp / "real"))
    assert str(exp) in err


def test_quality_out_equal_to_the_fake_set_is_refused(exp: Path) -> None:
    _refused(["quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out", str(exp / "fake"),
              "--overwrite"], [exp], "--out is the input --fake")
    # inside an input, and through a symlink to it
    _refused(["quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out",
              str(exp / "fake" / "scores")], [exp], "lies inside the input --fake")
    link = exp.parent / "link"
    link.symlink_to(exp / "fake", target_is_directory=True)
    _refused(["quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out", str(link),
              "--overwrite"], [exp], "is the input --fake")


def test_report_into_its_own_records_folder_is_refused(exp: Path, tmp_path: Path, one_thread: None) -> None:
    grid = tmp_path / "grid"
    res = invoke("quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out", str(grid))
    assert res.exit_code == 0, res.stderr
    (grid / "checkpoints").mkdir()
    (grid / "checkpoints" / "unet.pt").write_bytes(b"weights")
    _refused(["report", str(grid), "--out", str(grid), "--overwrite"], [grid], "is the input RECORDS")
    _refused(["report", str(grid), "--out", str(grid / "report")], [grid], "lies inside the input RECORDS")


def test_segment_out_inside_its_synthetic_folder_is_refused(tmp_path: Path) -> None:
    ds, d = tmp_path / "ds", tmp_path / "D"
    write_folder(ds / "train", ["a", "b"])
    write_folder(ds / "test", ["c"])
    write_folder(d / "S3k", [f"s{i}" for i in range(6)], shape=(32, 32))
    _refused(["segment", "--data", str(ds), "--synthetic", str(d), "--train", "R,S3k", "--profile", "smoke",
              "--out", str(d / "S3k"), "--overwrite"], [d, ds], "lies inside the input --synthetic", str(d))
    _refused(["segment", "--data", str(ds), "--profile", "smoke", "--out", str(ds / "test"), "--overwrite"],
             [d, ds], "lies inside the input --data")


def test_data_inspect_into_its_dataset_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "D"
    write_folder(d / "train", ["a", "b"])
    _refused(["data", "inspect", str(d), "--out", str(d), "--overwrite"], [d], "is the input DATASET")


def test_project_folder_with_checkpoints_is_never_emptied(exp: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "checkpoints").mkdir(parents=True)
    (project / "checkpoints" / "mine.pt").write_bytes(b"my weights")
    (project / "data").mkdir()
    (project / "data" / "x.png").write_bytes(b"png")
    (project / "notes.txt").write_text("notes")
    monkeypatch.chdir(project)
    err = _refused(["quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out", ".",
                    "--overwrite"], [project, exp], "no record of writing this folder", "rm -r")
    assert MANIFEST_NAME in err
    assert not (project / ".gbench.lock").exists()  # not even a lock file was left


# --------------------------------------------------------------------------- the manifest


def test_overwrite_deletes_only_what_gbench_wrote(exp: Path, tmp_path: Path, one_thread: None) -> None:
    out = tmp_path / "scores"
    args = ["quality", "--real", str(exp / "real"), "--fake", str(exp / "fake"), "--out", str(out)]
    assert invoke(*args).exit_code == 0
    doc = read_manifest(out)
    assert doc is not None and doc["open"] is None
    assert {"per_image.csv", "summary.json", "records.csv"} <= set(doc["files"])
    assert set(doc["files"]) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        MANIFEST_NAME, ".gbench.lock"}
    # a file the user added is named, and nothing is deleted
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "a.txt").write_text("a")
    err = _refused([*args, "--overwrite"], [out, exp], "notes.txt", "mine/", "nothing was deleted")
    assert "a.txt" not in err  # a foreign folder is named once
    # without them, --overwrite replaces the run: the old files go, the new ones are listed
    (out / "notes.txt").unlink()
    (out / "mine" / "a.txt").unlink()
    (out / "mine").rmdir()
    (out / "stale.csv").write_text("x")  # pretend an earlier gbench run wrote it
    doc["files"].append("stale.csv")
    (out / MANIFEST_NAME).write_text(json.dumps(doc))
    res = invoke(*args, "--overwrite")
    assert res.exit_code == 0, res.stderr
    assert not (out / "stale.csv").exists() and (out / "summary.json").is_file()
    assert "stale.csv" not in read_manifest(out)["files"]  # type: ignore[index]
    assert snapshot(exp) == snapshot(exp)  # inputs read, never written


def test_a_killed_run_is_settled_by_the_next_overwrite(tmp_path: Path) -> None:
    from gbench.core.fileio import release_folder_lock

    out = tmp_path / "run"
    out.mkdir()
    claim = claim_output_folder(out)
    (out / "sub").mkdir()
    (out / "sub" / "half.csv").write_text("written before the kill")
    release_folder_lock(out)  # the process dies: the lock goes, the manifest stays open
    assert read_manifest(out)["open"]["pid"] == os.getpid()  # type: ignore[index]
    claim.released = True
    with claim_output_folder(out, overwrite=True):  # the killed run's files are gbench's
        assert not (out / "sub").exists()
    assert read_manifest(out)["files"] == []  # type: ignore[index]


def test_resume_keeps_foreign_files_foreign(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "legacy.pt").write_bytes(b"an older gbench wrote me")  # no manifest: resumed, never claimed
    with claim_output_folder(out, resume=True):
        (out / "new.csv").write_text("1")
    assert read_manifest(out)["files"] == ["new.csv"]  # type: ignore[index]
    with pytest.raises(Exception, match="legacy.pt"):
        claim_output_folder(out, overwrite=True)
    assert (out / "legacy.pt").exists() and (out / "new.csv").exists()


def test_overwrite_of_a_folder_without_manifest_says_how_to_remove_it(tmp_path: Path) -> None:
    old = tmp_path / "old-run"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "last.pt").write_bytes(b"old")
    (old / "run.json").write_text("{}")
    with pytest.raises(Exception, match=r"older than the manifest.*rm -r"):
        claim_output_folder(old, overwrite=True)
    assert snapshot(old) == {"checkpoints": "dir", "checkpoints/last.pt": snapshot(old / "checkpoints" / "last.pt"),
                             "run.json": snapshot(old / "run.json")}


def test_overwrite_help_says_what_it_may_delete() -> None:
    import typer

    from gbench.cli.app import app

    root = typer.main.get_command(app)
    for name in ("quality", "segment", "report", "train-gen", "synthesize", "train-mi-gan", "sample-mi-gan"):
        opt = next(p for p in root.commands[name].params if "--overwrite" in p.opts)  # type: ignore[attr-defined]
        assert "manifest" in opt.help and "nothing else" in opt.help, name
