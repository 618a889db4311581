"""Parse YAML with ruamel.yaml round-trip, keeping where every value came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from decl.errors import ManifestError, SourceLocation

Path = tuple[str | int, ...]


@dataclass
class SourceDocument:
    """Plain data parsed from a file plus the (line, column) of every key and value."""

    file: str
    text: str
    data: Any
    value_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    positions_loaded: bool = False

    def ensure_positions(self) -> None:
        """Parse again in round-trip mode to learn positions (only needed for errors)."""
        if self.positions_loaded:
            return
        self.positions_loaded = True
        raw = _load(self.text, self.file, typ="rt")
        _plain(raw, (), self)

    def location(self, path: Path, *, key: bool = False) -> SourceLocation | None:
        """Best location for `path`: the exact node, else its nearest ancestor."""
        self.ensure_positions()
        table = self.key_positions if key else self.value_positions
        probe = tuple(path)
        while True:
            if probe in table:
                line, col = table[probe]
                return SourceLocation(self.file, line + 1, col + 1)
            if key and probe in self.value_positions:
                line, col = self.value_positions[probe]
                return SourceLocation(self.file, line + 1, col + 1)
            if not probe:
                return None
            probe = probe[:-1]

    def snippet(self, location: SourceLocation | None) -> str | None:
        """The source line at `location` with a caret under the column."""
        return snippet_at(self.text, location)


def snippet_at(text: str, location: SourceLocation | None) -> str | None:
    """Render one source line with a caret, or None when there is no such line."""
    if location is None:
        return None
    lines = text.splitlines()
    if not 1 <= location.line <= len(lines):
        return None
    line = lines[location.line - 1]
    gutter = f"{location.line:>4} | "
    return f"{gutter}{line}\n{' ' * len(gutter)}{' ' * (location.column - 1)}^"


def _load(text: str, file: str, typ: str) -> Any:
    """YAML 1.2 load; YAML errors and duplicate keys become ManifestError with a location."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ=typ, pure=typ == "rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = SourceLocation(file, mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        kind = "duplicate key" if "duplicate key" in str(exc) else "YAML syntax error"
        if kind == "duplicate key":
            problem = problem.replace("found duplicate key", "duplicate key").strip()
        message = f"{kind}: {problem}" if kind not in problem else problem
        raise ManifestError(message, loc, snippet_at(text, loc)) from None
    except YAMLError as exc:
        raise ManifestError(f"YAML error: {exc}", SourceLocation(file, 1, 1)) from None


def parse_text(text: str, file: str) -> SourceDocument:
    """Parse `text` fast (libyaml's safe loader when ruamel.yaml.clib is there); positions,
    and the pure parser's clearer error messages, are used only when something is wrong."""
    from ruamel.yaml.error import YAMLError

    doc = SourceDocument(file=file, text=text, data=None)
    try:
        raw = _fast_load(text)
    except YAMLError:
        raw = _load(text, file, typ="rt")  # raises the ManifestError with its location
    doc.data = _plain(raw, (), doc)
    return doc


def _fast_load(text: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=False)
    yaml.allow_duplicate_keys = False
    return yaml.load(text)


def parse_file(file: str) -> SourceDocument:
    """Read and parse a manifest file; a missing or empty file is a ManifestError."""
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ManifestError(f"manifest file not found: {file}") from None
    except IsADirectoryError:
        raise ManifestError(f"manifest path is a directory, not a file: {file}") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{file}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {file}: {exc.strerror}") from None
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise ManifestError(
            "the manifest is empty: write at least `version: 1` and `project: NAME`",
            SourceLocation(file, 1, 1),
        )
    return parse_text(text, file)


def _plain(node: Any, path: Path, doc: SourceDocument) -> Any:
    """Turn ruamel's round-trip nodes into plain Python data, recording positions."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            try:
                doc.key_positions[child] = tuple(node.lc.key(key))
                doc.value_positions[child] = tuple(node.lc.value(key))
            except (KeyError, TypeError, AttributeError):
                pass
            out[str(key)] = _plain(node[key], child, doc)
        if path not in doc.value_positions and node.lc.line is not None:
            doc.value_positions[path] = (node.lc.line, node.lc.col)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            child = (*path, index)
            try:
                doc.value_positions[child] = tuple(node.lc.item(index))
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(item, child, doc))
        return items
    if isinstance(node, dict):
        return {str(key): _plain(value, (*path, str(key)), doc) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item, (*path, index), doc) for index, item in enumerate(node)]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if node is None:
        return None
    return str(node)
