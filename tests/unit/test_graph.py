"""`decl graph`: DOT read back edge by edge, Mermaid, SVG through Graphviz, --plan colours."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from ruamel.yaml import YAML

from tests.backends import missing_backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[(.*)\])?;$')
NODE = re.compile(r'^\s*"([^"]+)" \[(.*)\];$')

DOCKER_ONLY = {"container": "docker", "network": "docker", "volume": "docker"}
SECTIONS = {"vms": "vm", "containers": "container", "networks": "network",
            "volumes": "volume", "wsl": "wsl", "venvs": "venv"}


def decl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def parse_dot(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    """Our DOT back into nodes {name: attrs} and edges {(from, to, kind)}."""
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()
    lines = text.strip().splitlines()
    assert lines[0] == "digraph decl {" and lines[-1] == "}"
    for line in lines[1:-1]:
        if match := EDGE.match(line):
            attrs = match.group(3) or ""
            label = re.search(r'label="([^"]*)"', attrs)
            kind = label.group(1) if label else "depends_on"
            if kind != "depends_on":
                assert "style=dashed" in attrs or "style=dotted" in attrs
            edges.add((match.group(1), match.group(2), kind))
        elif match := NODE.match(line):
            nodes[match.group(1)] = match.group(2)
    return nodes, edges


def expected_edges(path: pathlib.Path) -> set[tuple[str, str, str]]:
    """Edges worked out from the YAML itself, independently of decl's code."""
    data = YAML(typ="safe").load(path.read_text())
    default_host = (data.get("defaults") or {}).get("host", "local")
    found = set()
    for section, kind in SECTIONS.items():
        for name, body in (data.get(section) or {}).items():
            address = f"{kind}.{name}"
            body = body or {}
            deps = set(body.get("depends_on") or [])
            found |= {(address, dep, "depends_on") for dep in deps}
            if kind == "container":
                for net in body.get("networks") or []:
                    if net in (data.get("networks") or {}) and f"network.{net}" not in deps:
                        found.add((address, f"network.{net}", "network"))
                for spec in body.get("volumes") or []:
                    source = spec.split(":", 1)[0]
                    if source in (data.get("volumes") or {}) and f"volume.{source}" not in deps:
                        found.add((address, f"volume.{source}", "volume"))
            found.add((address, f"host.{body.get('host', default_host)}", "host"))
    return found


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_dot_has_every_edge_of_each_example_and_no_other(example):
    done = decl("graph", "-f", str(example))
    assert done.returncode == 0, done.stderr
    nodes, edges = parse_dot(done.stdout)
    assert edges == expected_edges(example)
    for source, target, _ in edges:
        assert source in nodes and target in nodes


def test_a_manifest_with_explicit_and_implied_edges(tmp_path):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text("""\
version: 1
project: graphs
hosts: {nas: {address: 127.0.0.1}}
networks: {front: {}, back: {}}
volumes: {data: {}}
containers:
  db: {image: "postgres:16", networks: [back], volumes: ["data:/var/lib/db", "./x:/x"]}
  web: {image: "nginx:1", networks: [front, back], depends_on: [container.db, network.front]}
venvs:
  tools: {path: /tmp/t, host: nas, depends_on: [container.web]}
""")
    nodes, edges = parse_dot(decl("graph", "-f", str(manifest)).stdout)
    assert edges == {
        ("container.db", "network.back", "network"), ("container.db", "volume.data", "volume"),
        ("container.web", "container.db", "depends_on"),
        ("container.web", "network.front", "depends_on"),
        ("container.web", "network.back", "network"),
        ("venv.tools", "container.web", "depends_on"),
        ("venv.tools", "host.nas", "host"),
        *{(a, "host.local", "host") for a in ("network.front", "network.back", "volume.data",
                                              "container.db", "container.web")},
    }
    assert set(nodes) == {"network.front", "network.back", "volume.data", "container.db",
                          "container.web", "venv.tools", "host.local", "host.nas"}
    mermaid = decl("graph", "-f", str(manifest), "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR\n")
    assert "  container_web --> container_db\n" in mermaid
    assert "  container_web -.->|network| network_back\n" in mermaid
    assert "  venv_tools -.->|host| host_nas\n" in mermaid
    if shutil.which("dot") is not None:  # Graphviz reads our DOT the same way
        graph = json.loads(subprocess.run(["dot", "-Tjson0"], input=decl(
            "graph", "-f", str(manifest)).stdout, capture_output=True, text=True,
            check=True).stdout)
        names = {o["_gvid"]: o["name"] for o in graph["objects"]}
        assert {(names[e["tail"]], names[e["head"]]) for e in graph["edges"]} == \
            {(a, b) for a, b, _ in edges}


def test_svg_and_png_through_graphviz(tmp_path):
    if shutil.which("dot") is None:
        missing_backend("graphviz", "dot is not installed (apt-get install graphviz)")
    example = str(ROOT / "examples" / "containers.yaml")
    svg = decl("graph", "-f", example, "--format", "svg")
    assert svg.returncode == 0, svg.stderr
    assert "<svg" in svg.stdout and "container.web" in svg.stdout
    png = tmp_path / "g.png"
    done = decl("graph", "-f", example, "--format", "png", "-o", str(png))
    assert done.returncode == 0, done.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "Wrote" in done.stderr


def test_without_graphviz_svg_says_how_to_get_it(tmp_path):
    env_path = tmp_path / "bin"
    env_path.mkdir()
    done = subprocess.run([sys.executable, "-m", "decl", "graph", "-f",
                           str(ROOT / "examples" / "containers.yaml"), "--format", "svg"],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={"PATH": str(env_path), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"})
    assert done.returncode == 1
    assert "needs Graphviz's `dot`, which is not installed" in done.stderr
    assert "Traceback" not in done.stderr
    assert decl("graph", "-f", str(ROOT / "examples" / "containers.yaml"), "--format",
                "png").returncode == 1


def test_plan_colours_nodes_with_their_action(tmp_path):
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(f"""\
version: 1
project: graphplan
venvs:
  fresh: {{path: {tmp_path / 'fresh'}}}
  gone: {{path: {tmp_path / 'gone'}, state: absent}}
""")
    done = decl("graph", "-f", str(manifest), "--plan")
    assert done.returncode == 0, done.stderr
    nodes, _ = parse_dot(done.stdout)
    assert 'label="+ venv.fresh\\nvenv"' in nodes["venv.fresh"]
    assert 'fillcolor="#d9f2d9"' in nodes["venv.fresh"]
    assert 'label="venv.gone\\nvenv"' in nodes["venv.gone"]  # absent, as wanted: no-op
    mermaid = decl("graph", "-f", str(manifest), "--plan", "--format", "mermaid").stdout
    assert "  class venv_fresh create\n" in mermaid and "classDef create fill:#d9f2d9" in mermaid
