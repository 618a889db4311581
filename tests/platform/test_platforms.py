"""Every platform branch of decl.platforms, tested on this machine."""

from __future__ import annotations

import os

import pytest

from decl import platforms
from decl.platforms import LINUX, MACOS, WINDOWS


@pytest.mark.parametrize(("platform", "system"), [
    ("linux", LINUX), ("darwin", MACOS), ("win32", WINDOWS), ("cygwin", WINDOWS),
    ("freebsd14", LINUX),
])
def test_system_of(platform, system):
    assert platforms.system_of(platform) == system


def test_lock_module_per_system():
    assert platforms.lock_module_name(WINDOWS) == "msvcrt"
    assert platforms.lock_module_name(MACOS) == "fcntl"
    assert platforms.lock_module_name(LINUX) == "fcntl"


@pytest.mark.parametrize("system", platforms.SYSTEMS)
def test_decl_state_dir_comes_first_everywhere(system):
    env = {"DECL_STATE_DIR": "/x/state", "XDG_STATE_HOME": "/xdg", "LOCALAPPDATA": "C:\\L"}
    assert platforms.state_dir(system, env, "/home/u") == "/x/state"


def test_state_dir_linux():
    assert platforms.state_dir(LINUX, {}, "/home/u") == "/home/u/.local/state/decl"
    assert platforms.state_dir(LINUX, {"XDG_STATE_HOME": "/xdg"}, "/home/u") == "/xdg/decl"


def test_state_dir_macos():
    assert platforms.state_dir(MACOS, {}, "/Users/u") == \
        "/Users/u/Library/Application Support/decl"
    assert platforms.state_dir(MACOS, {"XDG_STATE_HOME": "/Users/u/.st"}, "/Users/u") == \
        "/Users/u/.st/decl"


def test_state_dir_windows():
    env = {"LOCALAPPDATA": "C:\\Users\\u\\AppData\\Local", "XDG_STATE_HOME": "/ignored"}
    assert platforms.state_dir(WINDOWS, env, "C:\\Users\\u") == \
        "C:\\Users\\u\\AppData\\Local\\decl"
    assert platforms.state_dir(WINDOWS, {}, "C:\\Users\\u") == \
        "C:\\Users\\u\\AppData\\Local\\decl"


def test_executable_names_follow_pathext_on_windows_only():
    assert platforms.executable_names("VBoxManage", LINUX, {"PATHEXT": ".EXE"}) == ["VBoxManage"]
    assert platforms.executable_names("vmrun", WINDOWS, {"PATHEXT": ".COM;.EXE;.BAT"}) == \
        ["vmrun.com", "vmrun.exe", "vmrun.bat"]
    assert platforms.executable_names("wsl.exe", WINDOWS, {}) == ["wsl.exe"]
    assert platforms.executable_names("x", WINDOWS, {}) == ["x.com", "x.exe", "x.bat", "x.cmd"]


def test_search_path_windows_uses_semicolons_and_pathext():
    files = {"C:\\Tools\\vmrun.exe", "C:\\Other\\vmrun.bat"}
    env = {"PATH": "C:\\Empty;\"C:\\Tools\";C:\\Other", "PATHEXT": ".EXE;.BAT"}
    assert platforms.search_path("vmrun", WINDOWS, env, files.__contains__) == \
        "C:\\Tools\\vmrun.exe"
    assert platforms.search_path("vmrun", WINDOWS, {"PATH": "C:\\Other", "PATHEXT": ".EXE;.BAT"},
                                 files.__contains__) == "C:\\Other\\vmrun.bat"
    assert platforms.search_path("C:\\Tools\\vmrun", WINDOWS, env, files.__contains__) == \
        "C:\\Tools\\vmrun.exe"


def test_search_path_posix_uses_colons_and_no_extension():
    files = {"/opt/bin/prlctl"}
    assert platforms.search_path("prlctl", MACOS, {"PATH": "/usr/bin:/opt/bin"},
                                 files.__contains__) == "/opt/bin/prlctl"
    assert platforms.search_path("prlctl", MACOS, {"PATH": "/usr/bin"},
                                 files.__contains__) is None


def test_tool_candidates_windows_fill_environment_and_skip_unset():
    env = {"ProgramFiles": "D:\\Apps", "VBOX_MSI_INSTALL_PATH": "E:\\VBox\\"}
    assert platforms.tool_candidates("VBoxManage", WINDOWS, env) == \
        ["E:\\VBox\\VBoxManage.exe", "D:\\Apps\\Oracle\\VirtualBox\\VBoxManage.exe"]
    # Without an environment, the usual defaults.
    assert platforms.tool_candidates("vmrun", WINDOWS)[0] == \
        "C:\\Program Files (x86)\\VMware\\VMware Workstation\\vmrun.exe"


def test_tool_candidates_macos_and_linux():
    assert platforms.tool_candidates("utmctl", MACOS) == \
        ["/Applications/UTM.app/Contents/MacOS/utmctl"]
    assert platforms.tool_candidates("utmctl", LINUX) == []
    assert platforms.tool_candidates("vmrun", MACOS)[0] == \
        "/Applications/VMware Fusion.app/Contents/Library/vmrun"
    assert "/usr/lib/virtualbox/VBoxManage" in platforms.tool_candidates("VBoxManage", LINUX)
    assert platforms.tool_candidates("prlctl", WINDOWS) == []


def test_every_tool_of_the_brief_is_in_the_table():
    for tool in ("VBoxManage", "vmrun", "vmware-vdiskmanager", "prlctl", "utmctl", "wsl.exe",
                 "powershell"):
        assert any(platforms.tool_candidates(tool, s) for s in platforms.SYSTEMS), tool
    with pytest.raises(KeyError, match="unknown tool"):
        platforms.tool_candidates("nope", LINUX)


def test_find_tool_prefers_path_then_install_location():
    asked: list[str] = []

    def which(name):
        asked.append(name)
        return "/usr/local/bin/pwsh" if name == "pwsh" else None

    assert platforms.find_tool("powershell", MACOS, which, lambda p: False) == \
        "/usr/local/bin/pwsh"
    assert asked == ["pwsh"]
    assert platforms.find_tool("powershell", WINDOWS, lambda n: None,
                               {"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"}
                               .__contains__) == \
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    app = "/Applications/VirtualBox.app/Contents/MacOS/VBoxManage"
    assert platforms.find_tool("VBoxManage", MACOS, lambda n: None, {app}.__contains__) == app
    assert platforms.find_tool("VBoxManage", MACOS, lambda n: None, lambda p: False) is None


def test_spawn_options_keep_ctrl_c_away_per_system():
    assert platforms.spawn_options(LINUX) == {"start_new_session": True}
    assert platforms.spawn_options(MACOS) == {"start_new_session": True}
    assert platforms.spawn_options(WINDOWS) == {"creationflags": 0x200}


def test_kill_command():
    assert platforms.kill_command(WINDOWS, 42) == ["taskkill", "/F", "/T", "/PID", "42"]
    assert platforms.kill_command(LINUX, 42) is None


def test_venv_python_per_system():
    assert platforms.venv_python("C:\\venvs\\tools", WINDOWS) == \
        "C:\\venvs\\tools\\Scripts\\python.exe"
    assert platforms.venv_python("/srv/tools", LINUX) == "/srv/tools/bin/python"
    assert platforms.venv_python("/Users/u/tools", MACOS) == "/Users/u/tools/bin/python"


@pytest.mark.posix  # the execute bit means nothing on Windows
def test_find_local_tool_searches_this_path(tmp_path, monkeypatch):
    tool = tmp_path / "VBoxManage"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'nothing'}{os.pathsep}{tmp_path}")
    monkeypatch.setattr(platforms, "current_system", lambda: LINUX)
    assert platforms.find_local_tool("VBoxManage") == str(tool)
    tool.chmod(0o644)  # not runnable: not found on PATH
    found = platforms.find_local_tool("VBoxManage")
    assert found != str(tool)
