"""Secrets reach tools through the environment or a file of mode 0600, never argv; every
spelling of a secret is redacted."""

from __future__ import annotations

import json

import pytest

from decl.connections.base import CommandResult
from decl.connections.local import LocalConnection
from decl.core.resource import Desired
from decl.manifest.model import Venv
from decl.providers.venv.provider import VenvProvider
from decl.redact import Redactor, spellings

SECRET = "pa:ss@w/rd%ä\"'\t"
URL = "https://user:pa%3Ass%40w%2Frd%25%C3%A4%22%27%09@127.0.0.1:9/simple"


class Recording(LocalConnection):
    """A connection that records what it would run and write, and runs nothing."""

    def __init__(self, local: bool) -> None:
        super().__init__(host="local" if local else "box")
        self.is_local = local
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.files: dict[str, tuple[bytes, int | None]] = {}

    def run(self, argv, *, input=None, timeout=None, env=None, cwd=None):  # noqa: A002
        self.calls.append((list(argv), dict(env or {})))
        return CommandResult(tuple(argv), 0, b"", b"")

    def run_streaming(self, argv, on_line, *, timeout=None, env=None, cwd=None):
        return self.run(argv, timeout=timeout, env=env, cwd=cwd)

    def write_file(self, path, data, mode=None):
        self.files[path] = (data, mode)

    def remove(self, path):
        self.files.pop(path, None)

    def which(self, program):
        return None


def _no_progress(message: str, fraction: float | None) -> None:
    """Progress goes nowhere here."""


def _desired() -> Desired:
    model = Venv.model_validate({"path": "/tmp/v", "index_url": URL,
                                 "extra_index_urls": [URL + "/extra"],
                                 "find_links": ["/wheels"]})
    return Desired(address="venv.v", kind="venv", name="v", provider="venv", host="local",
                   state="present", spec={"path": "/tmp/v", "packages": {}}, model=model)


@pytest.mark.parametrize("local", [True, False])
def test_index_urls_never_reach_argv(local):
    conn = Recording(local)
    VenvProvider()._install(_desired(), "/tmp/v", conn, ["delta"], _no_progress,
                            has_pip=True, made_by_uv=False)
    argv, env = conn.calls[-1]
    assert all("127.0.0.1" not in part and "pa%3Ass" not in part for part in argv), argv
    if local:
        assert env["PIP_INDEX_URL"] == URL and env["PIP_EXTRA_INDEX_URL"] == URL + "/extra"
    else:
        assert "PIP_INDEX_URL" not in env  # an SSH command line is a string anyone can read
        assert argv[:2] == ["sh", "-c"]


def test_remote_env_file_is_private_and_removed():
    conn = Recording(False)
    written = {}
    original = conn.write_file

    def keep(path, data, mode=None):
        written[path] = (data, mode)
        original(path, data, mode)

    conn.write_file = keep  # type: ignore[method-assign]
    VenvProvider()._install(_desired(), "/tmp/v", conn, ["delta"], _no_progress,
                            has_pip=True, made_by_uv=False)
    [(path, (data, mode))] = written.items()
    assert mode == 0o600 and b"PIP_INDEX_URL=" in data and path not in conn.files
    argv, _ = conn.calls[-1]
    assert argv[3] == path and URL not in " ".join(argv)


@pytest.mark.parametrize("secret", [SECRET, "s3cr\"t\tok", "ünï", "a b+c&d=e", "x'y\\z"])
def test_every_spelling_is_redacted(secret):
    import base64
    import shlex
    import urllib.parse

    redact = Redactor([secret])
    texts = [secret, json.dumps(secret), json.dumps(secret, ensure_ascii=False), repr(secret),
             urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret),
             urllib.parse.quote_plus(secret), shlex.quote(secret),
             base64.b64encode(secret.encode()).decode(), json.dumps(repr(secret)),
             json.dumps(json.dumps(secret)), repr(json.dumps(secret))]
    for text in texts:
        out = redact(f"before {text} after")
        assert "(sensitive)" in out, (text, out)
        for form in spellings(secret):
            assert form not in out or len(form) < 4, (text, form, out)
