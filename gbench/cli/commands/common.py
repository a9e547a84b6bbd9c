"""Options and consoles shared by every command module."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

console = Console()
err_console = Console(stderr=True)


_ASCII = {"\u2191": "^", "\u2193": "v", "\u00b1": "+/-", "\u00d7": "x", "\u2014": "-", "\u2013": "-", "\u2026": "...",
          "\u2212": "-", "\u2248": "~", "\u2264": "<=", "\u2265": ">=", "\u2192": "->", "\u00b5": "u"}


def _ascii_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start:exc.end]
    return "".join(_ASCII.get(ch, "?") for ch in text), exc.end


def ascii_safe_output() -> None:
    """Let a terminal that cannot show UTF-8 (``LANG=C``, ``PYTHONIOENCODING=ascii``) still get the
    results: characters it cannot encode are written as ASCII (``↑`` as ``^``, ``±`` as ``+/-``,
    others as ``?``) instead of failing the command after its work. rich draws its tables with
    ASCII borders there by itself. Called by the CLI root before every command."""
    import codecs
    import sys

    try:
        codecs.lookup_error("gbench-ascii")
    except LookupError:
        codecs.register_error("gbench-ascii", _ascii_fallback)
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "\u2191\u00b1\u2501".encode(encoding)
            continue
        except (UnicodeError, LookupError):
            pass
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="gbench-ascii")
            except (ValueError, OSError):  # pragma: no cover - a stream that cannot change
                pass


def _seed_range(param: Any, value: Optional[int]) -> Optional[int]:
    """A seed option's value, refused in one line (exit 2) outside 0..2**32 - 1."""
    if value is not None and not 0 <= value <= 2**32 - 1:
        name = param.opts[0] if getattr(param, "opts", None) else getattr(param, "name", "--seed")
        raise ValueError(f"{name} must be a whole number between 0 and 2**32 - 1 (4294967295), got {value}")
    return value

ProfileOpt = Annotated[str, typer.Option("--profile", help="Run profile: smoke, demo or paper (built-in; `gbench profiles` "
                                                            "lists them), or a FILE.toml extending one: extends = "
                                                            "\"smoke\", then any section or field to change "
                                                            "(gbench.core.profiles.load_profile).")]
SeedOpt = Annotated[int, typer.Option("--seed", callback=lambda ctx, param, value: _seed_range(param, value),
                                      help="Random seed, 0 to 2**32 - 1 (recorded with every result).")]
SplitOpt = Annotated[str, typer.Option("--split", help="train, test or all.")]
DataSeedOpt = Annotated[int, typer.Option(
    "--data-seed", callback=lambda ctx, param, value: _seed_range(param, value),
    help="Seed (0 to 2**32 - 1) of the built-in data: which tiles, crops and masks exist (default 0). Never the "
                        "training seed, so runs with different --seed values are tested on the same images.")]

OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Start the output folder again: delete first what an earlier gbench run wrote there (the "
                        "files its .gbench-manifest.json lists), nothing else. A folder holding anything gbench did "
                        "not write, or without that manifest, is refused and nothing is deleted.")]

# How training runs on the device (gbench.core.runtime.Runtime); None: auto for the device.
AmpOpt = Annotated[Optional[str], typer.Option(
    "--amp", help="Mixed precision of training: bf16, fp16 or off [default: bf16 on CUDA, off on the CPU].")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", help="DataLoader worker processes building training batches (same batches whatever the number) "
                      "[default: 0 on the CPU; on CUDA min(8, CPUs per GPU - 1)].")]
ChannelsLastOpt = Annotated[Optional[bool], typer.Option(
    "--channels-last/--no-channels-last", help="NHWC memory format for training [default: on with CUDA].")]
DeterministicOpt = Annotated[Optional[bool], typer.Option(
    "--deterministic/--no-deterministic", help="Deterministic algorithms; off lets cudnn.benchmark pick the fastest "
                                               "kernels [default: on for the CPU, off on CUDA].")]


def with_runtime(prof: Any, amp: str | None, workers: int | None, channels_last: bool | None,
                 deterministic: bool | None) -> Any:
    """``prof`` with the runtime options given on the command line (a bad value: one line, exit 2)."""
    import dataclasses

    from gbench.core.runtime import Runtime

    base = prof.runtime  # a user profile's [runtime]; the command line wins field by field
    return dataclasses.replace(prof, runtime=Runtime(
        amp=base.amp if amp is None else amp, channels_last=base.channels_last if channels_last is None else channels_last,
        workers=base.workers if workers is None else workers,
        deterministic=base.deterministic if deterministic is None else deterministic))


def _config_specs(command: Any) -> list[Any]:
    """The :class:`gbench.core.config.OptionSpec` of every parameter of a click command but ``--config``."""
    from gbench.core.config import OptionSpec

    specs = []
    for p in command.params:
        if p.name in ("config", "help") or getattr(p, "expose_value", True) is False:
            continue
        longs = [o for o in p.opts if o.startswith("--")]
        key = longs[0][2:] if longs else str(p.name)
        ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)  # typer >= 0.2x
        tname = {bool: "boolean", int: "integer", float: "float"}.get(ann, "") if ann is not None else \
            getattr(getattr(p, "type", None), "name", "")  # click's parameter types
        kind = ("list" if getattr(p, "multiple", False) else
                "bool" if getattr(p, "is_flag", False) or tname == "boolean" else
                "int" if tname == "integer" else "float" if tname == "float" else "str")
        specs.append(OptionSpec(key, str(p.name), kind))  # type: ignore[arg-type]
    return specs


def _load_config(ctx: typer.Context, param: typer.CallbackParam, value: Optional[Path]) -> Optional[Path]:
    """``--config FILE``: the file's values become the command's defaults (the command line still wins)."""
    if value is None:
        return value
    from gbench.core.config import load_experiment

    cfg = load_experiment(value, _config_specs(ctx.command), str(ctx.info_name))
    ctx.default_map = {**(ctx.default_map or {}), **cfg.as_dict()}
    ctx.meta["gbench.config"] = cfg
    return value


ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", is_eager=True, callback=_load_config,
    help="Experiment file (TOML): the command's options by their long names, e.g. data = \"cpm15\", train = "
         "[\"R\", \"R+mine\"], seeds = [0, 1, 2], a [synthetic] table of NAME = DIR. Options given on the command "
         "line win over the file; an unknown key or a wrong type is refused naming the file and the key.")]


def resolved_options(ctx: typer.Context, prof: Any = None) -> dict[str, Any]:
    """What a command ran with, for its ``run.json``: every option's value (after ``--config`` and the
    command line), where each came from, the experiment file, and the resolved profile."""
    from gbench.core.config import ExperimentConfig

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return str(v) if isinstance(v, Path) else v

    names = {"COMMANDLINE": "command line", "DEFAULT_MAP": "config file", "ENVIRONMENT": "environment"}
    sources = {}
    for name in ctx.params:
        src = ctx.get_parameter_source(name)
        sources[name] = names.get(getattr(src, "name", ""), "default")
    cfg = ctx.meta.get("gbench.config")
    out: dict[str, Any] = {"command": ctx.info_name, "options": {k: plain(v) for k, v in ctx.params.items()},
                           "sources": sources,
                           "config_file": str(cfg.path) if isinstance(cfg, ExperimentConfig) else None}
    if prof is not None:
        out["profile"] = prof.to_dict()
    return out

# Where independent stages / cells run (gbench.pipelines.executor).
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help="sequential, local (independent stages / grid cells at once: one per GPU, --jobs on the CPU) "
                       "or ray (each a Ray task).")]
JobsOpt = Annotated[Optional[int], typer.Option(
    "--jobs", help="local: stages / cells at once on the CPU (default: one per visible GPU, else 1); ray: CPUs of "
                   "the local Ray instance.")]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", help="ray: an existing cluster ('auto' or ray://host:port); default: a local instance.")]


def check_executor(executor: str, jobs: int | None, ray_address: str | None) -> None:
    """Reject a bad ``--executor`` / ``--jobs`` / ``--ray-address`` combination (one line, exit 2)."""
    from gbench.core.options import check_positive
    from gbench.pipelines.executor import EXECUTORS

    check_positive("--jobs", jobs)
    if executor not in EXECUTORS:
        raise ValueError(f"--executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    if ray_address is not None and executor != "ray":
        raise ValueError("--ray-address needs --executor ray")
    if jobs is not None and executor == "sequential":
        raise ValueError("--jobs needs --executor local or ray")


def folder_is_empty(folder: Path) -> bool:
    """True when ``folder`` is absent or holds nothing but gbench's lock file, manifest and orphan temp files."""
    from gbench.core.outputs import folder_is_empty as empty

    return empty(folder)


def check_out_path(path: Path, option: str, *, folder: bool) -> None:
    """Refuse an output path that cannot be written: a file where a folder is needed (or the
    reverse), or a path below a file. One line naming the option and the path."""
    from gbench.core.errors import DataError

    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise DataError(path, f"{option}: {parent} is a file, not a folder")
    if folder and path.exists() and not path.is_dir():
        raise DataError(path, f"{option} must name a folder, but this is an existing file")
    if not folder and path.is_dir():
        raise DataError(path, f"{option} must name a file, but this is a folder")


#: Output folders this command has claimed (lock held, manifest open); the CLI root releases them
#: when the command ends, however it ends (:func:`release_out_folders`).
_CLAIMS: list = []


def check_out_folder(out: Path, *, resume: bool = False, overwrite: bool = False, resumable: bool = True,
                     option: str = "--out", inputs: Iterable[tuple[str, Any]] = ()) -> None:
    """The output-folder rules, checked before any work (:mod:`gbench.core.outputs`):

    * ``out`` must not be, contain or lie inside any of ``inputs`` (``(label, path)`` pairs such
      as ``("--real", real)``; dataset names that are not paths are skipped);
    * a folder that already holds something is refused unless ``--resume`` (continue it;
      resumable commands only) or ``--overwrite`` is given;
    * ``--overwrite`` deletes only what gbench's manifest of the folder (``.gbench-manifest.json``)
      lists as written by gbench; anything else there refuses it, named, and a folder without a
      manifest is never emptied;
    * the folder's lock is taken here, before anything is deleted, and held until the command
      ends (:func:`release_out_folders`, called by the CLI root): a second gbench process on the
      same folder is refused at once. The manifest then records what the command wrote.

    Under torchrun only rank 0 takes the folder (the other ranks only check).

    Raises:
        DataError: one line naming the folder (exit 2); nothing is changed.
    """
    import os

    from gbench.core.errors import DataError
    from gbench.core.outputs import check_not_input, claim_output_folder

    out = Path(out)
    check_out_path(out, option, folder=True)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 takes (and empties) the folder
        check_not_input(out, inputs, option)
        if not (overwrite or (resume and resumable) or folder_is_empty(out)):
            raise DataError(out, f"{option} folder already holds results")
        return
    for old in [c for c in _CLAIMS if c.folder == out]:  # a command function called twice in one process
        old.release()
        _CLAIMS.remove(old)
    _CLAIMS.append(claim_output_folder(out, resume=resume, overwrite=overwrite, resumable=resumable, inputs=inputs,
                                       option=option))


def release_out_folders() -> None:
    """End every claim of :func:`check_out_folder`: record what was written, free the locks."""
    while _CLAIMS:
        _CLAIMS.pop().release()
