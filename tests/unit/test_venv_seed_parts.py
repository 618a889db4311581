"""The pure parts of decl/providers/venv/seed.py: shebangs and script names as pip makes them."""

from __future__ import annotations

import sys

from decl.providers.venv import seed


def test_short_path_gets_a_plain_shebang():
    assert seed.shebang("/srv/env/bin/python3.11") == b"#!/srv/env/bin/python3.11\n"


def test_long_or_spaced_path_gets_the_sh_trampoline():
    long_path = "/srv/" + "x" * 130 + "/bin/python3"
    assert seed.shebang(long_path, "posix", "linux") == (
        b"#!/bin/sh\n'''exec' " + long_path.encode() + b' "$0" "$@"\n' + b"' '''")
    # macOS allows 512 bytes; on Windows the launcher takes the (quoted) path as it is
    assert seed.shebang(long_path, "posix", "darwin") == b"#!" + long_path.encode() + b"\n"
    assert seed.shebang("C:\\my env\\python.exe", "nt", "win32") == \
        b'#!"C:\\my env\\python.exe"\n'
    spaced = seed.shebang("/srv/my env/bin/python3", "posix", "linux")
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
