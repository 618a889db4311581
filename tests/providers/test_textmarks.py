"""Marks in a free-text field (Parallels description, UTM notes)."""

import pytest

from decl.core.resource import Marks
from decl.providers import textmarks

MARKS = Marks("lab", "vm.web", "ab12")


def test_round_trip_keeps_the_users_text():
    text = textmarks.with_marks("my notes\nsecond line", MARKS, {"disks": "20480,1024"})
    assert text.endswith("decl:project=lab address=vm.web spec-hash=ab12 disks=20480,1024")
    marks, extra, user = textmarks.parse(text)
    assert marks == MARKS and extra == {"disks": "20480,1024"} and user == "my notes\nsecond line"


def test_text_without_marks():
    assert textmarks.parse("just notes") == (None, {}, "just notes")
    assert textmarks.parse(None) == (None, {}, "")


def test_only_the_first_marks_line_counts():
    text = "decl:project=a address=vm.x spec-hash=1\ndecl:project=b address=vm.y spec-hash=2"
    marks, _, user = textmarks.parse(text)
    assert marks == Marks("a", "vm.x", "1")
    assert user == "decl:project=b address=vm.y spec-hash=2"


@pytest.mark.parametrize("extra", [{"disks": "1 2"}, {"Bad": "1"}, {"x": "a\nb"}])
def test_unsafe_extra_values_are_refused(extra):
    with pytest.raises(ValueError):
        textmarks.marks_line(MARKS, extra)
