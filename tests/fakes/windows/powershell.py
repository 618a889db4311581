"""A stateful fake of Windows PowerShell 5.1 (powershell.exe) and PowerShell 7 (pwsh) with
the Hyper-V cmdlets decl uses, faithful to the facts in docs/facts/hyperv.md:

- `-Command <script>`: statements split by newlines and `;`, pipelines of cmdlets with
  `-Param value` and single-quoted literals (`''` and the Unicode single quotes doubled).
  A double-quoted string is refused: decl must never send one.
- ConvertTo-Json writes nothing for no input, one object (not an array) for one input, an
  array for several; enums such as State are integers. powershell.exe pretty-prints the 5.1
  way (4 spaces, `"key":  value`, `'<>&` escaped as \\u00XX); pwsh the 7 way.
- Errors are error records on stderr (`Cmdlet : message` + position + CategoryInfo in 5.1,
  `Cmdlet: message` in 7); with $ErrorActionPreference = 'Stop' the script ends there and
  the exit code is 1. `-ErrorAction SilentlyContinue` drops a cmdlet's error.
- Set-VM -ProcessorCount/-MemoryStartupBytes needs the VM off; Remove-VM leaves the VHDX
  files; Remove-Item refuses a disk attached to a VM; memory must be a multiple of 2MB.
- Stop-VM without -TurnOff asks the guest: a VM whose "Shutdown" is "hang" never finishes
  (the caller's timeout must end it), "fail" gives an error.
Wordings not found in a source are marked "unverified".
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from typing import Any

from tests.fakes.windows import dotnet
from tests.fakes.windows import state as fstate

SWITCHES = {"force", "turnoff", "differencing", "dynamic", "fixed", "novhd", "passthru",
            "listavailable", "compress", "asjob", "save"}
QUOTES = "'\u2018\u2019\u201a\u201b"
VHD_ROOT = "C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks"
VM_ROOT = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
VM_VIEW = ("Name", "Id", "State", "ProcessorCount", "MemoryStartup", "Generation", "Notes",
           "Path", "Uptime")


class PsError(Exception):
    """A cmdlet's error record."""

    def __init__(self, cmdlet: str, message: str, category: str = "InvalidOperation",
                 exception: str = "VirtualizationException", error_id: str = "") -> None:
        super().__init__(message)
        self.cmdlet = cmdlet
        self.message = message
        self.category = category
        self.exception = exception
        self.error_id = error_id or category


class Hang(Exception):
    """The guest never shuts down: the fake sleeps after saving its state."""


class Usage(Exception):
    """A script the fake cannot run (a bug in decl's scripts, as far as the tests go)."""


# -- tokens and statements -------------------------------------------------------------

def tokenize(text: str) -> list[tuple[str, Any]]:
    """(kind, value) tokens: SEP PIPE COMMA STR NUM VAR PARAM BARE ASSIGN LP RP."""
    tokens: list[tuple[str, Any]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t":
            i += 1
        elif ch in "\r\n;":
            tokens.append(("SEP", None))
            i += 1
        elif ch == "|":
            tokens.append(("PIPE", None))
            i += 1
        elif ch == ",":
            tokens.append(("COMMA", None))
            i += 1
        elif ch == "(":
            tokens.append(("LP", None))
            i += 1
        elif ch == ")":
            tokens.append(("RP", None))
            i += 1
        elif ch == "=":
            tokens.append(("ASSIGN", None))
            i += 1
        elif ch == '"':
            raise Usage("double-quoted strings are expanded by PowerShell: decl must not "
                        "send one")
        elif ch in QUOTES:
            out = []
            i += 1
            while True:
                if i >= len(text):
                    raise Usage("unterminated string")
                if text[i] in QUOTES:
                    if i + 1 < len(text) and text[i + 1] in QUOTES:
                        out.append(text[i])
                        i += 2
                        continue
                    i += 1
                    break
                out.append(text[i])
                i += 1
            tokens.append(("STR", "".join(out)))
        else:
            start = i
            while i < len(text) and text[i] not in " \t\r\n;|,()=" + '"' + QUOTES:
                i += 1
            word = text[start:i]
            if word.startswith("$"):
                tokens.append(("VAR", word[1:]))
            elif word.startswith("-") and len(word) > 1 and word[1].isalpha():
                tokens.append(("PARAM", word[1:]))
            elif word.isdigit():
                tokens.append(("NUM", int(word)))
            else:
                tokens.append(("BARE", word))
    return tokens


def statements(tokens: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """Token lists of each statement (empty ones dropped)."""
    return [s for s in dotnet.split_top_level(tokens, "SEP") if s]


def value_of(token: tuple[str, Any]) -> Any:
    """A literal's value."""
    kind, value = token
    if kind == "VAR":
        return {"true": True, "false": False, "null": None}.get(value.lower(), None)
    return value


def parse_command(tokens: list[tuple[str, Any]]) -> tuple[str, dict[str, Any], list[Any]]:
    """(cmdlet, params by lower-case name, positional values)."""
    if not tokens or tokens[0][0] != "BARE":
        raise Usage(f"expected a cmdlet name, got {tokens[:1]}")
    name = tokens[0][1]
    params: dict[str, Any] = {}
    positional: list[Any] = []
    i = 1
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "PARAM":
            key = value.lower()
            if key in SWITCHES:
                params[key] = True
                i += 1
            elif i + 1 < len(tokens) and tokens[i + 1][0] in ("STR", "NUM", "BARE", "VAR"):
                params[key] = value_of(tokens[i + 1])
                i += 2
            else:
                raise Usage(f"-{value} needs a value")
        elif kind in ("STR", "NUM", "BARE", "VAR"):
            positional.append(value_of(tokens[i]))
            i += 1
        elif kind == "COMMA":
            i += 1
        else:
            raise Usage(f"unexpected {kind} in {name}")
    return name, params, positional


def split_pipes(tokens: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """The commands of a pipeline."""
    out: list[list[tuple[str, Any]]] = [[]]
    for token in tokens:
        if token[0] == "PIPE":
            out.append([])
        else:
            out[-1].append(token)
    return out


# -- JSON ------------------------------------------------------------------------------

def ps51_string(value: str) -> str:
    """A JSON string the way Windows PowerShell 5.1 escapes it."""
    text = json.dumps(value)
    for char in "'<>&":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def to_json(value: Any, flavour: str, depth: int, indent: int = 0, compress: bool = False
            ) -> str:
    """ConvertTo-Json of one value."""
    if flavour == "pwsh" or compress:
        if compress:
            return json.dumps(value, separators=(",", ":"))
        return json.dumps(value, indent=2)
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return "{\n\n" + " " * indent + "}"
        items = [f"{pad}{ps51_string(str(k))}:  {to_json(v, flavour, depth, indent + 4)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        items = [pad + to_json(v, flavour, depth, indent + 4) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    if isinstance(value, str):
        return ps51_string(value)
    return json.dumps(value)


# -- the host ---------------------------------------------------------------------------

class Host:
    """The Hyper-V host in the state file, and the cmdlets that act on it."""

    def __init__(self, data: dict[str, Any], flavour: str) -> None:
        self.data = data
        self.hv = data["hyperv"]
        self.hv.setdefault("vms", [])
        self.hv.setdefault("switches", ["Default Switch"])
        self.hv.setdefault("vhds", {})
        self.flavour = flavour
        self.out: list[str] = []
        self.silent = False  # -ErrorAction SilentlyContinue on the cmdlet being run

    # helpers
    def vm_view(self, vm: dict[str, Any]) -> dict[str, Any]:
        view = {key: vm.get(key) for key in VM_VIEW}
        view["__vm"] = vm["Id"]
        return view

    def vm_of(self, obj: Any, cmdlet: str) -> dict[str, Any]:
        vm_id = obj.get("__vm") if isinstance(obj, dict) else None
        for vm in self.hv["vms"]:
            if vm["Id"] == vm_id:
                return vm
        raise PsError(cmdlet, "The operation cannot be performed because the object is not "
                      "a virtual machine.", "InvalidArgument")  # unverified

    def targets(self, cmdlet: str, params: dict[str, Any], inputs: list[Any] | None
                ) -> list[dict[str, Any]]:
        if inputs:
            return [self.vm_of(obj, cmdlet) for obj in inputs]
        if "name" in params:
            return self.by_name(cmdlet, params["name"])
        if "vm" in params:
            raise Usage("-VM is not supported by the fake")
        return []

    def by_name(self, cmdlet: str, name: str) -> list[dict[str, Any]]:
        if name == "*":
            return list(self.hv["vms"])
        found = [vm for vm in self.hv["vms"] if vm["Name"].lower() == name.lower()]
        if not found:
            raise PsError(cmdlet, f'Hyper-V was unable to find a virtual machine with name '
                          f'"{name}".', "ObjectNotFound")
        return found

    def vhd(self, path: str) -> dict[str, Any] | None:
        return self.hv["vhds"].get(path.lower())

    def switch_exists(self, name: str) -> bool:
        return any(s.lower() == name.lower() for s in self.hv["switches"])

    def check_memory(self, cmdlet: str, amount: int) -> None:
        if amount < 32 * 1024 * 1024 or amount % (2 * 1024 * 1024):
            raise PsError(cmdlet, "Failed to modify device 'Memory'. The amount of memory "
                          "must be a multiple of 2 MB and at least 32 MB.",  # unverified
                          "InvalidArgument")

    def attached(self, path: str) -> bool:
        return any(path.lower() in (d.lower() for d in vm.get("Disks", []))
                   for vm in self.hv["vms"])

    # cmdlets
    def run(self, cmdlet: str, params: dict[str, Any], positional: list[Any],
            inputs: list[Any] | None) -> list[Any]:
        method = getattr(self, "c_" + cmdlet.lower().replace("-", "_"), None)
        if method is None:
            raise PsError(cmdlet, f"The term '{cmdlet}' is not recognized as the name of a "
                          "cmdlet, function, script file, or operable program.",
                          "ObjectNotFound", "CommandNotFoundException", "CommandNotFoundException")
        return method(params, positional, inputs)

    def c_get_vm(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list[Any]:
        if "id" in params:
            found = [vm for vm in self.hv["vms"] if vm["Id"].lower() == str(params["id"]).lower()]
            if not found:
                raise PsError("Get-VM", f"Hyper-V was unable to find a virtual machine with id "
                              f"\"{params['id']}\".", "ObjectNotFound")  # unverified
            return [self.vm_view(vm) for vm in found]
        name = params.get("name", positional[0] if positional else None)
        vms = self.by_name("Get-VM", name) if name else list(self.hv["vms"])
        return [self.vm_view(vm) for vm in vms]

    def c_get_vmhost(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        return [{"Name": "WINBOX", "VirtualHardDiskPath": VHD_ROOT,
                 "VirtualMachinePath": VM_ROOT, "LogicalProcessorCount": 8}]

    def c_get_module(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        if self.hv.get("module", True) and str(params.get("name", "")).lower() == "hyper-v":
            return [{"Name": "Hyper-V", "Version": {"Major": 2, "Minor": 0, "Build": 0,
                                                    "Revision": 0, "MajorRevision": -1,
                                                    "MinorRevision": -1}}]
        return []

    def c_get_command(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        name = params.get("name", positional[0] if positional else "")
        path = shutil.which(str(name))
        if path is None:
            raise PsError("Get-Command", f"The term '{name}' is not recognized as the name of "
                          "a cmdlet, function, script file, or operable program.",
                          "ObjectNotFound", "CommandNotFoundException",
                          "CommandNotFoundException")
        return [{"Name": name, "Source": path}]

    def c_get_vmswitch(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        return [{"Name": s, "SwitchType": 1 if s == "Default Switch" else 2}
                for s in self.hv["switches"]
                if "name" not in params or s.lower() == str(params["name"]).lower()]

    def c_get_vmnetworkadapter(self, params: dict[str, Any], positional: list[Any],
                               inputs: Any) -> list:
        return [{"Name": "Network Adapter", "VMName": vm["Name"], "VMId": vm["Id"],
                 "SwitchName": vm.get("SwitchName"), "__vm": vm["Id"]}
                for vm in self.targets("Get-VMNetworkAdapter", params, inputs)]

    def c_connect_vmnetworkadapter(self, params: dict[str, Any], positional: list[Any],
                                   inputs: Any) -> list:
        switch = str(params.get("switchname", ""))
        if not self.switch_exists(switch):
            raise PsError("Connect-VMNetworkAdapter", f'Hyper-V was unable to find a virtual '
                          f'switch with name "{switch}".', "ObjectNotFound")
        for vm in self.targets("Connect-VMNetworkAdapter", params, inputs):
            vm["SwitchName"] = switch
        return []

    def c_disconnect_vmnetworkadapter(self, params: dict[str, Any], positional: list[Any],
                                      inputs: Any) -> list:
        for vm in self.targets("Disconnect-VMNetworkAdapter", params, inputs):
            vm["SwitchName"] = None
        return []

    def c_get_vmharddiskdrive(self, params: dict[str, Any], positional: list[Any],
                              inputs: Any) -> list:
        out = []
        for vm in self.targets("Get-VMHardDiskDrive", params, inputs):
            for index, path in enumerate(vm.get("Disks", [])):
                out.append({"VMName": vm["Name"], "VMId": vm["Id"], "Path": path,
                            "ControllerType": 0 if vm["Generation"] == 1 else 1,
                            "ControllerNumber": 0, "ControllerLocation": index})
        return out

    def c_add_vmharddiskdrive(self, params: dict[str, Any], positional: list[Any],
                              inputs: Any) -> list:
        path = str(params.get("path", ""))
        if self.vhd(path) is None:
            raise PsError("Add-VMHardDiskDrive", f"Failed to add device 'Virtual Hard Disk'. "
                          f"The system cannot find the file specified: '{path}'.",  # unverified
                          "ObjectNotFound")
        for vm in self.targets("Add-VMHardDiskDrive", params, inputs):
            vm.setdefault("Disks", []).append(path)
        return []

    def c_new_item(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        path = str(params.get("path", positional[0] if positional else ""))
        self.data["files"][path.lower()] = {"kind": "dir", "path": path}
        return [{"FullName": path}]

    def c_new_vhd(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        path = str(params.get("path", ""))
        if self.vhd(path) is not None:
            raise PsError("New-VHD", f"Failed to create the virtual hard disk. The system failed "
                          f"to create '{path}': The file exists. (0x80070050).",  # unverified
                          "ResourceExists")
        if params.get("differencing"):
            parent = str(params.get("parentpath", ""))
            base = self.vhd(parent)
            if base is None:
                raise PsError("New-VHD", f"Failed to create the virtual hard disk. The system "
                              f"cannot find the file specified: '{parent}'.",  # unverified
                              "ObjectNotFound")
            disk = {"Path": path, "Size": base["Size"], "ParentPath": parent,
                    "VhdType": 4}
        else:
            disk = {"Path": path, "Size": int(params.get("sizebytes", 0)), "ParentPath": None,
                    "VhdType": 3 if params.get("dynamic") else 2}
        self.hv["vhds"][path.lower()] = disk
        return [dict(disk)]

    def c_get_vhd(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        """Get-VHD -Path P, or piped objects with a Path (VMHardDiskDrive): one
        VirtualHardDisk each (Path, Size = virtual size, ParentPath, VhdType...)."""
        paths = [str(params.get("path", positional[0] if positional else ""))] \
            if not inputs else [str(Host._prop(item, "Path")) for item in inputs]
        out = []
        for path in paths:
            disk = self.vhd(path)
            if disk is None:
                if self.silent:
                    continue  # a non-terminating error, dropped
                raise PsError("Get-VHD", f"Getting the mounted storage instance for the path "
                              f"'{path}' failed.", "ObjectNotFound")  # unverified
            out.append({"Path": disk["Path"], "Size": disk["Size"],
                        "ParentPath": disk.get("ParentPath"), "VhdType": disk.get("VhdType"),
                        "VhdFormat": 3, "FileSize": disk["Size"] // 8, "Attached":
                        self.attached(disk["Path"])})
        return out

    # The WSL service's registry: one key per distro under HKCU:\...\Lxss, named by a GUID,
    # with DistributionName, BasePath (its folder), Version, DefaultUid, Flags, State.
    # [3p: patrick330602/blog-source source/_posts/wsl-related-registry.md; BasePath may
    # start with \\?\ (AlexF4Dev/move-wsl listLocations.ps1 strips it)]
    LXSS = "hkcu:\\software\\microsoft\\windows\\currentversion\\lxss"

    def c_get_childitem(self, params: dict[str, Any], positional: list[Any],
                        inputs: Any) -> list:
        path = str(params.get("path", params.get("literalpath",
                                                 positional[0] if positional else "")))
        if path.lower().rstrip("\\") != self.LXSS:
            raise Usage(f"Get-ChildItem {path} is not supported by the fake")
        keys = []
        for name in sorted(self.data["wsl"]["distros"]):
            guid = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "wsl:" + name)) + "}"
            keys.append({"PSChildName": guid, "__lxss": name})
        return keys

    def c_get_itemproperty(self, params: dict[str, Any], positional: list[Any],
                           inputs: Any) -> list:
        out = []
        for key in inputs or []:
            name = key.get("__lxss") if isinstance(key, dict) else None
            distro = self.data["wsl"]["distros"].get(name) if name else None
            if distro is None:
                continue
            guid = key["PSChildName"]
            location = distro.get("location")
            # --install without --location: the service picks a folder of its own
            base = location or ("\\\\?\\C:\\Users\\lab\\AppData\\Local\\wsl\\"
                                + guid)  # unverified default
            out.append({"PSChildName": guid, "DistributionName": name, "BasePath": base,
                        "Version": distro["version"], "DefaultUid": 0, "Flags": 15,
                        "State": 1})
        return out

    def c_resize_vhd(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        path = str(params.get("path", ""))
        disk = self.vhd(path)
        if disk is None:
            raise PsError("Resize-VHD", f"The system cannot find the file specified: '{path}'.",
                          "ObjectNotFound")  # unverified
        size = int(params.get("sizebytes", 0))
        if size < disk["Size"]:
            raise PsError("Resize-VHD", "Failed to resize the virtual disk. The size specified "
                          "is smaller than the current size.", "InvalidArgument")  # unverified
        disk["Size"] = size
        return []

    def c_copy_item(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        source = str(params.get("literalpath", params.get("path", "")))
        target = str(params.get("destination", ""))
        disk = self.vhd(source)
        if disk is None:
            raise PsError("Copy-Item", f"Cannot find path '{source}' because it does not exist.",
                          "ObjectNotFound", "ItemNotFoundException", "PathNotFound")
        self.hv["vhds"][target.lower()] = {**disk, "Path": target}
        return []

    def c_remove_item(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        path = str(params.get("literalpath", params.get("path", "")))
        if self.attached(path):
            raise PsError("Remove-Item", f"Cannot remove item {path}: The process cannot access "
                          f"the file '{path}' because it is being used by another process.",
                          "WriteError", "IOException", "RemoveFileSystemItemIOError")
        if self.hv["vhds"].pop(path.lower(), None) is None and \
                self.data["files"].pop(path.lower(), None) is None:
            raise PsError("Remove-Item", f"Cannot find path '{path}' because it does not exist.",
                          "ObjectNotFound", "ItemNotFoundException", "PathNotFound")
        return []

    def c_new_vm(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        name = str(params.get("name", ""))
        generation = int(params.get("generation", 1))
        memory = int(params.get("memorystartupbytes", 512 * 1024 * 1024))
        self.check_memory("New-VM", memory)
        switch = params.get("switchname")
        if switch is not None and not self.switch_exists(str(switch)):
            raise PsError("New-VM", f'Hyper-V was unable to find a virtual switch with name '
                          f'"{switch}".', "ObjectNotFound")
        disks = []
        if "vhdpath" in params:
            path = str(params["vhdpath"])
            if self.vhd(path) is None:
                raise PsError("New-VM", f"Failed to add device 'Virtual Hard Disk'. The system "
                              f"cannot find the file specified: '{path}'.",  # unverified
                              "ObjectNotFound")
            if self.attached(path):
                raise PsError("New-VM", f"The process cannot access the file '{path}' because "
                              "it is being used by another process.", "ResourceBusy")
            disks.append(path)
        elif "newvhdpath" in params:
            path = str(params["newvhdpath"])
            self.c_new_vhd({"path": path, "sizebytes": params.get("newvhdsizebytes", 0),
                            "dynamic": True}, [], None)
            disks.append(path)
        vm = {"Name": name, "Id": str(uuid.uuid4()), "State": 3, "ProcessorCount": 1,
              "MemoryStartup": memory, "Generation": generation, "Notes": "",
              "Path": str(params.get("path", VM_ROOT)), "Uptime": "00:00:00",
              "SwitchName": switch, "Disks": disks, "Shutdown": "ok"}
        self.hv["vms"].append(vm)
        return [self.vm_view(vm)]

    def c_set_vm(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        vms = self.targets("Set-VM", params, inputs)
        for vm in vms:
            if ("processorcount" in params or "memorystartupbytes" in params) \
                    and vm["State"] != 3:
                device = "Processor" if "processorcount" in params else "Memory"
                raise PsError("Set-VM", f"Failed to modify device '{device}'. The operation "
                              "cannot be performed while the virtual machine is in its current "
                              "state.", "InvalidOperation")  # unverified wording
            if "memorystartupbytes" in params:
                self.check_memory("Set-VM", int(params["memorystartupbytes"]))
                vm["MemoryStartup"] = int(params["memorystartupbytes"])
            if "processorcount" in params:
                vm["ProcessorCount"] = int(params["processorcount"])
            if "notes" in params:
                vm["Notes"] = str(params["notes"])
        return [self.vm_view(vm) for vm in vms] if params.get("passthru") else []

    def c_start_vm(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        for vm in self.targets("Start-VM", params, inputs):
            if vm["State"] == 2:
                self.out.append("WARNING: The virtual machine is already in the specified "
                                "state.")
            vm["State"] = 2
        return []

    def c_stop_vm(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        for vm in self.targets("Stop-VM", params, inputs):
            if vm["State"] == 3:
                self.out.append("WARNING: The virtual machine is already in the specified "
                                "state.")
                continue
            if not params.get("turnoff"):
                if vm.get("Shutdown") == "hang":
                    raise Hang()
                if vm.get("Shutdown") == "fail":
                    raise PsError("Stop-VM", f"The virtual machine '{vm['Name']}' could not be "
                                  "shut down: the shutdown integration service is not "
                                  "available.", "NotImplemented")  # unverified
            vm["State"] = 3
        return []

    def c_remove_vm(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        for vm in self.targets("Remove-VM", params, inputs):
            self.hv["vms"].remove(vm)
        return []

    def c_select_object(self, params: dict[str, Any], positional: list[Any],
                        inputs: Any) -> list:
        items = list(inputs or [])
        if "first" in params:
            items = items[: int(params["first"])]
        names = [str(p) for p in positional]
        if "property" in params:
            names = [str(params["property"])]
        if not names:
            return items
        return [{name: self._prop(item, name) for name in names} for item in items]

    @staticmethod
    def _prop(item: Any, name: str) -> Any:
        if isinstance(item, dict):
            for key, value in item.items():
                if key.lower() == name.lower():
                    return value
        return None

    def c_convertto_json(self, params: dict[str, Any], positional: list[Any],
                         inputs: Any) -> list:
        items = [strip(i) for i in (inputs or [])]
        if not items:
            return []
        value = items[0] if len(items) == 1 else items
        return [to_json(value, self.flavour, int(params.get("depth", 2)),
                        compress=bool(params.get("compress")))]

    def c_out_null(self, params: dict[str, Any], positional: list[Any], inputs: Any) -> list:
        return []

    def c_write_output(self, params: dict[str, Any], positional: list[Any],
                       inputs: Any) -> list:
        return list(positional) + list(inputs or [])


def strip(value: Any) -> Any:
    """An object without the fake's hidden keys."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not k.startswith("__")}
    return value


def render(value: Any) -> str:
    """What PowerShell prints for an object left in the pipeline (Format-List, roughly)."""
    if isinstance(value, dict):
        clean = strip(value)
        width = max((len(k) for k in clean), default=0)
        return "\n".join(f"{k.ljust(width)} : {v}" for k, v in clean.items()) + "\n"
    return str(value)


def error_record(error: PsError, flavour: str, statement: str, column: int) -> str:
    """An error record as powershell.exe (5.1) or pwsh (7) prints it on stderr."""
    if flavour == "pwsh":
        return f"{error.cmdlet}: {error.message}\n"
    namespace = "Microsoft.HyperV.PowerShell.Commands" if error.exception == \
        "VirtualizationException" else "Microsoft.PowerShell.Commands"
    cls = error.cmdlet.replace("-", "")
    return (f"{error.cmdlet} : {error.message}\n"
            f"At line:1 char:{column}\n"
            f"+ {statement}\n"
            f"+ {'~' * max(1, len(statement))}\n"
            f"    + CategoryInfo          : {error.category}: (:) [{error.cmdlet}], "
            f"{error.exception}\n"
            f"    + FullyQualifiedErrorId : {error.error_id},{namespace}.{cls}\n"
            "\n")


def script_of(argv: list[str]) -> str:
    """The -Command text (the rest of the command line, joined by spaces), or the
    -EncodedCommand's (base64 of UTF-16LE)."""
    lowered = [a.lower() for a in argv]
    for flag in ("-encodedcommand", "-enc", "-ec", "-e"):
        if flag in lowered and lowered.index(flag) + 1 < len(argv):
            import base64

            return base64.b64decode(argv[lowered.index(flag) + 1]).decode("utf-16-le")
    for flag in ("-command", "-c"):
        if flag in lowered:
            return " ".join(argv[lowered.index(flag) + 1:])
    raise Usage("the fake only runs -Command scripts")


def execute(host: Host, data: dict[str, Any], text: str, tool: str,
            net: dotnet.DotNet | None = None) -> tuple[int, str]:
    """Run every statement; (exit code, stderr text)."""
    stop = False
    failed = False
    errors = ""
    for tokens in statements(tokenize(text)):
        failed = False
        if len(tokens) >= 2 and tokens[0][0] == "VAR" and tokens[1][0] == "ASSIGN" and \
                tokens[0][1].lower() == "erroractionpreference":
            stop = len(tokens) > 2 and str(tokens[2][1]).lower() == "stop"
            continue
        if net is not None and dotnet.handles(tokens):
            try:
                for item in net.statement(tokens):
                    host.out.append(item if isinstance(item, str) else render(item))
            except dotnet.Exit as done:
                return done.code, errors
            except dotnet.Unsupported as exc:
                raise Usage(str(exc)) from None
            except dotnet.DotNetError as error:
                failed = True
                errors += dotnet.error_record(error, tool, statement_text(tokens))
                if stop:
                    return 1, errors
            continue
        member = None
        if tokens[0][0] == "LP":
            close = max(i for i, t in enumerate(tokens) if t[0] == "RP")
            rest = tokens[close + 1:]
            member = rest[0][1].lstrip(".") if rest and rest[0][0] == "BARE" else None
            tokens = tokens[1:close]
        fault = fstate.take_fault(data, "powershell", statement_text(tokens))
        items: list[Any] | None = None
        silent = False
        try:
            if fault is not None:
                culprit = next((c for c in split_pipes(tokens)
                                if fault.get("match", "") in statement_text(c)),
                               split_pipes(tokens)[0])
                name = culprit[0][1] if culprit and culprit[0][0] == "BARE" else "Invoke"
                raise PsError(str(name), fault.get("message", "The operation failed."))
            for command in split_pipes(tokens):
                name, params, positional = parse_command(command)
                silent = str(params.pop("erroraction", "")).lower() == "silentlycontinue"
                host.silent = silent
                items = host.run(name, params, positional, items)
        except PsError as error:
            if silent:
                continue
            failed = True
            errors += error_record(error, tool, statement_text(tokens), 1)
            if stop:
                return 1, errors
            continue
        for item in items or []:
            if member is not None:
                item = Host._prop(item, member)
                if item is None:
                    continue
            host.out.append(item if isinstance(item, str) else render(item))
    return (1 if failed else 0), errors


def statement_text(tokens: list[tuple[str, Any]]) -> str:
    """A statement rebuilt from its tokens (for fault matching and error records)."""
    words = []
    for kind, value in tokens:
        if kind == "STR":
            words.append("'" + str(value).replace("'", "''") + "'")
        elif kind == "PARAM":
            words.append("-" + value)
        elif kind == "VAR":
            words.append("$" + value)
        elif kind in ("PIPE", "COMMA", "LP", "RP", "ASSIGN"):
            words.append({"PIPE": "|", "COMMA": ",", "LP": "(", "RP": ")", "ASSIGN": "="}[kind])
        else:
            words.append(str(value))
    return " ".join(words)


def main(argv: list[str], tool: str) -> int:
    """Entry point of tests/fakes/bin/powershell.exe and pwsh."""
    path = fstate.state_path()
    fstate.latency()
    hang = False
    import fcntl

    with open(path + ".lock", "a+") as state_lock:
        fcntl.flock(state_lock.fileno(), fcntl.LOCK_EX)
        data = fstate.load(path)
        data["calls"].append({"tool": tool, "argv": argv})
        host = Host(data, "pwsh" if tool == "pwsh" else "powershell")

        def wait_for_input() -> None:
            """[Console]::In.ReadToEnd(): other commands run on the host meanwhile."""
            fstate.save(path, data)
            fcntl.flock(state_lock.fileno(), fcntl.LOCK_UN)
            sys.stdin.buffer.read()
            fcntl.flock(state_lock.fileno(), fcntl.LOCK_EX)
            data.clear()
            data.update(fstate.load(path))
            host.data, host.hv = data, data["hyperv"]

        net = dotnet.DotNet(fstate.root_dir(path), wait_for_input)
        try:
            code, errors = execute(host, data, script_of(argv), host.flavour, net)
        except Usage as exc:
            code, errors = 2, f"fake {tool}: {exc}\n"
        except Hang:
            code, errors, hang = 0, "", True
        fstate.save(path, data)
    if hang:
        time.sleep(3600)
    text = "".join(line if line.endswith("\n") else line + "\n" for line in host.out)
    sys.stdout.buffer.write(text.replace("\n", "\r\n").encode("utf-8"))
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(errors.replace("\n", "\r\n").encode("utf-8"))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:], os.path.basename(sys.argv[0])))
