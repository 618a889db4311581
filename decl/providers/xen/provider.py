"""The xen provider: domains run by `xl`, locally or over SSH, as root.

xl keeps no stopped domains: a VM is decl's config file `options.config_dir/NAME.cfg` (with
decl's marks block) and its disks; when it runs it is also a domain in `xl list`.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Any, ClassVar

from decl.connections.base import CommandTimeout, Connection
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits
from decl.errors import ProviderError
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportScope,
    Operation,
    OwnedPath,
    ValidateContext,
    ValidationProblem,
)
from decl.providers.vmbase import VmProvider, option_field, owned_in
from decl.providers.xen import importing, spec, xl
from decl.providers.xen.cfg import CfgError, XlConfig, disk_spec, parse_disk_spec, vif_bridge
from decl.providers.xen.host import XenHost
from decl.providers.xen.spec import MIB, TRAITS, XenOptions, vdevs

DEFAULT_CONFIG_DIR = "/etc/xen"
BOOT_KEYS = ("kernel", "ramdisk", "cmdline", "bootloader")


def cfg_disks(config: XlConfig) -> dict[str, tuple[str, str]]:
    """vdev -> (path, format) of the disks a config names."""
    out = {}
    for index, entry in enumerate(config.value("disk") or []):
        fields = parse_disk_spec(str(entry))
        target = fields.get("target", "")
        if target and not target.startswith("/"):
            target = "/dev/" + target
        out[fields.get("vdev") or f"disk{index}"] = (target, fields.get("format", "raw"))
    return out


def spec_from_cfg(config: XlConfig, sizes: dict[str, int | None],
                  domain: xl.Domain | None) -> dict[str, Any]:
    """The comparable spec of a config file (live vCPUs and memory when the domain runs,
    where they differ from the file)."""
    memory = int(config.value("memory") or 32)
    vcpus = int(config.value("vcpus") or 1)
    kind = str(config.value("type") or config.value("builder") or "pv")
    kind = "hvm" if kind == "hvm" else kind if kind in ("pv", "pvh") else "pv"
    live_memory = memory
    if domain is not None:
        vcpus = domain.vcpus
        # xl list counts a little memory more or less than the target (video RAM, balloon
        # slack): a difference under 2 % or 16 MiB is not a change.
        if abs(domain.memory_mib - memory) > max(16, memory // 50):
            live_memory = domain.memory_mib
    disks = cfg_disks(config)
    vifs = config.value("vif") or []
    firmware = None
    if kind == "hvm":
        firmware = "uefi" if str(config.value("firmware") or "") in ("uefi", "ovmf") \
            else "bios"
    formats = {fmt for _, fmt in disks.values()}
    return {
        "type": kind,
        "cpus": vcpus,
        "maxvcpus": int(config.value("maxvcpus") or config.value("vcpus") or 1),
        "memory": live_memory * MIB,
        "maxmem": int(config.value("maxmem") or memory) * MIB,
        "firmware": firmware,
        "bridge": vif_bridge(str(vifs[0])) if vifs else None,
        "boot": {k: str(config.value(k)) for k in BOOT_KEYS if config.value(k) is not None},
        "disk_count": len(disks),
        "disk_format": formats.pop() if len(formats) == 1 else (None if not disks
                                                                 else "mixed"),
        "disk_size": {dev: sizes.get(path) for dev, (path, _) in disks.items()},
    }


def write_spec(config: XlConfig, name: str, spec: dict[str, Any],
               disk_paths: list[str]) -> None:
    """Set the settings decl manages in a config (others stay as they are)."""
    config.set("name", name)
    config.set("type", spec["type"])
    config.set("memory", spec["memory"] // MIB)
    config.set("maxmem", spec["maxmem"] // MIB)
    config.set("vcpus", spec["cpus"])
    config.set("maxvcpus", spec["maxvcpus"])
    config.set("firmware", "uefi" if spec["firmware"] == "uefi" else None)
    for key in BOOT_KEYS:
        config.set(key, spec["boot"].get(key))
    fmt = spec["disk_format"] or "raw"
    config.set("disk", [disk_spec(path, dev, fmt)
                        for dev, path in zip(vdevs(len(disk_paths)), disk_paths, strict=True)])
    bridge = spec["bridge"]
    old = [str(v) for v in (config.value("vif") or [])]
    if bridge is None:
        config.set("vif", [])
    elif old and vif_bridge(old[0]) == bridge:
        config.set("vif", old)
    else:
        rest = [p for p in (old[0].split(",") if old else [])
                if p.strip() and not p.strip().startswith("bridge=")]
        config.set("vif", [",".join([*rest, f"bridge={bridge}"])] + old[1:])


class XenProvider(VmProvider[XenOptions]):
    """`vms:` with `provider: xen`, on the VM base.

    The spec has Xen's own shape (type, maxvcpus, maxmem, bridge, xvd disks) and its own
    traits: cpus and memory change live up to maxvcpus and maxmem."""

    name: ClassVar[str] = "xen"
    traits: ClassVar[dict[str, KindTraits]] = {"vm": TRAITS}
    options_model = XenOptions
    support = spec.SUPPORT
    parallel_limit: ClassVar[int | None] = 4

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The domain's config file CONFIG_DIR/NAME.cfg and its disk images
        DISK_DIR/NAME-xvdX.img (.qcow2), which decl writes and deletes with the VM."""
        options = self.options_of(model)
        suffix = "qcow2" if options.disk_format == "qcow2" else "img"
        disks_field = option_field(model, "disk_dir") or ("disks",)
        return [owned_in(options.config_dir, f"{name}.cfg",
                         field=option_field(model, "config_dir"), what="config file"),
                *[owned_in(options.disk_dir, f"{name}-{dev}.{suffix}", field=disks_field,
                           what="disk file")
                  for dev in vdevs(len(getattr(model, "disks", None) or []))]]

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """Boot needs of pv/pvh, the maxima, disks, bridge names."""
        return spec.validate_vm(model, options, context)

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """type, cpus/maxvcpus, memory/maxmem, firmware, bridge, boot, disks."""
        return spec.desired_spec(name, model, self.options_of(model))

    # -- check and discover --------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """xl on the host, answering `xl info` (root on a Xen dom0)."""
        ok, detail = XenHost(conn).version()
        return Availability(True, version=detail) if ok else Availability(False, detail=detail)

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Domains and config files, then the sizes of the disks: two round trips."""
        host = XenHost(conn)
        dirs = sorted({self.options_of(d.model).config_dir for d in wanted}
                      | {DEFAULT_CONFIG_DIR})
        listing = host.listing(dirs)
        running = {d.name: d for d in listing.domains}
        found = Discovery()
        configs: list[tuple[str, XlConfig]] = []
        for path, text in sorted(listing.configs.items()):
            try:
                configs.append((path, XlConfig.parse(text)))
            except CfgError as exc:
                for desired in wanted:
                    if posixpath.basename(path) == f"{desired.name}.cfg":
                        found.problems[desired.address] = f"{path} cannot be read: {exc}"
        by_address = {d.address: d for d in wanted}
        chosen: list[tuple[str, str | None, XlConfig | None]] = []  # (address, path, cfg)
        claimed: set[str] = set()
        for path, config in configs:
            marks = config.marks
            if marks is None or marks.project != project or not marks.address:
                continue
            if marks.address in claimed:
                if marks.address in by_address:
                    found.problems[marks.address] = (
                        f"two config files carry the marks of {marks.address} on host "
                        f"{conn.host}")
                continue
            claimed.add(marks.address)
            chosen.append((marks.address, path, config))
        for desired in wanted:
            if desired.address in claimed:
                continue
            path = posixpath.join(self.options_of(desired.model).config_dir,
                                  f"{desired.name}.cfg")
            same = next((c for p, c in configs if p == path or
                         str(c.value("name") or "") == desired.name), None)
            if same is not None:
                chosen.append((desired.address, path, same))
            elif desired.name in running:
                chosen.append((desired.address, None, None))
        disks = [(fmt, p) for _, _, c in chosen if c is not None
                 for p, fmt in cfg_disks(c).values() if p]
        sizes = host.disk_sizes(sorted(set(disks)))
        for address, cfg_path, cfg in chosen:
            found.observed.append(self._observed(conn, address, cfg_path, cfg, sizes,
                                                 running))
        return found

    def _observed(self, conn: Connection, address: str, path: str | None,
                  config: XlConfig | None, sizes: dict[str, int | None],
                  running: dict[str, xl.Domain]) -> Observed:
        name = address.split(".", 1)[1]
        if config is None:  # a domain running without a config file decl knows
            loose = running[name]
            return Observed(address=address, kind="vm", name=name, provider=self.name,
                            host=conn.host, state=loose.state,
                            spec={"cpus": loose.vcpus, "memory": loose.memory_mib * MIB},
                            marks=None, handle={"domain": name, "cfg": None, "disks": {}})
        domain_name = str(config.value("name") or name)
        domain = running.get(domain_name)
        return Observed(
            address=address, kind="vm", name=name, provider=self.name, host=conn.host,
            state=domain.state if domain else "stopped",
            spec=spec_from_cfg(config, sizes, domain), marks=config.marks,
            handle={"domain": domain_name, "cfg": path, "disks": cfg_disks(config)})

    # -- import --------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """Config files without decl's marks block in /etc/xen and the folders given with
        --path, and running domains that no config file read names; from discovery's two
        round trips."""
        host = XenHost(conn)
        dirs = sorted({DEFAULT_CONFIG_DIR, *(conn.expand_user(p) for p in scope.paths)})
        listing = host.listing(dirs)
        running = {d.name: d for d in listing.domains}
        found: list[Observed] = []
        named: set[str] = set()
        unmarked: list[tuple[str, str, XlConfig]] = []
        for path, text in sorted(listing.configs.items()):
            stem = posixpath.basename(path)[:-len(".cfg")]
            try:
                config = XlConfig.parse(text)
            except CfgError as exc:
                named.add(stem)
                found.append(Observed(address=f"vm.{stem}", kind="vm", name=stem,
                                      provider=self.name, host=conn.host, state="unknown",
                                      spec={}, marks=None,
                                      handle={"cfg": path, "error": str(exc)}))
                continue
            name = str(config.value("name") or stem)
            named.add(name)
            if config.marks is None:
                unmarked.append((path, name, config))
        disks = [(fmt, p) for _, _, c in unmarked for p, fmt in cfg_disks(c).values() if p]
        sizes = host.disk_sizes(sorted(set(disks)))
        for path, name, config in unmarked:
            observed = self._observed(conn, f"vm.{name}", path, config, sizes, running)
            entries = [str(e) for e in config.value("disk") or []]
            found.append(dataclasses.replace(observed, handle={**observed.handle,
                                                               "disk_entries": entries}))
        for domain in listing.domains:
            if domain.name not in named:
                found.append(Observed(address=f"vm.{domain.name}", kind="vm",
                                      name=domain.name, provider=self.name, host=conn.host,
                                      state=domain.state, spec={}, marks=None,
                                      handle={"cfg": None, "dirs": dirs}))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """cpus, memory, firmware, disks (sizes read from the images), network and the
        options that differ from their defaults (type, maxvcpus, maxmem, boot, the config
        file's folder, the disk format), read from the config file and `xl list`."""
        return importing.manifest_entry(observed)

    # -- where the VM is -----------------------------------------------------------------

    def _cfg_path(self, op: Operation) -> str:
        if op.observed is not None and op.observed.handle.get("cfg"):
            return str(op.observed.handle["cfg"])
        return posixpath.join(self.options_for(op).config_dir, f"{op.name}.cfg")

    @staticmethod
    def _domain(op: Operation) -> str:
        if op.observed is not None and op.observed.handle.get("domain"):
            return str(op.observed.handle["domain"])
        return op.name

    def _read_cfg(self, op: Operation) -> XlConfig | None:
        try:
            text = op.conn.read_file(self._cfg_path(op)).decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        return XlConfig.parse(text)

    # -- primitives ----------------------------------------------------------------------

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks block of the config file as it is now."""
        config = self._read_cfg(op)
        return config.marks if config is not None else None

    def define(self, op: Operation, options: XenOptions) -> None:
        """Disk images, then the config file with the marks; the domain is not started."""
        desired = op.need_desired()
        wanted = desired.spec
        host = XenHost(op.conn)
        path = posixpath.join(options.config_dir, f"{desired.name}.cfg")
        if op.conn.exists(path):
            raise ProviderError(f"{op.address}: {path} already exists on host "
                                f"{op.conn.host}: decl will not overwrite it")
        suffix = "qcow2" if wanted["disk_format"] == "qcow2" else "img"
        paths = [posixpath.join(options.disk_dir, f"{desired.name}-{dev}.{suffix}")
                 for dev in vdevs(wanted["disk_count"])]
        made: list[str] = []
        if op.change.in_flight:
            # An apply that died while making this domain (before its config file, which
            # carries the marks) may have left the disk images it names for it.
            for disk_path in paths:
                op.conn.remove(disk_path)
        try:
            if paths:
                op.conn.makedirs(options.disk_dir)
            for dev, disk_path in zip(vdevs(len(paths)), paths, strict=True):
                op.progress(f"making {disk_path}", None)
                host.make_disk(disk_path, wanted["disk_size"][dev], wanted["disk_format"])
                made.append(disk_path)
            config = XlConfig()
            write_spec(config, desired.name, wanted, paths)
            config.marks = op.marks()
            config.created = {"made": made}
            op.conn.makedirs(options.config_dir)
            op.progress(f"writing {path}", None)
            op.conn.write_file(path, config.render().encode())
        except Exception:
            for disk_path in made:
                op.conn.remove(disk_path)
            raise

    def modify(self, op: Operation, options: XenOptions, fields: set[str]) -> None:
        """cpus and memory of a running domain with xl vcpu-set / mem-set; then the config
        file (managed settings and marks; every other line kept)."""
        wanted = op.need_desired().spec
        name = self._domain(op)
        path = self._cfg_path(op)
        config = self._read_cfg(op)
        if config is None:
            raise ProviderError(f"{op.address}: domain {name} runs without a config file at "
                                f"{path}: decl cannot know its disks (write its config there "
                                "first, then adopt it)")
        if self.power_state(op) == "running":
            if "cpus" in fields:
                op.progress(f"xl vcpu-set {name} {wanted['cpus']}", None)
                XenHost(op.conn).vcpu_set(name, wanted["cpus"])
            if "memory" in fields:
                op.progress(f"xl mem-set {name} {wanted['memory'] // MIB}m", None)
                XenHost(op.conn).mem_set(name, wanted["memory"] // MIB)
        disks = cfg_disks(config)
        paths = [disks[dev][0] for dev in vdevs(wanted["disk_count"]) if dev in disks]
        if len(paths) == wanted["disk_count"]:
            write_spec(config, name, wanted, paths)
        config.marks = op.marks()
        op.progress(f"writing {path}", None)
        op.conn.write_file(path, config.render().encode())

    def power_state(self, op: Operation) -> str | None:
        """running while `xl list` shows the domain; stopped while only its config exists;
        None when neither does."""
        result = op.conn.run(["xl", "list"], timeout=120)
        if not result.ok:
            raise ProviderError(f"{op.address}: `xl list` failed on host {op.conn.host}: "
                                f"{xl.error_lines(result.err)}")
        name = self._domain(op)
        for domain in xl.parse_list(result.out):
            if domain.name == name:
                return "paused" if domain.state == "paused" else "running"
        return "stopped" if op.conn.exists(self._cfg_path(op)) else None

    def power_on(self, op: Operation, options: XenOptions) -> None:
        """xl create /abs/NAME.cfg."""
        path = self._cfg_path(op)
        op.progress(f"xl create {path}", None)
        XenHost(op.conn).create(path, self._domain(op))

    def soft_stop(self, op: Operation, options: XenOptions) -> bool:
        """xl shutdown -w -F, for up to options.shutdown_timeout seconds; False when it did
        not end in time or failed (xl destroy follows)."""
        name = self._domain(op)
        op.progress(f"xl shutdown -w {name}", None)
        try:
            result = op.conn.run(["xl", "shutdown", "-w", "-F", name],
                                 timeout=max(options.shutdown_timeout, 1))
        except CommandTimeout:
            op.progress(f"{name}: no shutdown within {options.shutdown_timeout:g} s", None)
            return False
        if result.ok or xl.missing_domain(result.err):
            return True
        op.progress(f"{name}: {xl.error_lines(result.err) or 'xl shutdown failed'}", None)
        return False

    def hard_stop(self, op: Operation, options: XenOptions) -> None:
        """xl destroy."""
        XenHost(op.conn).destroy(self._domain(op))

    def remove(self, op: Operation, options: XenOptions) -> None:
        """The config file and the disk images decl made (listed in its marks block)."""
        config = self._read_cfg(op)
        path = self._cfg_path(op)
        made = list(config.created.get("made") or []) if config is not None else []
        op.progress(f"removing {path}", None)
        op.conn.remove(path)
        for disk in made:
            op.progress(f"removing {disk}", None)
            op.conn.remove(str(disk))

    def grow_disk(self, op: Operation, options: XenOptions, dev: str, size: int,
                  running: bool) -> None:
        """truncate (raw) or qemu-img resize (qcow2)."""
        disks = op.observed.handle.get("disks") if op.observed is not None else None
        if not disks or dev not in disks:
            raise ProviderError(f"{op.address}: disk {dev} was not found")
        path, fmt = disks[dev]
        XenHost(op.conn).grow_disk(path, size, fmt)


__all__ = ["XenProvider"]
