"""Atomic file writes: write to a temporary file beside the target, then rename.

Temporary files are named ``.<target name>.<pid>.<random>.tmp<suffix>``: a run killed half-way
leaves one behind, and :func:`clean_orphan_temps` (called by the next run on the same folder)
removes those whose writing process is gone. Results are created with the mode a plain
``open(..., "w")`` would give (``0666 & ~umask``), not ``mkstemp``'s 0600.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


from gbench.core.errors import DataError

__all__ = ["atomic_path", "write_bytes", "write_text", "write_json", "json_safe", "save_torch",
           "clean_orphan_temps", "is_temp_name", "folder_lock", "acquire_folder_lock", "release_folder_lock",
           "holds_folder_lock", "FolderBusy"]

_UMASK_LOCK = threading.Lock()
#: ``.<name>.<pid>.<mkstemp random>.tmp<suffix>`` (the pid tells a live writer from a dead one).
_TEMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[A-Za-z0-9_]{8}\.tmp(\.[^.]*)?$")
#: The same without a pid (files written by gbench before the pid was added).
_LEGACY_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]*)?$")


def _umask() -> int:
    try:  # Linux: read it without changing it (other threads may be creating files)
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def is_temp_name(name: str) -> bool:
    """True when ``name`` is a temporary file of :func:`atomic_path` (with or without a pid)."""
    return bool(_TEMP_RE.match(name) or _LEGACY_TEMP_RE.match(name))


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` is left untouched, so a
    reader never sees a half-written result. The file gets mode ``0666 & ~umask``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp" + target.suffix,
                               dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf, also numpy's) replaced by ``None``.

    JSON has no NaN: ``null`` is how gbench records an undefined number.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    try:  # numpy scalars without importing numpy here
        import numpy as np  # lazy: fileio stays numpy-free unless a numpy value comes

        if isinstance(obj, np.floating):
            return float(obj) if np.isfinite(obj) else None
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.ndarray):
            return json_safe(obj.tolist())
    except ImportError:  # pragma: no cover
        pass
    return obj


def write_json(target: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, valid JSON (non-finite numbers become ``null``)."""
    return write_text(target, json.dumps(json_safe(obj), indent=2, sort_keys=False, default=str,
                                         allow_nan=False) + "\n")


def save_torch(target: str | Path, obj: Any) -> Path:
    """``torch.save(obj)`` atomically, so that identical objects give identical bytes.

    ``torch.save`` to a file path embeds the file's name in the archive (a temp name differs on
    every save); saving to a buffer first uses the fixed name ``archive``.
    """
    import torch  # lazy: records, stats and reports import fileio and stay torch-free (tested)

    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(target, buf.getvalue())


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def clean_orphan_temps(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left in ``folder`` when a run was killed.

    A temp file is an orphan when the process that wrote it (the pid in its name) is gone; one
    without a pid (an older gbench) is always an orphan. Temp files of live writers (another run
    in progress) are kept. Returns the removed paths; a missing folder is not an error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    paths = folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*")
    for p in sorted(paths):
        if not p.is_file() or p.is_symlink():
            continue
        m = _TEMP_RE.match(p.name)
        if m is not None:
            pid = int(m.group("pid"))
            if pid == os.getpid() or _pid_alive(pid):
                continue
        elif not _LEGACY_TEMP_RE.match(p.name):
            continue
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


class FolderBusy(DataError):
    """Another process holds the lock of a run folder (one-line error, exit 2)."""


#: Locks this process holds: lock file (resolved) -> [fd, depth, shared]. ``flock`` locks belong to
#: an open file description, so a second ``open`` + ``flock`` of the same file in this process would
#: refuse itself. A lock taken with ``share=True`` (the command line's claim of its run folder, held
#: for the whole command) lets the pipeline that command calls take it again; a lock taken without
#: refuses every other taker, in this process too (a test can play "another writer" in-process).
_HELD: dict[str, list[Any]] = {}
_HELD_LOCK = threading.Lock()


def _busy(folder: Path, name: str) -> FolderBusy:
    return FolderBusy(folder, f"another gbench run is writing this folder (lock {name}); wait for it to finish")


def acquire_folder_lock(folder: str | Path, *, wait: bool = False, name: str = ".gbench.lock",
                        share: bool = False) -> Path:
    """Take the exclusive lock of ``folder`` (see :func:`folder_lock`) until :func:`release_folder_lock`.

    Args:
        share: let later :func:`folder_lock` calls of this process on the same folder pass (each
            needs its own release) instead of refusing them.

    Raises:
        FolderBusy: another process holds it (``wait=False``), or this process holds it unshared.
    """
    import fcntl  # lazy: POSIX only

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    key = str(path.resolve())
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None:
            if not held[2]:
                raise _busy(folder, name)
            held[1] += 1
            return path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise _busy(folder, name) from None
        except BaseException:
            os.close(fd)
            raise
        _HELD[key] = [fd, 1, share]
    return path


def release_folder_lock(folder: str | Path, *, name: str = ".gbench.lock") -> None:
    """Undo one :func:`acquire_folder_lock` (the lock is freed when the last one is undone)."""
    import fcntl  # lazy: POSIX only

    key = str((Path(folder) / name).resolve())
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        try:
            fcntl.flock(held[0], fcntl.LOCK_UN)
        finally:
            os.close(held[0])


def holds_folder_lock(folder: str | Path, *, name: str = ".gbench.lock") -> bool:
    """True when this process holds the lock of ``folder``."""
    return str((Path(folder) / name).resolve()) in _HELD


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, wait: bool = False, name: str = ".gbench.lock") -> Iterator[Path]:
    """Hold an exclusive ``fcntl`` lock on ``folder/name`` for the duration of the block.

    With ``wait=False`` a second process raises :class:`FolderBusy` at once; with ``wait=True``
    it blocks until the first one finishes. The lock dies with its process (kill -9 included);
    the lock file itself stays (empty) and is reused. Within one process the lock nests (a
    block inside another on the same folder passes).
    """
    path = acquire_folder_lock(folder, wait=wait, name=name)
    try:
        yield path
    finally:
        release_folder_lock(folder, name=name)
