"""The ``gbench`` command line (typer). Thin: parse, build the config, call a runner function."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gbench import __version__

app = typer.Typer(help="gbench: evaluate GAN-synthesized histopathology and cytology images.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Datasets: list, inspect, preview.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

ProfileOpt = Annotated[str, typer.Option("--profile", help="Run profile: smoke, demo or paper.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (recorded with every result).")]
SplitOpt = Annotated[str, typer.Option("--split", help="train, test or all.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"gbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                           help="Print the version and exit.")] = None) -> None:
    """gbench: does the synthetic image look like the real one, and does it help a segmenter?"""


# ---------------------------------------------------------------------------------------------- data

@data_app.command("list")
def data_list() -> None:
    """List the loaders, the built-in datasets and the real datasets gbench knows by name."""
    from gbench import runner

    console.print(runner.data_list_table())


@data_app.command("inspect")
def data_inspect(
    dataset: Annotated[str, typer.Argument(help="Dataset name or folder (see `gbench data list`).")],
    split: SplitOpt = "train",
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write summary.json, per_image.csv and summary.md here.")] = None,
) -> None:
    """Counts, sizes, nuclei per image and nucleus-area statistics as a table."""
    from gbench import runner

    result = runner.inspect_dataset(dataset, split=split, profile=profile, seed=seed, out=out)
    console.print(result.table)
    if out is not None:
        console.print(f"wrote {', '.join(str(p) for p in result.files)}")


@data_app.command("preview")
def data_preview(
    dataset: Annotated[str, typer.Argument(help="Dataset name or folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")],
    split: SplitOpt = "train",
    count: Annotated[Optional[int], typer.Option("--count", "-n", help="Samples on the sheet (default: the profile's).")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Centre-crop each sample to this size (default: the profile's image size for tiles larger than twice it).")] = None,
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
) -> None:
    """A sheet of image, instances, binary mask, distance map and contour map for a few samples."""
    from gbench import runner

    path = runner.preview_dataset(dataset, output, split=split, count=count, crop=crop, profile=profile, seed=seed)
    console.print(f"wrote {path}")


# ---------------------------------------------------------------------------------------------- demo

@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo"),
    profile: ProfileOpt = "demo",
    seed: SeedOpt = 0,
) -> None:
    """The main job on the built-in dataset (what `make demo` runs)."""
    from gbench import runner

    runner.demo(out, profile=profile, seed=seed, console=console)


@app.command("profiles")
def profiles() -> None:
    """Show the run profiles and what each costs."""
    from gbench import runner

    console.print(runner.profiles_table())


def main() -> None:
    """Console entry point: user errors print one line and exit 2, never a traceback."""
    from gbench.errors import DataError

    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (DataError, ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
