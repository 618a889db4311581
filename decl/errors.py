"""The DeclError tree: every error a user can meet, with its message and exit code."""

from __future__ import annotations

from dataclasses import dataclass


class DeclError(Exception):
    """An error meant for the user: printed as one message, no traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SourceLocation:
    """A place in a manifest file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ManifestError(DeclError):
    """Bad input in a manifest: says where, with a snippet of the source."""

    def __init__(
        self,
        message: str,
        location: SourceLocation | None = None,
        snippet: str | None = None,
        path: str | None = None,
    ) -> None:
        self.reason = message
        self.location = location
        self.snippet = snippet
        self.path = path
        text = f"{location}: {message}" if location else message
        if path:
            text += f" (in {path})"
        if snippet:
            text += "\n" + snippet
        super().__init__(text)


class PlanError(DeclError):
    """The plan cannot be carried out as it stands (prevent_destroy, conflicts, stale plan)."""


class LockHeldError(DeclError):
    """Another apply of the same project is running."""


class ProviderError(DeclError):
    """A provider's tool failed; the message names the resource and the tool's words."""


class ConnectionFailed(DeclError):
    """A host could not be reached or refused us; `kind` says why in one word."""

    def __init__(self, host: str, kind: str, detail: str) -> None:
        self.host = host
        self.kind = kind
        self.detail = detail
        super().__init__(f"host {host}: {kind}: {detail}")


class FieldError(ManifestError):
    """A provider found a field of one resource wrong while reading it (a requirements file
    that cannot be read, say); the engine adds the field's position in the manifest."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
