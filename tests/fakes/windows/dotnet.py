"""The few .NET calls and expressions the fake PowerShell runs besides cmdlets (the host lock's
scripts, decl.connections.hostlock), with Windows' file-sharing rules (docs/facts/windows-lock.md):

- `[System.IO.File]::Open(path, mode, access, share)`: a handle that lives as long as the
  process. Sharing is emulated with flock(2) on a real file (Windows paths map to files under
  the fake host's directory, case-insensitively): an open that shares nothing with writers
  (FileShare.None, or any open for writing) takes an exclusive flock, a read that lets others
  read takes a shared one, both without waiting. A conflict is the sharing violation, an
  IOException whose message is .NET's: "The process cannot access the file 'PATH' because it
  is being used by another process." Like a Windows handle, the flock goes away when the
  process ends, however it ends.
- `[System.IO.File]::ReadAllText(path)` (opens for Read, shares Read) and `WriteAllText(path,
  text)` (Create, Write, shares Read) obey the same rules; `[System.IO.Directory]::
  CreateDirectory(path)` makes the whole path.
- `[Console]::WriteLine(x)` / `Write(x)` go straight to stdout; `[Console]::In.ReadToEnd()`
  waits for the end of input (the caller releases the fake's state lock meanwhile).
- `$var = EXPR`, `$env:NAME`, `'a' + $b`, `$handle.Close()`, `exit N`.
A .NET exception ends the statement as a MethodInvocationException error record
(`Exception calling "Open" with "4" argument(s): "..."`).
"""

from __future__ import annotations

import fcntl
import ntpath
import os
import sys
from collections.abc import Callable
from typing import Any

MODES = {"open": os.O_RDWR, "openorcreate": os.O_RDWR | os.O_CREAT,
         "create": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
         "createnew": os.O_RDWR | os.O_CREAT | os.O_EXCL}


class DotNetError(Exception):
    """A .NET exception thrown by a method call."""

    def __init__(self, method: str, arguments: int, exception: str, message: str) -> None:
        super().__init__(message)
        self.method = method
        self.arguments = arguments
        self.exception = exception
        self.message = message


class Exit(Exception):
    """`exit N`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Handle:
    """An open FileStream: the descriptor holds the flock standing for its sharing mode."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class DotNet:
    """Variables and the .NET calls of one fake PowerShell process."""

    def __init__(self, root: str, wait_for_input: Callable[[], None]) -> None:
        self.root = root
        self.variables: dict[str, Any] = {}
        self.wait_for_input = wait_for_input

    # -- files ---------------------------------------------------------------------------

    def real(self, path: str) -> str:
        """Where a Windows path lives on this machine (case-insensitive, like NTFS)."""
        drive, rest = ntpath.splitdrive(ntpath.normpath(path))
        if not drive or not rest.startswith("\\"):
            raise DotNetError("", 0, "ArgumentException",
                              "The path is not of a legal form.")  # relative paths: unused
        head = drive.rstrip(":").replace("\\", "/").strip("/").lower()
        return os.path.join(self.root, "drives", head, *rest.lower().strip("\\").split("\\"))

    def open_shared(self, method: str, nargs: int, path: str, flags: int,
                    exclusive: bool) -> int:
        real = self.real(path)
        if not os.path.isdir(os.path.dirname(real)):
            raise DotNetError(method, nargs, "DirectoryNotFoundException",
                              f"Could not find a part of the path '{path}'.")
        try:
            fd = os.open(real, flags, 0o644)
        except FileNotFoundError:
            raise DotNetError(method, nargs, "FileNotFoundException",
                              f"Could not find file '{path}'.") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DotNetError(method, nargs, "IOException",
                              f"The process cannot access the file '{path}' because it is "
                              "being used by another process.") from None
        return fd

    def file_open(self, path: str, mode: str, access: str, share: str) -> Handle:
        flags = MODES.get(mode.lower())
        if flags is None or access.lower() not in ("read", "write", "readwrite"):
            raise DotNetError("Open", 4, "ArgumentException", "unsupported mode")  # unused
        # Shares nothing, or writes: no one else may have it (an exclusive flock); reads
        # and lets others read: readers may share it (a shared flock).
        exclusive = share.lower() == "none" or access.lower() != "read"
        return Handle(self.open_shared("Open", 4, path, flags, exclusive))

    def read_all_text(self, path: str) -> str:
        fd = self.open_shared("ReadAllText", 1, path, os.O_RDONLY, exclusive=False)
        try:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read()
        finally:
            os.close(fd)
        return data.decode("utf-8-sig")

    def write_all_text(self, path: str, text: str) -> None:
        fd = self.open_shared("WriteAllText", 2, path, os.O_WRONLY | os.O_CREAT, exclusive=True)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, text.encode("utf-8"))  # UTF-8 without a BOM, as .NET writes it
        finally:
            os.close(fd)

    def create_directory(self, path: str) -> dict[str, Any]:
        os.makedirs(self.real(path), exist_ok=True)
        return {"FullName": path, "Name": ntpath.basename(path)}

    # -- expressions -----------------------------------------------------------------------

    def call(self, name: str, args: list[Any]) -> Any:
        """A static method `[Type]::Method` or `$var.Method` with its argument values."""
        key = name.lower()
        if key == "[system.io.file]::open" and len(args) == 4:
            return self.file_open(*(str(a) for a in args))
        if key == "[system.io.file]::readalltext" and len(args) == 1:
            return self.read_all_text(str(args[0]))
        if key == "[system.io.file]::writealltext" and len(args) == 2:
            self.write_all_text(str(args[0]), "" if args[1] is None else str(args[1]))
            return None
        if key == "[system.io.directory]::createdirectory" and len(args) == 1:
            return self.create_directory(str(args[0]))
        if key in ("[console]::writeline", "[console]::write") and len(args) <= 1:
            text = "" if not args or args[0] is None else str(args[0])
            end = "\r\n" if key.endswith("writeline") else ""
            sys.stdout.buffer.write((text + end).encode("utf-8"))
            sys.stdout.buffer.flush()
            return None
        if key == "[console]::in.readtoend" and not args:
            self.wait_for_input()
            return ""
        if key.startswith("$") and key.endswith(".close") and not args:
            handle = self.variables.get(key[1:-len(".close")])
            if isinstance(handle, Handle):
                handle.close()
                return None
        raise Unsupported(f"the fake cannot call {name}")

    def value(self, tokens: list[tuple[str, Any]]) -> Any:
        """An expression: literals, variables, `+` of strings, method calls."""
        parts: list[Any] = []
        i = 0
        while i < len(tokens):
            kind, item = tokens[i]
            if kind == "BARE" and item == "+":
                i += 1
                continue
            if kind in ("BARE", "VAR") and i + 1 < len(tokens) and tokens[i + 1][0] == "LP":
                close = _matching(tokens, i + 1)
                args = [self.value(arg) for arg in _split_args(tokens[i + 2:close])]
                parts.append(self.call(item if kind == "BARE" else "$" + item, args))
                i = close + 1
                continue
            if kind == "STR" or kind == "NUM":
                parts.append(item)
            elif kind == "VAR":
                parts.append(self.variable(item))
            else:
                raise Unsupported(f"the fake cannot evaluate {item!r}")
            i += 1
        if len(parts) == 1:
            return parts[0]
        return "".join("" if p is None else str(p) for p in parts)

    def variable(self, name: str) -> Any:
        lowered = name.lower()
        if lowered.startswith("env:"):
            return windows_environment().get(name[4:].upper()) or None
        if lowered in ("null", "true", "false"):
            return {"null": None, "true": True, "false": False}[lowered]
        return self.variables.get(lowered)

    def statement(self, tokens: list[tuple[str, Any]]) -> list[Any]:
        """Run one statement; what it leaves in the pipeline."""
        if tokens[0] == ("BARE", "exit"):
            raise Exit(int(tokens[1][1]) if len(tokens) > 1 else 0)
        if len(tokens) >= 2 and tokens[0][0] == "VAR" and tokens[1][0] == "ASSIGN":
            result = self.value(tokens[2:])
            if tokens[0][1].lower() != "null":
                self.variables[tokens[0][1].lower()] = result
            return []
        result = self.value(tokens)
        return [] if result is None else [result]


def windows_environment() -> dict[str, str]:
    """The process environment as a Windows process sees it: names compare without case, and
    USERPROFILE and LOCALAPPDATA are always set (a test may set its own)."""
    env = {name.upper(): value for name, value in os.environ.items()}
    profile = env.setdefault("USERPROFILE", "C:\\Users\\" + (env.get("USER") or "user"))
    env.setdefault("LOCALAPPDATA", profile + "\\AppData\\Local")
    return env


class Unsupported(Exception):
    """Something the fake does not know (a bug in decl's script, as far as tests go)."""


def handles(tokens: list[tuple[str, Any]]) -> bool:
    """Whether a statement is for this module rather than a cmdlet pipeline."""
    first = tokens[0]
    if first == ("BARE", "exit"):
        return True
    if first[0] == "VAR" and len(tokens) >= 2 and tokens[1][0] == "ASSIGN":
        return first[1].lower() != "erroractionpreference"
    if first[0] == "VAR" and "." in first[1]:
        return True
    return first[0] == "STR" or (first[0] == "BARE" and str(first[1]).startswith("["))


def error_record(error: DotNetError, flavour: str, statement: str) -> str:
    """A MethodInvocationException as powershell.exe 5.1 (or pwsh 7, unverified) prints it."""
    message = (f'Exception calling "{error.method}" with "{error.arguments}" argument(s): '
               f'"{error.message}"')
    if flavour == "pwsh":
        return f"MethodInvocationException: {message}\n"
    return (f"{message}\n"
            "At line:1 char:1\n"
            f"+ {statement}\n"
            f"+ {'~' * max(1, len(statement))}\n"
            "    + CategoryInfo          : NotSpecified: (:) [], MethodInvocationException\n"
            f"    + FullyQualifiedErrorId : {error.exception}\n"
            "\n")


def _matching(tokens: list[tuple[str, Any]], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        if tokens[index][0] == "LP":
            depth += 1
        elif tokens[index][0] == "RP":
            depth -= 1
            if depth == 0:
                return index
    raise Unsupported("unbalanced parentheses")


def split_top_level(tokens: list[tuple[str, Any]], separator: str
                    ) -> list[list[tuple[str, Any]]]:
    """The token runs between `separator` tokens outside parentheses (empty runs kept)."""
    out: list[list[tuple[str, Any]]] = [[]]
    depth = 0
    for token in tokens:
        if token[0] == "LP":
            depth += 1
        elif token[0] == "RP":
            depth -= 1
        if token[0] == separator and depth == 0:
            out.append([])
        else:
            out[-1].append(token)
    return out


def _split_args(tokens: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    return split_top_level(tokens, "COMMA") if tokens else []
