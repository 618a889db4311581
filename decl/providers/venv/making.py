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
from dataclasses import dataclass, field

from decl.connections.base import Connection
from decl.errors import ProviderError

# pip learnt `--python` (run this pip for another interpreter) in 22.3.
PIP_WITH_PYTHON_OPTION = (22, 3)
_SOURCE: list[str] = []
_RUNNER: list[str | None] = []


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
    """How a venv was made: `seeded` (unpacked wheels) or `ensurepip` (python -m venv);
    when seeded, the versions unpacked and the venv's interpreter as its pip script names
    it (the path pip, run that way, writes into the scripts it makes)."""

    how: str
    why: str = ""
    seeded: dict[str, str] = field(default_factory=dict)
    python: str | None = None


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
        seeded = answer.get("seeded")
        python_used = answer.get("python")
        return Made("seeded", seeded=dict(seeded) if isinstance(seeded, dict) else {},
                    python=str(python_used) if python_used else None)
    if answer.get("made") or conn.exists(path):
        conn.run(["rm", "-rf", "--", path], timeout=600).check(
            f"{what}: removing the half-made {path}")
    argv = [python, "-m", "venv"]
    argv += [] if with_pip else ["--without-pip"]
    argv += ["--system-site-packages"] if system_site_packages else []
    conn.run([*argv, path], env=env, timeout=600).check(f"{what}: creating {path} with venv")
    return Made("ensurepip", str(answer.get("why", "")))


def local_pip_runner() -> str | None:
    """The runner of decl's interpreter's pip for another Python (pip >= 22.3), or None.

    `pip --python VENV/bin/python` starts VENV/bin/python on pip's `__pip-runner__.py`,
    which imports exactly that (byte-compiled) pip; decl starts the same command itself and
    saves the outer pip process. The pip unpacked into a new venv would instead compile its
    modules on first use, about half a second a venv.
    """
    if _RUNNER:
        return _RUNNER[0]
    runner = None
    try:
        import importlib.util
        from importlib.metadata import version

        parts = tuple(int(p) for p in version("pip").split(".")[:2])
        spec = importlib.util.find_spec("pip")
        locations = list(spec.submodule_search_locations or []) if spec else []
        if parts >= PIP_WITH_PYTHON_OPTION and locations:
            candidate = os.path.join(locations[0], "__pip-runner__.py")
            runner = candidate if os.path.isfile(candidate) else None
    except Exception:  # noqa: BLE001 - no pip, or an odd one: use the venv's own
        runner = None
    _RUNNER.append(runner)
    return runner


def pip_argv(conn: Connection, venv_python: str) -> list[str]:
    """argv prefix (before the verb) of the pip that installs into a venv with pip."""
    runner = local_pip_runner() if conn.is_local else None
    if runner:
        return [venv_python, runner]
    return [venv_python, "-m", "pip"]


def runner_pip_version() -> str | None:
    """The version of the pip `local_pip_runner` runs (decl's interpreter's pip)."""
    try:
        from importlib.metadata import version

        return version("pip")
    except Exception:  # noqa: BLE001 - no pip metadata: unknown
        return None


def install_wheels(conn: Connection, python: str, path: str, venv_exec: str,
                   wheels: list[dict[str, object]], model: str,
                   env: dict[str, str]) -> dict[str, object]:
    """Unpack `wheels` into the venv at `path` with seed.py's installer, run by `python`
    (the interpreter that made the venv): in decl's process when that is decl's own.
    `model`: the venv pip filled with them (the RECORDs must match)."""
    if conn.is_local and is_decls_interpreter(python):
        from decl.providers.venv import seed

        try:
            return seed.install_wheels(path, venv_exec, wheels, model)
        except Exception as exc:  # noqa: BLE001 - the caller makes the venv again
            return {"ok": False, "why": f"{type(exc).__name__}: {exc}", "touched": True}
    request = {"install": {"path": path, "python": venv_exec, "wheels": wheels,
                           "model": model}}
    result = conn.run([python, "-c", seed_source(), json.dumps(request)], env=env, timeout=1800)
    try:
        answer: dict[str, object] = json.loads(result.out.strip().splitlines()[-1])
        return answer
    except (ValueError, IndexError):
        return {"ok": False, "touched": True,
                "why": (result.err or result.out).strip()[-300:] or "no answer"}


def check_no_such_python(found: str | None, wanted: str, what: str, host: str) -> str:
    """`found`, or the error that names what was looked for."""
    if not found:
        raise ProviderError(f"{what}: no {wanted} on host {host}; give an interpreter path "
                            "in `python:`, or install uv")
    return found
