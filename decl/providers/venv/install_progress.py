"""How far a `pip install` or `uv pip install` is, in packages, read from its output lines.

pip (without --quiet) writes one line per package it collects, naming dependencies found
on the way ("Collecting gamma>=1.0 (from beta)", "Processing ./gamma-1.0-py3-none-any.whl
(from beta)"), then "Installing collected packages: a, b, c" and "Successfully installed
...". The collection (resolving and downloading) is where the time goes: its fraction is
packages collected over packages known so far (the requested ones plus dependencies
seen), which never goes back, and it fills the first 80 %; installing fills the rest.

uv (with UV_NO_PROGRESS) writes one line per phase: "Resolved N packages", "Prepared N
packages", "Installed N packages" (or "Audited N packages" when nothing was to do).
"""

from __future__ import annotations

import re

COLLECT_SHARE = 0.8
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UV_PHASE = re.compile(r"^(Resolved|Prepared|Uninstalled|Installed|Audited) (\d+) packages?\b")
_UV_SHARE = {"Resolved": 0.3, "Prepared": 0.7, "Uninstalled": 0.8, "Installed": 1.0,
             "Audited": 1.0}


def canonical(name: str) -> str:
    """A project name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(text: str) -> str | None:
    """The project name of a requirement or of a wheel/sdist path pip names."""
    text = text.strip()
    if "/" in text or text.endswith((".whl", ".tar.gz", ".zip")):
        base = text.rstrip("/").rsplit("/", 1)[-1]
        match = _NAME.match(base)
        return canonical(base.split("-", 1)[0]) if match else None
    match = _NAME.match(text)
    return canonical(match.group(0)) if match else None


class InstallProgress:
    """Feed output lines; each call returns (message, fraction) when there is news."""

    def __init__(self, requested: int, uv: bool = False) -> None:
        self.requested = max(1, requested)
        self.uv = uv
        self.collected: list[str] = []
        self.dependencies: set[str] = set()
        self.installing = 0

    def line(self, text: str) -> tuple[str, float] | None:
        """News from one line of the installer's output, or None."""
        return self._uv_line(text) if self.uv else self._pip_line(text)

    def _uv_line(self, text: str) -> tuple[str, float] | None:
        match = _UV_PHASE.match(text.strip())
        if not match:
            return None
        phase, count = match.group(1), int(match.group(2))
        noun = "package" if count == 1 else "packages"
        return f"{phase.lower()} {count} {noun}", _UV_SHARE[phase]

    def _pip_line(self, text: str) -> tuple[str, float] | None:
        stripped = text.strip()
        for prefix in ("Collecting ", "Processing ", "Requirement already satisfied: "):
            if text.startswith(prefix):
                rest = stripped[len(prefix):]
                name = requirement_name(rest.split(" in ", 1)[0] if prefix.startswith("Req")
                                        else rest.split(" (from", 1)[0])
                if name is None or name in self.collected:
                    return None
                self.collected.append(name)
                if "(from " in rest:
                    self.dependencies.add(name)
                known = max(self.requested + len(self.dependencies), len(self.collected))
                fraction = COLLECT_SHARE * (len(self.collected) - 1) / known
                return (f"collecting {name} ({len(self.collected)} of {known} packages so far)",
                        fraction)
        if text.startswith("Installing collected packages:"):
            names = [n for n in stripped.split(":", 1)[1].split(",") if n.strip()]
            self.installing = len(names)
            noun = "package" if len(names) == 1 else "packages"
            return f"installing {len(names)} {noun}", COLLECT_SHARE
        if text.startswith("Successfully installed"):
            count = len(stripped.split()) - 2
            noun = "package" if count == 1 else "packages"
            return f"installed {count} {noun}", 1.0
        return None
