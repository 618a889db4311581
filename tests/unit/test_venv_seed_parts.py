"""The pure parts of decl/providers/venv/seed.py: shebangs and script names as pip makes them."""

from __future__ import annotations

import sys

import pytest

from decl.providers.venv import seed


def test_short_path_gets_a_plain_shebang():
    assert seed.shebang("/srv/env/bin/python3.11") == b"#!/srv/env/bin/python3.11\n"


@pytest.mark.skipif(sys.platform == "darwin" or sys.platform == "win32",
                    reason="the 127-byte limit is Linux's")
def test_long_or_spaced_path_gets_the_sh_trampoline():
    long_path = "/srv/" + "x" * 130 + "/bin/python3"
    assert seed.shebang(long_path) == (b"#!/bin/sh\n'''exec' " + long_path.encode() +
                                       b' "$0" "$@"\n' + b"' '''")
    spaced = seed.shebang("/srv/my env/bin/python3")
    assert spaced.startswith(b"#!/bin/sh\n'''exec' \"/srv/my env/bin/python3\" \"$0\"")


def test_pip_scripts_are_named_for_this_python():
    major, minor = sys.version_info[:2]
    entry_points = ("[console_scripts]\npip = pip._internal.cli.main:main\n"
                    "pip3 = pip._internal.cli.main:main\n"
                    "pip3.8 = pip._internal.cli.main:main\n"
                    "other = pkg.mod:run\n\n[other_group]\nx = y:z\n")
    names = dict(seed.console_scripts(entry_points))
    assert set(names) == {"other", "pip", f"pip{major}", f"pip{major}.{minor}"}
    assert names["pip"] == "pip._internal.cli.main:main"
    assert names["other"] == "pkg.mod:run"


def test_record_hash_is_the_wheel_format():
    assert seed.record_hash(b"") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
