"""Project-level guarantees: schema up to date, examples valid, import rules, plugins."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True, text=True,
                          check=False, cwd=ROOT)


def test_committed_schema_is_current():
    done = run("schema")
    assert done.returncode == 0
    committed = json.loads((ROOT / "schemas" / "decl.schema.json").read_text())
    assert json.loads(done.stdout) == committed, \
        "schemas/decl.schema.json is stale: run `decl schema > schemas/decl.schema.json`"


def test_every_field_is_documented():
    from decl.engine.schema import manifest_schema

    schema = manifest_schema()  # with every registered provider's options
    for name, definition in schema.get("$defs", {}).items():
        for field, body in definition.get("properties", {}).items():
            assert body.get("description"), f"{name}.{field} has no description"


EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_validates(example):
    done = run("validate", "-f", str(example))
    assert done.returncode == 0, done.stderr


def test_one_example_per_kind():
    from decl.manifest.model import SECTION_OF_KIND

    seen = set()
    for example in EXAMPLES:
        text = example.read_text()
        seen |= {kind for kind, section in SECTION_OF_KIND.items() if f"\n{section}:" in text}
    assert seen == set(SECTION_OF_KIND)


def test_init_writes_the_quickstart(tmp_path):
    target = tmp_path / "decl.yaml"
    assert run("init", "-f", str(target)).returncode == 0
    assert target.read_text() == (ROOT / "examples" / "quickstart.yaml").read_text()
    again = run("init", "-f", str(target))
    assert again.returncode == 1 and "exists" in again.stderr


def imports_of(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_manifest_and_planner_import_no_providers_or_connections():
    files = [*(ROOT / "decl" / "manifest").glob("*.py"), *(ROOT / "decl" / "core").glob("*.py")]
    for path in files:
        for module in imports_of(path):
            assert not module.startswith(("decl.providers", "decl.connections")), \
                f"{path.name} imports {module}"


def test_version_does_not_import_heavy_modules():
    code = ("import sys; from decl.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print('heavy=' + ','.join(m for m in ('docker', 'paramiko', 'jinja2', 'pydantic') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip().splitlines()[-1] == "heavy="


def test_validate_does_not_import_docker_or_paramiko(tmp_path):
    code = ("import sys; from decl.cli import main\n"
            f"try:\n    main(['validate', '-f', {str(ROOT / 'examples' / 'quickstart.yaml')!r}])\n"
            "except SystemExit:\n    pass\n"
            "print('heavy=' + ','.join(m for m in ('docker', 'paramiko') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip().splitlines()[-1] == "heavy="


def test_broken_plugin_is_listed_and_the_rest_works(tmp_path):
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text("raise RuntimeError('plugin exploded')\n")
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from decl.providers import registry\n"
        "entries = registry.discover_entries()\n"
        "entries['broken'] = 'broken_plugin:Provider'\n"
        "registry.discover_entries = lambda: entries\n"
        "from decl.engine.inventory import provider_report\n"
        "rows = provider_report('/nonexistent.yaml')\n"
        "print(json.dumps(rows))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    rows = {row["provider"]: row for row in json.loads(done.stdout)}
    assert rows["broken"]["status"] == "broken"
    assert "RuntimeError: plugin exploded" in rows["broken"]["detail"]
    assert rows["venv"]["status"] == "available"


def test_kinds_without_provider_say_so(tmp_path):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text("version: 1\nproject: p\nvms:\n  old:\n    provider: xen\n")
    code = (
        "from decl.providers import registry\n"
        "entries = registry.discover_entries(); entries.pop('xen', None)\n"
        "registry.discover_entries = lambda: entries\n"
        "from decl.cli import main\n"
        f"main(['plan', '-f', {str(manifest)!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert done.returncode == 0
    assert "vm.old: no provider is available for vm resources with provider 'xen' yet" in \
        done.stdout
