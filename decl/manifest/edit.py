"""Adding resources to a manifest file with every comment kept (`decl import --write`)."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from decl.errors import DeclError
from decl.files import write_atomic
from decl.manifest.fmt import TOP_LEVEL_ORDER, _Quoting, _requote, _yaml


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _commented(item)
        small = all(not isinstance(item, dict) and not (
            isinstance(item, list) and any(isinstance(i, (dict, list)) for i in item))
            for item in value.values())
        if value and small and len(value) <= 3 and len(str(value)) <= 60:
            node.fa.set_flow_style()  # {mode: none} reads best on one line
        return node
    if isinstance(value, list):
        items = [_commented(item) for item in value]
        seq = CommentedSeq(items)
        if all(not isinstance(item, (dict, list)) for item in items):
            seq.fa.set_flow_style()  # a list of words reads best on one line
        return seq
    return value


def add_resources(text: str, sections: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The manifest text with resources added: {section: {name: fields}}. A new section goes
    where `decl fmt` puts it; existing text, order and comments stay."""
    yaml = _yaml()
    data = yaml.load(text)
    if not isinstance(data, CommentedMap):
        raise DeclError("the manifest is not a mapping: nothing can be added to it")
    for section, resources in sections.items():
        if section not in data or data[section] is None:
            rank = TOP_LEVEL_ORDER.index(section)
            position = sum(1 for key in data if key in TOP_LEVEL_ORDER
                           and TOP_LEVEL_ORDER.index(key) < rank)
            data.insert(position, section, CommentedMap())
        target = data[section]
        if target.fa.flow_style():
            target.fa.set_block_style()
        for name, fields in resources.items():
            if name in target:
                raise DeclError(f"{section}.{name} is in the manifest already")
            entry = _commented(fields)
            _requote(entry, _Quoting(), False)  # quotes where `decl fmt` puts them
            target[name] = entry
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def add_resources_to_file(path: str, sections: dict[str, dict[str, dict[str, Any]]]) -> None:
    """add_resources() on a file, written atomically."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    write_atomic(path, add_resources(text, sections).encode("utf-8"))
