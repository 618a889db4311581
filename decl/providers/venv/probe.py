"""The discovery script run on a host, once per host, by its own Python.

It reads, for every venv path asked about and every path in the project's index on that
host: pyvenv.cfg, decl's mark file, and the installed distributions' metadata (name,
version, Requires-Dist) straight from site-packages, without starting pip. It prints one
JSON document. Input (JSON on stdin): {"paths": [...], "index": "path of the index file",
"interpreters": [...], "scan": [directories whose venv subdirectories to read too]}.
On the local host the same code runs in decl's own process.
"""

from __future__ import annotations

from typing import Any

MARK_FILE = "decl.json"

# The script imports only what every run needs (json, os, sys):
# on another host it is a new interpreter per discovery, and its start-up is most of what a
# host costs a no-op plan. It runs with `-I -S` there (PYTHON* variables, the user's site
# and the working directory cannot change what it imports; no site-packages scan).
SURVEY = r'''
import json, os, sys

def cfg_of(path):
    out = {}
    try:
        with open(os.path.join(path, "pyvenv.cfg"), encoding="utf-8") as f:
            for line in f:
                if "=" in line:
                    k, v = line.split("=", 1)
                    out[k.strip()] = v.strip()
    except OSError:
        return None
    return out

def headers(text):
    name = version = None
    requires = []
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        elif line.startswith("Requires-Dist:"):
            requires.append(line[14:].strip())
    return name, version, requires

def names_in(directory):
    """The entries of a directory, sorted, hidden ones left out (as glob's * does)."""
    try:
        return sorted(n for n in os.listdir(directory) if not n.startswith("."))
    except OSError:
        return []

def site_dirs(path):
    """lib/python*/site-packages (POSIX venvs) and Lib/site-packages (Windows venvs)."""
    lib = os.path.join(path, "lib")
    found = [os.path.join(lib, n, "site-packages") for n in names_in(lib)
             if n.startswith("python")]
    found.append(os.path.join(path, "Lib", "site-packages"))
    return [sp for sp in found if os.path.lexists(sp)]

def dists(path):
    found = []
    for sp in site_dirs(path):
        entries = names_in(sp)
        for info in [os.path.join(sp, n) for n in entries if n.endswith(".dist-info")]:
            try:
                with open(os.path.join(info, "METADATA"), encoding="utf-8", errors="replace") as f:
                    name, version, requires = headers(f.read())
            except OSError:
                continue
            if name:
                found.append({"name": name, "version": version, "requires": requires})
        for info in [os.path.join(sp, n) for n in entries if n.endswith(".egg-info")]:
            meta = os.path.join(info, "PKG-INFO") if os.path.isdir(info) else info
            try:
                with open(meta, encoding="utf-8", errors="replace") as f:
                    name, version, _ = headers(f.read())
            except OSError:
                continue
            if name:
                found.append({"name": name, "version": version, "requires": []})
    return found

def probe(raw):
    path = os.path.abspath(os.path.expanduser(raw))
    item = {"path": raw, "expanded": path, "exists": os.path.lexists(path),
            "is_dir": os.path.isdir(path)}
    cfg = cfg_of(path)
    item["cfg"] = cfg
    if item["is_dir"]:
        try:
            item["entries"] = len(os.listdir(path))
        except OSError:
            item["entries"] = None
    try:
        with open(os.path.join(path, "decl.json"), encoding="utf-8") as f:
            item["marks"] = json.load(f)
    except (OSError, ValueError):
        item["marks"] = None
    if cfg is not None:
        item["dists"] = dists(path)
        exe = None
        for cand in ("bin/python", "Scripts/python.exe"):
            if os.path.exists(os.path.join(path, cand)):
                exe = os.path.join(path, cand)
        item["python"] = exe
    return item

def interpreter(want):
    """The real file of an interpreter given as a path or a command name (python3)."""
    if "/" in want or os.sep in want or want.startswith("~"):
        found = os.path.expanduser(want)
    else:
        import shutil
        found = shutil.which(want)
        if not found:
            return None
    real = os.path.realpath(found)
    try:
        with open(real, "rb") as f:
            script = f.read(2) == b"#!"
    except OSError:
        return real
    if not script:
        return real
    # a launcher script (a pyenv shim, say): ask the interpreter it starts
    import subprocess
    try:
        done = subprocess.run([found, "-c", "import sys; print(sys.executable)"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return real
    out = done.stdout.strip()
    return os.path.realpath(out) if done.returncode == 0 and out else real

IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython",
                   "jython": "Jython"}

def markers():
    """The environment markers requirements may test. On POSIX from os.uname(), which is
    where the platform module takes them from (importing it compiles a dozen regular
    expressions: half the start-up of this script)."""
    implementation = IMPLEMENTATIONS.get(sys.implementation.name)
    if hasattr(os, "uname") and implementation:
        uname = os.uname()
        system, machine = uname.sysname, uname.machine
    else:
        import platform
        system, machine = platform.system(), platform.machine()
        implementation = platform.python_implementation()
    return {"platform_system": system, "sys_platform": sys.platform,
            "platform_machine": machine, "os_name": os.name,
            "implementation_name": sys.implementation.name,
            "platform_python_implementation": implementation}

def survey(req):
    index = []
    index_file = os.path.expanduser(req.get("index") or "")
    if index_file and os.path.exists(index_file):
        try:
            with open(index_file, encoding="utf-8") as f:
                index = json.load(f).get("venvs", [])
        except (OSError, ValueError):
            index = []
    scanned = []
    for raw_dir in req.get("scan", []):
        full = os.path.abspath(os.path.expanduser(raw_dir))
        if os.path.exists(os.path.join(full, "pyvenv.cfg")):
            scanned.append(raw_dir)
        try:
            subs = sorted(os.listdir(full))
        except OSError:
            subs = []
        scanned += [raw_dir.rstrip("/\\") + "/" + sub for sub in subs
                    if os.path.exists(os.path.join(full, sub, "pyvenv.cfg"))]
    paths = list(dict.fromkeys(list(req.get("paths", [])) + [e["path"] for e in index]
                               + scanned))
    interpreters = {}
    for want in req.get("interpreters", []):
        interpreters[want] = interpreter(want)
    return {"venvs": [probe(p) for p in paths], "index": index, "env": markers(),
            "home": os.path.expanduser("~"), "interpreters": interpreters}
'''

# What another host's Python runs: the functions above, then one survey of stdin's request.
SCRIPT = SURVEY + "\njson.dump(survey(json.load(sys.stdin)), sys.stdout)\n"

# The provider's check and the survey in one interpreter (one round trip per host for a
# plan): line 1 is this Python's version, whether it has the venv module and where uv is on
# PATH (what `check` reports); line 2 is the survey, or the error that stopped it.
CHECK = r'''
def on_path(name):
    """The first executable `name` on PATH, as the shell's `command -v` finds it."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None

def check():
    from importlib.machinery import PathFinder
    return {"version": sys.version.split()[0], "uv": on_path("uv"),
            "venv": PathFinder.find_spec("venv") is not None}
'''
CHECKED_SCRIPT = SURVEY + CHECK + """
request = json.load(sys.stdin)
sys.stdout.write(json.dumps(check()) + "\\n")
sys.stdout.flush()
try:
    answer = {"survey": survey(request)}
except Exception as exc:
    answer = {"error": "%s: %s" % (type(exc).__name__, exc)}
sys.stdout.write(json.dumps(answer) + "\\n")
"""
# How another host's Python runs the scripts: isolated (-I: no PYTHON* variables, no user
# site, not the working directory first on sys.path) and without site (-S).
FLAGS = ("-I", "-S")

_local: dict[str, Any] = {}


def survey_here(request: dict[str, Any]) -> dict[str, Any]:
    """The same survey in this process (the local host: no interpreter to start)."""
    if not _local:
        exec(compile(SURVEY, "decl-venv-survey", "exec"), _local)  # noqa: S102 - our own code
    result: dict[str, Any] = _local["survey"](request)
    return result
