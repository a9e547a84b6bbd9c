"""Stage cache: skips a done stage, reruns one whose config or input changed, a killed stage is not done."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from gbench.core.errors import DataError
from gbench.pipelines.stages import MARKER, Stage, StageCache, canonical_json, fingerprint


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, folder: Path) -> dict:
        self.calls += 1
        (folder / "out.txt").write_text(f"run {self.calls}")
        return {"outputs": ["out.txt"], "score": 0.5}


def test_done_stage_is_skipped(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    fn = Counter()
    stage = Stage("train-gan", {"lr": 1e-4, "steps": 4})
    first = cache.run(stage, fn)
    assert not first.skipped and fn.calls == 1 and first.result == {"outputs": ["out.txt"], "score": 0.5}
    assert cache.is_done(stage)
    again = cache.run(Stage("train-gan", {"steps": 4, "lr": 1e-4}), fn)  # same config, other key order
    assert again.skipped and fn.calls == 1 and again.path == first.path and again.result["score"] == 0.5
    marker = json.loads((first.path / MARKER).read_text())
    assert marker["key"] == stage.key() and marker["config"] == {"lr": 1e-4, "steps": 4}
    assert [d["name"] for d in cache.done_stages()] == ["train-gan"]


def test_changed_config_reruns_in_its_own_folder(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    fn = Counter()
    a = cache.run(Stage("train-gan", {"lr": 1e-4}), fn)
    b = cache.run(Stage("train-gan", {"lr": 2e-4}), fn)
    assert fn.calls == 2 and not b.skipped and a.path != b.path
    assert (a.path / "out.txt").read_text() == "run 1" and (b.path / "out.txt").read_text() == "run 2"
    assert cache.run(Stage("train-gan", {"lr": 1e-4}), fn).skipped  # the old config is still done
    assert fn.calls == 2


def test_changed_input_reruns(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    cache = StageCache(tmp_path / "cache")
    fn = Counter()
    cache.run(Stage("score", {}, (data,)), fn)
    assert cache.run(Stage("score", {}, (data,)), fn).skipped
    data.write_text("a,b\n1,3\n")
    assert not cache.is_done(Stage("score", {}, (data,)))
    assert not cache.run(Stage("score", {}, (data,)), fn).skipped and fn.calls == 2


def test_killed_stage_leaves_no_marker_and_reruns(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    stage = Stage("segment", {"arch": "unet"})

    def dies(folder: Path) -> None:
        (folder / "checkpoint.pt").write_text("half")
        raise KeyboardInterrupt  # killed mid-way

    with pytest.raises(KeyboardInterrupt):
        cache.run(stage, dies)
    folder = cache.path(stage)
    assert not (folder / MARKER).exists() and not cache.is_done(stage)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp marker either
    seen = []

    def resumes(f: Path) -> dict:
        seen.append((f / "checkpoint.pt").read_text())  # same folder: may resume from its checkpoint
        return {"ok": True}

    res = cache.run(stage, resumes)
    assert not res.skipped and seen == ["half"] and cache.is_done(stage)


def test_deleted_outputs_make_a_stage_not_done(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    fn = Counter()
    stage = Stage("synthesize", {"n": 6})
    r = cache.run(stage, fn)
    (r.path / "out.txt").unlink()
    assert not cache.is_done(stage)
    assert not cache.run(stage, fn).skipped and fn.calls == 2
    with pytest.raises(ValueError, match="outputs that do not exist: nope.png"):
        cache.run(Stage("other"), lambda f: {"outputs": ["nope.png"]})
    assert not cache.is_done(Stage("other"))


@dataclass(frozen=True)
class Cfg:
    size: int
    names: tuple[str, ...]


def test_key_is_canonical_and_inputs_fingerprinted(tmp_path: Path) -> None:
    assert canonical_json({"b": (1, 2), "a": Path("x/y"), "c": Cfg(3, ("p",))}) == \
        '{"a":"x/y","b":[1,2],"c":{"names":["p"],"size":3}}'
    assert Stage("s", {"cfg": Cfg(3, ("p",))}).key() == Stage("s", {"cfg": {"names": ["p"], "size": 3}}).key()
    assert Stage("s", {"x": 1}).key() != Stage("t", {"x": 1}).key()
    with pytest.raises(ValueError, match="finite"):
        Stage("s", {"x": float("nan")})
    with pytest.raises(ValueError, match="not JSON-able"):
        Stage("s", {"x": object()})
    with pytest.raises(ValueError, match="stage name"):
        Stage("a/b")
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(b"1")
    tree = fingerprint(folder)
    assert tree.startswith("tree:")
    (folder / "images" / "a.png").write_bytes(b"2")
    assert fingerprint(folder) != tree
    (folder / "manifest.csv").write_text("sample_id\na\n")
    assert fingerprint(folder).startswith("manifest:")
    done = StageCache(tmp_path / "c").run(Stage("up"), lambda f: None)
    assert fingerprint(done.path) == "stage:" + done.key
    with pytest.raises(DataError, match="stage input does not exist"):
        Stage("s", inputs=(tmp_path / "missing",)).key()
