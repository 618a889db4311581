"""The OS of a desktop hypervisor's host and where its tools are (each platform's branch)."""

from __future__ import annotations

from decl.connections.base import CommandResult
from decl.providers.desktop_host import HostSystems, system_from_uname
from decl.providers.virtualbox.locate import install_locations


def test_system_from_uname():
    assert system_from_uname("Darwin\n") == "Darwin"
    assert system_from_uname("Linux\n") == "Linux"
    assert system_from_uname("MINGW64_NT-10.0-19045\n") == "Windows"
    assert system_from_uname("") == "Linux"


class Conn:
    """A connection that answers `uname -s` and which(); files in `files` exist."""

    def __init__(self, shell="posix", uname="Darwin", on_path=None, files=(), local=False):
        self.shell, self.uname, self.on_path = shell, uname, on_path
        self.files, self.is_local, self.ran = set(files), local, []

    def run(self, argv, timeout=None):
        self.ran.append(argv)
        return CommandResult(tuple(argv), 0, self.uname.encode() + b"\n", b"")

    def which(self, program):
        return self.on_path

    def exists(self, path):
        return path in self.files


def test_powershell_host_is_windows_and_install_folder_is_used():
    conn = Conn(shell="powershell",
                files={"C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"})
    hosts = HostSystems()
    assert hosts.system(conn) == "Windows" and conn.ran == []
    assert hosts.tool(conn, "VBoxManage.exe", install_locations) == \
        "C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"


def test_posix_host_asks_uname_once_and_prefers_path():
    conn = Conn(uname="Darwin", on_path="/usr/local/bin/VBoxManage")
    hosts = HostSystems()
    assert hosts.system(conn) == hosts.system(conn) == "Darwin"
    assert conn.ran == [["uname", "-s"]]
    assert hosts.tool(conn, "VBoxManage", install_locations) == "/usr/local/bin/VBoxManage"


def test_mac_install_location_and_missing_tool():
    app = "/Applications/VirtualBox.app/Contents/MacOS/VBoxManage"
    assert HostSystems().tool(Conn(files={app}), "VBoxManage", install_locations) == app
    assert HostSystems().tool(Conn(), "VBoxManage", install_locations) is None
