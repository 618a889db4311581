"""One ESXi host seen through a Connection: vim-cmd and vmkfstools calls whose output is
checked for vim faults before the exit code, and discovery in a constant number of round
trips (two shell scripts, whatever the number of VMs).

Every command is an argv list; the scripts are constant text that receive their values as
positional parameters, so no manifest value is ever parsed by the host's shell.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from decl.connections.base import CommandResult, CommandTimeout, Connection
from decl.errors import ProviderError
from decl.providers.esxi import vimcmd

VOLUMES = "/vmfs/volumes"

# Round trip 1: the datastores and the VM list, separated by a line holding the nonce ($1).
LISTING_SCRIPT = """\
vim-cmd hostsvc/datastore/listsummary 2>&1
printf '\\n%s listing\\n' "$1"
vim-cmd vmsvc/getallvms 2>&1
"""

# The sed program that prints the fileName of every disk of a .vmx.
DISK_NAMES_SED = ('s/^[[:space:]]*[A-Za-z]*[0-9]*:[0-9]*\\.[Ff]ile[Nn]ame[[:space:]]*='
                  '[[:space:]]*"\\(.*\\.vmdk\\)"[[:space:]]*$/\\1/p')

# Round trip 2: for each (vmid, .vmx path) pair after the nonce and the sed program, the
# power state, the .vmx and the first 4 KiB of every .vmdk descriptor it names. BusyBox ash
# compatible.
DETAILS_SCRIPT = """\
n=$1; expr=$2; shift 2
while [ "$#" -ge 2 ]; do
  id=$1; vmx=$2; shift 2
  printf '\\n%s state %s\\n' "$n" "$id"
  vim-cmd vmsvc/power.getstate "$id" 2>&1
  if [ -r "$vmx" ]; then
    printf '\\n%s vmx %s\\n' "$n" "$id"
    cat "$vmx"
    dir=${vmx%/*}
    sed -n "$expr" "$vmx" |
    while IFS= read -r f; do
      case $f in /*) p=$f ;; *) p=$dir/$f ;; esac
      printf '\\n%s vmdk %s %s\\n' "$n" "$id" "$f"
      head -c 4096 "$p" 2>/dev/null
    done
  fi
done
"""


@dataclass
class VmDetails:
    """What round trip 2 found for one VM."""

    state_text: str = ""
    vmx_text: str | None = None
    descriptors: dict[str, str] = field(default_factory=dict)  # fileName value -> text


@dataclass
class Inventory:
    """Everything discovery read from a host."""

    datastores: dict[str, str]
    rows: list[vimcmd.VmRow]
    invalid: list[str]
    details: dict[str, VmDetails]
    vmx_paths: dict[str, str]


def split_sections(text: str, nonce: str) -> list[tuple[list[str], str]]:
    """Output cut at the marker lines `NONCE WORD...`: [(marker words, text after it)]."""
    out: list[tuple[list[str], str]] = [([], "")]
    for line in text.split("\n"):
        if line.startswith(nonce + " "):
            out.append((line[len(nonce) + 1:].split(" ", 2), ""))
        else:
            words, body = out[-1]
            out[-1] = (words, body + line + "\n")
    # each marker is printed after a newline of its own: drop that one blank line
    return [(words, body[:-2] + "\n" if body.endswith("\n\n") else body)
            for words, body in out]


def vmx_path(datastores: dict[str, str], row: vimcmd.VmRow) -> str:
    """The absolute path of a VM's .vmx from its getallvms row."""
    root = datastores.get(row.datastore) or f"{VOLUMES}/{row.datastore}"
    return f"{root.rstrip('/')}/{row.path}"


class EsxiHost:
    """vim-cmd and vmkfstools on one host."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- plumbing ------------------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float | None = 300) -> CommandResult:
        return self.conn.run(argv, timeout=timeout)

    def vim(self, args: list[str], what: str, timeout: float | None = 300) -> str:
        """Run vim-cmd; ProviderError on a fault (whatever the exit code) or a failure."""
        result = self._run(["vim-cmd", *args], timeout)
        text = result.out + result.err
        fault = vimcmd.find_fault(text)
        if fault is not None:
            raise ProviderError(f"{what} failed on host {self.conn.host}: {fault} "
                                f"(vim-cmd {' '.join(args[:1])}, exit code "
                                f"{result.returncode})")
        if not result.ok:
            tail = (result.err.strip() or result.out.strip() or "no output").splitlines()[-3:]
            raise ProviderError(f"{what} failed on host {self.conn.host} (vim-cmd exit code "
                                f"{result.returncode}): " + " / ".join(tail))
        return result.out

    # -- discovery -----------------------------------------------------------------------

    def version(self) -> tuple[bool, str]:
        """(vim-cmd is there, `vmware -v` or why not): one round trip."""
        result = self._run(["sh", "-c", "command -v vim-cmd >/dev/null || exit 3; "
                            "command -v vmkfstools >/dev/null || exit 4; vmware -v"], 60)
        if result.returncode == 3:
            return False, f"vim-cmd is not on host {self.conn.host} (is it an ESXi host?)"
        if result.returncode == 4:
            return False, f"vmkfstools is not on host {self.conn.host}"
        version = result.out.strip()
        if not result.ok or not version.startswith("VMware ESXi"):
            words = (result.err.strip() or version or "no output").splitlines()[-1]
            return False, f"`vmware -v` on host {self.conn.host} does not name ESXi: {words}"
        return True, version

    def inventory(self) -> Inventory:
        """Datastores, VMs, their power states, .vmx files and disk descriptors: two
        round trips whatever the number of VMs."""
        nonce = "@decl-" + secrets.token_hex(8)
        first = self._run(["sh", "-c", LISTING_SCRIPT, "sh", nonce])
        sections = split_sections(first.out, nonce)
        summary = sections[0][1]
        listing = next((body for words, body in sections[1:] if words[:1] == ["listing"]),
                       None)
        if listing is None or not first.ok:
            raise ProviderError(f"listing VMs on host {self.conn.host} failed (exit code "
                                f"{first.returncode}): "
                                f"{(first.err or first.out).strip()[-300:]}")
        fault = vimcmd.find_fault(listing)
        if fault is not None:
            raise ProviderError(f"vim-cmd vmsvc/getallvms failed on host {self.conn.host}: "
                                f"{fault}")
        datastores = vimcmd.parse_datastores(summary)
        rows, invalid = vimcmd.parse_getallvms(listing)
        paths = {row.vmid: vmx_path(datastores, row) for row in rows}
        details: dict[str, VmDetails] = {row.vmid: VmDetails() for row in rows}
        if rows:
            argv = ["sh", "-c", DETAILS_SCRIPT, "sh", nonce, DISK_NAMES_SED]
            for row in rows:
                argv += [row.vmid, paths[row.vmid]]
            second = self._run(argv)
            for words, body in split_sections(second.out, nonce)[1:]:
                if len(words) < 2 or words[1] not in details:
                    continue
                entry = details[words[1]]
                if words[0] == "state":
                    entry.state_text = body
                elif words[0] == "vmx":
                    entry.vmx_text = body
                elif words[0] == "vmdk" and len(words) == 3:
                    entry.descriptors[words[2]] = body
        return Inventory(datastores, rows, invalid, details, paths)

    def datastores(self) -> dict[str, str]:
        """Datastore name -> folder."""
        return vimcmd.parse_datastores(self.vim(["hostsvc/datastore/listsummary"],
                                                "listing datastores"))

    # -- VMs -----------------------------------------------------------------------------

    def register(self, path: str) -> str:
        """Register a .vmx; the new vmid."""
        out = self.vim(["solo/registervm", path], f"registering {path}")
        vmid = vimcmd.parse_new_vmid(out)
        if vmid is None:
            raise ProviderError(f"registering {path} on host {self.conn.host} printed no "
                                f"vmid: {out.strip()[-200:]}")
        return vmid

    def power_on(self, vmid: str, what: str) -> None:
        """Power on."""
        self.vim(["vmsvc/power.on", vmid], f"powering on {what}", timeout=600)

    def power_off(self, vmid: str, what: str) -> None:
        """Hard power off."""
        self.vim(["vmsvc/power.off", vmid], f"powering off {what}", timeout=600)

    def tools_running(self, vmid: str) -> bool:
        """Whether VMware Tools run in the guest."""
        return vimcmd.tools_running(self.vim(["vmsvc/get.guest", vmid],
                                             f"asking VM {vmid} for VMware Tools"))

    def reload(self, vmid: str, what: str) -> None:
        """Make the host read the .vmx again."""
        self.vim(["vmsvc/reload", vmid], f"reloading the configuration of {what}")

    def destroy(self, vmid: str, what: str) -> None:
        """Unregister the VM and delete its files."""
        self.vim(["vmsvc/destroy", vmid], f"destroying {what}", timeout=600)

    # -- disks and files -----------------------------------------------------------------

    def vmkfstools(self, args: list[str], what: str) -> None:
        """Run vmkfstools (it exits 255 on errors, with its reason on stderr)."""
        try:
            result = self._run(["vmkfstools", *args], timeout=3600)
        except CommandTimeout:
            raise ProviderError(f"{what} on host {self.conn.host}: vmkfstools did not finish "
                                "within an hour") from None
        if not result.ok:
            reason = (result.err.strip() or result.out.strip() or "no output").splitlines()
            raise ProviderError(f"{what} failed on host {self.conn.host} (vmkfstools exit "
                                f"code {result.returncode}): {reason[-1]}")

    def make_disk(self, path: str, size: int, disk_type: str) -> None:
        """A new virtual disk."""
        self.vmkfstools(["-c", vimcmd.vmkfstools_size(size), "-d", disk_type, path],
                        f"creating disk {path}")

    def grow_disk(self, path: str, size: int) -> None:
        """Grow a virtual disk (its VM must be powered off)."""
        self.vmkfstools(["-X", vimcmd.vmkfstools_size(size), path], f"growing disk {path}")

    def remove_tree(self, path: str) -> None:
        """Remove a folder decl made (after a failed creation)."""
        self._run(["rm", "-r", "-f", "--", path], 300)
