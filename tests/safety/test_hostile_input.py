"""Hostile or unlucky input: one clear message with its position, exit 1, no traceback, no
hang, nothing written; the limits (size, aliases, depth, template steps) hold."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.safety.helpers import run_decl, tree

HEAD = "version: 1\nproject: hostile\n"


def _fails(tmp_path, text, *expected, command=("validate",), env=None, timeout=60):
    (tmp_path / "m.yaml").write_text(text)
    state = tmp_path / "state"
    before = tree(tmp_path)
    done = run_decl(*command, "-f", "m.yaml", cwd=tmp_path, state=state, env=env,
                    timeout=timeout)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    assert sum(line.startswith("error:") for line in done.stderr.splitlines()) == 1, done.stderr
    for words in expected:
        assert words in done.stderr, done.stderr
    assert tree(tmp_path) == before, "a failed validate/plan wrote files"
    return done.stderr


def billion_laughs(levels=9):
    lines = [HEAD + "vars:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        lines.append(f"  a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_at_the_alias(tmp_path):
    message = _fails(tmp_path, billion_laughs(), "alias *a4", "m.yaml:9:")
    assert "a5: &a5" in message  # the line of the alias that crossed the limit


def test_long_comment_then_syntax_error_answers(tmp_path):
    # 3 MB on one comment line: ruamel's round-trip scanner took minutes (quadratic).
    text = HEAD + "#" + "c" * 3_000_000 + "\nvenvs: {a: [1\n"
    message = _fails(tmp_path, text, "YAML syntax error", "m.yaml:5:1", timeout=30)
    assert len(message) < 2000


def test_manifest_size_limit_and_how_to_raise_it(tmp_path):
    text = HEAD + "# " + "x" * (6 * 1024 * 1024) + "\n"
    _fails(tmp_path, text, "larger than", "DECL_MAX_MANIFEST_SIZE")
    (tmp_path / "m.yaml").write_text(text)
    done = run_decl("validate", "-f", "m.yaml", cwd=tmp_path, state=tmp_path / "s",
                    env={"DECL_MAX_MANIFEST_SIZE": "20MiB"})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("depth", [100, 5000, 200000])
def test_deep_nesting(tmp_path, depth):
    _fails(tmp_path, HEAD + "vars:\n  a: " + "[" * depth + "]" * depth + "\n", "nests deeper")


def test_yaml_tags_are_refused(tmp_path):
    _fails(tmp_path, HEAD + "vars:\n  a: !!python/object/apply:os.system ['true']\n",
           "m.yaml:4:6", "'!!python/object/apply:os.system' is not supported")
    _fails(tmp_path, HEAD + "vars:\n  a: !custom x\n", "'!custom' is not supported")


def test_version_true(tmp_path):
    _fails(tmp_path, "version: true\nproject: x\n", "m.yaml:1:10", "got true")


def test_template_loops_are_bounded(tmp_path):
    text = HEAD + ('vars:\n  a: "{% for i in range(100000) %}{% for j in range(100000) %}'
                   '{% endfor %}{% endfor %}"\n')
    _fails(tmp_path, text, "m.yaml:4:6", "template stopped")
    text = HEAD + 'vars:\n  a: "{{ \'x\' * 1000000000 }}"\n'
    _fails(tmp_path, text, "template stopped")
    text = HEAD + ('vars:\n  a: "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"\n')
    _fails(tmp_path, text, "m.yaml:4:6")


def test_nul_and_huge_paths(tmp_path):
    _fails(tmp_path, HEAD + 'venvs:\n  a:\n    path: "/tmp/a\\0b"\n', "m.yaml:5:11", "NUL",
           command=("plan",))
    _fails(tmp_path, HEAD + "venvs:\n  a:\n    path: /" + "a" * 1_000_000 + "\n", "m.yaml:5:11",
           command=("plan",))
    _fails(tmp_path, HEAD + "venvs:\n  a:\n    path: /" + "a" * 5000 + "\n", "at most 4096",
           command=("plan",))


def test_nul_bytes_in_the_file(tmp_path):
    (tmp_path / "m.yaml").write_bytes(HEAD.encode() + b"\x00\n")
    done = run_decl("validate", "-f", "m.yaml", cwd=tmp_path, state=tmp_path / "s")
    assert done.returncode == 1 and "NUL" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("text, words", [
    ('["foo==="]', ("m.yaml:6:16", "invalid requirement 'foo==='")),
    ('["--index-url=https://u:p@127.0.0.1/simple"]', ("m.yaml:6:16", "pip option")),
    ('["ok", "a b c"]', ("m.yaml:6:22", "invalid requirement")),
])
def test_bad_requirements_are_found_by_validate_with_position(tmp_path, text, words):
    stderr = _fails(tmp_path, HEAD + f"venvs:\n  a:\n    path: ./a\n    packages: {text}\n",
                    *words)
    assert "u:p@" not in stderr or "pip option" in stderr


def test_requirements_file_errors_name_the_field_and_never_print_the_file(tmp_path):
    private = tmp_path / "shadow"
    private.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    for command in ("validate", "plan"):
        stderr = _fails(tmp_path, HEAD + f"venvs:\n  a:\n    path: ./a\n    requirements: "
                        f"{private}\n", "m.yaml:6:19", "shadow:1", command=(command,))
        assert "SECRETHASH" not in stderr and "root:" not in stderr
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    _fails(tmp_path, HEAD + f"venvs:\n  a:\n    path: ./a\n    requirements: {binary}\n",
           "not a UTF-8")
    _fails(tmp_path, HEAD + "venvs:\n  a:\n    path: ./a\n    requirements: ./missing.txt\n",
           "cannot read requirements file", "m.yaml:6:19")


def test_same_path_twice_names_both_positions(tmp_path):
    _fails(tmp_path, HEAD + "venvs:\n  a:\n    path: ./same\n  b:\n    path: ./same\n",
           "m.yaml:7:11", "venv.a is at m.yaml:5:11", "same path")
    _fails(tmp_path, HEAD + "venvs:\n  a:\n    path: ./outer\n  b:\n    path: ./outer/in\n"
           "    state: absent\n", "m.yaml:7:11", "inside the path of venv.a")
    _fails(tmp_path, HEAD + "venvs:\n  a:\n    path: ./outer/in\n  b:\n    path: ./outer\n",
           "around the path of venv.a")
    _fails(tmp_path, HEAD + "hosts:\n  h1: {address: 10.9.9.9}\n  h2: {address: 10.9.9.9}\n"
           "venvs:\n  a: {path: /srv/x, host: h1}\n  b: {path: /srv/x, host: h2}\n",
           "same path", "venv.a is at")
    _fails(tmp_path, HEAD + "wsl:\n  Dev: {source: {distribution: Ubuntu}}\n"
           "  dev: {source: {distribution: Ubuntu}}\n", "same wsl as wsl.Dev", "m.yaml:4:")


def test_different_hosts_may_use_one_path(tmp_path):
    (tmp_path / "m.yaml").write_text(
        HEAD + "hosts:\n  h1: {address: 10.9.9.8}\n  h2: {address: 10.9.9.9}\n"
        "venvs:\n  a: {path: /srv/x, host: h1}\n  b: {path: /srv/x, host: h2}\n"
        "  c: {path: ./x}\n  d: {path: ./xy}\n")
    done = run_decl("validate", "-f", "m.yaml", cwd=tmp_path, state=tmp_path / "s")
    assert done.returncode == 0, done.stderr


def test_secret_in_template_and_validation_errors_is_redacted(tmp_path):
    secret = 'Hunter2"\tä%/x'
    env = {"PW1": secret}
    for command in ("validate", "plan"):
        for text in (HEAD + "venvs:\n  a:\n    path: ./a\n    packages: "
                     "[\"{{ {}[secret('PW1')] }}\"]\n",
                     HEAD + "venvs:\n  a:\n    path: ./a\n    pip: \"{{ secret('PW1') }}\"\n",
                     HEAD + "venvs:\n  a:\n    path: ./a\n    state: \"{{ secret('PW1') }}\"\n",
                     HEAD + "venvs:\n  a:\n    path: ./a\n    packages: "
                     "[\"x{{ secret('PW1') }}\"]\n"):
            stderr = _fails(tmp_path, text, command=(command,), env=env)
            from decl.redact import spellings

            for form in spellings(secret):
                assert form not in stderr, (form, stderr)
            assert "Hunter2" not in stderr


def test_conflict_makes_plan_exit_1_and_no_adopt_hint_for_a_plain_directory(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "m.yaml").write_text(HEAD + "venvs:\n  a:\n    path: ./plain\n")
    done = run_decl("plan", "-f", "m.yaml", cwd=tmp_path, state=tmp_path / "s")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot be adopted" in done.stdout and "adopt: true" not in done.stdout


def test_state_dir_that_cannot_be_written_stops_apply_before_any_change(tmp_path):
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    (tmp_path / "m.yaml").write_text(HEAD + "venvs:\n  a:\n    path: ./a\n    pip: false\n")
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1"}
    env.pop("DECL_STATE_DIR", None)
    env.pop("XDG_STATE_HOME", None)
    done = subprocess.run([sys.executable, "-m", "decl", "apply", "-y", "-f", "m.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "cannot write decl's state" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "a").exists()


def test_every_state_file_follows_decl_state_dir(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "m.yaml").write_text(HEAD + "venvs:\n  a:\n    path: ./a\n    pip: false\n")
    state = tmp_path / "state"
    done = run_decl("apply", "-y", "-f", "m.yaml", cwd=tmp_path, state=state,
                    env={"HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert (state / "venvs" / "hostile.json").exists()
    # (uv keeps its own cache under HOME; decl's files are all in the state dir)
    leaked = [p for p in home.rglob("*") if "decl" in p.name]
    assert leaked == [], "decl wrote under HOME despite DECL_STATE_DIR"
    # the index is where discovery looks: destroy finds and deletes the venv
    done = run_decl("destroy", "-y", "-f", "m.yaml", cwd=tmp_path, state=state,
                    env={"HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "a").exists()


def test_output_to_dev_full_and_closed_stdout(tmp_path):
    (tmp_path / "m.yaml").write_text(HEAD)
    env = {**os.environ, "DECL_STATE_DIR": str(tmp_path / "s")}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "decl", "validate", "-f", "m.yaml"],
                              cwd=tmp_path, env=env, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert done.returncode == 1 and "cannot write the output" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "decl", "validate", "-f", "m.yaml"],
                          cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
                          timeout=60, preexec_fn=lambda: os.close(1))
    assert done.returncode == 1 and "stdout is closed" in done.stderr, done.stderr


@pytest.mark.parametrize("how", [{"NO_COLOR": "1"}, {"ARGS": "--no-color"}])
def test_no_color_means_no_escape_codes_on_a_terminal(tmp_path, how):
    import pty

    (tmp_path / "plain").mkdir()
    (tmp_path / "m.yaml").write_text(HEAD + "venvs:\n  a:\n    path: ./plain\n  b:\n"
                                     "    path: ./b\n")
    env = {**os.environ, "DECL_STATE_DIR": str(tmp_path / "s"), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    args = ["--no-color"] if "ARGS" in how else []
    env.update({k: v for k, v in how.items() if k != "ARGS"})
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "decl", *args, "plan", "-f", "m.yaml"],
                            cwd=tmp_path, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=60)
    os.close(leader)
    assert b"venv.b" in output
    assert b"\x1b" not in output, output[:400]


def test_failed_adopt_leaves_no_marks_and_destroy_keeps_the_venv(tmp_path):
    from decl.providers.venv.probe import MARK_FILE
    from tests.wheelhouse import standard_wheelhouse

    wheels = standard_wheelhouse(tmp_path / "wheels")
    theirs = tmp_path / "theirs"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(theirs)], check=True)
    (theirs / "notes.txt").write_text("mine")
    (tmp_path / "m.yaml").write_text(
        HEAD + f"venvs:\n  t:\n    path: ./theirs\n    adopt: true\n    pip: false\n"
        f"    no_index: true\n    find_links: [{wheels}]\n    packages: [not-in-wheelhouse]\n")
    state = tmp_path / "state"
    done = run_decl("apply", "-y", "-f", "m.yaml", cwd=tmp_path, state=state)
    assert done.returncode == 1, done.stdout + done.stderr
    assert not (theirs / MARK_FILE).exists(), "a failed adopt left decl's marks"
    index = state / "venvs" / "hostile.json"
    assert not index.exists() or "venv.t" not in index.read_text()
    done = run_decl("destroy", "-y", "-f", "m.yaml", cwd=tmp_path, state=state)
    assert (theirs / "notes.txt").read_text() == "mine"


def test_a_venv_inside_a_qemu_vm_directory(tmp_path):
    _fails(tmp_path, HEAD + "vms:\n  web:\n    provider: qemu\n    options: {vm_dir: /srv/vms}\n"
           "venvs:\n  a:\n    path: /srv/vms/hostile/web/tools\n",
           "m.yaml:9:11", "inside the path of vm.web", "vm.web is at m.yaml:6:23")
    home = os.path.expanduser("~")
    _fails(tmp_path, HEAD + "vms:\n  web:\n    provider: qemu\nvenvs:\n  a:\n"
           f"    path: {home}/.local/share/decl/qemu\n", "around the path of vm.web")


def test_yaml_1_2_that_libyaml_refuses_still_reads(tmp_path):
    """A URL in a flow mapping is valid YAML 1.2 that libyaml (YAML 1.1) refuses: decl reads
    it, keeps positions for errors, keeps `#` lines inside block scalars, and stays fast
    with a long comment line before it."""
    from decl.manifest.source import parse_text

    flow = "vms:\n  b:\n    provider: libvirt\n    disks:\n" \
        "      - {image: https://x.org/a.qcow2, checksum: 'sha256:00'}\n"
    doc = parse_text(HEAD + "vars:\n  s: |\n    a\n    # kept\n" + flow, "m.yaml")
    assert doc.data["vars"]["s"] == "a\n# kept\n"
    assert doc.data["vms"]["b"]["disks"][0]["image"] == "https://x.org/a.qcow2"
    doc = parse_text(HEAD + "#" + "c" * 2_000_000 + "\n" + flow, "m.yaml")
    assert doc.data["vms"]["b"]["disks"][0]["image"] == "https://x.org/a.qcow2"
    _fails(tmp_path, HEAD + flow.replace("provider: libvirt", "provider: libvirt\n    bogus: 1"),
           "m.yaml:6:5: unknown field 'bogus'")
