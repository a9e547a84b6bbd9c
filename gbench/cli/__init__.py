"""The command line (typer): each command parses, builds a config, calls one pipeline and renders."""
from gbench.cli.app import app, main

__all__ = ["app", "main"]
