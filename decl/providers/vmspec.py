"""What the libvirt and QEMU providers share: the comparable VM spec, field policies,
architectures and the facts of a host (its CPU architecture, whether KVM is usable)."""

from __future__ import annotations

import threading
from typing import Any

from decl.connections.base import Connection
from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size

# Guest architecture -> the QEMU system emulator that runs it.
QEMU_BINARY = {
    "x86_64": "qemu-system-x86_64",
    "i686": "qemu-system-i386",
    "aarch64": "qemu-system-aarch64",
    "armv7l": "qemu-system-arm",
    "riscv64": "qemu-system-riscv64",
    "ppc64le": "qemu-system-ppc64",
    "s390x": "qemu-system-s390x",
}

# Guest architecture -> the machine type used when options name none.
DEFAULT_MACHINE = {
    "x86_64": "q35",
    "i686": "pc",
    "aarch64": "virt",
    "armv7l": "virt",
    "riscv64": "virt",
    "ppc64le": "pseries",
    "s390x": "s390-ccw-virtio",
}

# Guest architecture -> the CPU model used under emulation (TCG) when options name none.
DEFAULT_TCG_CPU = {"aarch64": "max", "armv7l": "cortex-a15", "riscv64": "rv64"}

# `uname -m` spellings -> decl's architecture names.
UNAME_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "i386": "i686", "i586": "i686",
              "armv8l": "aarch64", "ppc64el": "ppc64le"}

# UEFI firmware code files looked for on the host, per architecture (Debian's ovmf and
# qemu-efi-aarch64 packages), with the matching variable-store template.
UEFI_FIRMWARE = {
    "x86_64": [("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
               ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd")],
    "aarch64": [("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd")],
}

DESTROYS = "its disks"


def disk_names(count: int) -> list[str]:
    """Guest device names of `count` virtio disks: vda, vdb, ..."""
    return [f"vd{chr(ord('a') + index)}" for index in range(count)]


def disk_source_id(disk: Any) -> str:
    """What a disk is made from, as compared between manifest and host."""
    if disk.image:
        return str(disk.checksum.lower() if disk.checksum else disk.image)
    return "empty"


def vm_spec(model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The comparable spec of a manifest VM; `options` is the provider's comparable subset."""
    names = disk_names(len(model.disks))
    pairs = list(zip(names, model.disks, strict=True))
    return {
        "cpus": model.cpus,
        "memory": model.memory,
        "arch": model.arch,
        "firmware": model.firmware,
        "disk_count": len(model.disks),
        "disk_size": {dev: disk.size for dev, disk in pairs},
        "disk_source": {dev: disk_source_id(disk) for dev, disk in pairs},
        "cdrom": model.cdrom,
        "network": {"mode": model.network.mode,
                    "bridge": model.network.bridge if model.network.mode == "bridge" else None},
        "cloud_init": (model.cloud_init.model_dump(mode="json")
                       if model.cloud_init is not None else None),
        "options": options,
    }


def check_vm_field(path: str, before: Any, after: Any) -> str | None:
    """Plan-time errors: a disk never shrinks."""
    if path.startswith("disk_size.") and isinstance(before, int) and isinstance(after, int):
        if after < before:
            dev = path.split(".", 1)[1]
            return (f"disk {dev} cannot shrink from {format_size(before)} to "
                    f"{format_size(after)}: disks only grow (make a new VM for a smaller disk)")
    return None


def vm_traits() -> KindTraits:
    """Field policies that match a hypervisor: what each change needs."""
    return KindTraits(
        policies={
            "cpus": Policy.RESTART,
            "memory": Policy.RESTART,
            "arch": Policy.REPLACE,
            "firmware": Policy.REPLACE,
            "disk_count": Policy.REPLACE,
            "disk_source": Policy.REPLACE,
            "disk_size": Policy.LIVE,
            "cdrom": Policy.RESTART,
            "network": Policy.RESTART,
            "cloud_init": Policy.RESTART,
            "options": Policy.RESTART,
        },
        default_policy=Policy.REPLACE,
        destroys_data=DESTROYS,
        has_run_state=True,
        size_fields=frozenset({"memory", "disk_size"}),
        check=check_vm_field,
    )


class HostFacts:
    """Per-connection facts, asked once: CPU architecture, usable /dev/kvm, programs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str], Any] = {}

    def _cached(self, conn: Connection, key: str, compute: Any) -> Any:
        slot = (id(conn), key)
        with self._lock:
            if slot in self._cache:
                return self._cache[slot]
        value = compute()
        with self._lock:
            self._cache[slot] = value
        return value

    def arch(self, conn: Connection) -> str:
        """The host's CPU architecture in decl's names (x86_64, aarch64...)."""
        def compute() -> str:
            result = conn.run(["uname", "-m"], timeout=30)
            raw = result.out.strip() if result.ok else "x86_64"
            return UNAME_ARCH.get(raw, raw)
        return str(self._cached(conn, "arch", compute))

    def kvm_usable(self, conn: Connection) -> bool:
        """Whether /dev/kvm exists and this user may read and write it."""
        def compute() -> bool:
            result = conn.run(["sh", "-c", "test -c /dev/kvm -a -r /dev/kvm -a -w /dev/kvm"],
                              timeout=30)
            return result.ok
        return bool(self._cached(conn, "kvm", compute))

    def which(self, conn: Connection, program: str) -> str | None:
        """A program's path on the host, cached."""
        found = self._cached(conn, "which:" + program, lambda: conn.which(program))
        return str(found) if found else None

    def exists(self, conn: Connection, path: str) -> bool:
        """Whether a path exists on the host, cached (firmware files, bridges)."""
        return bool(self._cached(conn, "exists:" + path, lambda: conn.exists(path)))

    def uefi_firmware(self, conn: Connection, arch: str) -> tuple[str, str] | None:
        """(code, vars template) of the UEFI firmware for `arch` on the host, or None."""
        for code, variables in UEFI_FIRMWARE.get(arch, []):
            if self.exists(conn, code) and self.exists(conn, variables):
                return code, variables
        return None

def bridge_exists(conn: Connection, bridge: str) -> bool:
    """Whether a Linux bridge of that name exists on the host."""
    if "/" in bridge or bridge in (".", ".."):
        return False
    return bool(conn.exists(f"/sys/class/net/{bridge}/bridge"))


def host_problem(conn: Connection, facts: Any, model: Any, provider: str,
                 kvm_option: str | None) -> tuple[str | None, str]:
    """Plan-time problems of a VM on its host, shared by the VM providers: an arch the
    provider cannot run, a missing qemu-system binary, KVM asked for where it cannot work
    (`kvm_option` names the option that asked: "domain_type", "accel"), a missing bridge.
    Returns (problem or None, the guest's arch)."""
    host_arch = facts.arch(conn)
    arch = model.arch or host_arch
    binary = QEMU_BINARY.get(arch)
    if binary is None:
        return f"arch {arch} is not supported by the {provider} provider", arch
    if facts.which(conn, binary) is None:
        return f"arch {arch} needs {binary}, which is not installed on host {conn.host}", arch
    if kvm_option and (arch != host_arch or not facts.kvm_usable(conn)):
        why = (f"arch {arch} is not the host's ({host_arch})" if arch != host_arch
               else "/dev/kvm is missing or not usable")
        return f"{kvm_option} kvm is not possible on host {conn.host}: {why}", arch
    network = model.network
    if network.mode == "bridge" and not bridge_exists(conn, network.bridge):
        return f"bridge {network.bridge} does not exist on host {conn.host}", arch
    return None, arch


def make_disks(conn: Connection, model: Any, path_of: Any, image_cache: str, disk_mode: str,
               made: list[str], progress: Any) -> list[tuple[str, str, Any]]:
    """Make each disk of a new VM (an overlay on, or a copy of, its verified image, or an
    empty qcow2), appending every file made to `made`. Returns (dev, path, disk) triples."""
    from decl.providers import images

    out = []
    for dev, disk in zip(disk_names(len(model.disks)), model.disks, strict=True):
        base = None
        if disk.image:
            progress(f"preparing image {disk.image}", None)
            base = images.ensure_image(conn, disk.image, disk.checksum, image_cache, progress)
        path = path_of(dev)
        progress(f"making disk {dev} ({path})", None)
        images.make_disk(conn, path, disk.size, base, disk_mode, progress)
        made.append(path)
        out.append((dev, path, disk))
    return out


def creation_problem(conn: Connection, model: Any, arch: str, uefi_firmware: Any) -> str | None:
    """Plan-time problems of a VM that does not exist yet, shared by the VM providers:
    a missing or unverifiable image, a missing cdrom, UEFI without firmware, no ISO tool."""
    from decl.providers import cloudinit, images

    for disk in model.disks:
        if disk.image:
            problem = images.image_problem(conn, disk.image, disk.checksum)
            if problem:
                return str(problem)
    if model.cdrom and not conn.exists(conn.expand_user(model.cdrom)):
        return f"cdrom {model.cdrom} does not exist on host {conn.host}"
    if model.firmware == "uefi" and uefi_firmware(conn, arch) is None:
        return uefi_missing_message(arch, conn.host)
    if model.cloud_init is not None and cloudinit.iso_tool(conn) is None:
        return f"cloud_init needs genisoimage, mkisofs or xorriso on host {conn.host}"
    return None


def uefi_missing_message(arch: str, host: str) -> str:
    """The plan-time error for UEFI without firmware."""
    package = {"x86_64": "ovmf", "aarch64": "qemu-efi-aarch64"}.get(arch)
    hint = f" (install the {package} package)" if package else ""
    return f"firmware: uefi needs UEFI firmware for {arch}, which is not installed on " \
        f"host {host}{hint}"
