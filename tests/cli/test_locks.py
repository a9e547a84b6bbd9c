"""One writer per folder (issue 26): every command that writes a run folder holds its lock.

Today two ``quality`` runs into one ``--out`` both exited 0 (the first run's results gone), two
``train-mi-gan`` runs both printed "wrote mi-gan.pt", and ``train-gen --overwrite`` deleted a
running run's checkpoint before the lock refused it. Here another writer holds the folder (in this
process through an unshared :func:`gbench.core.fileio.folder_lock`, or in a second process) and
every command is refused at once, in one line, with the folder unchanged. Ctrl-C of a command
prints one line and exits 130, and leaves the folder's manifest closed and its lock free.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gbench.core.fileio import folder_lock
from gbench.core.outputs import claim_output_folder, read_manifest
from tests.cli.test_bad_inputs import snapshot
from tests.cli.test_cli import invoke
from tests.data.test_loaders import write_folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("locks")
    rng = np.random.default_rng(0)
    for side in ("real", "fake"):
        (root / side).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / side / f"{i}.png")
    write_folder(root / "ds" / "train", ["a", "b"])
    write_folder(root / "ds" / "test", ["c"])
    res = invoke("quality", "--real", str(root / "real"), "--fake", str(root / "fake"), "--out", str(root / "q"))
    assert res.exit_code == 0, res.stderr
    (root / "migan-run").mkdir()
    return {"root": root, "real": root / "real", "fake": root / "fake", "ds": root / "ds", "records": root / "q",
            "migan": root / "migan-run"}


def _commands(i: dict[str, Path], out: Path) -> dict[str, list[str]]:
    o = str(out)
    return {
        "quality": ["quality", "--real", str(i["real"]), "--fake", str(i["fake"]), "--out", o],
        "segment": ["segment", "--data", str(i["ds"]), "--profile", "smoke", "--out", o, "--no-progress"],
        "report": ["report", str(i["records"]), "--out", o],
        "train-mi-gan": ["train-mi-gan", "--data", "synthetic-cells:siha", "--profile", "smoke", "--out", o],
        "sample-mi-gan": ["sample-mi-gan", str(i["migan"]), "--out", o],
        "quality-multifocus": ["quality-multifocus", "--real", "synthetic-cells:siha", "--fake",
                               "synthetic-cells:siha", "--out", o],
        "data-inspect": ["data", "inspect", str(i["ds"]), "--out", o],
        "train-gen": ["train-gen", "dummy", "--data", str(i["ds"]), "--profile", "smoke", "--out", o],
        "reproduce": ["reproduce", "--data", "synthetic-he", "--profile", "smoke", "--out", o],
        "demo": ["demo", "--profile", "smoke", "--out", o],
    }


@pytest.mark.parametrize("name", ["quality", "segment", "report", "train-mi-gan", "sample-mi-gan", "quality-multifocus",
                                  "data-inspect", "train-gen", "reproduce", "demo"])
def test_a_held_folder_refuses_a_second_writer(name: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    with folder_lock(out):  # another writer of this folder
        before = snapshot(out)
        res = invoke(*_commands(inputs, out)[name])
        assert res.exit_code == 2, (name, res.stdout, res.stderr)
        assert "another gbench run is writing this folder" in res.stderr and str(out) in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stdout + res.stderr
        assert snapshot(out) == before


HOLDER = textwrap.dedent("""
    import sys, time
    from gbench.core.fileio import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


def test_overwrite_of_a_folder_another_process_writes_deletes_nothing(inputs: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "q"
    args = _commands(inputs, out)["quality"]
    assert invoke(*args).exit_code == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(out)
        res = invoke(*args, "--overwrite")
        assert res.exit_code == 2 and "another gbench run" in res.stderr, res.stderr
        assert snapshot(out) == before  # refused before anything was deleted
    finally:
        holder.kill()
        holder.wait()
    res = invoke(*args, "--overwrite")  # the lock died with its holder
    assert res.exit_code == 0, res.stderr


def test_train_gen_overwrite_of_a_running_run_deletes_nothing(inputs: dict[str, Path], tmp_path: Path,
                                                              one_thread: None) -> None:
    out = tmp_path / "run"
    args = _commands(inputs, out)["train-gen"]
    assert invoke(*args, "--steps", "2").exit_code == 0
    ckpt = (out / "checkpoints" / "last.pt").read_bytes()
    with folder_lock(out):  # the run is still going
        res = invoke(*args, "--steps", "2", "--overwrite")
        assert res.exit_code == 2 and "another gbench run" in res.stderr, res.stderr
    assert (out / "checkpoints" / "last.pt").read_bytes() == ckpt
    assert read_manifest(out)["open"] is None  # type: ignore[index]


def test_ctrl_c_prints_one_line_and_exits_130(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gbench", "train-gen", "dummy", "--data", str(inputs["ds"]),
                             "--profile", "smoke", "--out", str(out), "--steps", "1000000", "--checkpoint-every",
                             "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "last.pt").exists():  # the run has written something
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"train-gen did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted; rerun with --resume to continue", err
    doc = read_manifest(out)
    assert doc is not None and doc["open"] is None  # the claim was closed: what it wrote is recorded
    assert "checkpoints/last.pt" in doc["files"]
    with claim_output_folder(out, overwrite=True):  # the lock is free, and every file is gbench's
        pass
    res = invoke("data", "inspect", str(inputs["ds"]), "--out", str(tmp_path / "x"))
    assert res.exit_code == 0


def test_sigint_message_without_resume_hint(inputs: dict[str, Path]) -> None:
    import typer

    from gbench.cli.app import app

    root = typer.main.get_command(app)
    assert root._interrupted(["quality", "--out", "x"]) == "interrupted"  # type: ignore[attr-defined]
    assert root._interrupted(["demo", "mi-gan"]).endswith("--resume to continue")  # type: ignore[attr-defined]
