"""The marks file and /etc/wsl.conf helpers."""

from __future__ import annotations

from decl.core.resource import Marks
from decl.providers.wsl import inside


def test_marks_round_trip():
    marks = Marks("lab", "wsl.dev", "abc")
    created = {"source": {"tarball": "C:\\img\\r.tar"}, "location": "C:\\WSL\\dev"}
    doc = inside.marks_document(marks, created).decode()
    assert inside.parse_marks(doc) == (marks, created)


def test_marks_absent_or_garbage():
    assert inside.parse_marks(None) == (None, {})
    assert inside.parse_marks("not json") == (None, {})
    assert inside.parse_marks('{"other": 1}') == (None, {})


def test_read_output_split_by_position():
    data = b"\x1e\n{\"a\": 1}\n\x1e\n[user]\ndefault=bob\n"
    assert inside.split_read_output(data, 2) == ['{"a": 1}\n', "[user]\ndefault=bob\n"]
    assert inside.split_read_output(b"\x1e\n\x1e\n", 2) == [None, None]


def test_default_user_read():
    assert inside.default_user("[boot]\nsystemd=true\n[user]\ndefault = alice\n") == "alice"
    assert inside.default_user("[boot]\ndefault=nope\n") is None
    assert inside.default_user(None) is None


def test_default_user_written_keeping_other_lines():
    conf = "# mine\n[boot]\nsystemd=true\n\n[user]\ndefault=old\n[network]\nhostname=x\n"
    out = inside.with_default_user(conf, "bob")
    assert out == "# mine\n[boot]\nsystemd=true\n\n[user]\ndefault=bob\n[network]\nhostname=x\n"
    assert inside.default_user(out) == "bob"


def test_default_user_section_added():
    assert inside.with_default_user(None, "bob") == "[user]\ndefault=bob\n"
    out = inside.with_default_user("[boot]\nsystemd=true\n", "bob")
    assert out == "[boot]\nsystemd=true\n\n[user]\ndefault=bob\n"
    out = inside.with_default_user("[user]\n[boot]\nsystemd=true\n", "bob")
    assert inside.default_user(out) == "bob" and "systemd=true" in out
