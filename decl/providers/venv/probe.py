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

SURVEY = r'''
import glob, json, os, platform, shutil, subprocess, sys

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

def dists(path):
    found = []
    pattern = [os.path.join(path, "lib", "python*", "site-packages"),
               os.path.join(path, "Lib", "site-packages")]
    for sp in [p for pat in pattern for p in glob.glob(pat)]:
        for info in sorted(glob.glob(os.path.join(sp, "*.dist-info"))):
            try:
                with open(os.path.join(info, "METADATA"), encoding="utf-8", errors="replace") as f:
                    name, version, requires = headers(f.read())
            except OSError:
                continue
            if name:
                found.append({"name": name, "version": version, "requires": requires})
        for info in sorted(glob.glob(os.path.join(sp, "*.egg-info"))):
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
    try:
        done = subprocess.run([found, "-c", "import sys; print(sys.executable)"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return real
    out = done.stdout.strip()
    return os.path.realpath(out) if done.returncode == 0 and out else real

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
    env = {"platform_system": platform.system(), "sys_platform": sys.platform,
           "platform_machine": platform.machine(), "os_name": os.name,
           "implementation_name": sys.implementation.name,
           "platform_python_implementation": platform.python_implementation()}
    return {"venvs": [probe(p) for p in paths], "index": index, "env": env,
            "home": os.path.expanduser("~"), "interpreters": interpreters}
'''

# What another host's Python runs: the functions above, then one survey of stdin's request.
SCRIPT = SURVEY + "\njson.dump(survey(json.load(sys.stdin)), sys.stdout)\n"

_local: dict[str, Any] = {}


def survey_here(request: dict[str, Any]) -> dict[str, Any]:
    """The same survey in this process (the local host: no interpreter to start)."""
    if not _local:
        exec(compile(SURVEY, "decl-venv-survey", "exec"), _local)  # noqa: S102 - our own code
    result: dict[str, Any] = _local["survey"](request)
    return result
