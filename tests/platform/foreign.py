"""Run in a fresh interpreter: pretend to be Windows or macOS, then import all of decl.

POSIX-only modules (fcntl, termios...) are unimportable for decl's own code (a meta path
finder raises ImportError when a decl module asks for one), and `sys.platform` says the
other system. The third-party libraries decl uses are imported first, with the real platform:
they are checked on real Windows and macOS runners by .github/workflows/tests.yml.
Prints one JSON document: modules that failed, and the CLI's answers.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import pkgutil
import sys

POSIX_ONLY = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog", "posix"}
THIRD_PARTY = ["pydantic", "typing_extensions", "asyncio", "paramiko", "docker", "click",
               "click.testing", "rich", "rich.console", "jinja2", "jinja2.sandbox",
               "ruamel.yaml", "packaging.requirements", "subprocess", "concurrent.futures",
               "sysconfig", "importlib.metadata", "venv", "platform", "site"]


def _importer() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(("importlib", "_frozen_importlib")) and name != __name__:
            return str(name)
        frame = frame.f_back
    return ""


class PosixOnlyBlocker(importlib.abc.MetaPathFinder):
    """ImportError for a POSIX-only module imported by decl's own code."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - importlib's signature
        who = _importer()
        if name in POSIX_ONLY and (who == "decl" or who.startswith("decl.")):
            self.refused.append(f"{who} imports {name}")
            raise ImportError(f"No module named {name!r} (POSIX-only, imported by {who})")
        return None


def main() -> None:
    platform, example = sys.argv[1], sys.argv[2]
    for name in THIRD_PARTY:
        importlib.import_module(name)
    import sysconfig

    sysconfig.get_config_vars()  # cached now: the stdlib reads its build data by platform name
    blocker = PosixOnlyBlocker()
    sys.meta_path.insert(0, blocker)
    for name in list(sys.modules):
        if name in POSIX_ONLY - {"posix"}:
            del sys.modules[name]
    sys.platform = platform
    import decl

    failed = {}
    for info in pkgutil.walk_packages(decl.__path__, "decl.",
                                      onerror=lambda n: failed.setdefault(n, "walk")):
        if info.name == "decl.__main__":
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failed[info.name] = f"{type(exc).__name__}: {exc}"
    from click.testing import CliRunner

    from decl.cli import cli

    runner = CliRunner()
    version = runner.invoke(cli, ["--version"])
    validate = runner.invoke(cli, ["validate", "-f", example])
    from decl.engine.statedir import state_dir
    from decl.platforms import current_system

    print(json.dumps({"failed": failed, "refused": blocker.refused,
                      "version": [version.exit_code, version.output],
                      "validate": [validate.exit_code, validate.output],
                      "system": current_system(), "state_dir": state_dir()}))


if __name__ == "__main__":
    main()
