"""The ``gbench`` command line (typer). Thin: parse, build the config, call a runner function."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from gbench import __version__
from gbench.cli.commands.common import DataSeedOpt, DeviceOpt, ProfileOpt, SeedOpt, console, err_console

# Imports inside the command functions are deliberate: `gbench --help` and usage errors then
# answer in about 0.1 s instead of the 2 s it takes to import torch and the libraries above it.


class _Root(TyperGroup):
    """The root command, whoever runs it (the ``gbench`` script through :func:`main`, or
    ``typer.testing.CliRunner`` in the tests): user errors print one line and exit 2, never a
    traceback; usage errors (unknown option or command, missing or ill-typed value) print click's
    short usage message (with its "did you mean" hint) and exit 2; success returns."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:  # the caller handles exceptions and return values itself
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        from gbench.cli.commands.common import ascii_safe_output
        from gbench.core.errors import DataError

        ascii_safe_output()  # a non-UTF-8 terminal gets its results in ASCII, not an encoding error
        click_errors, click_aborts = _click_exception_types()
        try:
            rc = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            if rc == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into Exit(130), returned here
                raise KeyboardInterrupt
            if isinstance(rc, int) and rc:
                sys.exit(rc)  # typer.Exit(n) comes back as a return value when standalone_mode is off
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except click_errors as exc:  # usage errors: "Usage: ... Try ... --help ... Error: ..."
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except click_aborts:
            err_console.print("aborted")
            sys.exit(1)
        except (DataError, ValueError, KeyError, FileNotFoundError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            err_console.print(f"[bold red]error:[/] {_one_line(msg)}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except OSError as exc:  # a file system refusal (permission, a file where a folder is needed ...)
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"[bold red]error:[/] {where}{_one_line(exc.strerror or str(exc))}", highlight=False,
                              soft_wrap=True)
            sys.exit(2)
        except KeyboardInterrupt:  # Ctrl-C: one line, exit 130 (workers of --executor local ignore SIGINT)
            err_console.print(self._interrupted(args), highlight=False)
            sys.exit(130)
        finally:  # the output folders this command claimed: record what it wrote, free their locks
            from gbench.cli.commands.common import end_json_mode, release_out_folders, restore_device_env

            release_out_folders()
            end_json_mode()  # --json sent the console to stderr
            restore_device_env()  # --device pinned CUDA_VISIBLE_DEVICES
        return None

    def _interrupted(self, args: Any) -> str:
        """``interrupted; rerun with --resume to continue`` for a command that has ``--resume``."""
        words = [str(a) for a in (sys.argv[1:] if args is None else args)]
        cmd: Any = self
        for w in words:
            if w.startswith("-") or not isinstance(getattr(cmd, "commands", None), dict):
                continue
            sub = cmd.commands.get(w)
            if sub is None:
                break
            cmd = sub
        resumable = any("--resume" in getattr(p, "opts", ()) for p in getattr(cmd, "params", ()))
        return "interrupted; rerun with --resume to continue" if resumable else "interrupted"


app = typer.Typer(help="gbench: evaluate GAN-synthesized histopathology and cytology images.", cls=_Root,
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False)

#: Command modules, one per area; each defines ``register(app)``. Adding an area is one line here.
COMMAND_MODULES = (
    "gbench.cli.commands.data",
    "gbench.cli.commands.quality",
    "gbench.cli.commands.generators",
    "gbench.cli.commands.segment",
    "gbench.cli.commands.reports",
    "gbench.cli.commands.multifocus",
    "gbench.cli.commands.reproduce",
    "gbench.cli.commands.bench",
    "gbench.cli.commands.maps",
    "gbench.cli.commands.plugins",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"gbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                           help="Print the version and exit.")] = None,
          plugin: Annotated[Optional[list[str]], typer.Option(
              "--plugin", help="Import a plugin module or FILE.py first (it registers generators, segmenters, "
                               "extractors or datasets through gbench.api); repeatable. GBENCH_PLUGINS does the "
                               "same for every command.")] = None) -> None:
    """gbench: does the synthetic image look like the real one, and does it help a segmenter?"""
    _show_plugin_warnings()
    for spec in plugin or ():
        from gbench.core.registry import load_plugin

        load_plugin(spec, strict=True)  # a plugin that fails to import: one line, exit 2


def _show_plugin_warnings() -> None:
    """A plugin skipped at discovery is one line on stderr (``warning: plugin ... is skipped: ...``)."""
    import warnings

    from gbench.core.registry import PluginWarning

    shown = warnings.showwarning
    if getattr(shown, "_gbench", False):
        return

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if isinstance(category, type) and issubclass(category, PluginWarning):
            err_console.print(f"[yellow]warning:[/] {_one_line(str(message))}", highlight=False, soft_wrap=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show._gbench = True  # type: ignore[attr-defined]
    warnings.showwarning = show


# ---------------------------------------------------------------------------------------------- demo

demo_app = typer.Typer(help="The main job on the built-in dataset (what `make demo` runs); `gbench demo mi-gan`: "
                            "MI-GAN on the built-in cells.", invoke_without_command=True, no_args_is_help=False)
app.add_typer(demo_app, name="demo")


@demo_app.callback()
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo"),
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    data_seed: DataSeedOpt = 0,
    device: DeviceOpt = None,
) -> None:
    """The main job on the built-in dataset (what `make demo` runs). `gbench demo mi-gan`: MI-GAN instead.

    Options given before a subcommand (`gbench demo --profile smoke mi-gan`) apply to it, unless it
    is given the same option itself."""
    if ctx.invoked_subcommand is not None:
        # passed on as the subcommand's defaults (its own command line still wins)
        given = {name: ctx.params[name] for name in ("out", "profile", "seed", "data_seed", "device")
                 if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}
        sub = dict((ctx.default_map or {}).get(ctx.invoked_subcommand) or {})
        ctx.default_map = {**(ctx.default_map or {}), ctx.invoked_subcommand: {**sub, **given}}
        return
    from gbench.cli.commands.common import check_out_folder, pin_device
    from gbench.pipelines import runner

    pin_device(device)  # every stage picks its device itself: --device decides what it can see
    check_out_folder(out, resume=True)  # a stage cache: running again continues it; locked while it runs
    runner.demo(out, profile=profile, seed=seed, console=console, data_seed=data_seed)


def _register_demo_commands() -> None:
    import importlib.util

    if importlib.util.find_spec("gbench.cli.commands.migan_demo") is not None:
        from gbench.cli.commands.migan_demo import register_demo

        register_demo(demo_app)


@app.command("profiles")
def profiles() -> None:
    """Show the run profiles and what each costs."""
    from gbench.pipelines import runner

    console.print(runner.profiles_table())



def _register_commands() -> None:
    import importlib
    import importlib.util

    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue  # area not built yet
        importlib.import_module(name).register(app)


_register_commands()
_register_demo_commands()


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException classes, Abort classes) of typer's vendored click and of click itself."""
    exc: list[type] = []
    abort: list[type] = []
    abort.append(typer.Abort)
    try:
        from typer._click import exceptions as tce  # recent typer vendors click

        exc.append(tce.ClickException)
    except ImportError:  # pragma: no cover
        pass
    try:
        import click

        exc.append(click.exceptions.ClickException)
        abort.append(click.exceptions.Abort)
    except ImportError:  # pragma: no cover
        pass
    return tuple(exc), tuple(abort)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(args: list[str] | None = None) -> None:
    """Console entry point: runs :data:`app` (its root command, :class:`_Root`, turns user errors
    into one line and exit 2)."""
    app(args=args)


if __name__ == "__main__":  # pragma: no cover
    main()
