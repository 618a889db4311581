"""One rich Console per stream; colour only on a terminal and without NO_COLOR."""

from __future__ import annotations

import os
import sys
from typing import Any


def wants_color(stream: Any, environ: Any = os.environ) -> bool:
    """Colour (and any escape code) only on a terminal, and never with NO_COLOR set."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR")


def make_console(stderr: bool = False, color: bool | None = None) -> Any:
    """A rich Console that honours NO_COLOR and pipes.

    Without colour it writes no escape code at all: no colour, no bold, no dim
    (`color_system=None`), as NO_COLOR and --no-color promise.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if color is None:
        color = wants_color(stream)
    if not color:
        return Console(file=stream, highlight=False, soft_wrap=True, no_color=True,
                       color_system=None, force_terminal=False, emoji=False, markup=True,
                       width=200)
    return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=True,
                   emoji=False, markup=True)
