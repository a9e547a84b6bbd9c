"""Loading a checkpoint runs no code: ``weights_only=True`` everywhere, crafted files refused in one line."""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from gbench.core.errors import DataError
from gbench.engine import load_checkpoint, plain_state, safe_torch_load, save_checkpoint
from gbench.generators.mi_gan import load_mi_gan
from tests.cli.test_cli import run_cli


class _Evil:
    """Unpickling this opens (creates) ``marker``: the stand-in for any code a crafted file runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _evil_file(path: Path, blob: dict) -> Path:
    buf = io.BytesIO()
    torch.save(blob, buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def _evil_checkpoint(tmp_path: Path, marker: Path) -> Path:
    return _evil_file(tmp_path / "evil.pt", {"step": 1, "module": {}, "meta": {"generator": "dummy", "x": _Evil(marker)}})


def _evil_migan(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return _evil_file(folder / "mi-gan.pt", {"generator": "mi-gan", "config": {}, "state": {}, "meta": _Evil(marker)})


def test_pickled_callable_is_refused_and_never_runs(tmp_path: Path, marker: Path) -> None:
    ck = _evil_checkpoint(tmp_path, marker)
    # the file really is a code-running pickle: an unsafe load creates the marker
    torch.load(ck, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError) as err:
        load_checkpoint(ck)
    msg = str(err.value)
    assert msg.startswith(str(ck)) and "\n" not in msg
    assert "older gbench or not a plain checkpoint" in msg and "io.open" in msg
    assert not marker.exists()
    with pytest.raises(DataError, match="older gbench or not a plain checkpoint"):
        load_mi_gan(_evil_migan(tmp_path / "run", marker))
    assert not marker.exists()


def test_quality_generator_refuses_evil_checkpoint(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ck = _evil_checkpoint(tmp_path, marker)
    code = run_cli(monkeypatch, "quality", "--generator", "dummy", "--checkpoint", str(ck), "--data", "synthetic-he",
                   "--profile", "smoke", "--out", str(tmp_path / "q"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(ck) in err and "not a plain checkpoint" in err and "Traceback" not in err
    assert not marker.exists()


def test_synthesize_refuses_evil_checkpoint(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ck = _evil_checkpoint(tmp_path, marker)
    code = run_cli(monkeypatch, "synthesize", "dummy", "--checkpoint", str(ck), "--out", str(tmp_path / "s"),
                   "--count", "2", "--profile", "smoke")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(ck) in err, err
    assert not marker.exists()


@pytest.mark.parametrize("cmd", ["sample-mi-gan", "train-mi-gan-init"])
def test_migan_commands_refuse_evil_weights(cmd: str, tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    model = _evil_migan(tmp_path / "run", marker)
    if cmd == "sample-mi-gan":
        args = ["sample-mi-gan", str(tmp_path / "run"), "--out", str(tmp_path / "o"), "--count", "1", "--profile", "smoke"]
    else:
        args = ["train-mi-gan", "--data", "synthetic-cells:cancer", "--init-from", str(tmp_path / "run"),
                "--out", str(tmp_path / "o"), "--profile", "smoke", "--steps", "1"]
    code = run_cli(monkeypatch, *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(model) in err and "not a plain checkpoint" in err
    assert not marker.exists()


def test_saved_checkpoints_are_plain(tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        lr: float = 1e-3
        where: Path = Path("/x")

    state = {"step": np.int64(3), "module": {"w": torch.ones(2)},
             "meta": {"config": Cfg(), "value": np.float32(0.5), "arr": np.arange(3), "tags": {"b", "a"}}}
    path = save_checkpoint(tmp_path / "c.pt", state)
    ck = load_checkpoint(path)  # weights_only: every entry is a plain type
    assert ck["step"] == 3 and type(ck["step"]) is int
    assert ck["meta"]["config"] == {"lr": 1e-3, "where": "/x"}
    assert ck["meta"]["value"] == 0.5 and torch.equal(ck["meta"]["arr"], torch.arange(3))
    assert ck["meta"]["tags"] == ["a", "b"]
    with pytest.raises(TypeError, match=r"state\.meta\.fn is a function"):
        plain_state({"meta": {"fn": lambda: 0}})


@pytest.mark.parametrize("content,why", [(b"", "truncated or not a torch file"),
                                         (b"garbage" * 20, "truncated or not a torch file"),
                                         ("truncate", "truncated or not a torch file")])
def test_unreadable_files_are_one_line(tmp_path: Path, content: object, why: str) -> None:
    path = tmp_path / "bad.pt"
    if content == "truncate":
        good = save_checkpoint(tmp_path / "good.pt", {"step": 1, "module": {"w": torch.ones(64)}})
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(DataError) as err:
        safe_torch_load(path)
    assert str(err.value) == f"{path}: cannot read checkpoint ({why})"
