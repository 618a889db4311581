"""Where vmrun and vmware-vdiskmanager live, and vmrun's host type: pure functions of the
platform, each branch tested."""

from __future__ import annotations

from collections.abc import Mapping

FUSION_LIBRARY = "/Applications/VMware Fusion.app/Contents/Library"


def host_type(system: str) -> str:
    """vmrun's `-T` value: fusion on macOS, ws (Workstation) on Windows and Linux."""
    return "fusion" if system == "Darwin" else "ws"


def program_name(tool: str, system: str) -> str:
    """`vmrun` / `vmware-vdiskmanager`, with .exe on Windows."""
    return tool + ".exe" if system == "Windows" else tool


def install_locations(tool: str, system: str, env: Mapping[str, str]) -> list[str]:
    """Candidate paths of `tool` (vmrun or vmware-vdiskmanager) when it is not on PATH."""
    if system == "Windows":
        out = []
        for variable, default in (("ProgramFiles(x86)", "C:\\Program Files (x86)"),
                                  ("ProgramFiles", "C:\\Program Files")):
            folder = env.get(variable, default).rstrip("\\")
            out.append(f"{folder}\\VMware\\VMware Workstation\\{tool}.exe")
        return list(dict.fromkeys(out))
    if system == "Darwin":
        return [f"{FUSION_LIBRARY}/{tool}"]
    return [f"/usr/bin/{tool}", f"/usr/local/bin/{tool}"]


def same_vmx_path(left: str, right: str, system: str) -> bool:
    """Whether two .vmx paths name the same file as vmrun reports them: case-insensitive
    and with either slash on Windows, case-insensitive on macOS (as Vagrant compares)."""
    if system == "Windows":
        return left.replace("/", "\\").lower() == right.replace("/", "\\").lower()
    if system == "Darwin":
        return left.lower() == right.lower()
    return left == right
