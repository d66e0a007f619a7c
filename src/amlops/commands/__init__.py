"""CLI command groups. Keep module-level imports to typer and amlops.console: heavy imports go in functions."""
