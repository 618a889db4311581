"""Where VBoxManage lives on each OS: pure functions of the platform, each branch tested."""

from __future__ import annotations

from collections.abc import Mapping


def install_locations(system: str, env: Mapping[str, str]) -> list[str]:
    """Candidate VBoxManage paths when it is not on PATH, most likely first.

    `system` is platform.system()'s word (Windows, Darwin, Linux...); `env` the host's
    environment (Windows installs record their folder in VBOX_MSI_INSTALL_PATH)."""
    if system == "Windows":
        out = []
        for variable in ("VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"):
            folder = env.get(variable)
            if folder:
                out.append(folder.rstrip("\\/") + "\\VBoxManage.exe")
        program_files = env.get("ProgramFiles", "C:\\Program Files")
        out.append(program_files.rstrip("\\") + "\\Oracle\\VirtualBox\\VBoxManage.exe")
        return list(dict.fromkeys(out))
    if system == "Darwin":
        return ["/Applications/VirtualBox.app/Contents/MacOS/VBoxManage",
                "/usr/local/bin/VBoxManage"]
    return ["/usr/bin/VBoxManage", "/usr/local/bin/VBoxManage",
            "/usr/lib/virtualbox/VBoxManage", "/opt/VirtualBox/VBoxManage"]


def program_name(system: str) -> str:
    """The executable's name on PATH."""
    return "VBoxManage.exe" if system == "Windows" else "VBoxManage"


def default_machine_folder(system: str, home: str) -> str:
    """VirtualBox's default machine folder (where `createvm` puts VMs without
    --basefolder): `VirtualBox VMs` in the user's home on every OS."""
    separator = "\\" if system == "Windows" else "/"
    return home.rstrip("\\/") + separator + "VirtualBox VMs"
