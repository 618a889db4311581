"""PowerShell quoting, ConvertTo-Json shapes, Notes marks and the Hyper-V spec."""

from __future__ import annotations

import pytest

from decl.core.resource import Marks
from decl.errors import ProviderError
from decl.manifest.model import Vm
from decl.providers.base import DesiredContext, ValidateContext
from decl.providers.hyperv import notes
from decl.providers.hyperv import powershell as ps
from decl.providers.hyperv.provider import HypervProvider, vm_state

# Windows PowerShell 5.1 ConvertTo-Json layout (docs/facts/hyperv.md).
ONE = '{\r\n    "Name":  "vm1",\r\n    "State":  3,\r\n    "MemoryStartup":  2147483648\r\n}\r\n'
MANY = ('[\r\n    {\r\n        "Name":  "a",\r\n        "State":  2\r\n    },\r\n'
        '    {\r\n        "Name":  "b\\u0027s",\r\n        "State":  3\r\n    }\r\n]\r\n')


def test_literal_quotes_every_single_quote_kind():
    assert ps.literal("it's") == "'it''s'"
    assert ps.literal("a\u2019b") == "'a\u2019\u2019b'"
    assert ps.literal("$(Remove-VM x)") == "'$(Remove-VM x)'"
    assert ps.literal(2147483648) == "2147483648"
    assert ps.literal(True) == "$true"
    with pytest.raises(ProviderError):
        ps.literal('say "hi"')


def test_command_switches_and_skipped_values():
    assert ps.command("Stop-VM", TurnOff=True, Force=True, Save=False, Name=None) == \
        "Stop-VM -TurnOff -Force"
    assert ps.command("Set-VM", Notes="a'b") == "Set-VM -Notes 'a''b'"


def test_convertto_json_one_object_many_or_nothing():
    assert ps.parse_json_list(ONE) == [{"Name": "vm1", "State": 3, "MemoryStartup": 2147483648}]
    assert [v["Name"] for v in ps.parse_json_list(MANY)] == ["a", "b's"]
    assert ps.parse_json_list("") == [] and ps.parse_json_list("\r\n") == []


def test_sections():
    text = ONE + "--decl--\r\n\r\n--decl--\r\n" + MANY
    first, empty, last = ps.split_sections(text, 3)
    assert ps.parse_json_list(first)[0]["Name"] == "vm1"
    assert ps.parse_json_list(empty) == []
    assert len(ps.parse_json_list(last)) == 2
    with pytest.raises(ValueError):
        ps.split_sections(text, 4)


def test_state_enum_integers_and_words():
    assert [vm_state(v) for v in (2, 3, 6, 9, 32777)] == [
        "running", "stopped", "saved", "paused", "resuming"]
    assert vm_state("Running") == "running" and vm_state("Off") == "stopped"


def test_error_record_first_line():
    from decl.connections.base import CommandResult

    record = ('Set-VM : Hyper-V was unable to find a virtual machine with name "GPUPV".\r\n'
              "At C:\\x.ps1:4373 char:9\r\n")
    result = CommandResult(("x",), 1, b"", record.encode())
    assert ps.error_text(result) == \
        'Set-VM : Hyper-V was unable to find a virtual machine with name "GPUPV".'


def test_notes_round_trip_keeps_user_text():
    marks = Marks("lab", "vm.web", "abc123")
    created = {"made": ["C:\\VMs\\web's.vhdx"], "disks": [{"size": 1, "image": None}]}
    text = notes.with_marks("my notes\nline 2", marks, created)
    assert '"' not in text
    assert notes.parse_notes(text) == (marks, created, "my notes\nline 2")
    assert notes.parse_notes("just mine") == (None, {}, "just mine")
    assert notes.parse_notes(None) == (None, {}, "")


def spec(**fields):
    return HypervProvider().spec("vm", "web", Vm(provider="hyperv", **fields),
                                 DesiredContext(project="lab", base_dir="."))


def test_spec_defaults_and_switch():
    assert spec() == {"cpus": 1, "memory": 1024**3, "generation": 1,
                      "switch": "Default Switch", "disk_count": 0, "disk_size": {},
                      "disk_source": {}, "disk_mode": None, "path": None}
    disks = spec(disks=[{"image": "C:\\Images\\Base.vhdx"}, {"size": "5GiB"}])
    assert (disks["disk_count"], disks["disk_size"], disks["disk_source"], disks["disk_mode"]) \
        == (2, {"vda": None, "vdb": 5 * 1024**3},
            {"vda": "c:\\images\\base.vhdx", "vdb": "empty"}, "differencing")
    assert spec(firmware="uefi")["generation"] == 2
    assert spec(network={"mode": "bridge", "bridge": "Ext"})["switch"] == "Ext"
    assert spec(network={"mode": "none"})["switch"] == ""
    assert spec(options={"switch": "Lab"})["switch"] == "Lab"


@pytest.mark.parametrize("fields, message, path", [
    ({"memory": "1000MB"}, "multiples of 2MiB", ("memory",)),
    ({"options": {"generation": 2}, "firmware": "bios"}, "contradicts firmware bios",
     ("options", "generation")),
    ({"disks": [{"image": "debian.vhdx"}]}, "not an absolute Windows path",
     ("disks", 0, "image")),
    ({"options": {"disk_dir": "vms"}}, "not an absolute Windows path", ("options", "disk_dir")),
    ({"cloud_init": {"user": "x"}}, "does not support cloud_init", ("cloud_init",)),
])
def test_validate_errors_carry_the_field_path(fields, message, path):
    context = ValidateContext(project="lab", base_dir=".", kind="vm", name="web",
                              path=("vms", "web"))
    problems = HypervProvider.validate("vm", Vm(provider="hyperv", **fields), context)
    assert [p.path for p in problems] == [("vms", "web", *path)]
    assert message in problems[0].message
