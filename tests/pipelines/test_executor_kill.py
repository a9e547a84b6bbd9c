"""``--executor local`` workers never outlive their parent (issue 26).

Today three workers lived on after ``kill -9`` of the parent and wrote cells that ``--resume``
then treated as done. A parent process (a subprocess here) runs two sleeping tasks on a
:class:`gbench.pipelines.executor.LocalExecutor`; each task writes its pid. Then:

* ``kill -9`` of the parent: both workers are gone within seconds (``PR_SET_PDEATHSIG``, with the
  parent-pid watch as fallback);
* Ctrl-C (SIGINT to the whole process group, as a terminal sends it): the parent stops its
  workers and no worker prints a traceback.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PARENT = textwrap.dedent("""
    import os, sys, time
    from gbench.pipelines.executor import LocalExecutor, Task

    folder = sys.argv[1]

    def sleeper(i):
        def fn():
            with open(os.path.join(folder, f"{i}.pid.tmp"), "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(os.path.join(folder, f"{i}.pid.tmp"), os.path.join(folder, f"{i}.pid"))
            time.sleep(300)
        return fn

    try:
        LocalExecutor(jobs=2).run([Task(f"t{i}", sleeper(i), gpu=False) for i in range(2)])
    except KeyboardInterrupt:
        print("parent interrupted", file=sys.stderr)
        sys.exit(130)
""")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    files = [tmp_path / f"{i}.pid" for i in range(2)]
    while not all(f.exists() for f in files):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the workers did not start (exit {proc.returncode}): {err[-2000:]}")
        time.sleep(0.2)
    pids = [int(f.read_text()) for f in files]
    assert all(_alive(p) for p in pids)
    return proc, pids


def _wait_gone(pids: list[int], seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def test_kill_9_of_the_parent_stops_its_workers(tmp_path: Path) -> None:
    proc, pids = _start(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        left = _wait_gone(pids)
        assert not left, f"workers {left} outlived their parent"
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_ctrl_c_stops_the_workers_without_tracebacks(tmp_path: Path) -> None:
    proc, pids = _start(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        assert err.strip() == "parent interrupted"
        assert not _wait_gone(pids, 5.0)
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
