"""`no_index` and several `find_links` reach pip and uv as they mean: no index is asked,
every wheel directory is searched.

An index that counts its requests listens on 127.0.0.1 and is named in `index_url`: with
`no_index: true` it must receive none. (uv has no variable for `--no-index`, and splits
UV_FIND_LINKS on commas where pip splits PIP_FIND_LINKS on white space.)
"""

from __future__ import annotations

import http.server
import json
import pathlib
import shutil
import threading
from collections.abc import Iterator

import pytest

from tests.backends import missing_backend
from tests.e2e.venv_helpers import decl, installed
from tests.wheelhouse import make_wheel


class CountingIndex(http.server.BaseHTTPRequestHandler):
    """Answers 404 to everything and remembers each path asked for."""

    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.asked.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_index() -> Iterator[tuple[str, list[str]]]:
    asked: list[str] = []
    handler = type("Handler", (CountingIndex,), {"asked": asked})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/", asked
    finally:
        server.shutdown()
        server.server_close()


def two_wheel_dirs(root: pathlib.Path) -> list[str]:
    """alpha and beta in one directory, gamma (which beta needs) in another."""
    make_wheel(root / "one", "alpha", "1.0")
    make_wheel(root / "one", "beta", "1.0", ["gamma"])
    make_wheel(root / "two", "gamma", "1.0")
    return [str(root / "one"), str(root / "two")]


def needs(backend: str) -> None:
    if backend == "uv" and shutil.which("uv") is None:
        missing_backend("uv", "uv is not installed (pip install '.[test]' brings it)")


@pytest.mark.parametrize("backend", ["venv", "uv"])
def test_no_index_asks_no_index_and_every_find_links_dir_is_searched(
        tmp_path, counting_index, backend):
    needs(backend)
    index_url, asked = counting_index
    venv = tmp_path / "env"
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "indexopts", "venvs": {"tools": {
        "path": str(venv), "backend": backend, "pip": backend == "venv",
        "packages": ["alpha", "beta"], "index_url": index_url,
        "find_links": two_wheel_dirs(tmp_path / "wheels"), "no_index": True}}}))

    done = decl("apply", "-y", "-f", str(manifest))

    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(str(venv)).items() >= {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}.items()
    assert asked == [], f"{backend} asked the index despite no_index: {asked}"
    assert decl("plan", "-f", str(manifest), "--detailed-exitcode").returncode == 0


def test_uv_refuses_a_find_links_entry_with_a_comma_before_any_change(tmp_path):
    needs("uv")
    venv = tmp_path / "env"
    odd = tmp_path / "wheels,old"
    make_wheel(odd, "alpha", "1.0")
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "indexopts", "venvs": {"tools": {
        "path": str(venv), "backend": "uv", "packages": ["alpha"],
        "find_links": [str(tmp_path), str(odd)], "no_index": True}}}))

    done = decl("apply", "-y", "-f", str(manifest))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "find_links entry 2 holds a comma" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert not venv.exists()


def test_uv_seeds_pip_from_find_links_alone_when_no_index(tmp_path, counting_index):
    """`backend: uv` with `pip: true`: uv's `--seed` takes pip (and, before Python 3.12,
    setuptools and wheel) from find_links like any package; with no_index, never from an
    index."""
    import ensurepip
    import sys

    needs("uv")
    index_url, asked = counting_index
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "alpha", "1.0")
    for bundled in (pathlib.Path(ensurepip.__file__).parent / "_bundled").glob("*.whl"):
        shutil.copy(bundled, wheels)
    if sys.version_info < (3, 12):
        make_wheel(wheels, "wheel", "0.42.0")  # uv seeds it too; not bundled with Python
    venv = tmp_path / "env"
    manifest = tmp_path / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": "indexopts", "venvs": {"tools": {
        "path": str(venv), "backend": "uv", "pip": True, "packages": ["alpha"],
        "index_url": index_url, "find_links": [str(wheels)], "no_index": True}}}))

    done = decl("apply", "-y", "-f", str(manifest))

    assert done.returncode == 0, done.stdout + done.stderr
    assert {"pip", "alpha"} <= set(installed(str(venv)))
    assert asked == [], f"uv asked the index despite no_index: {asked}"
