"""Secret sweep: secrets with quotes, backslashes, tabs, non-ASCII and URL-reserved
characters go into every templated field of every example; validate, plan, --json, --out,
apply (real venvs), status, errors, --debug and the journal are searched for every spelling
of every secret (decl.redact.spellings): zero hits."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import pytest

from decl.cli import main
from tests.wheelhouse import standard_wheelhouse

ROOT = pathlib.Path(__file__).parents[2]
SECRETS = {
    "SWEEP_QUOTES": "q'u\"o`te$(x)",
    "SWEEP_BACKSLASH": "back\\sl\\ash\\n\\u00e4",
    "SWEEP_TAB": "ta\tb\tsecret",
    "SWEEP_UNICODE": "ünïcødé-пароль-密码",
    "SWEEP_URL": "p@ss/w:rd?&=#%+ 20",
}
SECTIONS = ("vms", "containers", "networks", "volumes", "wsl", "venvs", "hosts")


def spellings(value: str) -> set[str]:
    """The spellings searched for, written here independently of decl.redact."""
    import base64
    import shlex
    import urllib.parse

    first = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             repr(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote(value),
             urllib.parse.quote_plus(value), urllib.parse.quote(value, safe="!$&'()*+,;="),
             urllib.parse.quote(value, safe="").lower(), shlex.quote(value),
             base64.b64encode(value.encode()).decode().rstrip("=")}
    forms = set(first)
    for form in first:
        forms |= {json.dumps(form)[1:-1], repr(form)[1:-1]}
    # inside a longer base64 text (user data encoded whole): the characters of the secret's
    # bits alone, for each of the 3 byte offsets in a 3-byte group, both alphabets
    data = value.encode()
    for before in range(3):
        encoded = base64.b64encode(bytes(before) + data).decode()
        core = encoded[(8 * before + 5) // 6:(8 * before + 8 * len(data)) // 6]
        forms |= {core, core.replace("+", "-").replace("/", "_")}
    return forms


def _run(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue() + err.getvalue()


def _hits(text: str) -> list[tuple[str, str]]:
    return [(name, form) for name, value in SECRETS.items() for form in spellings(value)
            if form in text]


def _leaves(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _leaves(item, (*path, index))
    elif isinstance(data, str):
        yield path


def _set(data, path, value):
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@pytest.fixture
def sweep_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DECL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PG_PASSWORD", "pg-Pass'word\"\t1")
    return tmp_path


def test_every_templated_field_of_every_example(sweep_env):
    from decl.manifest.source import parse_file

    names = list(SECRETS)
    runs = 0
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        data = parse_file(str(example)).data
        leaves = [p for p in _leaves(data) if p[0] in SECTIONS]
        for number, leaf in enumerate(leaves):
            variant = json.loads(json.dumps(data))
            original = variant
            for part in leaf:
                original = original[part]
            secret = names[number % len(names)]
            for template in (f"{original}{{{{ secret('{secret}') }}}}",
                             f"{{{{ secret('{secret}') | urlencode }}}}",
                             f"{{{{ {{}}[secret('{secret}')] }}}}"):
                _set(variant, leaf, template)
                (sweep_env / "m.yaml").write_text(json.dumps(variant))
                for args in (["validate", "-f", "m.yaml"], ["--debug", "validate", "-f",
                                                            "m.yaml"]):
                    code, output = _run(args)
                    runs += 1
                    assert code in (0, 1), output
                    assert _hits(output) == [], (example.name, leaf, template, output)
    assert runs > 100


def test_venvs_plan_json_out_apply_status_debug_journal(sweep_env):
    wheels = standard_wheelhouse(sweep_env / "wheels")
    quoted = {name: f"{{{{ secret('{name}') | urlencode }}}}" for name in SECRETS}
    manifest = {
        "version": 1, "project": "sweep",
        "vars": {"token": "{{ secret('SWEEP_QUOTES') }}"},
        "venvs": {
            "tools": {
                "path": "./tools", "pip": False, "backend": "venv",
                "find_links": [str(wheels)], "no_index": True,
                "index_url": f"https://user:{quoted['SWEEP_URL']}@127.0.0.1:9/simple",
                "extra_index_urls": [f"https://u:{quoted['SWEEP_UNICODE']}@127.0.0.1:9/x"],
                "packages": ["delta", f"alpha; python_version > '{{{{ token | length }}}}' and "
                             f"extra == '{quoted['SWEEP_TAB']}'"],
            },
        },
    }
    (sweep_env / "m.yaml").write_text(json.dumps(manifest))
    outputs = []
    for args in (["plan", "-f", "m.yaml"], ["plan", "-f", "m.yaml", "--json"],
                 ["plan", "-f", "m.yaml", "--out", "p.json"], ["apply", "p.json"],
                 ["status", "-f", "m.yaml"], ["status", "-f", "m.yaml", "--json"],
                 ["--debug", "plan", "-f", "m.yaml"]):
        code, output = _run(args)
        assert code in (0, 1, 2), (args, output)
        outputs.append(output)
    assert (sweep_env / "tools" / "pyvenv.cfg").exists(), outputs[3]
    # an update: a package whose name carries a secret fails at install, in every output
    manifest["venvs"]["tools"]["packages"].append(
        f"zeta @ https://u:{quoted['SWEEP_BACKSLASH']}@127.0.0.1:9/zeta-1.0-py3-none-any.whl")
    (sweep_env / "m.yaml").write_text(json.dumps(manifest))
    for args in (["plan", "-f", "m.yaml"], ["plan", "-f", "m.yaml", "--json"],
                 ["apply", "-y", "-f", "m.yaml"], ["--debug", "apply", "-y", "-f", "m.yaml"],
                 ["apply", "-y", "--json", "-f", "m.yaml"]):
        code, output = _run(args)
        outputs.append(output)
    planned = json.loads(outputs[8])
    fields = [f for c in planned["changes"] for f in c["fields"] if f["path"].startswith(
        "packages")]
    assert fields and all(f["sensitive"] for f in fields), fields
    texts = outputs + [(sweep_env / "p.json").read_text()]
    texts += [p.read_text() for p in (sweep_env / "state").rglob("*") if p.is_file()
              and p.name != "plan-key"]
    texts += [p.read_text() for p in (sweep_env / "tools").glob("*.json")]
    hits = [hit for text in texts for hit in _hits(text)]
    assert hits == [], hits
    code, output = _run(["destroy", "-y", "-f", "m.yaml"])
    assert _hits(output) == []
