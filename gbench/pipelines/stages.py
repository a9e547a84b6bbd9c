"""Stage cache for long pipelines (``gbench reproduce``): skip what is done, redo what changed.

A :class:`~gbench.core.hashing.Stage` is a named step whose key hashes its name, config and
input fingerprints (see :mod:`gbench.core.hashing`).

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

import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbench import __version__
from gbench.core.fileio import write_text
from gbench.core.hashing import MARKER, Stage, canonical_json, file_sha256, fingerprint

__all__ = ["Stage", "StageCache", "StageResult", "canonical_json", "fingerprint", "file_sha256", "MARKER"]


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
