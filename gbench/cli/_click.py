"""The click command behind the typer app, for the generated CLI reference (mkdocs-click).

``docs/reference/cli.md`` renders :data:`cli` with mkdocs-click, so the reference lists every
command and option as the installed ``gbench`` parses them and cannot drift from the code.
"""
from __future__ import annotations

import typer.main

from gbench.cli.app import app

#: The root click group of ``gbench`` (typer's command built from :data:`gbench.cli.app.app`).
cli = typer.main.get_command(app)

__all__ = ["cli"]
