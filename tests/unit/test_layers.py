"""Every import in decl/ points down the layer list (DESIGN.md section 1), for every module.

errors, redact, files -> core -> connections | manifest -> providers -> engine -> render -> cli

A module may import its own package (layer unit) or a unit of a lower layer; two units of one
layer (connections and manifest) do not import each other. Imports inside functions and
under TYPE_CHECKING count too: a late import is still an arrow.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DECL = ROOT / "decl"

# Bottom first. Each entry is one layer; each name in it is one unit (a package or module).
LAYERS: list[tuple[str, ...]] = [
    ("decl.platforms",),
    ("decl", "decl.errors", "decl.redact", "decl.files", "decl.filelock"),
    ("decl.core",),
    ("decl.connections", "decl.manifest"),
    ("decl.providers",),
    ("decl.engine",),
    ("decl.render",),
    ("decl.cli",),
    ("decl.__main__",),
]


def unit_of(module: str) -> str:
    """The layer unit a dotted module belongs to (longest listed prefix)."""
    best = ""
    for layer in LAYERS:
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and len(unit) > len(best):
                best = unit
    if not best:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return best


def layer_of(unit: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if unit in layer)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: pathlib.Path, name: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every decl import in a file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from decl import x` imports the module decl.x when there is one
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                as_path = ROOT / pathlib.Path(*candidate.split("."))
                if as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists():
                    found.append((node.lineno, candidate))
                else:
                    found.append((node.lineno, target))
    return [(line, module) for line, module in found
            if module == "decl" or module.startswith("decl.")]


MODULES = sorted(DECL.rglob("*.py"))


def violations(path: pathlib.Path, name: str | None = None) -> list[str]:
    """Each import of the module at `path` (named `name`) that does not point down."""
    name = name or module_name(path)
    source_unit = unit_of(name)
    source_layer = layer_of(source_unit)
    wrong = []
    for line, module in imported_modules(path, name):
        target_unit = unit_of(module)
        if target_unit == source_unit:
            continue
        if layer_of(target_unit) >= source_layer:
            wrong.append(f"{path.name}:{line}: {name} "
                         f"({source_unit}) imports {module} ({target_unit}), "
                         "which is not below it")
    return wrong


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_down(path):
    assert violations(path) == []


def test_the_walk_sees_every_package():
    units = {unit_of(module_name(path)) for path in MODULES}
    assert units >= {"decl.core", "decl.connections", "decl.manifest", "decl.providers",
                     "decl.engine", "decl.render", "decl.cli", "decl.errors"}


def test_an_upward_import_is_caught(tmp_path):
    """The checker itself: a core module importing a provider is reported with its line."""
    fake = tmp_path / "probe.py"
    fake.write_text("from decl.core.plan import Plan\n\n\ndef f():\n"
                    "    from decl.providers.base import Provider\n", encoding="utf-8")
    found = violations(fake, "decl.core.probe")
    assert len(found) == 1
    assert "probe.py:5: decl.core.probe (decl.core) imports decl.providers.base" in found[0]


def test_relative_and_type_checking_imports_count(tmp_path):
    fake = tmp_path / "probe.py"
    fake.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from ..engine import session\n", encoding="utf-8")
    found = violations(fake, "decl.providers.probe")
    assert len(found) == 1 and "imports decl.engine.session" in found[0]


def test_same_layer_siblings_may_not_import_each_other(tmp_path):
    fake = tmp_path / "probe.py"
    fake.write_text("import decl.connections.base\n", encoding="utf-8")
    found = violations(fake, "decl.manifest.probe")
    assert found and "imports decl.connections.base" in found[0]
