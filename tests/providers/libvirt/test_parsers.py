"""Parsers of virsh output and of domain XML, on captures from libvirt 9.0 (Debian 12)."""

from __future__ import annotations

import os

from decl.connections.base import CommandResult
from decl.providers.libvirt.domain_xml import parse_domain
from decl.providers.libvirt.provider import machine_matches, observed_spec
from decl.providers.libvirt.virsh import (
    capacities_from_stats,
    is_not_found,
    parse_domstate,
    parse_domstats,
    parse_list_names,
    state_from_stats,
)

CAPTURES = os.path.join(os.path.dirname(__file__), "captures")


def capture(name: str) -> str:
    with open(os.path.join(CAPTURES, name)) as handle:
        return handle.read()


def test_list_names_drops_the_trailing_blank_line():
    assert parse_list_names(capture("list-all-name.txt")) == ["cap-uefi"]
    assert parse_list_names("\n") == []


def test_domstate_words():
    assert parse_domstate(capture("domstate-shutoff.txt")) == "stopped"
    assert parse_domstate("running\n\n") == "running"
    assert parse_domstate("paused\n\n") == "paused"
    assert parse_domstate("in shutdown\n") == "running"
    assert parse_domstate("crashed\n") == "stopped"


def test_domstats_state_and_capacities():
    stats = parse_domstats(capture("domstats-state-block.txt"))
    assert list(stats) == ["cap-uefi"]
    one = stats["cap-uefi"]
    assert state_from_stats(one) == "running"
    # The cdrom has no capacity line: only the disk is sized.
    assert capacities_from_stats(one) == {"vda": 16777216}
    assert state_from_stats({"state.state": "5"}) == "stopped"
    assert state_from_stats({"state.state": "3"}) == "paused"


def test_not_found_in_current_and_older_wording():
    def failed(err: str) -> CommandResult:
        return CommandResult(("virsh",), 1, b"", err.encode())

    assert is_not_found(failed(capture("dumpxml-missing.stderr")))
    assert is_not_found(failed("error: failed to get domain 'fc4'\nerror: Domain not found: "
                               "no domain with matching name 'fc4'\n"))
    assert not is_not_found(failed("error: Domain is already active\n"))


def test_parse_unmarked_uefi_domain_with_bridge_and_cdrom():
    parsed = parse_domain(capture("dumpxml-uefi-bridge.xml"))
    assert parsed.name == "cap-uefi"
    assert parsed.domain_type == "qemu"
    assert parsed.arch == "x86_64" and parsed.machine == "pc-q35-7.2"
    assert parsed.memory == 64 * 1024 * 1024 and parsed.cpus == 1
    assert parsed.firmware == "uefi"
    assert [d.dev for d in parsed.disks] == ["vda"]
    assert [c.path for c in parsed.cdroms] == ["/tmp/lvx/x.iso"]
    assert (parsed.network_mode, parsed.network_source) == ("bridge", "virbr0")
    assert parsed.marks is None
    assert parsed.cpu_model == "qemu64"


def test_parse_domain_decl_made_reads_marks_record_seed_and_cdrom():
    parsed = parse_domain(capture("dumpxml-decl-made.xml"))
    assert parsed.marks is not None
    assert (parsed.marks.project, parsed.marks.address) == ("lvtry", "vm.t2")
    assert len(parsed.marks.spec_hash) == 64
    assert parsed.record["seed"] == "/tmp/lvtry/pool/t2-seed.iso"
    spec = observed_spec(parsed, {"vda": 16777216}, None)
    assert spec["firmware"] == "uefi"
    assert spec["cdrom"] == "/tmp/lvtry/pool/boot.iso"  # the seed is not the cdrom
    assert spec["cloud_init"]["user"] == "lab"
    assert spec["disk_source"] == {"vda": "empty"}
    assert spec["disk_size"] == {"vda": 16777216}
    assert spec["network"] == {"mode": "nat", "bridge": None}


def test_machine_aliases():
    assert machine_matches("q35", "pc-q35-7.2")
    assert machine_matches("pc", "pc-i440fx-7.2")
    assert machine_matches("virt", "virt-7.2")
    assert machine_matches("pc-q35-7.2", "pc-q35-7.2")
    assert not machine_matches("q35", "pc-i440fx-7.2")
    assert not machine_matches("virt", "pc-q35-7.2")
