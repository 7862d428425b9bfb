"""Option checks shared by the command modules: a number outside its range is a
:class:`~pipeline.errors.UsageError` (exit 2) while the command line is read, before any
run starts or anything is written."""

from __future__ import annotations

from typing import Any

import typer

from pipeline.errors import UsageError


def bounded(option: str, low: float, high: float | None = None, example: str = "") -> Any:
    """A Typer option callback: the value (None when not given) must lie in [low, high]."""

    def check(value: float | None) -> float | None:
        if value is None or (value >= low and (high is None or value <= high)):
            return value
        limit = f"between {low:g} and {high:g}" if high is not None else f"{low:g} or more"
        hint = f", e.g. {example}" if example else ""
        raise UsageError(f"{option} must be {limit}, not {value:g}; give it again{hint}.")

    return check


def port_option(help_text: str) -> Any:
    """``--port``: 0 (a free port) to 65535."""
    return typer.Option(
        "--port",
        help=help_text,
        callback=bounded("--port", 0, 65535, example="--port 0 (a free one)"),
    )
