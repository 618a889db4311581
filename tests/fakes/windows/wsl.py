"""A stateful fake of wsl.exe, faithful to microsoft/WSL's own source and tests.

- Management output is UTF-16LE (CRT `_O_U16TEXT`, no BOM) unless WSL_UTF8=1 is in the
  environment, or `wsl.utf8` is set in the state (what a host with WSL_UTF8=1 set for the
  SSH user does); `wsl.bom` adds a byte-order mark. Lines end with CRLF.
- Success of --import, --unregister, --terminate, --set-default, --set-version, --export:
  `The operation completed successfully. ` + CRLF (note the trailing space).
- Errors go to stdout as `<message>` CRLF `Error code: Wsl/...` and exit code -1, which a
  Linux process sees as 255.
- No distros: `-l`/`-l -v` print the WSL_E_DEFAULT_DISTRO_NOT_FOUND text with no
  error-code line, exit -1.
- `-d NAME [-u USER] --exec CMD...` runs the Linux command with the real /bin/sh on this
  machine, its absolute path arguments mapped into the distro's directory; its output is
  the command's own bytes (not UTF-16). Without --exec the command line is joined with
  spaces and run by `sh -c`, as WSL runs it through the user's shell.
Items marked "unverified" in the research notes (install's messages) are kept short.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from typing import Any

from tests.fakes.windows import state as fstate

SUCCESS = "The operation completed successfully. "
NOT_FOUND = ("There is no distribution with the supplied name.",
             "Wsl/Service/WSL_E_DISTRO_NOT_FOUND")
ALREADY_EXISTS = ("A distribution with the supplied name already exists. Use --name to choose "
                  "a different name.", "Wsl/Service/RegisterDistro/ERROR_ALREADY_EXISTS")
FILE_NOT_FOUND = ("The system cannot find the file specified.", "Wsl/ERROR_FILE_NOT_FOUND")
PATH_NOT_FOUND = ("The system cannot find the path specified.", "Wsl/ERROR_PATH_NOT_FOUND")
NO_DISTROS = [
    "Windows Subsystem for Linux has no installed distributions.",
    "You can resolve this by installing a distribution with the instructions below:",
    "",
    "Use 'wsl.exe --list --online' to list available distributions",
    "and 'wsl.exe --install <Distro>' to install.",
]
FAULT = ("Catastrophic failure", "Wsl/Service/E_UNEXPECTED")
INVALID_ARG = ("The parameter is incorrect.", "Wsl/E_INVALIDARG")


class Exit(Exception):
    """Leave with this exit code after printing `lines`."""

    def __init__(self, code: int, lines: list[str]) -> None:
        super().__init__(code)
        self.code = code
        self.lines = lines


def fail(error: tuple[str, str]) -> Exit:
    """wsl.exe's error form: the message, then the error code, exit -1 (255)."""
    return Exit(255, [error[0], f"Error code: {error[1]}"])


def emit(data: dict[str, Any], lines: list[str]) -> None:
    """Print management output in wsl.exe's encoding."""
    if not lines:
        return
    text = "".join(line + "\r\n" for line in lines)
    if os.environ.get("WSL_UTF8") == "1" or data["wsl"].get("utf8"):
        raw = text.encode("utf-8")
    else:
        raw = text.encode("utf-16-le")
        if data["wsl"].get("bom"):
            raw = b"\xff\xfe" + raw
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()


def find(data: dict[str, Any], name: str) -> str | None:
    """The registered name matching `name` (WSL compares names case-insensitively)."""
    for known in data["wsl"]["distros"]:
        if known.lower() == name.lower():
            return known
    return None


def ordered(data: dict[str, Any]) -> list[str]:
    """Distro names, the default first, then in registration order."""
    names = list(data["wsl"]["distros"])
    default = data["wsl"].get("default")
    if default in names:
        names.remove(default)
        names.insert(0, default)
    return names


def list_verbose(data: dict[str, Any]) -> list[str]:
    """`%s %-{N}s%-16s%s` rows, N = max(len('NAME'), longest name) + 4 (WslClient.cpp)."""
    names = ordered(data)
    width = max([len("NAME")] + [len(n) for n in names]) + 4
    default = data["wsl"].get("default")
    lines = [" " + " " + "NAME".ljust(width) + "STATE".ljust(16) + "VERSION"]
    for name in names:
        distro = data["wsl"]["distros"][name]
        marker = "*" if name == default else " "
        lines.append(marker + " " + name.ljust(width) + distro["state"].ljust(16)
                     + str(distro["version"]))
    return lines


def new_root(path: str, name: str) -> str:
    """A fresh distro file system with /etc/os-release."""
    root = os.path.join(fstate.root_dir(path), "rootfs-" + uuid.uuid4().hex[:12])
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "root"))
    with open(os.path.join(root, "etc", "os-release"), "w") as handle:
        handle.write(f'NAME="{name}"\nID=fake\n')
    with open(os.path.join(root, "etc", "passwd"), "w") as handle:
        handle.write("root:x:0:0:root:/root:/bin/sh\n")
    return root


def register(path: str, data: dict[str, Any], name: str, location: str | None,
             version: int) -> None:
    """Add a distro; the first one becomes the default."""
    data["wsl"]["distros"][name] = {"state": "Stopped", "version": version,
                                    "location": location, "root": new_root(path, name)}
    if not data["wsl"].get("default"):
        data["wsl"]["default"] = name


def parse_version_arg(value: str) -> int:
    """`--version 1|2`."""
    if value not in ("1", "2"):
        raise fail(INVALID_ARG)
    return int(value)


def cmd_list(data: dict[str, Any], args: list[str]) -> list[str]:
    """--list with --verbose, --quiet, --running, --all (as ListDistributionsHelper)."""
    flags = set(args)
    verbose = bool(flags & {"-v", "--verbose"})
    quiet = bool(flags & {"-q", "--quiet"})
    running = "--running" in flags
    if verbose and quiet or running and "--all" in flags:
        raise fail(INVALID_ARG)
    names = ordered(data)
    if running:
        names = [n for n in names if data["wsl"]["distros"][n]["state"] == "Running"]
        if not names:
            if quiet:
                return []
            raise Exit(255, ["There are no running distributions."])
    if not names:
        raise Exit(255, list(NO_DISTROS))
    if verbose:
        return list_verbose(data)
    if quiet:
        return names
    default = data["wsl"].get("default")
    return ["Windows Subsystem for Linux Distributions:"] + [
        f"{n} (Default)" if n == default else n for n in names]


def cmd_import(path: str, data: dict[str, Any], args: list[str]) -> list[str]:
    """--import NAME LOCATION FILE [--version N] [--vhd]."""
    if len(args) < 3:
        raise fail(INVALID_ARG)
    name, location, source = args[:3]
    rest = args[3:]
    version = 2
    while rest:
        flag = rest.pop(0)
        if flag == "--version" and rest:
            version = parse_version_arg(rest.pop(0))
        elif flag == "--vhd":
            pass
        else:
            raise fail(INVALID_ARG)
    if find(data, name):
        raise fail(ALREADY_EXISTS)
    if source != "-" and source.lower() not in data["files"]:
        raise fail(FILE_NOT_FOUND)
    register(path, data, name, location, version)
    return [SUCCESS]


def cmd_install(path: str, data: dict[str, Any], args: list[str]) -> list[str]:
    """--install [-d] DISTRO [--name N] [--location L] [--version V] [--no-launch]."""
    distro = name = location = None
    version = 2
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag in ("-d", "--distribution") and rest:
            distro = rest.pop(0)
        elif flag == "--name" and rest:
            name = rest.pop(0)
        elif flag == "--location" and rest:
            location = rest.pop(0)
        elif flag == "--version" and rest:
            version = parse_version_arg(rest.pop(0))
        elif flag in ("--no-launch", "-n", "--web-download"):
            pass
        elif not flag.startswith("-") and distro is None:
            distro = flag
        else:
            raise fail(INVALID_ARG)
    if distro is None:
        raise fail(INVALID_ARG)
    online = {n.lower(): n for n in data["wsl"]["online"]}
    if distro.lower() not in online:
        # unverified wording
        raise Exit(255, [f"Invalid distribution name: '{distro}'.",
                         "To get a list of valid distributions, use 'wsl.exe --list --online'.",
                         "Error code: Wsl/InstallDistro/WSL_E_DISTRO_NOT_FOUND"])
    name = name or online[distro.lower()]
    if find(data, name):
        raise fail(ALREADY_EXISTS)
    register(path, data, name, location, version)
    # unverified wording
    return [f"Downloading: {online[distro.lower()]}", f"Installing: {online[distro.lower()]}",
            f"Distribution successfully installed. It can be launched via 'wsl.exe -d {name}'"]


def existing(data: dict[str, Any], args: list[str]) -> str:
    """The first argument as a registered distro name, or WSL_E_DISTRO_NOT_FOUND."""
    if not args:
        raise fail(INVALID_ARG)
    name = find(data, args[0])
    if name is None:
        raise fail(NOT_FOUND)
    return name


def cmd_unregister(data: dict[str, Any], args: list[str]) -> list[str]:
    """--unregister NAME: its file system is deleted."""
    name = existing(data, args)
    distro = data["wsl"]["distros"].pop(name)
    shutil.rmtree(distro["root"], ignore_errors=True)
    if data["wsl"].get("default") == name:
        data["wsl"]["default"] = next(iter(data["wsl"]["distros"]), None)
    return [SUCCESS]


def cmd_export(data: dict[str, Any], args: list[str]) -> list[str]:
    """--export NAME FILE [--format F]: the file appears on the Windows side."""
    name = existing(data, args)
    if len(args) < 2:
        raise fail(INVALID_ARG)
    target = args[1]
    folder = target.rsplit("\\", 1)[0].lower() if "\\" in target else ""
    known_dirs = {k for k, v in data["files"].items() if v.get("kind") == "dir"}
    if folder and folder not in known_dirs:
        raise fail(PATH_NOT_FOUND)
    data["files"][target.lower()] = {"kind": "rootfs", "from": name, "path": target}
    data["wsl"]["distros"][name]["state"] = "Stopped"
    return [SUCCESS]


def main(argv: list[str]) -> int:
    """Entry point of tests/fakes/bin/wsl.exe."""
    path = fstate.state_path()
    fstate.latency()
    with fstate.locked(path):
        data = fstate.load(path)
        data["calls"].append({"tool": "wsl.exe", "argv": argv})
        try:
            fault = fstate.take_fault(data, "wsl.exe", " ".join(argv))
            if fault is not None:
                raise Exit(255, [fault.get("message", FAULT[0]),
                                 "Error code: " + fault.get("code", FAULT[1])])
            run = distro_command(data, argv)
            if run is None:
                lines = management(path, data, argv)
                code = 0
        except Exit as exc:
            lines, code, run = exc.lines, exc.code, None
        fstate.save(path, data)
    if run is not None:
        return run_in_distro(*run)
    emit(data, lines)
    return code


def management(path: str, data: dict[str, Any], argv: list[str]) -> list[str]:
    """Every command but running a Linux command."""
    if not argv:
        raise fail(INVALID_ARG)
    command, args = argv[0], argv[1:]
    if command == "--version":
        return [f"WSL version: {data['wsl']['version']}", "Kernel version: 5.15.167.4-1",
                "WSLg version: 1.0.65", "MSRDC version: 1.2.5620",
                "Direct3D version: 1.611.1-81528511",
                "DXCore version: 10.0.26100.1-240331-1435.ge-release",
                "Windows version: 10.0.22631.4602"]
    if command in ("-l", "--list"):
        return cmd_list(data, args)
    if command == "--import":
        return cmd_import(path, data, args)
    if command == "--install":
        return cmd_install(path, data, args)
    if command == "--unregister":
        return cmd_unregister(data, args)
    if command in ("-t", "--terminate"):
        name = existing(data, args)
        data["wsl"]["distros"][name]["state"] = "Stopped"
        return [SUCCESS]
    if command in ("-s", "--set-default"):
        data["wsl"]["default"] = existing(data, args)
        return [SUCCESS]
    if command == "--set-version":
        name = existing(data, args)
        if len(args) < 2:
            raise fail(INVALID_ARG)
        version = parse_version_arg(args[1])
        distro = data["wsl"]["distros"][name]
        distro["version"] = version
        distro["state"] = "Stopped"
        lines = ["For information on key differences with WSL 2 please visit "
                 "https://aka.ms/wsl2"] if version == 2 else []
        return lines + ["Conversion in progress, this may take a few minutes.", SUCCESS]
    if command == "--export":
        return cmd_export(data, args)
    if command == "--shutdown":
        for distro in data["wsl"]["distros"].values():
            distro["state"] = "Stopped"
        return []
    raise fail(INVALID_ARG)


def distro_command(data: dict[str, Any], argv: list[str]
                   ) -> tuple[str, list[str], bool] | None:
    """(root, command, exec) for `-d NAME [-u USER] [--cd D] (--exec|-e|--) CMD...`."""
    rest = list(argv)
    name = None
    exec_mode = False
    command: list[str] | None = None
    while rest:
        flag = rest.pop(0)
        if flag in ("-d", "--distribution") and rest:
            name = rest.pop(0)
        elif flag in ("-u", "--user") and rest:
            rest.pop(0)
        elif flag == "--cd" and rest:
            rest.pop(0)
        elif flag in ("-e", "--exec"):
            exec_mode, command = True, rest
            break
        elif flag == "--":
            command = rest
            break
        else:
            return None if name is None else _bad()
    if name is None or command is None:
        return None
    found = find(data, name)
    if found is None:
        raise fail(NOT_FOUND)
    if not command:
        raise fail(INVALID_ARG)
    distro = data["wsl"]["distros"][found]
    distro["state"] = "Running"
    return distro["root"], command, exec_mode


def _bad() -> None:
    raise fail(INVALID_ARG)


def run_in_distro(root: str, command: list[str], exec_mode: bool) -> int:
    """Run the Linux command with /bin/sh here, absolute paths mapped under `root`."""
    mapped = [command[0]] + [os.path.join(root, arg.lstrip("/")) if arg.startswith("/")
                             else arg for arg in command[1:]]
    if not exec_mode:
        mapped = ["sh", "-c", " ".join(mapped)]
    process = subprocess.Popen(mapped, cwd=root, start_new_session=True)
    code = process.wait()
    try:  # what the command left behind dies here; the fake distro stays "Running"
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return code
