"""Reading many domains' XML from one virsh process."""

from __future__ import annotations

from decl.connections.base import CommandResult
from decl.providers.libvirt.virsh import Virsh, domain_name, split_documents

DOC = """<domain type='qemu'>
  <name>{name}</name>
  <uuid>00000000-0000-0000-0000-00000000000{n}</uuid>
  <metadata><decl:marks xmlns:decl="https://decl.dev/xmlns/libvirt/1"/></metadata>
</domain>
"""


class FakeConn:
    """Answers virsh calls from a table of domains; records every argv."""

    host = "local"

    def __init__(self, domains: dict[str, str]) -> None:
        self.domains = domains
        self.calls: list[list[str]] = []

    def run(self, argv, input=None, timeout=None, env=None, cwd=None):
        self.calls.append(list(argv))
        args = argv[3:]
        if len(args) == 1:  # one batched command list
            out = []
            for command in args[0].split("; "):
                name = command.split()[-1]
                if name in self.domains:
                    out.append(self.domains[name])
            return CommandResult(tuple(argv), 1 if len(out) < len(args[0].split("; ")) else 0,
                                 "".join(out).encode(), b"")
        name = args[-1]
        if name in self.domains:
            return CommandResult(tuple(argv), 0, self.domains[name].encode(), b"")
        return CommandResult(tuple(argv), 1, b"",
                             f"error: failed to get domain '{name}'".encode())


def test_split_and_name():
    text = DOC.format(name="a", n=1) + DOC.format(name="b", n=2)
    documents = split_documents(text)
    assert [domain_name(d) for d in documents] == ["a", "b"]


def test_safe_names_are_batched_others_read_alone():
    domains = {"web-1": DOC.format(name="web-1", n=1), "db.2": DOC.format(name="db.2", n=2),
               "odd name; rm -rf /": DOC.format(name="odd name; rm -rf /", n=3)}
    conn = FakeConn(domains)
    found = Virsh(conn, "qemu:///system").dumpxml_many(list(domains) + ["gone"])
    assert set(found) == set(domains)
    batched = [c for c in conn.calls if len(c) == 4]
    assert batched == [["virsh", "-c", "qemu:///system",
                        "dumpxml --inactive --domain web-1; dumpxml --inactive --domain db.2; "
                        "dumpxml --inactive --domain gone"]]
    alone = [c[-1] for c in conn.calls if len(c) > 4]
    # The odd name goes as one argv element, never into a command list; the domain the
    # batch did not return is asked again alone (and is reported gone).
    assert alone == ["odd name; rm -rf /", "gone"]
