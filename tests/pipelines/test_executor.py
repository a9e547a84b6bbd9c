"""Executors run a task graph in order, concurrently (spawned children) or on Ray, with the same
results; the stage folders stay the contract."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from gbench.pipelines.executor import LocalExecutor, SequentialExecutor, Task, TaskFailed, make_executor
from gbench.pipelines.stages import Stage, StageCache


def _wait_for(path: Path, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


def test_graph_errors() -> None:
    ex = SequentialExecutor()
    with pytest.raises(ValueError, match="duplicate"):
        ex.run([Task("a", lambda: 1), Task("a", lambda: 2)])
    with pytest.raises(ValueError, match="unknown tasks"):
        ex.run([Task("a", lambda: 1, after=("b",))])
    with pytest.raises(ValueError, match="cycle"):
        ex.run([Task("a", lambda: 1, after=("b",)), Task("b", lambda: 2, after=("a",))])
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="jobs"):
        make_executor("local", jobs=0)


def test_sequential_respects_dependencies_listed_later() -> None:
    order: list[str] = []
    done: list[str] = []
    ex = SequentialExecutor(on_done=lambda name, result: done.append(name))
    out = ex.run([Task("b", lambda: order.append("b") or "B", after=("a",)), Task("a", lambda: order.append("a") or "A")])
    assert order == ["a", "b"] and done == ["a", "b"] and out == {"a": "A", "b": "B"}


def test_local_runs_independent_tasks_at_once_and_dependents_after(tmp_path: Path) -> None:
    # a and b each wait for the other's file: both finish only if they run at the same time
    def meet(me: str, other: str) -> str:
        (tmp_path / me).write_text(me)
        assert _wait_for(tmp_path / other), f"{me} never saw {other}: the tasks did not run concurrently"
        return me

    def after() -> str:  # runs in a child started once a and b are done: it sees their files
        return "".join(sorted(p.name for p in tmp_path.iterdir()))

    tasks = [Task("a", lambda: meet("a", "b")), Task("b", lambda: meet("b", "a")), Task("c", after, after=("a", "b"))]
    res = LocalExecutor(jobs=2, gpus=[]).run(tasks)
    assert res == {"a": "a", "b": "b", "c": "ab"}


def test_local_reports_a_failed_task_by_name(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("out of memory")

    with pytest.raises(TaskFailed, match=r"task 'bad' failed: RuntimeError: out of memory"):
        LocalExecutor(jobs=2, gpus=[]).run([Task("ok", lambda: 1), Task("bad", boom)])


def test_concurrent_stages_write_distinct_folders_and_resume(tmp_path: Path) -> None:
    cache = StageCache(tmp_path / "stages")
    calls = tmp_path / "calls"
    calls.mkdir()

    def stage(i: int) -> Task:
        def fn(folder: Path, i: int = i) -> dict[str, int]:
            (folder / "out.txt").write_text(str(i))
            (calls / f"{i}").touch()
            return {"i": i}

        return Task(f"s{i}", lambda: cache.run(Stage("work", {"i": i}), fn))

    res = LocalExecutor(jobs=2, gpus=[]).run([stage(i) for i in range(4)])
    folders = {r.path for r in res.values()}
    assert len(folders) == 4  # one folder per stage: no two tasks wrote the same one
    assert all((r.path / "out.txt").read_text() == str(r.result["i"]) for r in res.values())
    # a second executor finds every stage done (the folder is the contract, whoever ran it)
    for p in calls.iterdir():
        p.unlink()
    again = SequentialExecutor().run([stage(i) for i in range(4)])
    assert all(r.skipped for r in again.values()) and not list(calls.iterdir())
