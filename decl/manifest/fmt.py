"""`decl fmt`: one canonical layout for manifests, every comment kept.

The layout:
- top-level keys in the schema's order (TOP_LEVEL_ORDER); each key takes along the comment
  lines and blank lines written above it; lines before the first key stay at the top;
- two-space indentation (block lists indented two spaces under their key);
- resources, and every other mapping, in the order written: never sorted;
- strings quoted only where they must be: where YAML 1.2 would read them as something
  else, where an older YAML 1.1 reader would (`yes`, `on`, `8080:80`, `0755`), or where
  the syntax needs it; a string that needs quotes keeps the quotes it was written with;
- flow collections (`[a, b]`, `{x: 1}`) stay flow, block ones stay block; a flow mapping at
  the top of the document becomes block.

format_text() is a pure function of the text: formatting its result changes nothing.
"""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.emitter import Emitter
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

TOP_LEVEL_ORDER = ("version", "project", "vars", "defaults", "hosts", "vms", "containers",
                   "networks", "volumes", "wsl", "venvs")

_STR = "tag:yaml.org,2002:str"
_TOP_KEY = re.compile(r"""^(?:"[^"]*"|'[^']*'|[^\s#\-{}\[\]'"][^:#]*?)\s*:(?:\s|$)""")


class FormatError(ValueError):
    """The text is not YAML that fmt can lay out (a parse error, several documents)."""


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.brace_single_entry_mapping_in_flow_sequence = True
    return yaml


def _key_of(line: str) -> str | None:
    """The key of a top-level `key:` line (column 0), or None."""
    if not line or line[0] in " \t#-" or line.startswith(("---", "...", "%")):
        return None
    match = _TOP_KEY.match(line)
    if not match:
        return None
    key = line.split(":", 1)[0].strip() if line[0] not in "\"'" else line[1:].split(line[0])[0]
    return key


def _rank(key: str) -> int:
    return TOP_LEVEL_ORDER.index(key) if key in TOP_LEVEL_ORDER else len(TOP_LEVEL_ORDER)


def reorder_top_level(text: str) -> str:
    """Move the top-level blocks of a block-mapping document into TOP_LEVEL_ORDER.

    A block is a `key:` line at column 0 with everything under it, plus the comment and
    blank lines directly above it. Lines before the first key, and comment lines after
    the last content line, stay where they are.
    """
    lines = text.splitlines(keepends=True)
    keys = [i for i, line in enumerate(lines) if _key_of(line) is not None]
    if len(keys) < 2:
        return text
    # Where each block begins: its key line, moved up over comment/blank lines above it.
    starts = []
    for index in keys:
        start = index
        while start > 0 and (lines[start - 1].strip() == "" or lines[start - 1].startswith("#")):
            start -= 1
        starts.append(start)
    # The header (lines before the first key) stays at the top of the file.
    header_end = starts[0] = keys[0]
    # Trailing comments after the last content line stay last.
    end = len(lines)
    while end > keys[-1] + 1 and (lines[end - 1].strip() == "" or lines[end - 1].startswith("#")):
        end -= 1
    blocks = []
    for n, start in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else end
        block = lines[start:stop]
        if block and not block[-1].endswith("\n"):
            block[-1] += "\n"
        blocks.append((_rank(_key_of(lines[keys[n]]) or ""), n, block))
    ordered = sorted(blocks, key=lambda b: (b[0], b[1]))
    out = lines[:header_end]
    for position, (_, _, block) in enumerate(ordered):
        content = [line for line in block if line.strip() and not line.startswith("#")]
        # A section of several lines stands apart from the one above it by a blank line.
        if position > 0 and len(content) > 1 and block[0].strip() != "" and \
                out and out[-1].strip() != "":
            out.append("\n")
        out.extend(block)
    out.extend(lines[end:])
    return "".join(out)


class _Quoting:
    """Decides, for each string, whether it must be quoted."""

    def __init__(self) -> None:
        self.resolve_12 = VersionedResolver(version=(1, 2))
        self.resolve_11 = VersionedResolver(version=(1, 1))
        self.emitter = Emitter(io.StringIO())

    def needs_quotes(self, value: str, in_flow: bool) -> bool:
        if value == "" or value != value.strip() or "\n" in value:
            return True
        if in_flow and ":" in value:
            return True  # YAML 1.1 readers take any ':' in a flow collection as a key mark
        for resolver in (self.resolve_12, self.resolve_11):
            if resolver.resolve(ScalarNode, value, (True, False)) != _STR:
                return True
        analysis = self.emitter.analyze_scalar(value)
        if analysis.multiline:
            return True
        return not (analysis.allow_flow_plain if in_flow else analysis.allow_block_plain)


def _requote(node: Any, quoting: _Quoting, in_flow: bool) -> None:
    """Drop quotes that are not needed; add double quotes where a plain string needs them."""
    if isinstance(node, CommentedMap):
        flow = in_flow or node.fa.flow_style()
        for position, key in enumerate(list(node.keys())):
            new_key = _requoted(key, quoting, flow)
            if new_key is not key and type(new_key) is not type(key):
                comment = node.ca.items.pop(key, None)
                value = node.pop(key)
                node.insert(position, new_key, value)
                if comment is not None:
                    node.ca.items[new_key] = comment
                key = new_key
            value = _requoted(node[key], quoting, flow)
            if value is not node[key]:
                # CommentedMap.__setitem__ would keep the old quoting: set it underneath.
                ordereddict.__setitem__(node, key, value)
            _requote(node[key], quoting, flow)
    elif isinstance(node, CommentedSeq):
        flow = in_flow or node.fa.flow_style()
        for index, item in enumerate(node):
            value = _requoted(item, quoting, flow)
            if value is not item:
                list.__setitem__(node, index, value)  # as above: not the style-keeping setter
            _requote(node[index], quoting, flow)


def _requoted(value: Any, quoting: _Quoting, in_flow: bool) -> Any:
    if not isinstance(value, str) or isinstance(value, (LiteralScalarString,
                                                         FoldedScalarString)):
        return value
    quoted = isinstance(value, (SingleQuotedScalarString, DoubleQuotedScalarString))
    if not quoting.needs_quotes(str(value), in_flow):
        return _keep_comment(value, str(value)) if quoted else value
    if quoted:
        return value
    return _keep_comment(value, DoubleQuotedScalarString(str(value)))


def _keep_comment(old: Any, new: Any) -> Any:
    """Carry a scalar's anchor over (comments live on the parent, not the scalar)."""
    anchor = getattr(old, "anchor", None)
    if anchor is not None and getattr(anchor, "value", None):
        new.yaml_set_anchor(anchor.value, always_dump=True)
    return new


def format_text(text: str) -> str:
    """The manifest text in the canonical layout (comments kept)."""
    yaml = _yaml()
    try:
        documents = list(yaml.load_all(text))
    except Exception as exc:  # ruamel raises many kinds; all mean "not YAML we can lay out"
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        if mark is not None:
            raise FormatError(f"{mark.line + 1}:{mark.column + 1}: {problem}") from None
        raise FormatError(problem) from None
    if len(documents) != 1:
        raise FormatError(f"expected one YAML document, found {len(documents)}")
    data = documents[0]
    if isinstance(data, CommentedMap) and data.fa.flow_style():
        # A document written as one flow mapping (JSON) was not laid out by hand: all block.
        _all_block(data)
        ordered = CommentedMap()
        for key in sorted(data, key=lambda k: (_rank(str(k)), list(data).index(k))):
            ordered[key] = data[key]
        out = io.StringIO()
        yaml.dump(ordered, out)
        return format_text(out.getvalue())  # now a block document: the usual way
    data = yaml.load(reorder_top_level(text))
    _requote(data, _Quoting(), False)
    out = io.StringIO()
    yaml.dump(data, out)
    dumped = out.getvalue()
    aligned = align_comments(dumped)
    if aligned != dumped and _same_data(aligned, dumped):
        return aligned
    return dumped


def _all_block(node: Any) -> None:
    if isinstance(node, (CommentedMap, CommentedSeq)):
        node.fa.set_block_style()
        for child in (node.values() if isinstance(node, CommentedMap) else node):
            _all_block(child)


def _same_data(one: str, other: str) -> bool:
    safe = YAML(typ="safe", pure=True)
    try:
        return bool(safe.load(one) == safe.load(other))
    except Exception:  # noqa: BLE001 - not loadable: not the same
        return False


def align_comments(text: str) -> str:
    """Indent each full-line comment like the line it stands above (it is about that line).

    format_text() keeps the result only when it reads as the same data, so a `#` line
    inside a block scalar (`|`) is never moved.
    """
    lines = text.splitlines(keepends=True)
    out = list(lines)
    following = ""
    for index in range(len(lines) - 1, -1, -1):
        stripped = lines[index].lstrip(" ")
        if stripped.startswith("#"):
            if following:
                out[index] = following + stripped
        elif stripped.strip():
            following = lines[index][: len(lines[index]) - len(stripped)]
    return "".join(out)
