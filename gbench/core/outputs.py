"""Output folders: what gbench may write, and what ``--overwrite`` may delete.

The rules every command that writes a run folder follows (through :func:`claim_output_folder`,
called by the command line before any work):

* **Never into an input.** An output folder that is, contains or lies inside one of the
  command's inputs (data folder, ``--real``, ``--fake``, ``--synthetic``, records, checkpoints,
  masks, ...) is refused before anything is touched; the message names both paths. Paths are
  compared after resolving symlinks.
* **One writer per folder.** The command holds the folder's lock (``.gbench.lock``,
  :func:`gbench.core.fileio.folder_lock`) from the check to its end; a second gbench process on
  the same folder is refused at once, ``--overwrite`` included, before anything is deleted.
* **A manifest of what gbench wrote.** ``.gbench-manifest.json`` in the folder lists the files
  and sub-folders gbench created there. When a run starts it records the entries it found that
  gbench did not write (``open.foreign``); when it ends (normally, on an error or on Ctrl-C)
  every entry present then and not foreign is listed as gbench's. A run killed with ``kill -9``
  leaves its ``open`` record behind, and the next run settles it the same way.
* **``--overwrite`` deletes only what the manifest lists.** Anything else in the folder (a file
  the user put there, a folder gbench did not create) refuses the overwrite, named, and nothing
  is deleted. A folder without a manifest (not gbench output, or written by a gbench older than
  the manifest) is never emptied: the message says to check and delete it by hand.

The folder itself, its lock file and its manifest are never deleted.
"""
from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench.core.errors import DataError
from gbench.core.fileio import acquire_folder_lock, is_temp_name, release_folder_lock, write_json

__all__ = ["MANIFEST_NAME", "LOCK_NAME", "OutputClaim", "claim_output_folder", "check_not_input", "input_path",
           "read_manifest", "folder_is_empty", "listing"]

#: The manifest of a gbench output folder.
MANIFEST_NAME = ".gbench-manifest.json"
#: The lock file of a gbench output folder (:func:`gbench.core.fileio.folder_lock`).
LOCK_NAME = ".gbench.lock"
_FORMAT = "gbench-output-manifest"
_VERSION = 1


# ------------------------------------------------------------------------------------------- inputs

def input_path(value: Any) -> Path | None:
    """The path on disk an input names, or None for a name that is not a path (``synthetic-he``).

    ``"multifocus:PATH"`` / ``"folder:PATH"`` name PATH; a string counts as a path when it exists.
    """
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        return Path(value)
    text = str(value)
    if not text:
        return None
    if os.path.lexists(text):
        return Path(text)
    head, sep, tail = text.partition(":")
    if sep and tail and head.replace("-", "").replace("_", "").isalnum() and os.path.lexists(tail):
        return Path(tail)
    return None


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def check_not_input(out: str | Path, inputs: Iterable[tuple[str, Any]], option: str = "--out") -> None:
    """Refuse an output folder that is, contains or lies inside an input (symlinks resolved).

    Args:
        out: the output folder (need not exist).
        inputs: ``(label, value)`` pairs: ``("--real", Path("exp/real"))``; values that are not
            paths on disk (dataset names, None) are skipped.
        option: the output option's name in the message.

    Raises:
        DataError: one line naming both paths; nothing is touched.
    """
    o = _resolved(Path(out))
    for label, value in inputs:
        p = input_path(value)
        if p is None:
            continue
        r = _resolved(p)
        if r == o:
            how = "is"
        elif o in r.parents:
            how = "contains"
        elif r in o.parents:
            how = "lies inside"
        else:
            continue
        raise DataError(Path(out), f"{option} {how} the input {label} {p}: an output folder must lie outside every "
                                   f"input (nothing was written or deleted); choose another {option}")


# ----------------------------------------------------------------------------------------- listings

def _gbench_named(rel: str) -> bool:
    """Files gbench names itself (lock files, manifests, temp files of atomic writes)."""
    name = rel.rsplit("/", 1)[-1]
    return name in (LOCK_NAME, MANIFEST_NAME) or is_temp_name(name)


def listing(folder: str | Path) -> tuple[set[str], set[str]]:
    """``(files, dirs)`` below ``folder`` as relative POSIX paths (symlinks count as files, never
    followed), without the folder's own lock file and manifest."""
    folder = Path(folder)
    files: set[str] = set()
    dirs: set[str] = set()
    if not folder.is_dir():
        return files, dirs
    for root, dirnames, filenames in os.walk(folder, followlinks=False):
        rel_root = Path(root).relative_to(folder).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        keep = []
        for d in dirnames:
            if os.path.islink(os.path.join(root, d)):
                files.add(prefix + d)
            else:
                dirs.add(prefix + d)
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            files.add(prefix + f)
    files.discard(LOCK_NAME)
    files.discard(MANIFEST_NAME)
    return files, dirs


def folder_is_empty(folder: str | Path) -> bool:
    """True when ``folder`` is absent or holds nothing but gbench's lock file, its manifest and
    orphan temp files."""
    files, dirs = listing(folder)
    return not dirs and all(is_temp_name(f.rsplit("/", 1)[-1]) for f in files)


# ----------------------------------------------------------------------------------------- manifest

def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of ``folder`` (None when it has none).

    Raises:
        DataError: the manifest exists but is not one gbench wrote (one line naming it).
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"unreadable gbench manifest ({exc}); nothing was deleted: check the folder and "
                              "delete what you no longer need by hand") from None
    if (not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("files"), list)
            or not isinstance(doc.get("dirs"), list)):
        raise DataError(path, "not a gbench output manifest; nothing was deleted: check the folder and delete what "
                              "you no longer need by hand")
    return doc


def _write_manifest(folder: Path, files: Iterable[str], dirs: Iterable[str], open_: dict[str, Any] | None) -> None:
    write_json(folder / MANIFEST_NAME, {"format": _FORMAT, "version": _VERSION, "files": sorted(files),
                                        "dirs": sorted(dirs), "open": open_})


def _settled(folder: Path, doc: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The (files, dirs) gbench wrote, settling a run that never closed the manifest (killed):
    everything present now that was not foreign when it started is gbench's."""
    files, dirs = set(doc["files"]), set(doc["dirs"])
    opened = doc.get("open")
    if isinstance(opened, dict):
        now_files, now_dirs = listing(folder)
        files |= now_files - set(opened.get("foreign_files", []))
        dirs |= now_dirs - set(opened.get("foreign_dirs", []))
    return files, dirs


def _names(paths: Iterable[str], limit: int = 4) -> str:
    paths = sorted(paths)
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# ------------------------------------------------------------------------------------------- claims

@dataclass
class OutputClaim:
    """A run folder this process writes: its lock is held and its manifest open until :meth:`release`."""

    folder: Path
    foreign_files: set[str] = field(default_factory=set)
    foreign_dirs: set[str] = field(default_factory=set)
    released: bool = False
    created: bool = False  # the claim made the folder: removed again if the run wrote nothing
    had_manifest: bool = True  # else a run that wrote nothing leaves none behind
    had_lock: bool = True
    start: tuple[set[str], set[str]] = field(default_factory=lambda: (set(), set()))  # the listing at the claim

    def release(self) -> None:
        """Record what this run wrote (every entry present now that was not foreign at the start)
        in the manifest and free the lock. Idempotent."""
        if self.released:
            return
        self.released = True
        untouched = False
        try:
            if self.folder.is_dir():
                now_files, now_dirs = listing(self.folder)
                untouched = (now_files, now_dirs) == self.start
                if not (untouched and not self.had_manifest):
                    _write_manifest(self.folder, now_files - self.foreign_files, now_dirs - self.foreign_dirs, None)
        finally:
            release_folder_lock(self.folder, name=LOCK_NAME)
        if untouched:  # a command refused after the claim leaves the folder as it found it
            if not self.had_manifest:
                (self.folder / MANIFEST_NAME).unlink(missing_ok=True)
            if not self.had_lock:
                (self.folder / LOCK_NAME).unlink(missing_ok=True)
            if self.created:
                try:
                    self.folder.rmdir()
                except OSError:
                    pass

    def __enter__(self) -> OutputClaim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _overwrite(folder: Path, files: set[str], dirs: set[str], option: str) -> None:
    """Delete the gbench-written entries of ``folder``; refuse (deleting nothing) if anything else is there."""
    now_files, now_dirs = listing(folder)
    unknown_files = {f for f in now_files - files if not _gbench_named(f)}
    unknown_dirs = now_dirs - dirs
    # a folder gbench did not create is named once, not with each file inside it
    tops = {d for d in unknown_dirs if not any(d.startswith(u + "/") for u in unknown_dirs)}
    unknown = tops | {f for f in unknown_files if not any(f.startswith(d + "/") for d in tops)}
    if unknown:
        raise DataError(folder, f"--overwrite: this folder holds what gbench did not write: "
                                f"{_names(x + '/' if x in tops else x for x in unknown)}; nothing was deleted. Move "
                                f"them away (or delete them yourself), or choose another {option}")
    for f in sorted(now_files):
        try:
            os.unlink(folder / f)
        except FileNotFoundError:
            pass
    for d in sorted(now_dirs, key=lambda x: x.count("/"), reverse=True):
        try:
            os.rmdir(folder / d)
        except FileNotFoundError:
            pass


def claim_output_folder(out: str | Path, *, resume: bool = False, overwrite: bool = False, resumable: bool = True,
                        inputs: Iterable[tuple[str, Any]] = (), option: str = "--out") -> OutputClaim:
    """Check and take a run folder before any work: the rules of the module docstring.

    Args:
        out: the run folder (created when missing).
        resume: continue what the folder holds (resumable commands only).
        overwrite: delete what gbench wrote there first (only that; see the module docstring).
        resumable: whether the command has ``--resume`` (for the message).
        inputs: ``(label, path)`` of every input, checked by :func:`check_not_input`.
        option: the output option's name in messages.

    Returns:
        The claim (lock held, manifest open); :meth:`OutputClaim.release` ends it.

    Raises:
        DataError: an input overlaps ``out``; the folder holds results and neither ``resume``
            nor ``overwrite`` is given; ``--overwrite`` on a folder without a manifest or holding
            entries gbench did not write; another process holds the folder
            (:class:`gbench.core.fileio.FolderBusy`). Nothing is deleted in any of these cases.
    """
    out = Path(out)
    check_not_input(out, inputs, option)
    if resume and overwrite:
        raise DataError(out, "give either --resume or --overwrite, not both")
    empty = folder_is_empty(out)
    if not empty and not (resume and resumable) and not overwrite:
        how = "--resume to continue it or --overwrite to replace it" if resumable else "--overwrite to replace it"
        raise DataError(out, f"{option} folder already holds results; use {how} (or another {option})")
    if not empty and overwrite and not (out / MANIFEST_NAME).is_file():
        raise DataError(out, f"--overwrite: gbench has no record of writing this folder (no {MANIFEST_NAME}: not "
                             "gbench output, or written by a gbench older than the manifest), so nothing was deleted; "
                             f"check what it holds and delete it by hand (rm -r {out}), or choose another {option}")
    created = not out.exists()
    had = {name: (out / name).exists() for name in (MANIFEST_NAME, LOCK_NAME)}
    acquire_folder_lock(out, name=LOCK_NAME, share=True)  # FolderBusy before anything is deleted
    try:
        doc = read_manifest(out)
        files, dirs = _settled(out, doc) if doc is not None else (set(), set())
        if overwrite and not empty:
            _overwrite(out, files, dirs, option)
            files, dirs = set(), set()
        now_files, now_dirs = listing(out)
        claim = OutputClaim(out, now_files - files, now_dirs - dirs, created=created, had_manifest=had[MANIFEST_NAME],
                            had_lock=had[LOCK_NAME], start=(now_files, now_dirs))
        opened = {"pid": os.getpid(), "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                  "foreign_files": sorted(claim.foreign_files), "foreign_dirs": sorted(claim.foreign_dirs)}
        _write_manifest(out, files & now_files, dirs & now_dirs, opened)
    except BaseException:
        release_folder_lock(out, name=LOCK_NAME)
        raise
    return claim
