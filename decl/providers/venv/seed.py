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

The same installer (`install_wheel`, pip's rules for any wheel: purelib or platlib, `.data`
directories, byte code, console and GUI scripts, direct_url.json, RECORD) fills the other
new venvs of an apply with the wheels the first venv's pip chose (`install_wheels`; see
decl/providers/venv/sharing.py).

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
import stat
import sys
import sysconfig
import threading
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


def entry_points_of(text: str) -> dict[str, dict[str, str]]:
    """group -> {name: value} of an entry_points.txt, read as importlib.metadata reads it
    (later lines win)."""
    groups: dict[str, dict[str, str]] = {}
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section is not None:
            name, _, value = line.partition("=")
            groups.setdefault(section, {})[name.strip()] = value.strip()
    return groups


def script_specs(console: dict[str, str]) -> list[tuple[str, str]]:
    """(name, "module:function") of the console scripts pip writes, in pip's order: pip's
    and easy_install's own renamed for this Python (pip, pipX, pipX.Y; venv runs ensurepip
    without ENSUREPIP_OPTIONS, which keeps all of them), then the rest."""
    console = dict(console)
    major, minor = sys.version_info[:2]
    out: list[tuple[str, str]] = []
    pip_target = console.pop("pip", None)
    if pip_target:
        out += [(name, pip_target) for name in ("pip", f"pip{major}", f"pip{major}.{minor}")]
        console = {n: t for n, t in console.items() if not re.match(r"pip(\d+(\.\d+)?)?$", n)}
    easy_target = console.pop("easy_install", None)
    if easy_target:
        out += [(name, easy_target) for name in ("easy_install", f"easy_install-{major}.{minor}")]
        console = {n: t for n, t in console.items()
                   if not re.match(r"easy_install(-\d+\.\d+)?$", n)}
    return out + list(console.items())


def console_scripts(entry_points: str) -> list[tuple[str, str]]:
    """(name, "module:function") of [console_scripts], renamed as pip renames pip's own."""
    return script_specs(entry_points_of(entry_points).get("console_scripts", {}))


class Unsupported(ValueError):
    """A wheel this installer does not install exactly as pip would: let pip do it."""


_ENTRY = re.compile(r"^(?:\w|[-.+])+$")
_TARGET = re.compile(r"^\w+(?:\.\w+)*:\w+(?:\.\w+)*$")


def launcher(name: str, target: str, executable: str) -> bytes:
    """The script pip (distlib's ScriptMaker) writes for one entry point."""
    if not _ENTRY.match(name) or not _TARGET.match(target):
        raise Unsupported(f"entry point {name} = {target} is not a plain module:function")
    module, _, func = target.partition(":")
    text = LAUNCHER % {"module": module, "import_name": func.split(".")[0], "func": func}
    return shebang(executable) + text.encode("utf-8")


def current_umask() -> int:
    """The process umask, read without changing it where the system tells it (a change
    would race with other threads of decl creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = current_umask()
_COMPILING = threading.Lock()


def _within(directory: str, target: str) -> bool:
    directory, target = os.path.abspath(directory), os.path.abspath(target)
    return os.path.commonprefix([directory + os.sep, target]) == directory + os.sep


def _record_path(path: str, lib_dir: str) -> str:
    return os.path.relpath(path, lib_dir).replace(os.sep, "/")


def _write(path: str, content: bytes) -> None:
    """Write a new file; one that is there is unlinked first, as pip does (one open in the
    usual case: a venv is filled file by file, and system calls are most of its cost)."""
    try:
        out = open(path, "xb")
    except FileExistsError:
        os.unlink(path)
        out = open(path, "xb")
    with out:
        out.write(content)


def install_wheel(data: bytes, scheme: dict[str, str], executable: str, *,
                  requested: bool = True, direct_url: str | None = None,
                  pycompile: bool = False) -> list[str]:
    """Install one wheel as pip's installer does (pip/_internal/operations/install/wheel.py
    of pip 23): files from the wheel root into purelib or platlib, `.data/<key>/` into the
    scheme's directory (scripts with `#!python` get the venv's interpreter), byte code when
    `pycompile`, console and GUI scripts with pip's launcher, INSTALLER, direct_url.json,
    REQUESTED, and a RECORD with pip's rows. `scheme` has purelib, platlib, scripts, data.
    Anything pip would do otherwise (headers, odd entry points, a malformed wheel) raises
    Unsupported before a file is written. Returns the paths written, RECORD last."""
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        names = [n for n in wheel.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names}
        info_dirs = [t for t in tops if t.endswith(".dist-info")]
        if len(info_dirs) != 1:
            raise Unsupported("not one .dist-info directory in the wheel")
        info = info_dirs[0]
        import email.parser

        meta = email.parser.Parser().parsestr(wheel.read(f"{info}/WHEEL").decode("utf-8"))
        if not str(meta.get("Wheel-Version", "")).startswith("1."):
            raise Unsupported("wheel format other than 1.x")
        purelib = str(meta.get("Root-Is-Purelib", "")).lower() == "true"
        lib_dir = scheme["purelib"] if purelib else scheme["platlib"]
        groups = entry_points_of(wheel.read(f"{info}/entry_points.txt").decode("utf-8")) \
            if f"{info}/entry_points.txt" in names else {}
        console = groups.get("console_scripts", {})
        gui = groups.get("gui_scripts", {})
        plan: list[tuple[str, str, zipfile.ZipInfo, bool]] = []  # source, dest, member, script
        for name in names:
            first, _, rest = name.partition("/")
            script = False
            if first.endswith(".data"):
                key, _, sub = rest.partition("/")
                if not sub or key not in ("purelib", "platlib", "scripts", "data"):
                    raise Unsupported(f"{name}: a .data entry pip installs otherwise")
                base = scheme[key]
                dest = os.path.join(base, os.path.normpath(sub))
                if key == "scripts":
                    stem = os.path.basename(dest)
                    for suffix in (".exe", "-script.py", ".pya"):
                        if stem.lower().endswith(suffix):
                            stem = stem[:-len(suffix)]
                            break
                    if stem in console or stem in gui:
                        continue  # setuptools' own wrapper: pip writes its own instead
                    script = True
            else:
                base = lib_dir
                dest = os.path.join(lib_dir, os.path.normpath(name))
            if not _within(base, dest):
                raise Unsupported(f"{name}: a path outside its directory")
            plan.append((name, dest, wheel.getinfo(name), script))
        dests = [d for _, d, _, _ in plan]
        if len(set(dests)) != len(dests):
            raise Unsupported("two files of the wheel go to one place")
        generated_scripts = [(name, launcher(name, target, executable))
                             for name, target in script_specs(console)]
        generated_scripts += [(name, launcher(name, target, executable))
                              for name, target in gui.items()]
        record_name = f"{info}/RECORD"
        rows = list(csv.reader(wheel.read(record_name).decode("utf-8").splitlines()))
        installed: dict[str, str] = {}
        changed: set[str] = set()
        written: list[str] = []
        made_dirs: set[str] = set()
        for source, dest, member, script in plan:
            parent = os.path.dirname(dest)
            if parent not in made_dirs:
                os.makedirs(parent, exist_ok=True)
                made_dirs.add(parent)
            content = wheel.read(member)
            modified = False
            if script and content.startswith(b"#!python"):
                line_end = content.find(b"\n")
                rest_of = content[line_end + 1:] if line_end >= 0 else b""
                content = b"#!" + executable.encode(sys.getfilesystemencoding()) + \
                    os.linesep.encode("ascii") + rest_of
                modified = True
            _write(dest, content)
            mode = member.external_attr >> 16
            if mode and stat.S_ISREG(mode) and mode & 0o111:
                os.chmod(dest, 0o777 & ~_UMASK | 0o111)
            installed[source] = _record_path(dest, lib_dir)
            if modified:
                changed.add(installed[source])
            written.append(dest)
    if pycompile:
        import compileall
        import importlib.util
        import warnings

        for relative in sorted(set(installed.values())):
            full = os.path.join(lib_dir, relative)
            if not os.path.isfile(full) or not full.endswith(".py"):
                continue
            with _COMPILING, warnings.catch_warnings():
                warnings.filterwarnings("ignore")
                done = compileall.compile_file(full, force=True, quiet=2)
            if done:
                pyc = importlib.util.cache_from_source(full)
                installed[pyc.replace(os.sep, "/")] = _record_path(pyc, lib_dir)
                written.append(pyc)
    generated: list[tuple[str, bytes]] = []
    for name, content in generated_scripts:
        path = os.path.join(scheme["scripts"], name)
        os.makedirs(scheme["scripts"], exist_ok=True)
        _write(path, content)
        os.chmod(path, (os.stat(path).st_mode | 0o555) & 0o7777)
        generated.append((path, content))
    extras = [("INSTALLER", b"pip\n")]
    if direct_url is not None:
        extras.append(("direct_url.json", direct_url.encode("utf-8")))
    if requested:
        extras.append(("REQUESTED", b""))
    for extra, content in extras:
        path = os.path.join(lib_dir, info, extra)
        _write(path, content)
        generated.append((path, content))
    out_rows: list[tuple[str, str, str]] = []
    for row in rows:
        if not row:
            continue
        new_path = installed.pop(row[0], row[0])
        if new_path in changed:
            with open(os.path.join(lib_dir, new_path), "rb") as handle:
                content = handle.read()
            out_rows.append((new_path, record_hash(content), str(len(content))))
        else:
            out_rows.append((new_path, row[1] if len(row) > 1 else "",
                             row[2] if len(row) > 2 else ""))
    for path, content in generated:
        out_rows.append((_record_path(path, lib_dir), record_hash(content), str(len(content))))
    out_rows += [(path, "", "") for path in installed.values()]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(sorted(out_rows))
    record_file = os.path.join(lib_dir, *record_name.split("/"))
    with open(record_file, "w", encoding="utf-8", newline="") as out:
        out.write(buffer.getvalue())
    return written + [path for path, _ in generated] + [record_file]


def scheme_of(env_dir: str) -> dict[str, str]:
    """purelib, platlib, scripts, data of the venv at `env_dir`, as its pip sees them."""
    schemes = sysconfig.get_scheme_names()
    scheme = "venv" if "venv" in schemes else ("nt" if os.name == "nt" else "posix_prefix")
    paths = sysconfig.get_paths(scheme, vars={"base": env_dir, "platbase": env_dir,
                                              "installed_base": env_dir,
                                              "installed_platbase": env_dir})
    return {key: paths[key] for key in ("purelib", "platlib", "scripts", "data")}


def record_paths(record_file: str) -> set[str]:
    """The paths a RECORD lists."""
    with open(record_file, encoding="utf-8", newline="") as handle:
        return {row[0] for row in csv.reader(handle) if row}


def install_wheels(env_dir: str, executable: str, wheels: list[dict[str, object]],
                   model: str | None = None) -> dict[str, object]:
    """Install wheels into the venv at `env_dir` as its pip would (run by `executable`).

    `wheels`: [{"path", "sha256", "requested", "direct_url"}] in pip's order. Every wheel
    is read and checked (hash, what it holds) before a file is written: {"ok": false,
    "why", "touched": false} means nothing changed and pip can do the work instead;
    "touched": true means the venv is half-filled and must be made again. `model`: the
    venv pip filled with these wheels; each RECORD written must list the same paths as
    its RECORD there (a pip configured otherwise, say with `no-compile` or a `target`,
    would have made something else).
    """
    env_dir = os.path.abspath(env_dir)
    scheme = scheme_of(env_dir)
    loaded: list[tuple[bytes, dict[str, object]]] = []
    targets: set[str] = set()
    try:
        for wheel in wheels:
            with open(str(wheel["path"]), "rb") as handle:
                data = handle.read()
            if hashlib.sha256(data).hexdigest() != wheel["sha256"]:
                raise Unsupported(f"{os.path.basename(str(wheel['path']))} changed since pip "
                                  "chose it")
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = {n for n in archive.namelist() if not n.endswith("/")
                         and ".data/" not in n and ".dist-info/" not in n}
            if names & targets:
                raise Unsupported("two wheels install the same file")
            targets |= names
            loaded.append((data, wheel))
    except Unsupported as exc:
        return {"ok": False, "why": str(exc), "touched": False}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return {"ok": False, "why": f"{type(exc).__name__}: {exc}", "touched": False}
    touched = False
    try:
        for data, wheel in loaded:
            touched = True
            written = install_wheel(data, scheme, executable,
                                    requested=bool(wheel.get("requested")),
                                    direct_url=wheel.get("direct_url"),  # type: ignore[arg-type]
                                    pycompile=True)
            if model is not None:
                relative = os.path.relpath(written[-1], env_dir)
                if record_paths(written[-1]) != \
                        record_paths(os.path.join(os.path.abspath(model), relative)):
                    raise Unsupported(f"{relative} lists other files than pip's in {model}")
    except Unsupported as exc:
        return {"ok": False, "why": str(exc), "touched": touched}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        return {"ok": False, "why": f"{type(exc).__name__}: {exc}", "touched": touched}
    return {"ok": True}


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
    executable: list[str] = []  # the venv's interpreter as the venv's own pip script runs it

    class Builder(venv.EnvBuilder):
        def create_configuration(self, context) -> None:  # type: ignore[no-untyped-def]
            # pyvenv.cfg's `command =` line says what the user would have typed
            self.with_pip = with_pip
            try:
                super().create_configuration(context)
            finally:
                self.with_pip = False

        def post_setup(self, context) -> None:  # type: ignore[no-untyped-def]
            executable.append(context.env_exec_cmd)
            scheme = scheme_of(context.env_dir)
            if not os.path.isdir(scheme["purelib"]):
                raise ValueError(f"no site-packages at {scheme['purelib']}")
            for name in sorted(wheels):  # ensurepip's order: alphabetical by dist name
                version, data = wheels[name]
                install_wheel(data, scheme, context.env_exec_cmd)
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
    return {"ok": True, "seeded": seeded, "python": executable[0] if executable else None}


def main(argv: list[str]) -> int:
    """`python -c <this file> '{"path": ..., "system_site_packages": ..., "pip": ...}'`, or
    `'{"install": {"path": ..., "python": ..., "wheels": [...]}}'` (install_wheels)."""
    request = json.loads(argv[0])
    result: dict[str, object]
    if "install" in request:  # wheels into a venv made before
        job = request["install"]
        try:
            result = install_wheels(job["path"], job["python"], job["wheels"],
                                    job.get("model"))
        except Exception as exc:  # noqa: BLE001 - reported as JSON; the caller cleans up
            result = {"ok": False, "why": f"{type(exc).__name__}: {exc}", "touched": True}
        print(json.dumps(result))
        return 0
    try:
        result = make_venv(request["path"], bool(request.get("system_site_packages")),
                           bool(request.get("pip", True)))
    except Exception as exc:  # noqa: BLE001 - reported as JSON; the caller cleans up
        result = {"ok": False, "why": f"{type(exc).__name__}: {exc}", "made": True}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
