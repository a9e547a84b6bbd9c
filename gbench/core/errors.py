"""Exceptions with one-line messages that name the offending file."""
from __future__ import annotations

from pathlib import Path

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad or missing input data. ``str(err)`` is one line: ``<path>: <problem>``."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(self.problem if path is None else f"{path}: {self.problem}")
