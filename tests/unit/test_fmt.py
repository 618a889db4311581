"""`decl fmt`: comments kept, canonical order and indentation, idempotent, --check codes."""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from decl.manifest.fmt import TOP_LEVEL_ORDER, FormatError, format_text

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = sorted([*(ROOT / "examples").glob("*.yaml"), ROOT / "decl" / "data" / "quickstart.yaml",
                 *(ROOT / "tests" / "fmt_cases").glob("*.yaml")])


def comments(text: str) -> Counter[str]:
    """The text of every comment (a `#` outside quotes, at a line start or after a space)."""
    found: Counter[str] = Counter()
    for line in text.splitlines():
        quote = None
        for index, char in enumerate(line):
            if quote:
                if char == quote:
                    quote = None
            elif char in "'\"" and (index == 0 or line[index - 1] in " [{,:"):
                quote = char
            elif char == "#" and (index == 0 or line[index - 1] in " \t"):
                found[line[index:].strip()] += 1
                break
    return found


def data(text: str):
    return YAML(typ="safe", pure=True).load(text)


def top_keys(text: str) -> list[str]:
    return [str(k) for k in data(text)]


def check_canonical(source: str, result: str) -> None:
    assert data(result) == data(source)
    assert comments(result) == comments(source)
    keys = top_keys(result)
    known = [k for k in keys if k in TOP_LEVEL_ORDER]
    assert known == sorted(known, key=TOP_LEVEL_ORDER.index)
    for line in result.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, line
    assert format_text(result) == result


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_manifest_keeps_its_data_and_comments_and_formats_once(path):
    source = path.read_text()
    check_canonical(source, format_text(source))


def test_the_formatted_case_is_left_byte_for_byte():
    source = (ROOT / "tests" / "fmt_cases" / "formatted.yaml").read_text()
    assert format_text(source) == source


def test_messy_manifest_in_detail():
    result = format_text((ROOT / "tests" / "fmt_cases" / "messy.yaml").read_text())
    lines = result.splitlines()
    assert lines[0].startswith("# A manifest written by hand")  # the header stays on top
    assert lines[2:5] == ["# the version comes last here", "version: 1", "project: messy"]
    assert "    path: ~/.venvs/tools           # quoted for no reason" in lines
    assert '    python: "3.11"                 # must stay quoted: a number otherwise' in lines
    assert '    env: {DEBUG: "yes", LEVEL: \'on\', MODE: "0755", EMPTY: ""}' in lines
    assert '    ports: ["127.0.0.1:8080:80", "53:53/udp"]' in lines
    assert "      - ruff==0.6.9" in lines and "      # a comment between list items" in lines
    assert "  # a comment before the second venv" in lines
    assert lines[-1] == "# trailing comment at the end of the file"
    # resources keep the order they were written in
    assert result.index("  web:") < result.index("  db:")


def test_json_manifest_becomes_block_yaml():
    result = format_text('{"venvs": {"a": {"path": "/tmp/a"}}, "project": "p", "version": 1}')
    assert result == "version: 1\nproject: p\n\nvenvs:\n  a:\n    path: /tmp/a\n"


def test_parse_errors_name_line_and_column():
    with pytest.raises(FormatError, match=r"^2:1: expected ',' or ']'"):
        format_text("a: [1\n")


def test_block_scalars_are_left_alone():
    source = ("version: 1\nproject: p\nvms:\n  web:\n    cloud_init:\n      user_data: |\n"
              "        #cloud-config\n          # indented on purpose\n        runcmd: []\n")
    result = format_text(source)
    assert data(result) == data(source)
    assert "        #cloud-config\n          # indented on purpose\n" in result


# -- property: whatever the layout a manifest was written in, fmt gives a canonical one ----

def _relayout(source: str, order_seed: list[int], indent: tuple[int, int, int],
              quote: st.DataObject) -> str:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    tree = yaml.load(source)
    if isinstance(tree, CommentedMap) and not tree.fa.flow_style():
        keys = list(tree)
        order = sorted(range(len(keys)), key=lambda i: order_seed[i % len(order_seed)] * 100 + i)
        shuffled = CommentedMap()
        for index in order:
            shuffled[keys[index]] = tree[keys[index]]
        shuffled.ca.comment = tree.ca.comment
        shuffled.ca.items.update(tree.ca.items)
        tree = shuffled

    def requote(node):
        pairs = node.items() if isinstance(node, CommentedMap) else enumerate(node)
        for key, value in list(pairs):
            if isinstance(value, (CommentedMap, CommentedSeq)):
                requote(value)
            elif type(value) is str and "'" not in value and '"' not in value and \
                    "\\" not in value and quote.draw(st.booleans()):
                style = quote.draw(st.sampled_from([DoubleQuotedScalarString,
                                                    SingleQuotedScalarString]))
                if isinstance(node, CommentedMap):
                    dict.__setitem__(node, key, style(value))
                else:
                    list.__setitem__(node, key, style(value))

    if isinstance(tree, (CommentedMap, CommentedSeq)):
        requote(tree)
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(CORPUS), order_seed=st.lists(st.integers(0, 20), min_size=1,
                                                          max_size=12),
       indent=st.sampled_from([(2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 6, 4), (3, 3, 1)]),
       quote=st.data())
def test_property_any_layout_formats_to_a_canonical_fixed_point(path, order_seed, indent,
                                                                 quote):
    written = _relayout(path.read_text(), order_seed, indent, quote)
    result = format_text(written)
    check_canonical(written, result)


# -- the command ------------------------------------------------------------------------------

def decl(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "decl", *args], capture_output=True,
                          text=True, check=False, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "NO_COLOR": "1", "PATH": "/usr/bin"})


def test_check_exits_1_naming_files_then_fmt_writes_then_check_passes(tmp_path):
    messy = tmp_path / "messy.yaml"
    messy.write_text((ROOT / "tests" / "fmt_cases" / "messy.yaml").read_text())
    tidy = tmp_path / "tidy.yaml"
    tidy.write_text((ROOT / "tests" / "fmt_cases" / "formatted.yaml").read_text())
    before = messy.read_text()
    checked = decl("fmt", "--check", str(tmp_path), cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [f"{messy}: not formatted"]
    assert messy.read_text() == before  # --check changes nothing
    diffed = decl("fmt", "--check", "--diff", "messy.yaml", cwd=tmp_path)
    assert diffed.returncode == 1
    assert "--- messy.yaml (written)" in diffed.stdout and "+version: 1" in diffed.stdout
    written = decl("fmt", "messy.yaml", "tidy.yaml", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert written.stdout.splitlines() == ["formatted messy.yaml"]
    assert messy.read_text() == format_text(before)
    again = decl("fmt", "--check", str(messy), str(tidy), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == ""


def test_fmt_errors_are_one_line_with_file_line_and_column(tmp_path):
    bad = tmp_path / "decl.yaml"
    bad.write_text("version: 1\nvenvs: [1\n")
    done = decl("fmt", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: decl.yaml:3:1: expected ',' or ']'")
    assert decl("fmt", "nope.yaml", cwd=tmp_path).stderr == "error: nope.yaml: no such file\n"


def test_fmt_reads_standard_input(tmp_path):
    done = subprocess.run([sys.executable, "-m", "decl", "fmt", "-"], input="project: p\n"
                          "version: 1\n", capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    assert done.stdout == "version: 1\nproject: p\n"
