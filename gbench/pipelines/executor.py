"""Run the stages of a pipeline one after another, several at once on this machine, or on Ray.

A pipeline hands an executor a graph of :class:`Task` s (a name, a callable that runs one stage
through the stage cache, the names of the tasks it needs). Which executor runs them changes
where and when a stage runs, never what it computes:

* ``sequential``: in submission order, in this process (the default).
* ``local``: up to ``jobs`` tasks at once, each in a fresh child process (spawned, the task sent
  with cloudpickle, so closures travel; a forked child can hang in OpenMP once torch has run in the
  parent); with CUDA GPUs visible, one task per GPU (the child sees only its GPU through
  ``CUDA_VISIBLE_DEVICES``).
* ``ray``: each task is a Ray task with its resource needs (``{"CPU": 1}`` or ``{"GPU": 1}``) on a
  local Ray instance or an existing cluster (``address``); ``pip install 'gbench[ray]'``.

The contract between them is the content-keyed stage folder (:mod:`gbench.pipelines.stages`): a
stage is done when its folder holds its ``stage.json``, whoever ran it, so a killed executor
resumes where it stopped and two tasks never write one folder (distinct stages have distinct keys
and so distinct folders; :class:`Task` names must be unique). A task starts only when the tasks
it needs are done, and a task's callable is built after them, so it may read their folders.

Every task runs with this process's torch thread count (a Ray worker would default to one): the
numbers of a stage depend on it on the CPU, and an executor must not change them.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_any
from typing import Any

import cloudpickle
import torch

__all__ = ["Task", "Executor", "SequentialExecutor", "LocalExecutor", "RayExecutor", "make_executor", "EXECUTORS",
           "TaskFailed"]

EXECUTORS = ("sequential", "local", "ray")


class TaskFailed(RuntimeError):
    """A task raised; the message names the task and carries the original error."""


@dataclass(frozen=True)
class Task:
    """One stage of a pipeline.

    Attributes:
        name: Unique name (the stage name).
        fn: Runs the stage and returns a picklable result (``StageCache.run``'s ``StageResult``).
        after: Names of the tasks that must be done first.
        gpu: Whether the task wants a GPU (when there is one); otherwise one CPU.
    """

    name: str
    fn: Callable[[], Any]
    after: tuple[str, ...] = ()
    gpu: bool = True


@dataclass
class Executor:
    """Runs a graph of tasks; ``on_done(name, result)`` is called in this process as each ends,
    in completion order."""

    on_done: Callable[[str, Any], None] | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def run(self, tasks: Sequence[Task]) -> dict[str, Any]:
        """Run every task (dependencies first); returns ``{name: result}``.

        Raises:
            ValueError: a duplicate name, an unknown dependency or a cycle.
            TaskFailed: a task raised (the tasks already running are finished first).
        """
        _check_graph(tasks)
        self._run(list(tasks))
        return self.results

    def _finish(self, name: str, result: Any) -> None:
        self.results[name] = result
        if self.on_done is not None:
            self.on_done(name, result)

    def _run(self, tasks: list[Task]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_graph(tasks: Sequence[Task]) -> None:
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate task names: {dup}")
    known = set(names)
    for t in tasks:
        missing = [a for a in t.after if a not in known]
        if missing:
            raise ValueError(f"task {t.name!r} needs unknown tasks {missing}")
    done: set[str] = set()
    pending = list(tasks)
    while pending:
        ready = [t for t in pending if set(t.after) <= done]
        if not ready:
            raise ValueError(f"the tasks {[t.name for t in pending]} wait for each other (a cycle)")
        done |= {t.name for t in ready}
        pending = [t for t in pending if t.name not in done]


def _ready(pending: list[Task], done: set[str]) -> list[Task]:
    return [t for t in pending if set(t.after) <= done]


class SequentialExecutor(Executor):
    """Every task in this process, in submission order (a dependency listed later waits)."""

    def _run(self, tasks: list[Task]) -> None:
        done: set[str] = set()
        pending = list(tasks)
        while pending:
            task = _ready(pending, done)[0]
            pending.remove(task)
            self._finish(task.name, task.fn())
            done.add(task.name)


def _die_with_parent(parent_pid: int) -> None:
    """Make this child die when its parent does, even by ``kill -9`` (which the parent cannot
    forward): on Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread also checks every second that the parent is still this process's
    parent (an orphan is re-parented to init or a subreaper) and exits otherwise."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no libc: the thread below still watches
            pass
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="gbench-parent-watch", daemon=True).start()


def _child(payload: bytes, conn: Any, threads: int, gpu: str | None, parent_pid: int | None = None) -> None:
    """A child process: run one task (cloudpickled), send back ``("ok", result)`` or ``("error", text)``.

    It ignores Ctrl-C (the parent handles it and stops its children, so no worker prints a
    traceback) and dies with its parent (:func:`_die_with_parent`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    try:
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before this process first touches CUDA
        torch.set_num_threads(threads)
        fn = cloudpickle.loads(payload)
        result = fn()
        conn.send(("ok", cloudpickle.dumps(result)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _start_ignoring_sigint(proc: Any) -> None:
    """``proc.start()`` with SIGINT ignored while the child is created: a spawned child inherits an
    ignored SIGINT through exec, so a Ctrl-C that comes while it is still importing (before
    :func:`_child` runs) prints no traceback either."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        proc.start()
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc.start()
    finally:
        signal.signal(signal.SIGINT, old)


def _stop(running: Mapping[Any, tuple[Any, Any, Any]], timeout: float = 5.0) -> None:
    """Terminate the children still running (SIGTERM, then SIGKILL after ``timeout``) and reap them."""
    for _, proc, _ in running.values():
        if proc.is_alive():
            proc.terminate()
    for _, proc, _ in running.values():
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()


@dataclass
class LocalExecutor(Executor):
    """Up to ``jobs`` tasks at once, each in a fresh (spawned) child process.

    The task travels by cloudpickle, so it may be any callable, closures included (what it refers
    to must be picklable or importable). Not forked: a child forked after torch ran OpenMP work in
    this process can hang in it. With ``gpus`` (default: the CUDA devices visible) a task that
    wants a GPU gets one to itself and ``jobs`` defaults to their count; on the CPU ``jobs``
    defaults to 1 and each child keeps this process's torch thread count (same numbers as a
    sequential run; on 2 cores two jobs mostly share them).
    """

    jobs: int | None = None
    gpus: Sequence[str] | None = None

    def _run(self, tasks: list[Task]) -> None:
        ctx = mp.get_context("spawn")
        gpus = list(self.gpus) if self.gpus is not None else _visible_gpus()
        jobs = self.jobs or max(1, len(gpus))
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        threads = torch.get_num_threads()
        running: dict[Any, tuple[Task, Any, str | None]] = {}  # connection -> (task, process, gpu)
        try:
            self._loop(ctx, tasks, gpus, jobs, threads, running)
        finally:  # Ctrl-C or an error in this process: no child outlives it
            _stop(running)

    def _loop(self, ctx: Any, tasks: list[Task], gpus: list[str], jobs: int, threads: int,
              running: dict[Any, tuple[Task, Any, str | None]]) -> None:
        free_gpus = list(gpus)
        done: set[str] = set()
        pending = list(tasks)
        error: str | None = None
        while pending or running:
            while error is None and len(running) < jobs:
                ready = [t for t in _ready(pending, done) if not (t.gpu and gpus and not free_gpus)]
                if not ready:
                    break
                task = ready[0]
                pending.remove(task)
                gpu = free_gpus.pop(0) if task.gpu and free_gpus else None
                parent, child = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(cloudpickle.dumps(task.fn), child, threads, gpu, os.getpid()),
                                   name=f"gbench-{task.name}")
                _start_ignoring_sigint(proc)
                child.close()
                running[parent] = (task, proc, gpu)
            if not running:
                break
            for conn in wait_any(list(running)):
                task, proc, gpu = running.pop(conn)
                try:
                    status, payload = conn.recv()
                except EOFError:
                    status, payload = "error", f"the process died (exit code {proc.exitcode})"
                proc.join()
                if gpu is not None:
                    free_gpus.append(gpu)
                if status == "ok":
                    self._finish(task.name, cloudpickle.loads(payload))
                    done.add(task.name)
                elif error is None:
                    error = f"task {task.name!r} failed: {payload}"
            if error is not None and not running:
                raise TaskFailed(error)
        if error is not None:
            raise TaskFailed(error)


def _visible_gpus() -> list[str]:
    """The CUDA devices a child may take (none without CUDA)."""
    if not torch.cuda.is_available():
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def _ray_call(fn: Callable[[], Any], threads: int) -> Any:
    torch.set_num_threads(threads)
    return fn()


@dataclass
class RayExecutor(Executor):
    """Each task a Ray task (``num_gpus=1`` for a GPU task when the cluster has GPUs, else
    ``num_cpus=1``), submitted when the tasks it needs are done.

    ``address``: an existing cluster (``"auto"`` or ``"ray://host:10001"``); None starts a local
    instance with ``num_cpus`` CPUs (default: all) and stops it at the end.
    """

    address: str | None = None
    num_cpus: int | None = None

    def _run(self, tasks: list[Task]) -> None:
        try:
            import ray  # lazy: optional dependency (gbench[ray])
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install 'gbench[ray]'") from None
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        try:
            have_gpus = ray.cluster_resources().get("GPU", 0) > 0
            call = ray.remote(_ray_call)
            threads = torch.get_num_threads()
            running: dict[Any, Task] = {}
            done: set[str] = set()
            pending = list(tasks)
            while pending or running:
                for task in _ready(pending, done):
                    pending.remove(task)
                    opts = {"num_gpus": 1, "num_cpus": 1} if task.gpu and have_gpus else {"num_cpus": 1}
                    running[call.options(name=task.name, max_retries=0, **opts).remote(task.fn, threads)] = task
                if not running:
                    break
                ready, _ = ray.wait(list(running), num_returns=1)
                task = running.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except Exception as exc:  # noqa: BLE001 - a Ray task error wraps the original
                    if running:
                        ray.wait(list(running), num_returns=len(running))
                    raise TaskFailed(f"task {task.name!r} failed: {exc}") from exc
                self._finish(task.name, result)
                done.add(task.name)
        finally:
            if started:
                ray.shutdown()


def make_executor(kind: str = "sequential", *, jobs: int | None = None, address: str | None = None,
                  on_done: Callable[[str, Any], None] | None = None, options: Mapping[str, Any] | None = None
                  ) -> Executor:
    """An executor by name (``sequential``, ``local``, ``ray``).

    Raises:
        ValueError: an unknown name, or ``jobs`` below 1.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if kind == "sequential":
        return SequentialExecutor(on_done=on_done)
    if kind == "local":
        return LocalExecutor(on_done=on_done, jobs=jobs, **dict(options or {}))
    if kind == "ray":
        return RayExecutor(on_done=on_done, address=address, num_cpus=jobs, **dict(options or {}))
    raise ValueError(f"unknown executor {kind!r}: use one of {', '.join(EXECUTORS)}")
