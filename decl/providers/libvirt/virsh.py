"""virsh through a Connection (local or SSH), and pure parsers of its output.

Every command is an argv list run with `conn.run`, so the same code drives a local
libvirtd and one on a host reached over SSH. Parsers take the text virsh printed and
return plain data; they are tested on verbatim captures.
"""

from __future__ import annotations

import re
import time

from decl.connections.base import CommandResult, Connection

# `virsh domstate` / `dominfo` words and `domstats` state.state numbers -> decl's states.
STATE_WORDS = {
    "running": "running", "idle": "running", "blocked": "running", "in shutdown": "running",
    "paused": "paused", "pmsuspended": "paused", "shut off": "stopped", "crashed": "stopped",
    "dying": "stopped", "no state": "stopped",
}
STATE_NUMBERS = {0: "stopped", 1: "running", 2: "running", 3: "paused", 4: "running",
                 5: "stopped", 6: "stopped", 7: "paused"}


def parse_list_names(text: str) -> list[str]:
    """`virsh list --all --name`: one name a line, then a blank line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_domstate(text: str) -> str:
    """`virsh domstate X` -> decl's state word (running, paused, stopped)."""
    word = text.strip().splitlines()[0].strip() if text.strip() else "no state"
    return STATE_WORDS.get(word, "stopped")


def parse_domstats(text: str) -> dict[str, dict[str, str]]:
    """`virsh domstats --state --block`: {domain: {"state.state": "1", ...}}."""
    stats: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Domain: "):
            name = line[len("Domain: "):].strip()
            if len(name) >= 2 and name[0] == name[-1] == "'":
                name = name[1:-1]
            current = stats.setdefault(name, {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    return stats


def state_from_stats(stats: dict[str, str]) -> str:
    """decl's state word from one domain's domstats."""
    try:
        return STATE_NUMBERS.get(int(stats.get("state.state", "5")), "stopped")
    except ValueError:
        return "stopped"


def capacities_from_stats(stats: dict[str, str]) -> dict[str, int]:
    """{target dev: capacity in bytes} from one domain's domstats (--block)."""
    sizes: dict[str, int] = {}
    try:
        count = int(stats.get("block.count", "0"))
    except ValueError:
        return sizes
    for index in range(count):
        name = stats.get(f"block.{index}.name")
        capacity = stats.get(f"block.{index}.capacity")
        if name and capacity and capacity.isdigit():
            sizes[name] = int(capacity)
    return sizes


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME = re.compile(r"<name>([^<]*)</name>")


def split_documents(text: str) -> list[str]:
    """Concatenated `<domain ...>...</domain>` documents -> one string each."""
    documents = []
    for part in text.split("</domain>"):
        start = part.find("<domain")
        if start != -1:
            documents.append(part[start:] + "</domain>\n")
    return documents


def domain_name(document: str) -> str | None:
    """The domain's <name> (the first one: the domain's own comes before any other)."""
    match = _NAME.search(document)
    return match.group(1) if match else None


def is_not_found(result: CommandResult) -> bool:
    """Whether virsh said the domain (or network) does not exist."""
    words = result.err.lower()
    return ("failed to get domain" in words or "domain not found" in words
            or "no domain with matching" in words or "network not found" in words
            or "failed to get network" in words)


class Virsh:
    """virsh -c URI on one host."""

    def __init__(self, conn: Connection, uri: str) -> None:
        self.conn = conn
        self.uri = uri

    def run(self, *args: str, input: bytes | None = None, timeout: float = 120) -> CommandResult:
        """Run one virsh command."""
        return self.conn.run(["virsh", "-c", self.uri, *args], input=input, timeout=timeout)

    def checked(self, what: str, *args: str, input: bytes | None = None,
                timeout: float = 120) -> CommandResult:
        """Run one virsh command; ProviderError with virsh's words when it fails."""
        return self.run(*args, input=input, timeout=timeout).check(
            f"virsh {what} on host {self.conn.host}")

    def version(self) -> str | None:
        """libvirt's version, or None when the daemon does not answer."""
        result = self.run("version", "--daemon", timeout=30)
        if not result.ok:
            return None
        for line in result.out.splitlines():
            if line.startswith("Running against daemon:") or line.startswith("Using library:"):
                return line.split()[-1]
        return result.out.strip().splitlines()[0] if result.out.strip() else ""

    def list_names(self) -> list[str]:
        """Every domain's name (running or not)."""
        return parse_list_names(self.checked("list", "list", "--all", "--name").out)

    def domstats(self) -> dict[str, dict[str, str]]:
        """State and block capacities of every domain, in one call."""
        return parse_domstats(self.checked("domstats", "domstats", "--state", "--block").out)

    def dumpxml(self, name: str, inactive: bool = True) -> str | None:
        """The domain's XML (its persistent config by default), or None if it is gone."""
        args = ["dumpxml", "--inactive", name] if inactive else ["dumpxml", name]
        result = self.run(*args)
        if not result.ok and is_not_found(result):
            return None
        return result.check(f"virsh dumpxml {name} on host {self.conn.host}").out

    def dumpxml_many(self, names: list[str]) -> dict[str, str]:
        """The persistent XML of many domains from one virsh process (virsh's own command
        list, `dumpxml A; dumpxml B`), keyed by the name inside each document.

        Only names made of letters, digits, '.', '_' and '-' are batched, so nothing virsh's
        command parser would read specially ever reaches it; the others, and any domain the
        batch did not return, are read one by one (None-valued results are left out)."""
        safe = [n for n in names if SAFE_NAME.match(n)]
        found: dict[str, str] = {}
        if safe:
            script = "; ".join(f"dumpxml --inactive --domain {name}" for name in safe)
            result = self.run(script)
            for document in split_documents(result.out):
                name = domain_name(document)
                if name in safe:
                    found[name] = document
        for name in names:
            if name not in found:
                xml = self.dumpxml(name)
                if xml is not None:
                    found[name] = xml
        return found

    def domstate(self, name: str) -> str | None:
        """decl's state word of a domain, or None if it is gone."""
        result = self.run("domstate", name)
        if not result.ok and is_not_found(result):
            return None
        return parse_domstate(result.check(f"virsh domstate {name}").out)

    def active_networks(self) -> list[str]:
        """Names of the active libvirt networks."""
        result = self.run("net-list", "--name")
        return parse_list_names(result.out) if result.ok else []

    def define(self, xml: str) -> None:
        """Define (or redefine) a domain from XML, passed on stdin."""
        self.checked("define", "define", "/dev/stdin", input=xml.encode())

    def start(self, name: str) -> None:
        """Start a defined domain, or resume a paused one."""
        state = self.domstate(name)
        if state == "paused":
            self.checked("resume", "resume", name)
        elif state != "running":
            self.checked("start", "start", name, timeout=300)

    def stop(self, name: str, timeout: float) -> None:
        """Graceful shutdown; after `timeout` seconds, a hard stop (destroy)."""
        if self.domstate(name) in (None, "stopped"):
            return
        self.run("shutdown", name)
        deadline = time.monotonic() + max(0.0, timeout)
        while time.monotonic() < deadline:
            if self.domstate(name) in (None, "stopped"):
                return
            time.sleep(0.5)
        self.destroy(name)

    def destroy(self, name: str) -> None:
        """Hard stop; a domain that is not running is fine."""
        result = self.run("destroy", name, timeout=120)
        if not result.ok and "not running" not in result.err and not is_not_found(result):
            result.check(f"virsh destroy {name}")

    def undefine(self, name: str, nvram: bool) -> None:
        """Remove the domain's definition (its storage is left to the caller)."""
        args = ["undefine", name] + (["--nvram"] if nvram else [])
        result = self.run(*args)
        if not result.ok and not is_not_found(result):
            result.check(f"virsh undefine {name}")

    def blockresize(self, name: str, dev: str, size: int) -> None:
        """Grow a running domain's disk."""
        self.checked("blockresize", "blockresize", name, dev, f"{size}B")
