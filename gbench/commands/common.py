"""Options and consoles shared by every command module."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

ProfileOpt = Annotated[str, typer.Option("--profile", help="Run profile: smoke, demo or paper.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (recorded with every result).")]
SplitOpt = Annotated[str, typer.Option("--split", help="train, test or all.")]
