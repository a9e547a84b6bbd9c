"""Options and consoles shared by every command module."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable
from typing import Annotated, Any, Optional

import typer

from gbench.cli.tables import FittingConsole

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.

# Tables never shrink a column below its header (80 columns included): gbench.cli.tables.fit_table.
console = FittingConsole()
err_console = FittingConsole(stderr=True)


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

ProfileOpt = Annotated[str, typer.Option("--profile", metavar="NAME|FILE", help=(
    "Run profile: smoke, demo or paper (built-in; `gbench profiles` lists them), or a FILE.toml that "
    "extends one (extends = \"smoke\", then the fields to change)."))]
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


# ------------------------------------------------------------------------- one spelling per concept
# An old spelling stays for one release as a hidden option (or command) that prints one line on
# stderr and then works as before; the command merges it into the new one (merge_list / merge_one).


def warn_deprecated(old: str, use: str) -> None:
    """One line on stderr: ``warning: --archs is deprecated; use --arch ...``."""
    err_console.print(f"warning: {old} is deprecated; use {use}", highlight=False, soft_wrap=True, markup=False)


def deprecated(old: str, use: str, **extra: Any) -> Any:
    """A hidden option spelled ``old`` that warns once (:func:`warn_deprecated`) when it is given.

    Example::

        archs_old: Annotated[Optional[str], deprecated("--archs", "--arch (repeatable) or --arch a,b")] = None
    """

    def warn(value: Any) -> Any:
        if value is not None and value != [] and value != ():
            warn_deprecated(old, use)
        return value

    return typer.Option(old, hidden=True, callback=warn, help=f"Deprecated: use {use}.", **extra)


def split_list(values: Iterable[Any] | str | None) -> list[str]:
    """Repeated and comma-separated values as one list: ``["a,b", "c"]`` -> ``["a", "b", "c"]``."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [x.strip() for v in items for x in str(v).split(",") if x.strip()]


def merge_list(new: Iterable[Any] | str | None, old: Iterable[Any] | str | None) -> list[str] | None:
    """The new repeatable option and its deprecated alias as one list (None when neither was given)."""
    if not new and not old:
        return None
    return split_list(new) + split_list(old)


def merge_one(ctx: typer.Context, new: str, old: str) -> Any:
    """The value of parameter ``new``, or of its deprecated alias ``old`` when that was given.

    Both given with different values: one line naming both (exit 2)."""
    value, alias = ctx.params.get(new), ctx.params.get(old)
    if alias is None:
        return value
    source = getattr(ctx.get_parameter_source(new), "name", "DEFAULT")
    if source not in ("DEFAULT", "DEFAULT_MAP") and value != alias:
        flag = lambda name: next((o for p in ctx.command.params if p.name == name for o in p.opts), name)  # noqa: E731
        raise ValueError(f"{flag(old)} (deprecated) and {flag(new)} disagree ({alias!r} vs {value!r}): give "
                         f"{flag(new)} only")
    return alias


def deprecated_command(app: typer.Typer, old: str, new: str, fn: Any) -> None:
    """Register ``fn`` again as the hidden command ``old``, which prints one deprecation line and runs it."""
    import functools

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        warn_deprecated(f"gbench {old}", f"gbench {new}")
        return fn(*args, **kwargs)

    app.command(old, hidden=True, help=f"Deprecated: use `gbench {new}`.")(run)


# ------------------------------------------------------------------------------------------ --device

DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="Where the models run: cpu, cuda, cuda:N or mps (default: CUDA when available).")]

#: CUDA_VISIBLE_DEVICES as it was before :func:`pin_device` changed it (restored when the command ends).
_ENV_BEFORE: list[tuple[str, Optional[str]]] = []


def pin_device(device: Optional[str], option: str = "--device") -> Optional[str]:
    """``--device`` of a command whose pipeline picks the device itself (CUDA when available):
    ``cpu`` hides CUDA from this process and its workers, ``cuda:N`` shows them only GPU N (which
    they then see as ``cuda``), through ``CUDA_VISIBLE_DEVICES``, set before CUDA starts. Checked
    first (:func:`gbench.core.options.check_device`: one line, exit 2). Returns the device to pass
    on to code that takes one (``cuda`` for ``cuda:N``); None leaves the choice to the pipeline."""
    import os
    import sys

    from gbench.core.options import check_device

    if device is None:
        return None
    text = device.strip().lower()
    torch = sys.modules.get("torch")
    started = torch is not None and torch.cuda.is_initialized()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text == "cpu":
        check_device(option, text)
        if not started:
            _ENV_BEFORE.append(("CUDA_VISIBLE_DEVICES", visible))
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return "cpu"
    if text.startswith("cuda:") and text[5:].isdigit() and not started:
        n = int(text[5:])
        ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else None
        if ids is not None and n >= len(ids):
            raise ValueError(f"{option} {device!r}: {len(ids)} CUDA device(s) visible (CUDA_VISIBLE_DEVICES={visible})")
        _ENV_BEFORE.append(("CUDA_VISIBLE_DEVICES", visible))
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[n] if ids is not None else str(n)  # before CUDA starts
        try:
            check_device(option, "cuda")
        except ValueError:
            raise ValueError(f"{option} {device!r}: no CUDA device {n} on this machine") from None
        return "cuda"
    check_device(option, text)
    return text


def restore_device_env() -> None:
    """Undo :func:`pin_device` (the CLI root calls this when a command ends)."""
    import os

    while _ENV_BEFORE:
        name, value = _ENV_BEFORE.pop()
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# -------------------------------------------------------------------------------------------- --json

JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Write a machine-readable summary (JSON) to stdout; tables, notes and progress go to stderr.")]


def json_mode(enabled: bool) -> None:
    """``--json``: everything the command prints through :data:`console` goes to stderr from now on
    (until the command ends), so stdout holds only the JSON of :func:`emit_json`."""
    import sys

    import rich

    if enabled:
        console.file = sys.stderr
        rich.get_console().file = sys.stderr  # progress bars made without a console use rich's global one
        _JSON.append(True)


_JSON: list[bool] = []


def end_json_mode() -> None:
    """Back to stdout (the CLI root calls this when a command ends)."""
    if _JSON:
        import rich

        console.file = None  # type: ignore[assignment]
        rich.get_console().file = None  # type: ignore[assignment]
        _JSON.clear()


def plain_json(value: Any) -> Any:
    """``value`` as JSON types: NaN and infinities as null, numpy scalars as numbers, paths as
    strings, DataFrames as lists of row objects."""
    import math

    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame
        return [plain_json(r) for r in value.to_dict("records")]
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:  # numpy / torch arrays
        return plain_json(value.tolist())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy / torch scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def emit_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` (:func:`plain_json`) as one JSON document on stdout."""
    import json
    import sys

    sys.stdout.write(json.dumps(plain_json(payload), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def distribution_metric_hint(metric: str) -> str | None:
    """``FID is a distribution metric: add --extractor NAME ...`` for a distribution metric's
    name (fid, kid, precision, recall, density, coverage), else None."""
    from gbench.core.metric_specs import metric_label, metric_names

    if metric.strip().lower() not in metric_names("distribution"):
        return None
    return (f"{metric_label(metric.strip().lower())} is a distribution metric: add --extractor NAME (inception, "
            "timm:NAME or random-conv)")


def require_data(data: Optional[str]) -> str:
    """``--data``, which every command that trains or scores on real data needs (only ``gbench demo``
    picks the built-in set itself)."""
    if not data:
        raise ValueError("--data is required: the real dataset (a folder or a name from `gbench data list`); "
                         "use --data synthetic-he for the built-in procedural tiles")
    return data


def write_run_json(out_dir: Path, record: dict[str, Any]) -> None:
    """``OUT/run.json``: the resolved options and profile, with provenance (rank 0 only, atomically)."""
    import os

    if os.environ.get("RANK", "0") != "0":
        return
    from gbench.core.fileio import write_json
    from gbench.core.provenance import provenance

    write_json(Path(out_dir) / "run.json", {**record, "provenance": provenance()})
