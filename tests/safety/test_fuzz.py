"""Fuzz: random manifests built from the schema and random mutations of the examples always
end in exit 0 or 1 with at most one error message: never a traceback, a hang or a write.

decl runs in-process (decl.cli.main) for speed, in a temp cwd with its own state dir.
Bounded: a fixed number of examples, no deadline per example.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decl.cli import main
from decl.manifest import model as models
from tests.safety.helpers import tree

EXAMPLES = sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*.yaml"))
SECTIONS = {"venvs": models.Venv, "containers": models.Container, "vms": models.Vm,
            "networks": models.DockerNetwork, "volumes": models.DockerVolume, "wsl": models.Wsl}
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12),
                    st.sampled_from(["{{ x }}", "{{ secret('NOPE') }}", "./p", "/tmp", "1GiB",
                                     "present", "absent", "local", "3.11", "busybox",
                                     "{% for i in range(9) %}{{ i }}{% endfor %}", "~/x",
                                     "a\0b", "foo===",
                                     "--index-url=https://u:p@127.0.0.1/"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


@st.composite
def manifests(draw):
    document = {"version": draw(st.sampled_from([1, 1, 1, 2, "1", True])),
                "project": draw(st.sampled_from(["fuzz", "fuzz-2", "Bad Name", ""]))}
    for section, model in SECTIONS.items():
        if not draw(st.booleans()):
            continue
        fields = sorted(model.model_fields)
        entries = {}
        for name in draw(st.lists(st.sampled_from(["a", "b", "c-1", "A"]), max_size=3,
                                  unique=True)):
            chosen = draw(st.lists(st.sampled_from(fields), max_size=5, unique=True))
            entries[name] = {field: draw(values) for field in chosen}
            if section == "venvs" and draw(st.booleans()):
                entries[name]["path"] = draw(st.sampled_from([f"./{name}", f"./{name}\0x",
                                                              "./" + "p" * 5000]))
        document[section] = entries
    if draw(st.booleans()):
        document["vars"] = draw(st.dictionaries(st.sampled_from(["x", "y"]), values,
                                                max_size=2))
    if draw(st.booleans()):
        document[draw(st.text(max_size=5))] = draw(values)
    return json.dumps(document)


@st.composite
def venv_manifests(draw):
    """Mostly valid venv-only manifests, so that `plan` runs too (venvs on this machine)."""
    texts = st.sampled_from(["ruff==0.6.9", "requests>=2", "foo===", "--index-url=x", "a b",
                             "x @ https://u:p@127.0.0.1/x.whl", "ok; python_version>'3'",
                             "{{ 'r' ~ 'uff' }}", "{{ secret('NOPE') }}", ""])
    venvs = {}
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True)):
        entry = {"path": draw(st.sampled_from([f"./{name}", "./a", "./a/b", f"./{name}\0",
                                               "/" + "p" * 70000, "~/x", "", "."])),
                 "packages": draw(st.lists(texts, max_size=3))}
        for key, values in (("pip", [True, False, None, "yes"]),
                            ("state", ["present", "absent", "gone"]),
                            ("adopt", [True, False]), ("requirements", ["/etc/shadow",
                                                                        "./missing.txt"])):
            if draw(st.booleans()):
                entry[key] = draw(st.sampled_from(values))
        venvs[name] = entry
    return json.dumps({"version": 1, "project": "fuzz", "venvs": venvs})


MUTATION_CHARS = list(":-{}[]&*!|>\t\"'#%@`\\ \n") + ["\u00e4", "{{", "}}", "{%", "*a", "&a "]


@st.composite
def mutated_examples(draw):
    text = draw(st.sampled_from(EXAMPLES)).read_text()
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:position] + draw(st.sampled_from(MUTATION_CHARS)) + text[position:]
        else:
            text = text[:position] + text[position + draw(st.integers(1, 8)):]
    return text


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def _check(workdir: pathlib.Path, text: str) -> None:
    (workdir / "m.yaml").write_text(text, encoding="utf-8")
    before = tree(workdir)
    commands = [["validate", "-f", "m.yaml"]]
    if '"hosts"' not in text and "hosts:" not in text and "vms" not in text \
            and "wsl" not in text and "containers" not in text:
        commands.append(["plan", "-f", "m.yaml"])  # local venvs only: no host to wait for
    for args in commands:
        code, out, err = _run(args)
        assert code in (0, 1), (args, code, err)
        assert "Traceback" not in err, (text, err)
        assert not any(line.startswith("error: unexpected ") for line in err.splitlines()), err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == (1 if code == 1 and not out.strip() else len(errors)), err
        if code == 1 and args[0] == "validate":
            assert len(errors) == 1, (text, err)
        assert tree(workdir) == before, (args, "wrote files")


@pytest.fixture
def workdir(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(path)
    monkeypatch.setenv("DECL_STATE_DIR", str(path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("NOPE", raising=False)
    return path


@SETTINGS
@given(text=manifests())
def test_random_manifests_from_the_schema(workdir, text):
    _check(workdir, text)


@settings(SETTINGS, max_examples=200)
@given(text=venv_manifests())
def test_random_venv_manifests_validate_and_plan(workdir, text):
    _check(workdir, text)


@SETTINGS
@given(text=mutated_examples())
def test_random_mutations_of_the_examples(workdir, text):
    _check(workdir, text)
