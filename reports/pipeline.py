"""Stage cache for long pipelines (``gbench reproduce``): skip what is done, redo what changed.

A :class:`Stage` is a named step with a JSON-able config and input paths. Its *key* is the
sha256 of a canonical JSON document (sorted keys, no whitespace) holding the name, the config
and a fingerprint of every input:

* a file: its sha256;
* a folder written by a stage (it holds ``stage.json``): that stage's key;
* a folder with a ``manifest.json`` or ``manifest.csv``: the manifest's sha256 (the manifest
  is trusted to describe the folder, as gbench's synthetic sets do);
* any other folder: the sha256 of the sorted (relative path, file sha256) list of its files.

:class:`StageCache` gives every stage the folder ``ROOT/<name>/<key[:16]>/``. ``run(stage, fn)``
calls ``fn(folder)`` unless the folder holds a ``stage.json`` with the same full key (and the
outputs it lists still exist); the marker is written atomically only after ``fn`` returns, so
a stage killed mid-way (exception, Ctrl-C, power cut) is not done and runs again next time,
in the same folder (``fn`` may resume from its own checkpoints there). A changed config or
input gives a new key, hence a fresh folder: results of different configs never mix, and
going back to an earlier config finds its results again.

Generic: nothing here knows about GANs or torch.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Stage", "StageCache", "StageResult", "canonical_json", "fingerprint", "file_sha256", "MARKER"]

MARKER = "stage.json"
_CHUNK = 1 << 20


def _canonical(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"config keys must be strings, got {k!r}")
            out[k] = _canonical(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(_canonical(v) for v in obj)
    if isinstance(obj, Path):
        return obj.as_posix()
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"config values must be finite numbers, got {obj!r}")
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _canonical(obj.item())
    raise ValueError(f"config value {obj!r} of type {type(obj).__name__} is not JSON-able")


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, compact, tuples as lists, paths as POSIX strings).

    Raises:
        ValueError: a value is not JSON-able or is a non-finite float.
    """
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path: str | Path) -> str:
    """A content fingerprint of an input file or folder (see the module docstring).

    Raises:
        DataError: the path does not exist.
    """
    from gbench.errors import DataError

    p = Path(path)
    if p.is_file():
        return "file:" + file_sha256(p)
    if p.is_dir():
        marker = p / MARKER
        if marker.is_file():
            try:
                return "stage:" + str(json.loads(marker.read_text(encoding="utf-8"))["key"])
            except (json.JSONDecodeError, KeyError):
                raise DataError(marker, "not a stage marker (no key)") from None
        for name in ("manifest.json", "manifest.csv"):
            if (p / name).is_file():
                return "manifest:" + file_sha256(p / name)
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f.relative_to(p).as_posix().encode("utf-8") + b"\0" + file_sha256(f).encode("ascii") + b"\n")
        return "tree:" + h.hexdigest()
    raise DataError(p, "stage input does not exist")


@dataclass(frozen=True)
class Stage:
    """One pipeline step.

    Attributes:
        name: Stage name, used as a folder name (letters, digits, ``-``, ``_``, ``.``).
        config: JSON-able configuration (dicts, lists, numbers, strings, dataclasses, paths).
        inputs: Files or folders the stage reads; their contents enter the key.
    """

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name) or self.name.startswith("."):
            raise ValueError(f"stage name {self.name!r}: use letters, digits, '-', '_' or '.'")
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        canonical_json(self.config)  # fail early on a non-JSON-able config

    def document(self) -> dict[str, Any]:
        """What the key hashes: name, canonical config and input fingerprints."""
        return {"name": self.name, "config": _canonical(self.config),
                "inputs": [{"path": p.as_posix(), "fingerprint": fingerprint(p)} for p in self.inputs]}

    def key(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`document`."""
        return hashlib.sha256(canonical_json(self.document()).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StageResult:
    """Outcome of :meth:`StageCache.run`.

    Attributes:
        stage: The stage.
        key: Its key.
        path: Its folder.
        skipped: True when it was already done (``fn`` not called).
        result: What ``fn`` returned (JSON-able), read back from ``stage.json`` when skipped.
        seconds: Wall time of ``fn`` (of the original run when skipped).
    """

    stage: Stage
    key: str
    path: Path
    skipped: bool
    result: Any
    seconds: float


class StageCache:
    """Records done stages under ``root`` (one folder per stage and key)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, stage: Stage, key: str | None = None) -> Path:
        """The stage's folder, ``root/<name>/<key[:16]>``."""
        return self.root / stage.name / (key or stage.key())[:16]

    def _marker(self, stage: Stage, key: str) -> dict[str, Any] | None:
        marker = self.path(stage, key) / MARKER
        if not marker.is_file():
            return None
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            return None
        if data.get("key") != key:
            return None
        outputs = data.get("outputs") or []
        if any(not (self.path(stage, key) / o).exists() for o in outputs):
            return None
        return data

    def is_done(self, stage: Stage) -> bool:
        """Whether the stage ran to completion with this exact key (and its outputs exist)."""
        return self._marker(stage, stage.key()) is not None

    def run(self, stage: Stage, fn: Callable[[Path], Any]) -> StageResult:
        """Run ``fn(folder)`` unless the stage is done; mark it done when ``fn`` returns.

        ``fn`` may return a JSON-able value (stored in ``stage.json``); a mapping with an
        ``"outputs"`` list of paths relative to the folder makes :meth:`is_done` also check
        that those outputs still exist.

        Raises:
            Whatever ``fn`` raises (the stage then stays not done).
        """
        key = stage.key()
        folder = self.path(stage, key)
        done = self._marker(stage, key)
        if done is not None:
            return StageResult(stage, key, folder, True, done.get("result"), float(done.get("seconds", 0.0)))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).unlink(missing_ok=True)  # stale marker (outputs gone): not done until fn returns
        started = _dt.datetime.now(_dt.timezone.utc)
        t0 = time.perf_counter()
        result = fn(folder)
        seconds = time.perf_counter() - t0
        outputs: Sequence[str] = []
        if isinstance(result, Mapping) and "outputs" in result:
            outputs = [Path(o).as_posix() for o in result["outputs"]]
            missing = [o for o in outputs if not (folder / o).exists()]
            if missing:
                raise ValueError(f"stage {stage.name!r} reported outputs that do not exist: {', '.join(missing)}")
        from gbench import __version__
        from gbench.fileio import write_text

        doc = {"key": key, **stage.document(), "outputs": list(outputs),
               "result": json.loads(canonical_json(result)) if result is not None else None,
               "started": started.isoformat(timespec="seconds"), "seconds": round(seconds, 3),
               "gbench_version": __version__, "pid": os.getpid()}
        write_text(folder / MARKER, json.dumps(doc, indent=2) + "\n")
        return StageResult(stage, key, folder, False, doc["result"], seconds)

    def done_stages(self) -> list[dict[str, Any]]:
        """Markers of every done stage under ``root`` (name, key, seconds ...)."""
        out = []
        for marker in sorted(self.root.glob(f"*/*/{MARKER}")):
            try:
                out.append(json.loads(marker.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, OSError):
                continue
        return out
