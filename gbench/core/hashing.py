"""Content keys: canonical JSON, file and folder fingerprints, and :class:`Stage` (a named step's key).

A :class:`Stage` is a named step with a JSON-able config and input paths. Its *key* is the
sha256 of a canonical JSON document (sorted keys, no whitespace) holding the name, the config
and a fingerprint of every input:

* a file: its sha256;
* a folder written by a stage (it holds ``stage.json``): that stage's key;
* a folder with a ``manifest.json`` or ``manifest.csv``: the manifest's sha256 (the manifest
  is trusted to describe the folder, as gbench's synthetic sets do);
* any other folder: the sha256 of the sorted (relative path, file sha256) list of its files.

The stage cache (:mod:`gbench.pipelines.stages`) files results under these keys; training runs
(:mod:`generators.train`) key their checkpoints with them. Generic: nothing here knows about GANs
or torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench.core.errors import DataError

__all__ = ["Stage", "canonical_json", "fingerprint", "file_sha256", "MARKER"]

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
