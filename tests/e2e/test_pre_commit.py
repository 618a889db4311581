"""The repository's pre-commit hooks (decl-validate, decl-fmt) run through pre-commit itself.

pre-commit builds the hooks' environment from this checkout (`language: python`): offline,
the environment sees the installed dependencies (VIRTUALENV_SYSTEM_SITE_PACKAGES) and pip
uses no index and no build isolation, so nothing is downloaded.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

from decl.manifest.fmt import format_text
from tests.backends import missing_backend

ROOT = pathlib.Path(__file__).resolve().parents[2]
MESSY = (ROOT / "tests" / "fmt_cases" / "messy.yaml").read_text()
INVALID = "version: 1\nproject: broken\nvenvs:\n  a:\n    path: /tmp/a\n    pakages: []\n"


def pre_commit_argv() -> list[str]:
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        missing_backend("pre-commit", "pre-commit is not installed (pip install -e '.[test]')")
    if shutil.which("git") is None:
        missing_backend("pre-commit", "git is not installed")
    return [sys.executable, "-m", "pre_commit"]


def git(repo: pathlib.Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
                   cwd=repo, check=True, capture_output=True)


def test_hooks_format_and_validate_manifests_offline(tmp_path):
    argv = pre_commit_argv()
    repo = tmp_path / "lab"
    repo.mkdir()
    git(repo, "init", "-q", ".")
    (repo / "decl.yaml").write_text(MESSY)
    (repo / "broken").mkdir()
    (repo / "broken" / "decl.yaml").write_text(INVALID)
    (repo / "other.yaml").write_text("not: [a, manifest\n")  # not a manifest name: not checked
    git(repo, "add", ".")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update({"PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_CONFIG_FILE": os.devnull,
                "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
                "VIRTUALENV_SYSTEM_SITE_PACKAGES": "1", "NO_COLOR": "1"})
    env.pop("PYTHONPATH", None)  # the hooks run the decl pre-commit installed from ROOT

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, "try-repo", str(ROOT), "--all-files", "--color=never"],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=600,
                              check=False)

    first = run()
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "decl fmt" in out and "files were modified by this hook" in out
    assert "formatted decl.yaml" in out
    assert (repo / "decl.yaml").read_text() == format_text(MESSY)
    assert "decl validate" in out
    # decl-fmt ran first and put a blank line above venvs: line 7
    assert "broken/decl.yaml:7:5: unknown field 'pakages'" in out
    assert "decl.yaml: valid (project messy, 5 resources)" in out
    assert (repo / "other.yaml").read_text() == "not: [a, manifest\n"

    (repo / "broken" / "decl.yaml").write_text(format_text(INVALID.replace("pakages",
                                                                           "packages")))
    second = run()
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert out.count("Passed") == 2
