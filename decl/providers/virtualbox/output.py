"""Pure parsers of VBoxManage's output (VBoxManage 7.x; see docs/facts/virtualbox.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIB = 1024 * 1024

LIST_LINE = re.compile(r'^"(.*)" \{([0-9a-fA-F-]{36})\}$')
ERROR_PREFIX = re.compile(r"^VBoxManage(?:\.exe)?: error: ", re.IGNORECASE)
ERROR_CODE = re.compile(r"Details: code (\w+)")
UUID_LINE = re.compile(r"UUID: ([0-9a-fA-F-]{36})")

# VMState short names -> decl's run state.
RUNNING_STATES = frozenset({
    "running", "paused", "starting", "stopping", "saving", "restoring", "teleporting",
    "teleportingpausedvm", "teleportingin", "livesnapshotting", "onlinesnapshotting",
    "deletingsnapshotlive", "deletingsnapshotlivepaused", "gurumeditation",
})


def lines(text: str) -> list[str]:
    """Output lines, Windows line ends included."""
    return text.replace("\r\n", "\n").split("\n")


def parse_list_vms(text: str) -> list[tuple[str, str]]:
    """`list vms` / `list runningvms`: (name, uuid) pairs, in the tool's order."""
    out = []
    for line in lines(text):
        match = LIST_LINE.match(line.strip())
        if match:
            out.append((match.group(1), match.group(2).lower()))
    return out


def _unquote(text: str) -> tuple[str, str]:
    """A double-quoted string at the start of `text` (backslash escapes) and the rest."""
    value = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            value.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(value), text[index + 1:]
        value.append(char)
        index += 1
    return "".join(value), ""


def parse_machinereadable(text: str) -> dict[str, str | int]:
    """`showvminfo --machinereadable`: key -> value. Quoted keys and values are unescaped;
    unquoted numbers become ints. Lines of any other form are skipped."""
    out: dict[str, str | int] = {}
    for line in lines(text):
        if not line:
            continue
        if line.startswith('"'):
            key, rest = _unquote(line)
            if not rest.startswith("="):
                continue
            raw = rest[1:]
        else:
            key, sep, raw = line.partition("=")
            if not sep:
                continue
        if raw.startswith('"'):
            out[key] = _unquote(raw)[0]
        elif re.fullmatch(r"-?\d+", raw):
            out[key] = int(raw)
        else:
            out[key] = raw
    return out


def parse_extradata(text: str) -> dict[str, str]:
    """`getextradata VM enumerate`: `Key: K, Value: V` lines -> {K: V}."""
    out: dict[str, str] = {}
    for line in lines(text):
        if not line.startswith("Key: "):
            continue
        key, sep, value = line[len("Key: "):].partition(", Value: ")
        if sep:
            out[key] = value
    return out


def parse_extradata_value(text: str) -> str | None:
    """`getextradata VM KEY`: the value, or None for `No value set!`."""
    for line in lines(text):
        if line.startswith("Value: "):
            return line[len("Value: "):]
    return None


@dataclass(frozen=True)
class Medium:
    """One hard disk of `list hdds`."""

    uuid: str
    location: str
    capacity: int  # bytes, from whole MBytes
    state: str
    format: str


def parse_list_hdds(text: str) -> list[Medium]:
    """`list hdds`: blocks of `Key:  value` lines separated by blank lines."""
    out: list[Medium] = []
    block: dict[str, str] = {}

    def flush() -> None:
        if "UUID" in block:
            size = re.match(r"(\d+)", block.get("Capacity", "0")) or None
            out.append(Medium(uuid=block["UUID"].lower(), location=block.get("Location", ""),
                              capacity=int(size.group(1)) * MIB if size else 0,
                              state=block.get("State", ""),
                              format=block.get("Storage format", "")))
        block.clear()

    for line in lines(text):
        if not line.strip():
            flush()
            continue
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip()] = value.strip()
    flush()
    return out


def parse_created_uuid(text: str) -> str | None:
    """The UUID printed by `createvm` (`UUID: ...`) or `createmedium`
    (`Medium created. UUID: ...`)."""
    for line in lines(text):
        match = UUID_LINE.search(line)
        if match:
            return match.group(1).lower()
    return None


@dataclass(frozen=True)
class VBoxError:
    """What a failed VBoxManage call said: its first message and its COM code, if any."""

    message: str
    code: str | None


def parse_error(stderr: str) -> VBoxError | None:
    """The `VBoxManage: error:` lines of stderr, or None when there are none (Vagrant also
    treats exit 0 with such lines as a failure)."""
    messages = []
    code = None
    for line in lines(stderr):
        if not ERROR_PREFIX.match(line):
            continue
        body = ERROR_PREFIX.sub("", line)
        found = ERROR_CODE.search(body)
        if found:
            code = found.group(1)
        elif not body.startswith("Context: "):
            messages.append(body)
    if not messages and code is None:
        return None
    return VBoxError(message=" ".join(messages) or "failed", code=code)


def run_state(vmstate: str) -> str:
    """decl's state of a VM from its VMState: running, or stopped (poweroff, aborted,
    saved are all not running)."""
    return "running" if vmstate in RUNNING_STATES else "stopped"


def disk_slots(info: dict[str, str | int], controller: str) -> dict[int, tuple[str, str]]:
    """Port -> (path, medium uuid) of the media attached on `controller`'s device 0."""
    out: dict[int, tuple[str, str]] = {}
    pattern = re.compile(re.escape(controller) + r"-(\d+)-0$")
    for key, value in info.items():
        match = pattern.match(key)
        if not match or not isinstance(value, str) or value in ("none", "emptydrive"):
            continue
        port = int(match.group(1))
        uuid = info.get(f"{controller}-ImageUUID-{port}-0")
        out[port] = (value, str(uuid).lower() if uuid else "")
    return out


def parse_vbox_extradata(data: bytes) -> dict[str, str] | None:
    """The machine's extradata from its settings file (NAME.vbox, XML): the
    `Machine/ExtraData/ExtraDataItem` name/value pairs; None when the file is not a readable
    settings file (encrypted, truncated...). VirtualBox writes this file as soon as
    extradata changes (Machine::SetExtraData saves the settings)."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    machine = next((e for e in root.iter() if local(e.tag) == "Machine"), None)
    if machine is None:
        return None
    out: dict[str, str] = {}
    for section in machine:
        if local(section.tag) != "ExtraData":
            continue
        for item in section:
            if local(item.tag) == "ExtraDataItem" and item.get("name") is not None:
                out[str(item.get("name"))] = str(item.get("value", ""))
    return out
