"""Experiment files: ``--config experiment.toml`` holds what a command line holds.

A file's top-level keys are the command's long options without the leading dashes, spelled as
on the command line (``data``, ``train``, ``arch``, ``seeds``, ``max-steps``, ``executor``,
``profile`` ...). Values take TOML types: a string, an integer, a float, a boolean; an array
for a repeatable option (``train = ["R", "R+mine"]``) and, for a comma-separated one, instead of
the commas (``seeds = [0, 1, 2]`` is ``--seeds 0,1,2``); a table for a repeatable ``NAME=VALUE``
option (``[synthetic]`` then ``mine = "runs/mine"`` is ``--synthetic mine=runs/mine``). Paths
are read as on the command line, relative to the working directory.

The merge is the command line over the file over the defaults (lm-eval's
``EvaluatorConfig.from_cli``): an option given on the command line wins, one the file sets
replaces the default. The CLI feeds the file's values to its parser as defaults
(``gbench.cli.commands.common.ConfigOpt``), so they go through the same checks as typed values.

Errors name the file and the key (:class:`gbench.core.errors.DataError`, one line): a key the
command does not take (with the nearest known one), a value of the wrong type, a file that is
not TOML. Nothing here imports torch or the rest of gbench: stdlib ``tomllib`` and dataclasses.

Example:
    .. code-block:: toml

        # experiment.toml, for `gbench segment --config experiment.toml`
        data = "data/cpm15"
        profile = "smoke"
        arch = ["unet", "segnet"]
        train = ["R", "R+mine", "mine"]
        seeds = [0, 1, 2]
        executor = "local"

        [synthetic]
        mine = "runs/mysynth"
"""
from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gbench.core.errors import DataError

__all__ = ["OptionSpec", "ExperimentConfig", "load_experiment", "read_toml", "unknown_key", "type_name"]

Kind = Literal["str", "int", "float", "bool", "list"]


@dataclass(frozen=True)
class OptionSpec:
    """One option a command takes from a file.

    Attributes:
        key: the file's key, the long option without dashes (``max-steps``).
        name: the command's parameter (``max_steps``).
        kind: ``str``, ``int``, ``float``, ``bool`` or ``list`` (a repeatable option: strings).
    """

    key: str
    name: str
    kind: Kind

    def __post_init__(self) -> None:
        if self.kind not in ("str", "int", "float", "bool", "list"):
            raise ValueError(f"option {self.key!r}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment file: the parameters it sets, by parameter name.

    Attributes:
        path: the file.
        command: the command it was read for (``segment``).
        values: (parameter name, value) pairs, values already in the command's types.
    """

    path: Path
    command: str
    values: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


def type_name(value: Any) -> str:
    """The TOML word for a Python value read from TOML (for error messages)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def unknown_key(key: str, known: Iterable[str], where: str) -> str:
    """``unknown key 'x' for <where> (did you mean 'y'?); known: ...`` (one line)."""
    known = sorted(known)
    hint = difflib.get_close_matches(key, known, n=1)
    return (f"unknown key {key!r} for {where}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; known: {', '.join(known)}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a missing file or bad TOML is a :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file" if not path.exists() else "is not a file")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(path, f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise DataError(path, "not valid TOML: not UTF-8 text") from None


def _scalar(value: Any) -> str:
    if isinstance(value, (list, dict)):
        raise TypeError
    return str(value).lower() if isinstance(value, bool) else str(value)


def _convert(path: Path, spec: OptionSpec, value: Any) -> Any:
    def bad(what: str) -> DataError:
        return DataError(path, f"key {spec.key!r}: expected {what}, got {type_name(value)} ({value!r})")

    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise bad("a boolean (true or false)")
        return value
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if spec.kind == "str":
        if isinstance(value, list):  # an array stands for the comma-separated form
            try:
                return ",".join(_scalar(v) for v in value)
            except TypeError:
                raise bad("a string or an array of scalars") from None
        if isinstance(value, dict) or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad("a string")
        return str(value)
    # list: a repeatable option
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):  # NAME = VALUE entries
        out = []
        for k, v in value.items():
            if not isinstance(v, str):
                raise DataError(path, f"key {spec.key}.{k}: expected a string, got {type_name(v)} ({v!r})")
            out.append(f"{k}={v}")
        return out
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad("a string or an array of strings")
    return list(value)


def load_experiment(path: str | Path, options: Sequence[OptionSpec], command: str,
                    data: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate an experiment file for ``command``.

    Args:
        path: the TOML file.
        options: what the command takes (:class:`OptionSpec` per option).
        command: the command's name, for messages (``segment``).
        data: the file's parsed contents (default: read ``path``).

    Returns:
        An :class:`ExperimentConfig` whose values are in the command's parameter types.

    Raises:
        DataError: ``<file>: key 'x': ...``: an unknown key (nearest known one suggested), a wrong
            type; a missing file or bad TOML.
    """
    path = Path(path)
    raw = read_toml(path) if data is None else dict(data)
    by_key = {o.key: o for o in options}
    values: list[tuple[str, Any]] = []
    for key, value in raw.items():
        spec = by_key.get(key)
        if spec is None:
            raise DataError(path, unknown_key(key, by_key, f"gbench {command}"))
        values.append((spec.name, _convert(path, spec, value)))
    return ExperimentConfig(path, command, tuple(values))
