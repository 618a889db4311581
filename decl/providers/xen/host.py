"""One Xen host seen through a Connection (local or SSH): xl calls, config files and disk
images. Discovery takes two round trips whatever the number of domains: `xl list` with every
config file, then the sizes of the disks decl cares about.

Every command is an argv list; the scripts are constant text that get their values as
positional parameters.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from decl.connections.base import CommandResult, Connection
from decl.errors import ProviderError
from decl.providers.xen import xl

# Round trip 1: `xl list`, its exit code, then every *.cfg of the folders given after the
# nonce ($1), each after a marker line naming it.
LISTING_SCRIPT = """\
n=$1; shift
xl list 2>&1
printf '\\n%s rc %s\\n' "$n" "$?"
for d in "$@"; do
  for f in "$d"/*.cfg; do
    [ -f "$f" ] || continue
    printf '\\n%s cfg %s\\n' "$n" "$f"
    cat "$f"
  done
done
"""

# Round trip 2: the size of each disk, given as (format, path) pairs after the nonce.
SIZES_SCRIPT = """\
n=$1; shift
while [ "$#" -ge 2 ]; do
  fmt=$1; p=$2; shift 2
  printf '\\n%s disk %s\\n' "$n" "$p"
  if [ "$fmt" = qcow2 ]; then
    qemu-img info -U --output=json "$p" 2>/dev/null
  else
    stat -L -c %s "$p" 2>/dev/null
  fi
done
"""


@dataclass
class Listing:
    """What round trip 1 found."""

    domains: list[xl.Domain]
    configs: dict[str, str]  # path -> text


def split_sections(text: str, nonce: str) -> list[tuple[list[str], str]]:
    """Output cut at the marker lines `NONCE WORD REST`: [(words, text after the marker)]."""
    out: list[tuple[list[str], str]] = [([], "")]
    for line in text.split("\n"):
        if line.startswith(nonce + " "):
            out.append((line[len(nonce) + 1:].split(" ", 1), ""))
        else:
            words, body = out[-1]
            out[-1] = (words, body + line + "\n")
    return [(words, body[:-2] + "\n" if body.endswith("\n\n") else body)
            for words, body in out]


def disk_size(fmt: str, text: str) -> int | None:
    """A disk's size from `stat -c %s` or `qemu-img info --output=json`."""
    text = text.strip()
    if fmt == "qcow2":
        try:
            size = json.loads(text).get("virtual-size")
        except (ValueError, AttributeError):
            return None
        return int(size) if isinstance(size, int) else None
    return int(text) if text.isdigit() else None


class XenHost:
    """xl, config files and disks on one host."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _run(self, argv: list[str], timeout: float | None = 300) -> CommandResult:
        return self.conn.run(argv, timeout=timeout)

    def xl(self, args: list[str], what: str, timeout: float | None = 300) -> CommandResult:
        """Run xl; ProviderError with xl's own words when it fails."""
        result = self._run(["xl", *args], timeout)
        if not result.ok:
            words = xl.error_lines(result.err) or result.out.strip() or "no output"
            raise ProviderError(f"{what} failed on host {self.conn.host} (xl {args[0]}, exit "
                                f"code {result.returncode}): {words}")
        return result

    def version(self) -> tuple[bool, str]:
        """(xl works, the Xen version or why not)."""
        result = self._run(["sh", "-c", "command -v xl >/dev/null || exit 127; "
                            "xl info xen_version"], 60)
        if result.returncode == 127:
            return False, f"xl is not installed on host {self.conn.host}"
        if not result.ok:
            return False, (f"`xl info` failed on host {self.conn.host} (is it a Xen dom0, "
                           f"and is the user root?): {xl.error_lines(result.err)[-200:]}")
        return True, result.out.strip()

    def listing(self, config_dirs: list[str]) -> Listing:
        """Running domains and every config file of `config_dirs`: one round trip."""
        nonce = "@decl-" + secrets.token_hex(8)
        result = self._run(["sh", "-c", LISTING_SCRIPT, "sh", nonce, *config_dirs])
        sections = split_sections(result.out, nonce)
        listed = sections[0][1]
        rc = next((words[1].strip() for words, _ in sections[1:] if words[0] == "rc"), None)
        if rc != "0":
            raise ProviderError(f"`xl list` failed on host {self.conn.host} (exit code "
                                f"{rc}): {xl.error_lines(listed) or listed.strip()[-300:]}")
        configs = {words[1].strip(): body for words, body in sections[1:]
                   if words[0] == "cfg" and len(words) == 2}
        return Listing(xl.parse_list(listed), configs)

    def disk_sizes(self, disks: list[tuple[str, str]]) -> dict[str, int | None]:
        """path -> bytes for (format, path) pairs: one round trip."""
        if not disks:
            return {}
        nonce = "@decl-" + secrets.token_hex(8)
        argv = ["sh", "-c", SIZES_SCRIPT, "sh", nonce]
        formats = {}
        for fmt, path in disks:
            argv += [fmt, path]
            formats[path] = fmt
        result = self._run(argv)
        return {words[1].strip(): disk_size(formats.get(words[1].strip(), "raw"), body)
                for words, body in split_sections(result.out, nonce)[1:]
                if words[0] == "disk" and len(words) == 2}

    # -- domains -------------------------------------------------------------------------

    def create(self, cfg_path: str, name: str) -> None:
        """Start a domain from its config file (absolute path)."""
        self.xl(["create", cfg_path], f"starting domain {name} from {cfg_path}", timeout=600)

    def destroy(self, name: str) -> bool:
        """Destroy a domain at once; False when it was not there."""
        result = self._run(["xl", "destroy", name], 300)
        if result.ok:
            return True
        if xl.missing_domain(result.err):
            return False
        raise ProviderError(f"destroying domain {name} failed on host {self.conn.host} "
                            f"(exit code {result.returncode}): {xl.error_lines(result.err)}")

    def vcpu_set(self, name: str, count: int) -> None:
        """Online vCPUs of a running domain."""
        self.xl(["vcpu-set", name, str(count)], f"setting the vCPUs of {name} to {count}")

    def mem_set(self, name: str, mib: int) -> None:
        """Memory target of a running domain."""
        self.xl(["mem-set", name, f"{mib}m"], f"setting the memory of {name} to {mib} MiB")

    # -- files ---------------------------------------------------------------------------

    def make_disk(self, path: str, size: int, fmt: str) -> None:
        """A new disk image; refuses to overwrite a file."""
        if fmt == "qcow2":
            argv = ["sh", "-c", 'test ! -e "$1" || exit 17; qemu-img create -q -f qcow2 '
                    '"$1" "$2"', "sh", path, str(size)]
        else:
            argv = ["sh", "-c", 'test ! -e "$1" || exit 17; truncate -s "$2" "$1"', "sh",
                    path, str(size)]
        result = self._run(argv, 600)
        if result.returncode == 17:
            raise ProviderError(f"{path} already exists on host {self.conn.host}: decl will "
                                "not overwrite it")
        result.check(f"making disk {path} on host {self.conn.host}")

    def grow_disk(self, path: str, size: int, fmt: str) -> None:
        """Grow a disk image (never shrinks it)."""
        argv = ["qemu-img", "resize", "-q", "-f", "qcow2", path, str(size)] if fmt == "qcow2" \
            else ["truncate", "-s", str(size), path]
        self._run(argv, 600).check(f"growing disk {path} on host {self.conn.host}")
