"""Making a stdlib venv (with or without pip) on a host, and choosing the pip that fills it.

The venv itself comes from decl/providers/venv/seed.py: `venv.EnvBuilder` with the options
of `python -m venv`, and pip (and, up to 3.11, setuptools) unpacked from the wheels
ensurepip bundles, instead of ensurepip's second interpreter that pip-installs and
byte-compiles them (about 3 s a venv). On the local host, when the venv's interpreter is
decl's own, this runs in decl's process; elsewhere the host's interpreter runs seed.py.
When that Python's ensurepip cannot be read that way, `python -m venv` does the work.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from dataclasses import dataclass

from decl.connections.base import Connection
from decl.errors import ProviderError

# pip learnt `--python` (run this pip for another interpreter) in 22.3.
PIP_WITH_PYTHON_OPTION = (22, 3)
_SOURCE: list[str] = []


def seed_source() -> str:
    """The text of seed.py, which another host's Python runs with `-c`."""
    if not _SOURCE:
        _SOURCE.append((pathlib.Path(__file__).parent / "seed.py").read_text(encoding="utf-8"))
    return _SOURCE[0]


def is_decls_interpreter(python: str) -> bool:
    """Whether `python` is the interpreter decl runs on (same real file)."""
    try:
        return os.path.samefile(python, sys.executable)
    except OSError:
        return False


@dataclass(frozen=True)
class Made:
    """How a venv was made: `seeded` (unpacked wheels) or `ensurepip` (python -m venv)."""

    how: str
    why: str = ""


def make_venv(conn: Connection, python: str, path: str, *, system_site_packages: bool,
              with_pip: bool, env: dict[str, str], what: str) -> Made:
    """Create the venv at `path` (which must not exist) with `python`; how it was made."""
    request = {"path": path, "system_site_packages": system_site_packages, "pip": with_pip}
    if conn.is_local and is_decls_interpreter(python):
        from decl.providers.venv import seed

        try:
            answer = seed.make_venv(path, system_site_packages, with_pip)
        except Exception as exc:  # noqa: BLE001 - any failure: clean up, use `python -m venv`
            answer = {"ok": False, "why": f"{type(exc).__name__}: {exc}", "made": True}
    else:
        result = conn.run([python, "-c", seed_source(), json.dumps(request)], env=env,
                          timeout=600)
        try:
            answer = json.loads(result.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            answer = {"ok": False, "made": True,
                      "why": (result.err or result.out).strip()[-300:] or "no answer"}
    if answer.get("ok"):
        return Made("seeded")
    if answer.get("made") or conn.exists(path):
        conn.run(["rm", "-rf", "--", path], timeout=600).check(
            f"{what}: removing the half-made {path}")
    argv = [python, "-m", "venv"]
    argv += [] if with_pip else ["--without-pip"]
    argv += ["--system-site-packages"] if system_site_packages else []
    conn.run([*argv, path], env=env, timeout=600).check(f"{what}: creating {path} with venv")
    return Made("ensurepip", str(answer.get("why", "")))


def local_pip_for_other_pythons() -> bool:
    """Whether decl's interpreter has a pip that can install for another Python (>= 22.3).

    That pip is byte-compiled already; the pip unpacked into a new venv compiles its modules
    on first use, which costs about half a second a venv.
    """
    try:
        from importlib.metadata import version

        parts = tuple(int(p) for p in version("pip").split(".")[:2])
    except Exception:  # noqa: BLE001 - no pip, or an odd version: use the venv's own
        return False
    return parts >= PIP_WITH_PYTHON_OPTION


def pip_argv(conn: Connection, venv_python: str) -> list[str]:
    """argv prefix (before the verb) of the pip that installs into a venv with pip."""
    if conn.is_local and local_pip_for_other_pythons():
        return [sys.executable, "-m", "pip", "--python", venv_python]
    return [venv_python, "-m", "pip"]


def check_no_such_python(found: str | None, wanted: str, what: str, host: str) -> str:
    """`found`, or the error that names what was looked for."""
    if not found:
        raise ProviderError(f"{what}: no {wanted} on host {host}; give an interpreter path "
                            "in `python:`, or install uv")
    return found
