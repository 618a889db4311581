"""One rich Console per stream; colour only on a terminal and without NO_COLOR."""

from __future__ import annotations

import os
import sys
from typing import Any


def make_console(stderr: bool = False, color: bool | None = None) -> Any:
    """A rich Console that honours NO_COLOR and pipes."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if color is None:
        color = stream.isatty() and not os.environ.get("NO_COLOR")
    # Without colour, no styles at all (bold, dim): color_system=None writes no escape code.
    return Console(
        file=stream, highlight=False, soft_wrap=True, no_color=not color,
        color_system="auto" if color else None,
        force_terminal=color or None, emoji=False, markup=True, width=None if color else 200,
    )
