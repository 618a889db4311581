"""utmctl and osascript output parsers, on captures from docs/facts/utm.md."""

import pytest

from decl.providers.utm import output

LIST = """UUID                                 Status   Name
FC379EA4-195C-499E-BDC9-066470BCA5C9 stopped  macOS (blank backup)
1D0F8A51-3AE6-4C0B-9B1E-54E4A1E3C1AA started  web
"""


def test_list_with_spaces_in_names():
    rows = output.parse_list(LIST)
    assert rows == [
        output.UtmRow("FC379EA4-195C-499E-BDC9-066470BCA5C9", "stopped", "macOS (blank backup)"),
        output.UtmRow("1D0F8A51-3AE6-4C0B-9B1E-54E4A1E3C1AA", "started", "web"),
    ]


def test_name_with_leading_spaces_is_kept():
    line = "FC379EA4-195C-499E-BDC9-066470BCA5C9 stopped    two spaces\n"
    assert output.parse_list(line)[0].name == "  two spaces"


def test_empty_list_and_garbage():
    assert output.parse_list(output.HEADER + "\n") == []
    with pytest.raises(ValueError):
        output.parse_list("something else\n")


def test_event_failure_over_ssh_says_why():
    stderr = ("Error from event: The operation couldn’t be completed. (OSStatus error -1743.)\n"
              "NOTE: utmctl does not work from SSH sessions or before logging in.\n")
    reason = output.event_failure(stderr)
    assert reason is not None and "OSStatus error -1743" in reason
    assert "logged-in GUI session" in reason and "SSH" in reason


def test_event_failure_with_utms_message():
    stderr = ("Error from event: The operation couldn’t be completed. (OSStatus error -2700.)\n"
              "The virtual machine is not running.\n")
    assert output.event_failure(stderr).endswith("The virtual machine is not running.")
    assert output.event_failure("") is None


def test_osascript_errors():
    err = output.parse_osa_error(
        "47:75: execution error: UTM got an error: The virtual machine "
        "must be stopped before this operation can be performed. (-2700)\n")
    assert (err.kind, err.app, err.number) == ("execution", "UTM", -2700)
    assert err.message.startswith("The virtual machine must be stopped")
    denied = output.parse_osa_error("0:0: execution error: Not authorized to send Apple events "
                                    "to UTM. (-1743)")
    assert denied.app is None and "logged-in GUI session" in denied.reason()
    syntax = output.parse_osa_error("39:46: syntax error: Expected end of line but found "
                                    "identifier. (-2741)")
    assert syntax.kind == "syntax"
    assert output.parse_osa_error("whatever") is None


def test_source_form_values():
    text = ('{{"A-1"}, {qemu}, {{name:"we\\"b", notes:"l1\nl2", memory:2048, cpu cores:2, '
            'uefi:true, drives:{{id:"D", removable:false, interface:VirtIO, host size:0}}, '
            'network interfaces:{}, ratio:-1.5, nothing:missing value}}}')
    ids, backends, configs = output.parse_value(text)
    assert ids == ["A-1"] and backends == [output.Constant("qemu")]
    config = configs[0]
    assert config["name"] == 'we"b' and config["notes"] == "l1\nl2"
    assert config["cpu cores"] == 2 and config["uefi"] is True
    assert config["drives"][0]["interface"] == output.Constant("VirtIO")
    assert config["network interfaces"] == [] and config["ratio"] == -1.5
    assert config["nothing"] is None


@pytest.mark.parametrize("text", ['{a:1', '"open', '{1 2}', '{a 1}', "1 2"])
def test_bad_source_form(text):
    with pytest.raises(ValueError):
        output.parse_value(text)
