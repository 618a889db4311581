"""Make a venv with pip in it the way `python -m venv` does, minus ensurepip's subprocess.

`python -m venv DIR` spends almost all its time (about 3 s) in ensurepip: a second
interpreter that runs pip to install the pip (and, up to Python 3.11, setuptools) wheels
bundled with Python, byte-compiling every module of both. This module does the same install
itself: it builds the venv with the stdlib's `venv.EnvBuilder` (the arguments `python -m
venv` uses), then unpacks the very wheels ensurepip would install into site-packages, as
pip installs a wheel: files from the wheel, the console scripts pip would write (pip, pipX,
pipX.Y, with pip's launcher text and shebang), INSTALLER ("pip"), REQUESTED and a RECORD
with pip's rows (CRLF, sorted). `pip list`, `pip --version`, `pip install` and `pip
uninstall pip` see the same venv; what differs is that the modules are byte-compiled on
first import instead of ahead of time (their .pyc are not listed in RECORD).

The file is self-contained (stdlib only): decl runs it with the host's own interpreter,
`python3 -c <this file> '<json>'` (or in-process on the local host when the interpreter is
decl's own). It prints one JSON line: {"ok": true, "seeded": {"pip": "23.2.1", ...}} or
{"ok": false, "why": "..."} when this Python's ensurepip cannot be used this way (the caller
then falls back to `python -m venv`). Nothing is left behind on failure before the venv
directory exists; after, the caller deletes the directory.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import sys
import sysconfig
import zipfile


def bundled_wheels() -> dict[str, tuple[str, bytes]]:
    """name -> (version, wheel bytes) of what ensurepip installs, from ensurepip itself."""
    import ensurepip

    # private, but what `ensurepip` itself reads to find its wheels
    packages = ensurepip._get_packages()  # type: ignore[attr-defined]
    found: dict[str, tuple[str, bytes]] = {}
    for name, package in packages.items():
        path = getattr(package, "wheel_path", None)
        if path:
            with open(path, "rb") as handle:
                found[name] = (package.version, handle.read())
            continue
        from importlib import resources

        wheel = resources.files("ensurepip") / "_bundled" / package.wheel_name
        found[name] = (package.version, wheel.read_bytes())
    return found


def record_hash(data: bytes) -> str:
    """sha256=<urlsafe base64, no padding>, as in a wheel's RECORD."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def shebang(executable: str, os_name: str = os.name, platform: str = sys.platform) -> bytes:
    """The first line(s) pip's script maker (distlib) writes for `executable`."""
    exe = executable.encode("utf-8")
    if b" " in exe:
        exe = b'"' + exe + b'"'
    if os_name != "posix":
        return b"#!" + exe + b"\n"
    limit = 512 if platform == "darwin" else 127
    if b" " not in exe and len(exe) + 3 <= limit:
        return b"#!" + exe + b"\n"
    return b"#!/bin/sh\n'''exec' " + exe + b' "$0" "$@"\n' + b"' '''"


LAUNCHER = """# -*- coding: utf-8 -*-
import re
import sys
from %(module)s import %(import_name)s
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(%(func)s())
"""


def console_scripts(entry_points: str) -> list[tuple[str, str]]:
    """(name, "module:function") of [console_scripts], renamed as pip renames pip's own."""
    section: str | None = None
    scripts: list[tuple[str, str]] = []
    for raw in entry_points.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif line and not line.startswith("#") and section == "console_scripts" \
                and "=" in line:
            name, _, target = line.partition("=")
            scripts.append((name.strip(), target.strip()))
    major, minor = sys.version_info[:2]
    named = dict(scripts)
    out = [(n, t) for n, t in scripts]
    # pip's installer: pip's own scripts become pip, pipX, pipX.Y for this Python (venv runs
    # ensurepip with --default-pip, which keeps all three); easy_install likewise.
    for base, versioned, pattern in (
            ("pip", ["pip", f"pip{major}", f"pip{major}.{minor}"], r"pip(\d+(\.\d+)?)?$"),
            ("easy_install", ["easy_install", f"easy_install-{major}.{minor}"],
             r"easy_install(-\d+\.\d+)?$")):
        if base not in named:
            continue
        out = [(n, t) for n, t in out if not re.match(pattern, n)]
        out += [(name, named[base]) for name in versioned]
    return out


def install_wheel(data: bytes, site: str, scripts_dir: str, executable: str) -> list[str]:
    """Unpack one pure-Python wheel into `site` as pip does; the paths written."""
    written: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        names = wheel.namelist()
        info_dirs = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(
            ".dist-info")}
        if len(info_dirs) != 1 or any(n.split("/", 1)[0].endswith(".data") for n in names):
            raise ValueError("not a plain pure-Python wheel")
        info = info_dirs.pop()
        wheel_meta = wheel.read(f"{info}/WHEEL").decode("utf-8")
        if "Root-Is-Purelib: true" not in wheel_meta:
            raise ValueError("not a purelib wheel")
        record_name = f"{info}/RECORD"
        rows = list(csv.reader(io.StringIO(wheel.read(record_name).decode("utf-8"))))
        for member in wheel.infolist():
            if member.is_dir():
                continue
            target = os.path.join(site, *member.filename.split("/"))
            if not os.path.realpath(target).startswith(os.path.realpath(site) + os.sep):
                raise ValueError(f"unsafe path in wheel: {member.filename}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                out.write(wheel.read(member))
            if (member.external_attr >> 16) & 0o111:
                mode = os.stat(target).st_mode
                os.chmod(target, mode | ((mode & 0o444) >> 2))
            written.append(target)
        entry_points = wheel.read(f"{info}/entry_points.txt").decode("utf-8") \
            if f"{info}/entry_points.txt" in names else ""
    generated: dict[str, bytes] = {}
    for name, target in console_scripts(entry_points):
        module, _, func = target.partition(":")
        func = func.strip()
        text = LAUNCHER % {"module": module.strip(), "import_name": func.split(".")[0],
                           "func": func}
        path = os.path.join(scripts_dir, name)
        content = shebang(executable) + text.encode("utf-8")
        with open(path, "wb") as out:
            out.write(content)
        mode = os.stat(path).st_mode
        os.chmod(path, (mode | 0o555) & 0o7777)
        generated[path] = content
    for extra, content in (("INSTALLER", b"pip\n"), ("REQUESTED", b"")):
        path = os.path.join(site, info, extra)
        with open(path, "wb") as out:
            out.write(content)
        generated[path] = content
    by_path = {row[0]: row for row in rows if row}
    for path, content in generated.items():
        relative = os.path.relpath(path, site).replace(os.sep, "/")
        by_path[relative] = [relative, record_hash(content), str(len(content))]
    by_path[record_name] = [record_name, "", ""]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(sorted(by_path.values()))
    with open(os.path.join(site, *record_name.split("/")), "w", encoding="utf-8",
              newline="") as out:
        out.write(buffer.getvalue())
    return written + list(generated)


def site_packages(env_dir: str) -> str:
    """The venv's purelib directory, as its interpreter will see it."""
    schemes = sysconfig.get_scheme_names()
    scheme = "venv" if "venv" in schemes else ("nt" if os.name == "nt" else "posix_prefix")
    return sysconfig.get_path("purelib", scheme, vars={"base": env_dir, "platbase": env_dir})


def make_venv(path: str, system_site_packages: bool = False,
              with_pip: bool = True) -> dict[str, object]:
    """Build the venv like `python -m venv [--without-pip] [--system-site-packages] PATH`."""
    import inspect
    import venv

    try:
        wheels = bundled_wheels() if with_pip else {}
    except Exception as exc:  # noqa: BLE001 - any failure means: use ensurepip instead
        return {"ok": False, "why": f"ensurepip's wheels are not readable: {exc}"}
    if with_pip and "pip" not in wheels:
        return {"ok": False, "why": "ensurepip bundles no pip"}
    seeded: dict[str, str] = {}

    class Builder(venv.EnvBuilder):
        def create_configuration(self, context) -> None:  # type: ignore[no-untyped-def]
            # pyvenv.cfg's `command =` line says what the user would have typed
            self.with_pip = with_pip
            try:
                super().create_configuration(context)
            finally:
                self.with_pip = False

        def post_setup(self, context) -> None:  # type: ignore[no-untyped-def]
            site = site_packages(context.env_dir)
            if not os.path.isdir(site):
                raise ValueError(f"no site-packages at {site}")
            for name in sorted(wheels):  # ensurepip's order: alphabetical by dist name
                version, data = wheels[name]
                install_wheel(data, site, context.bin_path, context.env_exec_cmd)
                seeded[name] = version

    options: dict[str, object] = {"system_site_packages": system_site_packages, "clear": False,
               "symlinks": os.name != "nt", "upgrade": False, "with_pip": False,
               "prompt": None}
    parameters = inspect.signature(venv.EnvBuilder).parameters
    if "upgrade_deps" in parameters:
        options["upgrade_deps"] = False
    if "scm_ignore_files" in parameters:  # 3.13: `python -m venv` writes a .gitignore
        options["scm_ignore_files"] = {"git"}
    Builder(**options).create(path)  # type: ignore[arg-type]
    return {"ok": True, "seeded": seeded}


def main(argv: list[str]) -> int:
    """`python -c <this file> '{"path": ..., "system_site_packages": ..., "pip": ...}'`."""
    request = json.loads(argv[0])
    result: dict[str, object]
    try:
        result = make_venv(request["path"], bool(request.get("system_site_packages")),
                           bool(request.get("pip", True)))
    except Exception as exc:  # noqa: BLE001 - reported as JSON; the caller cleans up
        result = {"ok": False, "why": f"{type(exc).__name__}: {exc}", "made": True}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
