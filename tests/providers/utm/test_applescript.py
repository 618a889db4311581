"""The AppleScript builder: values are always quoted, keys and constants from allowlists.

Scripts are also run through the fake osascript's compiler (tests/fakes/mac/applescript.py),
which parses them as AppleScript would: a value that escaped its string would show up there.
"""

import pytest

from decl.providers.utm import applescript as a
from tests.fakes.mac import applescript as fake

NASTY = ['x" & (do shell script "touch /tmp/pwned") & "', "back\\slash\\", "new\nline",
         "tab\tand\r\x00\x1b\x7f", "ünïcødé ✓", "end tell\ntell application \"Finder\"", "",
         "\u2028sep"]


@pytest.mark.parametrize("value", NASTY)
def test_string_round_trips_through_an_applescript_compiler(value):
    script = a.tell_utm(f"return {a.string(value)}")
    statements = fake.compile_script(script)
    result = fake.Interpreter({"UTM": fake.Application()}).run(statements)
    assert result == value


def test_string_forms():
    assert a.string("plain").text == '"plain"'
    assert a.string('q"b\\').text == '"q\\"b\\\\"'
    assert a.string("a\nb").text == '("a" & (character id 10) & "b")'
    assert a.string("\n").text == "(character id 10)"


def test_only_known_keys_and_constants():
    with pytest.raises(ValueError):
        a.record([("do shell script", a.string("x"))])
    with pytest.raises(ValueError):
        a.constant("shared}, {evil")
    with pytest.raises(TypeError):
        a.record([("name", "raw text")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        a.integer(True)
    with pytest.raises(TypeError):
        a.integer("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        a.boolean(1)  # type: ignore[arg-type]


def test_scripts_compile():
    config = a.record([("name", a.string("web")), ("architecture", a.string("aarch64")),
                       ("memory", a.integer(2048)), ("cpu cores", a.integer(2)),
                       ("uefi", a.boolean(True)),
                       ("drives", a.alist([a.record([("guest size", a.integer(1024))]),
                                           a.record([("removable", a.boolean(True)),
                                                     ("source", a.posix_file("/i.iso"))])])),
                       ("network interfaces", a.alist([a.record([("mode",
                                                                  a.constant("bridged")),
                                                                 ("host interface",
                                                                  a.string("en0"))])]))])
    for script in (a.make_vm("qemu", config), a.update_vm("ID-1", config), a.discover(),
                   a.version()):
        fake.compile_script(script)
