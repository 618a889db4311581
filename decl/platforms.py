"""What differs between Linux, macOS and Windows, as small pure functions of the platform.

Every function takes the platform (and the environment, the file system probes) as
arguments, so each branch is tested on any machine. Callers pass `current_system()`,
`os.environ`, `shutil.which` and `os.path.exists`. Sources of the install locations are in
docs/platforms.md.
"""

from __future__ import annotations

import ntpath
import posixpath
import sys
from collections.abc import Callable, Mapping
from typing import Any

LINUX = "linux"
MACOS = "darwin"
WINDOWS = "windows"
SYSTEMS = (LINUX, MACOS, WINDOWS)

# Windows' CREATE_NEW_PROCESS_GROUP: the child gets no CTRL_C_EVENT from the console.
CREATE_NEW_PROCESS_GROUP = 0x00000200
DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD"


def system_of(platform: str) -> str:
    """`sys.platform` -> linux | darwin | windows (other Unixes count as linux)."""
    if platform.startswith("win") or platform == "cygwin":
        return WINDOWS
    if platform == "darwin":
        return MACOS
    return LINUX


def current_system() -> str:
    """The system decl runs on."""
    return system_of(sys.platform)


def lock_module_name(system: str) -> str:
    """The standard module that locks a file on this system: msvcrt on Windows, else fcntl."""
    return "msvcrt" if system == WINDOWS else "fcntl"


def state_dir(system: str, env: Mapping[str, str], home: str) -> str:
    """Where decl keeps its locks, journals and indexes.

    $DECL_STATE_DIR first everywhere. Windows: %LOCALAPPDATA%\\decl (else
    HOME\\AppData\\Local\\decl). macOS: $XDG_STATE_HOME/decl when set (people who use XDG on
    a Mac set it on purpose), else ~/Library/Application Support/decl. Linux:
    $XDG_STATE_HOME/decl, else ~/.local/state/decl.
    """
    explicit = env.get("DECL_STATE_DIR")
    if explicit:
        return explicit
    if system == WINDOWS:
        local = env.get("LOCALAPPDATA") or ntpath.join(home, "AppData", "Local")
        return ntpath.join(local, "decl")
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return posixpath.join(xdg, "decl")
    if system == MACOS:
        return posixpath.join(home, "Library", "Application Support", "decl")
    return posixpath.join(home, ".local", "state", "decl")


def executable_names(program: str, system: str, env: Mapping[str, str]) -> list[str]:
    """The file names `program` may have: on Windows each PATHEXT extension, unless it has one."""
    if system != WINDOWS:
        return [program]
    extensions = [e for e in (env.get("PATHEXT") or DEFAULT_PATHEXT).split(";") if e]
    if any(program.lower().endswith(e.lower()) for e in extensions):
        return [program]
    return [program + e.lower() for e in extensions]


def search_path(program: str, system: str, env: Mapping[str, str],
                exists: Callable[[str], bool]) -> str | None:
    """`which` as the given system does it: PATH entries in order, PATHEXT on Windows."""
    join = ntpath.join if system == WINDOWS else posixpath.join
    separator = ";" if system == WINDOWS else ":"
    names = executable_names(program, system, env)
    if ("\\" in program or "/" in program):
        return next((name for name in names if exists(name)), None)
    for directory in (env.get("PATH") or env.get("Path") or "").split(separator):
        directory = directory.strip().strip('"')
        if not directory:
            continue
        for name in names:
            candidate = join(directory, name)
            if exists(candidate):
                return candidate
    return None


# Where each vendor tool is installed when it is not on PATH, per system. `{NAME}` is an
# environment variable (an entry whose variable is unset is skipped). See docs/platforms.md.
TOOL_LOCATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "VBoxManage": {
        WINDOWS: ("{VBOX_MSI_INSTALL_PATH}\\VBoxManage.exe", "{VBOX_INSTALL_PATH}\\VBoxManage.exe",
                  "{ProgramFiles}\\Oracle\\VirtualBox\\VBoxManage.exe"),
        MACOS: ("/Applications/VirtualBox.app/Contents/MacOS/VBoxManage",
                "/usr/local/bin/VBoxManage"),
        LINUX: ("/usr/bin/VBoxManage", "/usr/lib/virtualbox/VBoxManage",
                "/opt/VirtualBox/VBoxManage"),
    },
    "vmrun": {
        WINDOWS: ("{VMWARE_HOME}\\vmrun.exe",
                  "{ProgramFiles(x86)}\\VMware\\VMware Workstation\\vmrun.exe",
                  "{ProgramFiles}\\VMware\\VMware Workstation\\vmrun.exe"),
        MACOS: ("/Applications/VMware Fusion.app/Contents/Library/vmrun",),
        LINUX: ("/usr/bin/vmrun", "/usr/local/bin/vmrun"),
    },
    "vmware-vdiskmanager": {
        WINDOWS: ("{VMWARE_HOME}\\vmware-vdiskmanager.exe",
                  "{ProgramFiles(x86)}\\VMware\\VMware Workstation\\vmware-vdiskmanager.exe",
                  "{ProgramFiles}\\VMware\\VMware Workstation\\vmware-vdiskmanager.exe"),
        MACOS: ("/Applications/VMware Fusion.app/Contents/Library/vmware-vdiskmanager",),
        LINUX: ("/usr/bin/vmware-vdiskmanager", "/usr/local/bin/vmware-vdiskmanager"),
    },
    "prlctl": {
        MACOS: ("/usr/local/bin/prlctl",
                "/Applications/Parallels Desktop.app/Contents/MacOS/prlctl"),
    },
    "utmctl": {
        MACOS: ("/Applications/UTM.app/Contents/MacOS/utmctl",),
    },
    "wsl.exe": {
        WINDOWS: ("{SystemRoot}\\System32\\wsl.exe",
                  "{LOCALAPPDATA}\\Microsoft\\WindowsApps\\wsl.exe"),
        # Inside a WSL distro, through the interop mount.
        LINUX: ("/mnt/c/Windows/System32/wsl.exe",),
    },
    "powershell": {
        WINDOWS: ("{SystemRoot}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                  "{ProgramFiles}\\PowerShell\\7\\pwsh.exe"),
        MACOS: ("/usr/local/bin/pwsh", "/opt/homebrew/bin/pwsh"),
        LINUX: ("/usr/bin/pwsh", "/opt/microsoft/powershell/7/pwsh",
                "/mnt/c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe"),
    },
}

# The name looked up on PATH first, per system (Windows' PowerShell is powershell.exe;
# elsewhere it is PowerShell 7's pwsh).
_PATH_NAMES: dict[str, dict[str, str]] = {
    "powershell": {WINDOWS: "powershell", MACOS: "pwsh", LINUX: "pwsh"},
    "wsl.exe": {WINDOWS: "wsl", LINUX: "wsl.exe"},
}


def _expand(template: str, env: Mapping[str, str]) -> str | None:
    """Fill `{VAR}` from env; None when a variable is unset or empty."""
    out = template
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        value = env.get(out[start + 1:end])
        if not value:
            return None
        out = out[:start] + value.rstrip("\\/") + out[end + 1:]
    return out


def tool_candidates(tool: str, system: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The install locations of a vendor tool on `system`, most likely first.

    Windows locations use environment variables (%ProgramFiles%, %SystemRoot%...): give
    `env` to fill them; without it they fall back to the usual C:\\ defaults.
    """
    if tool not in TOOL_LOCATIONS:
        raise KeyError(f"unknown tool {tool!r}; known: {', '.join(sorted(TOOL_LOCATIONS))}")
    values = dict(_WINDOWS_DEFAULTS) if env is None else dict(env)
    found: list[str] = []
    for template in TOOL_LOCATIONS[tool].get(system, ()):
        path = _expand(template, values)
        if path and path not in found:
            found.append(path)
    return found


_WINDOWS_DEFAULTS = {"ProgramFiles": "C:\\Program Files",
                     "ProgramFiles(x86)": "C:\\Program Files (x86)",
                     "SystemRoot": "C:\\Windows"}


def path_name(tool: str, system: str) -> str:
    """The name to look up on PATH for a tool on `system`."""
    return _PATH_NAMES.get(tool, {}).get(system, tool)


def find_tool(tool: str, system: str, which: Callable[[str], str | None],
              exists: Callable[[str], bool], env: Mapping[str, str] | None = None) -> str | None:
    """A vendor tool: on PATH first (`which`), else its install location on `system`."""
    on_path = which(path_name(tool, system))
    if on_path:
        return on_path
    return next((path for path in tool_candidates(tool, system, env) if exists(path)), None)


def find_local_tool(tool: str) -> str | None:
    """find_tool on this machine (PATH searched by search_path, PATHEXT on Windows)."""
    import os

    system = current_system()

    def runnable(path: str) -> bool:
        return os.path.isfile(path) and (system == WINDOWS or os.access(path, os.X_OK))

    return find_tool(tool, system, lambda name: search_path(name, system, os.environ, runnable),
                     os.path.exists, os.environ)


def spawn_options(system: str) -> dict[str, Any]:
    """subprocess options that keep the terminal's Ctrl-C away from a tool.

    POSIX: a session of its own (no SIGINT from the terminal's process group). Windows: a
    new process group (no CTRL_C_EVENT). decl kills these processes itself when it dies
    (decl.connections.reaper).
    """
    if system == WINDOWS:
        return {"creationflags": CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_command(system: str, pid: int) -> list[str] | None:
    """argv that kills a process tree on `system`; None where signals do it (POSIX)."""
    if system == WINDOWS:
        return ["taskkill", "/F", "/T", "/PID", str(pid)]
    return None


def parse_proc_stat_start(stat: str) -> str | None:
    """Start time (clock ticks since boot) from Linux's /proc/PID/stat: field 22.

    The command name (field 2) is in parentheses and may hold spaces or parentheses itself,
    so the fields are counted after the last ')'.
    """
    _, sep, rest = stat.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < 20:
        return None
    return fields[19]


def process_start_probe(system: str, pid: int) -> tuple[str, list[str] | str] | None:
    """How to read when a process started: ("file", path) on Linux, ("run", argv) on macOS.

    None on Windows: there the watchdog kills the tree with taskkill while decl's process
    tree is known, and leftovers are not matched by start time.
    """
    if system == LINUX:
        return ("file", f"/proc/{pid}/stat")
    if system == MACOS:
        return ("run", ["ps", "-o", "lstart=", "-p", str(pid)])
    return None


def start_token_from(system: str, output: str) -> str | None:
    """The start token from the probe's output (Linux: /proc stat; macOS: ps lstart)."""
    if system == LINUX:
        return parse_proc_stat_start(output)
    text = " ".join(output.split())
    return text or None


def venv_python(venv_dir: str, system: str) -> str:
    """A venv's interpreter: Scripts\\python.exe on Windows, bin/python elsewhere."""
    if system == WINDOWS:
        return ntpath.join(venv_dir, "Scripts", "python.exe")
    return posixpath.join(venv_dir, "bin", "python")
