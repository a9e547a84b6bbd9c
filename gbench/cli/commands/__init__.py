"""CLI command modules, one per area; each defines ``register(app: typer.Typer)``."""
