"""Build the AppleScript decl sends to UTM, with every manifest value quoted safely.

A value can never become code: text is a string literal whose backslashes and quotes are
escaped and whose control characters are joined in as `(character id N)`; numbers are
integers; enumeration constants and record keys come from allowlists of UTM.sdef's terms.
Builders return expressions; `tell_utm` wraps statements in a tell block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Record keys decl may write (UTM.sdef: qemu/apple configuration, drive, network records).
KEYS = frozenset({
    "backend", "configuration", "name", "notes", "architecture", "machine", "memory",
    "cpu cores", "hypervisor", "uefi", "drives", "network interfaces", "id", "removable",
    "interface", "guest size", "source", "index", "mode", "address", "host interface",
    "hardware",
})
# Enumeration constants decl may write.
CONSTANTS = frozenset({"qemu", "apple", "shared", "bridged", "host", "emulated", "VirtIO",
                       "NVMe", "IDE", "SCSI", "USB", "force", "kill", "request"})


@dataclass(frozen=True)
class Code:
    """A piece of AppleScript built here (never raw manifest text)."""

    text: str

    def __str__(self) -> str:
        return self.text


def string(value: str) -> Code:
    """A text expression equal to `value`, whatever it holds."""
    parts: list[str] = []
    literal: list[str] = []
    for char in value:
        code = ord(char)
        if code < 0x20 or code == 0x7F or code in (0x2028, 0x2029):
            if literal:
                parts.append('"' + "".join(literal) + '"')
                literal = []
            parts.append(f"(character id {code})")
        elif char in ('"', "\\"):
            literal.append("\\" + char)
        else:
            literal.append(char)
    if literal or not parts:
        parts.append('"' + "".join(literal) + '"')
    text = " & ".join(parts)
    return Code(text if len(parts) == 1 else f"({text})")


def integer(value: int) -> Code:
    """An integer literal (bools and other types refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return Code(str(value))


def boolean(value: bool) -> Code:
    """`true` or `false`."""
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return Code("true" if value else "false")


def constant(name: str) -> Code:
    """An enumeration constant from UTM's dictionary."""
    if name not in CONSTANTS:
        raise ValueError(f"not a UTM constant decl uses: {name!r}")
    return Code(name)


def posix_file(path: str) -> Code:
    """`POSIX file "path"`."""
    return Code(f"POSIX file {string(path)}")


def record(items: Iterable[tuple[str, Code]]) -> Code:
    """`{key:value, ...}` with keys from UTM's dictionary."""
    parts = []
    for key, value in items:
        if key not in KEYS:
            raise ValueError(f"not a UTM record key decl uses: {key!r}")
        if not isinstance(value, Code):
            raise TypeError(f"record values must be built code, not {type(value).__name__}")
        parts.append(f"{key}:{value}")
    return Code("{" + ", ".join(parts) + "}")


def alist(items: Sequence[Code]) -> Code:
    """`{a, b}`."""
    if not all(isinstance(i, Code) for i in items):
        raise TypeError("list items must be built code")
    return Code("{" + ", ".join(str(i) for i in items) + "}")


def vm_by_id(vm_id: str) -> Code:
    """`virtual machine id "..."`."""
    return Code(f"virtual machine id {string(vm_id)}")


def tell_utm(*statements: str | Code) -> str:
    """A whole script: the statements inside `tell application "UTM"`."""
    body = "\n".join(f"  {s}" for s in statements)
    return f'tell application "UTM"\n{body}\nend tell'


def make_vm(backend: str, configuration: Code) -> str:
    """Create a VM and return its id."""
    properties = record([("backend", constant(backend)), ("configuration", configuration)])
    return tell_utm(f"set vm to make new virtual machine with properties {properties}",
                    "return id of vm")


def update_vm(vm_id: str, configuration: Code) -> str:
    """Replace the configuration fields given (the VM must be stopped)."""
    return tell_utm(f"update configuration of {vm_by_id(vm_id)} with {configuration}")


def discover() -> str:
    """Every VM's id, backend and configuration, as three parallel lists, in one call."""
    return tell_utm("return {id of every virtual machine, backend of every virtual machine, "
                    "configuration of every virtual machine}")


def version() -> str:
    """UTM's version."""
    return tell_utm("return version")
