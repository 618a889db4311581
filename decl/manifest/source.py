"""Parse YAML safely and in time linear in its size, keeping where every value came from.

Hostile input is bounded before anything is built: a size limit on the file, a limit on how
far aliases may expand (billion laughs), a nesting depth limit, and only YAML's plain tags.
The fast C parser does the work; the pure-Python parser is used only to word an error, and
positions come from the C composer (ruamel's round-trip scanner is quadratic in the length
of a comment line, so it is not used at all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from decl.errors import ManifestError, SourceLocation

Path = tuple[str | int, ...]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_BYTES_ENV = "DECL_MAX_MANIFEST_SIZE"
MAX_DEPTH = 64
# Nodes a document may expand to through aliases, beyond the nodes written in it.
MAX_ALIAS_EXPANSION = 100_000
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)


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
        """Compose the text again (C parser) to learn positions (only needed for errors)."""
        if self.positions_loaded:
            return
        self.positions_loaded = True
        from ruamel.yaml.error import YAMLError

        try:
            root = _yaml(pure=False).compose(self.text)
        except YAMLError:  # YAML 1.2 that libyaml refuses: the pure composer (see _load_pure)
            try:
                root = _yaml(pure=True).compose(_without_comment_lines(self.text))
            except (YAMLError, RecursionError):  # pragma: no cover - the text parsed before
                return
        except RecursionError:  # pragma: no cover - the text parsed before
            return
        if root is not None:
            _positions(root, (), self, set())

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


SNIPPET_WIDTH = 120


def snippet_at(text: str, location: SourceLocation | None) -> str | None:
    """Render one source line with a caret, or None when there is no such line.

    Long lines are cut to a window around the column, so a 10 MB line prints 120 characters.
    """
    if location is None or location.line < 1:
        return None
    start = 0
    for _ in range(location.line - 1):
        start = text.find("\n", start)
        if start < 0:
            return None
        start += 1
    if start >= len(text) and location.line > 1:
        return None
    end = text.find("\n", start)
    line = text[start:] if end < 0 else text[start:end]
    line = line.rstrip("\r")
    column = location.column - 1
    if len(line) > SNIPPET_WIDTH:
        left = max(0, min(column - SNIPPET_WIDTH // 2, len(line) - SNIPPET_WIDTH))
        line = line[left:left + SNIPPET_WIDTH]
        column -= left
    gutter = f"{location.line:>4} | "
    return f"{gutter}{line}\n{' ' * len(gutter)}{' ' * max(column, 0)}^"


def _yaml(*, pure: bool) -> Any:
    from ruamel.yaml import YAML

    try:
        yaml = YAML(typ="safe", pure=pure)
    except Exception:  # noqa: BLE001 - no ruamel.yaml.clib: the pure parser does it all
        yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def _location(file: str, mark: Any) -> SourceLocation | None:
    if mark is None:
        return None
    return SourceLocation(file, mark.line + 1, mark.column + 1)


def _yaml_error(exc: Any, text: str, file: str) -> ManifestError:
    """A ruamel error as one ManifestError with its position and the line."""
    from ruamel.yaml.error import MarkedYAMLError

    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        loc = _location(file, mark)
        problem = exc.problem or exc.context or "invalid YAML"
        kind = "duplicate key" if "duplicate key" in str(problem) else "YAML syntax error"
        if kind == "duplicate key":
            problem = problem.replace("found duplicate key", "duplicate key").strip()
        message = f"{kind}: {problem}" if kind not in problem else problem
        return ManifestError(message, loc, snippet_at(text, loc))
    return ManifestError(f"YAML error: {exc}", SourceLocation(file, 1, 1))


def _explain_failure(text: str, file: str, fast_error: Exception) -> ManifestError:
    """Word a parse failure: the pure parser's messages are clearer than libyaml's."""
    from ruamel.yaml.error import YAMLError

    try:
        _yaml(pure=True).load(_without_comment_lines(text))
    except YAMLError as exc:
        return _yaml_error(exc, text, file)
    except RecursionError:
        return ManifestError(f"the manifest nests deeper than {MAX_DEPTH} levels",
                             SourceLocation(file, 1, 1))
    return _yaml_error(fast_error, text, file)


def _load_pure(text: str, file: str, fast_error: Exception) -> Any:
    """libyaml follows YAML 1.1 and refuses some valid YAML 1.2 that the pure parser takes
    (a URL in a flow mapping: `{image: https://x.org/a.qcow2}`): the pure parser decides.

    It reads the text with whole-line comments cut (a long comment line costs the pure
    scanner quadratic time); that gives the same data unless a cut line lies inside a
    block scalar, where it is content: only then is the whole text read again.
    """
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import ScalarEvent

    cut = _without_comment_lines(text)
    try:
        check_events(cut, file, pure=True)
        raw = _yaml(pure=True).load(cut)
    except YAMLError:
        raise _explain_failure(text, file, fast_error) from None
    except RecursionError:
        raise ManifestError(f"the manifest nests deeper than {MAX_DEPTH} levels",
                            SourceLocation(file, 1, 1)) from None
    if cut == text:
        return raw
    changed = {index for index, (a, b) in enumerate(zip(text.split("\n"), cut.split("\n"),
                                                         strict=True)) if a != b}
    for event in _yaml(pure=True).parse(cut):
        if isinstance(event, ScalarEvent) and event.style in ("|", ">") and any(
                event.start_mark.line <= line <= event.end_mark.line for line in changed):
            return _yaml(pure=True).load(text)
    return raw


def _without_comment_lines(text: str) -> str:
    """The text with the body of each whole-line comment cut (the `#` stays), for the slow
    pure parser: lines and columns of everything else are unchanged. (In a block scalar such a
    line is content; the words of an error there may differ, its position does not.)"""
    if "#" not in text:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        stripped = line.lstrip(" \t")
        if stripped.startswith("#") and len(stripped) > 1:
            lines[index] = line[: len(line) - len(stripped) + 1]
    return "\n".join(lines)


def check_events(text: str, file: str, *, pure: bool = False) -> None:
    """Walk the parser's events once: reject deep nesting, unknown tags, alias bombs.

    Runs in time linear in the text; an alias bomb is caught at the alias that would make
    the document expand past MAX_ALIAS_EXPANSION nodes, before anything is expanded.
    """
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        NodeEvent,
    )

    sizes: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []
    written = expanded = 0
    for event in _yaml(pure=pure).parse(text):
        if not isinstance(event, (NodeEvent, CollectionEndEvent)):
            continue
        tag = getattr(event, "tag", None)
        if tag and tag not in _PLAIN_TAGS and tag != "!":
            loc = _location(file, event.start_mark)
            raise ManifestError(
                f"YAML tag {_short_tag(tag)!r} is not supported: decl reads plain strings, "
                "numbers, booleans, lists and mappings", loc, snippet_at(text, loc))
        if isinstance(event, AliasEvent):
            size = sizes.get(event.anchor or "", 1)
            expanded += size
            if expanded > MAX_ALIAS_EXPANSION:
                loc = _location(file, event.start_mark)
                raise ManifestError(
                    f"the alias *{event.anchor} makes the document expand past "
                    f"{MAX_ALIAS_EXPANSION} values (an alias bomb?); write the values out or "
                    "use fewer nested aliases", loc, snippet_at(text, loc))
            if stack:
                anchor, count = stack[-1]
                stack[-1] = (anchor, count + size)
            continue
        if isinstance(event, CollectionStartEvent):
            stack.append((event.anchor, 0))
            if len(stack) > MAX_DEPTH:
                loc = _location(file, event.start_mark)
                raise ManifestError(f"the manifest nests deeper than {MAX_DEPTH} levels", loc,
                                    snippet_at(text, loc))
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, count = stack.pop()
            size = count + 1
        else:  # a scalar
            anchor, size = event.anchor, 1
        written += 1
        if anchor:
            sizes[anchor] = size
        if stack:
            parent, count = stack[-1]
            stack[-1] = (parent, count + size)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") \
        else tag


def parse_text(text: str, file: str) -> SourceDocument:
    """Parse `text` (C parser when there, pure Python otherwise); positions, and the pure
    parser's clearer error messages, are worked out only when something is wrong."""
    from ruamel.yaml.error import YAMLError

    doc = SourceDocument(file=file, text=text, data=None)
    try:
        check_events(text, file)
        raw = _yaml(pure=False).load(text)
    except YAMLError as exc:
        raw = _load_pure(text, file, exc)
    except RecursionError:  # pragma: no cover - check_events bounds the depth first
        raise ManifestError(f"the manifest nests deeper than {MAX_DEPTH} levels",
                            SourceLocation(file, 1, 1)) from None
    doc.data = _plain(raw)
    return doc


def max_manifest_bytes() -> int:
    """The size limit: $DECL_MAX_MANIFEST_SIZE (bytes, or a size such as 20MiB), else 5 MiB."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    from decl.core.units import parse_size

    try:
        value = parse_size(raw)
    except ValueError:
        raise ManifestError(f"{MAX_BYTES_ENV}={raw!r} is not a size (say 20MiB)") from None
    return int(value)


def parse_file(file: str, *, what: str = "manifest") -> SourceDocument:
    """Read and parse a manifest file; a missing, empty or oversized file is a ManifestError."""
    limit = max_manifest_bytes()
    try:
        with open(file, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ManifestError(f"{what} file not found: {file}") from None
    except IsADirectoryError:
        raise ManifestError(f"{what} path is a directory, not a file: {file}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ManifestError(f"cannot read {what} {file}: {reason}") from None
    if len(data) > limit:
        raise ManifestError(
            f"{file} is larger than {limit} bytes, the limit for a {what}; set "
            f"{MAX_BYTES_ENV} (e.g. 20MiB) to raise it", SourceLocation(file, 1, 1))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{file}: not UTF-8 text ({exc.reason})") from None
    if "\0" in text:
        raise ManifestError(f"{file}: not a text file (it contains NUL bytes)")
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise ManifestError(
            f"the {what} is empty: write at least `version: 1` and `project: NAME`"
            if what == "manifest" else f"the {what} is empty",
            SourceLocation(file, 1, 1),
        )
    return parse_text(text, file)


def _positions(node: Any, path: Path, doc: SourceDocument, active: set[int]) -> None:
    """Record the position of every key and value under a composed node."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    if path not in doc.value_positions:
        doc.value_positions[path] = (node.start_mark.line, node.start_mark.column)
    if id(node) in active:  # an alias of an enclosing node: nothing new below
        return
    if isinstance(node, MappingNode):
        active.add(id(node))
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            doc.key_positions[child] = (key_node.start_mark.line, key_node.start_mark.column)
            doc.value_positions[child] = (value_node.start_mark.line,
                                          value_node.start_mark.column)
            _positions(value_node, child, doc, active)
        active.discard(id(node))
    elif isinstance(node, SequenceNode):
        active.add(id(node))
        for index, item in enumerate(node.value):
            child = (*path, index)
            doc.value_positions[child] = (item.start_mark.line, item.start_mark.column)
            _positions(item, child, doc, active)
        active.discard(id(node))


def _plain(node: Any) -> Any:
    """Turn loaded YAML into plain Python data: str keys, no shared objects."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
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
