"""The xen provider: domains run by `xl`, locally or over SSH, as root.

xl keeps no stopped domains: a VM is decl's config file `options.config_dir/NAME.cfg` (with
decl's marks block) and its disks; when it runs it is also a domain in `xl list`.
"""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits
from decl.errors import ProviderError
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.xen import xl
from decl.providers.xen.cfg import CfgError, XlConfig, disk_spec, parse_disk_spec, vif_bridge
from decl.providers.xen.host import XenHost
from decl.providers.xen.spec import MIB, TRAITS, desired_spec, parse_options, vdevs

DEFAULT_CONFIG_DIR = "/etc/xen"
BOOT_KEYS = ("kernel", "ramdisk", "cmdline", "bootloader")


def cfg_disks(config: XlConfig) -> dict[str, tuple[str, str]]:
    """vdev -> (path, format) of the disks a config names."""
    out = {}
    for index, spec in enumerate(config.value("disk") or []):
        fields = parse_disk_spec(str(spec))
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


class XenProvider(Provider):
    """`vms:` with `provider: xen`."""

    name: ClassVar[str] = "xen"
    kinds: ClassVar[tuple[str, ...]] = ("vm",)
    traits: ClassVar[dict[str, KindTraits]] = {"vm": TRAITS}
    parallel_limit: ClassVar[int | None] = 4

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """type, cpus/maxvcpus, memory/maxmem, firmware, bridge, boot, disks."""
        return desired_spec(name, model)

    # -- check and discover --------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """xl on the host, answering `xl info` (root on a Xen dom0)."""
        ok, detail = XenHost(conn).version()
        return Availability(True, version=detail) if ok else Availability(False, detail=detail)

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Domains and config files, then the sizes of the disks: two round trips."""
        host = XenHost(conn)
        dirs = sorted({self._options(d).config_dir for d in wanted} | {DEFAULT_CONFIG_DIR})
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
            if marks is None or marks.project != project:
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
            options = self._options(desired)
            path = posixpath.join(options.config_dir, f"{desired.name}.cfg")
            same = next((c for p, c in configs if p == path or
                         str(c.value("name") or "") == desired.name), None)
            if same is not None:
                chosen.append((desired.address, path, same))
            elif desired.name in running:
                chosen.append((desired.address, None, None))
        disks = [(fmt, p) for _, _, c in chosen if c is not None
                 for p, fmt in cfg_disks(c).values() if p]
        sizes = host.disk_sizes(sorted(set(disks)))
        for address, path, config in chosen:
            found.observed.append(self._observed(conn, address, path, config, sizes,
                                                 running))
        return found

    def _options(self, desired: Desired | None) -> Any:
        model = desired.model if desired is not None else None
        return parse_options(desired.address if desired else "vm", model.options
                             if model is not None else {})

    def _observed(self, conn: Connection, address: str, path: str | None,
                  config: XlConfig | None, sizes: dict[str, int | None],
                  running: dict[str, xl.Domain]) -> Observed:
        name = address.split(".", 1)[1]
        if config is None:  # a domain running without a config file decl knows
            domain = running[name]
            return Observed(address=address, kind="vm", name=name, provider=self.name,
                            host=conn.host, state=domain.state,
                            spec={"cpus": domain.vcpus, "memory": domain.memory_mib * MIB},
                            marks=None, handle={"domain": name, "cfg": None, "disks": {}})
        domain_name = str(config.value("name") or name)
        domain = running.get(domain_name)
        return Observed(
            address=address, kind="vm", name=name, provider=self.name, host=conn.host,
            state=domain.state if domain else "stopped",
            spec=spec_from_cfg(config, sizes, domain), marks=config.marks,
            handle={"domain": domain_name, "cfg": path, "disks": cfg_disks(config),
                    "made": list(config.created.get("made") or [])})

    # -- apply ---------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """create, update (live or with a restart), replace, delete, start, stop, adopt."""
        host = XenHost(conn)
        action = change.action
        if action is Action.DELETE:
            if observed is not None:
                self._delete(host, change, observed, progress)
            return
        if desired is None:
            raise ProviderError(f"{change.address}: nothing in the manifest to "
                                f"{action.value}")
        if action is Action.CREATE:
            self._create(host, change, desired, progress)
        elif action is Action.REPLACE:
            if observed is not None:
                self._delete(host, change, observed, progress)
            self._create(host, change, desired, progress)
        elif action in (Action.UPDATE, Action.UPDATE_RESTART, Action.ADOPT):
            if observed is None:
                raise ProviderError(f"{change.address}: the VM was not found on host "
                                    f"{change.host}")
            self._update(host, change, desired, observed, progress)
        elif action is Action.START:
            path = (observed.handle.get("cfg") if observed else None) or \
                posixpath.join(self._options(desired).config_dir, f"{desired.name}.cfg")
            progress(f"xl create {path}", None)
            host.create(path, desired.name)
        elif action is Action.STOP:
            self._stop(host, desired, observed.handle["domain"] if observed else desired.name,
                       progress)
        else:
            raise ProviderError(f"{change.address}: the xen provider cannot {action.value}")

    def _create(self, host: XenHost, change: Change, desired: Desired,
                progress: Progress) -> None:
        options = self._options(desired)
        spec = desired.spec
        path = posixpath.join(options.config_dir, f"{desired.name}.cfg")
        if host.conn.exists(path):
            raise ProviderError(f"{desired.address}: {path} already exists on host "
                                f"{host.conn.host}: decl will not overwrite it")
        suffix = "qcow2" if spec["disk_format"] == "qcow2" else "img"
        paths = [posixpath.join(options.disk_dir, f"{desired.name}-{dev}.{suffix}")
                 for dev in vdevs(spec["disk_count"])]
        made: list[str] = []
        try:
            if paths:
                host.conn.makedirs(options.disk_dir)
            for dev, disk_path in zip(vdevs(len(paths)), paths, strict=True):
                progress(f"making {disk_path}", None)
                host.make_disk(disk_path, spec["disk_size"][dev], spec["disk_format"])
                made.append(disk_path)
            config = XlConfig()
            write_spec(config, desired.name, spec, paths)
            config.marks = desired.marks(change.project)
            config.created = {"made": made}
            host.conn.makedirs(options.config_dir)
            progress(f"writing {path}", None)
            host.conn.write_file(path, config.render().encode())
        except Exception:
            for disk_path in made:
                host.conn.remove(disk_path)
            raise
        if desired.state == "running":
            progress(f"xl create {path}", None)
            host.create(path, desired.name)

    def _update(self, host: XenHost, change: Change, desired: Desired, observed: Observed,
                progress: Progress) -> None:
        options = self._options(desired)
        spec = desired.spec
        name = desired.name
        path = observed.handle.get("cfg") or posixpath.join(options.config_dir, f"{name}.cfg")
        running = observed.state == "running"
        fields = {f.path.split(".")[0] for f in change.fields}
        if observed.handle.get("cfg"):
            config = XlConfig.parse(host.conn.read_file(path).decode("utf-8", "replace"))
            if config.marks is not None and config.marks.project != change.project:
                raise ProviderError(f"{desired.address}: {path} carries the marks of project "
                                    f"{config.marks.project!r}")
        else:
            config = XlConfig()
        restart = running and change.action is Action.UPDATE_RESTART
        if restart:
            progress(f"stopping {name} for the restart", None)
            self._stop(host, desired, observed.handle["domain"], progress)
        elif running:
            if "cpus" in fields:
                progress(f"xl vcpu-set {name} {spec['cpus']}", None)
                host.vcpu_set(name, spec["cpus"])
            if "memory" in fields:
                progress(f"xl mem-set {name} {spec['memory'] // MIB}m", None)
                host.mem_set(name, spec["memory"] // MIB)
        disks = observed.handle.get("disks") or {}
        have = observed.spec.get("disk_size") or {}
        for dev, size in (spec.get("disk_size") or {}).items():
            current = have.get(dev)
            if dev in disks and current is not None and size > current:
                progress(f"growing {disks[dev][0]} to {size} bytes", None)
                host.grow_disk(disks[dev][0], size, disks[dev][1])
        paths = [disks[dev][0] for dev in vdevs(spec["disk_count"]) if dev in disks]
        if len(paths) == spec["disk_count"]:
            write_spec(config, name, spec, paths)
        config.marks = desired.marks(change.project)
        progress(f"writing {path}", None)
        host.conn.makedirs(posixpath.dirname(path))
        host.conn.write_file(path, config.render().encode())
        if desired.state == "running" and (restart or not running):
            progress(f"xl create {path}", None)
            host.create(path, name)
        elif desired.state == "stopped" and running and not restart:
            self._stop(host, desired, observed.handle["domain"], progress)

    def _stop(self, host: XenHost, desired: Desired | None, domain: str,
              progress: Progress) -> None:
        timeout = self._options(desired).shutdown_timeout
        progress(f"xl shutdown -w {domain} (up to {timeout:g} s)", None)
        how = host.shutdown(domain, timeout)
        progress(f"{domain}: {how}", None)

    def _delete(self, host: XenHost, change: Change, observed: Observed,
                progress: Progress) -> None:
        """Destroy the domain, remove the config file and the disks decl made; only for a
        config file that carries this project's marks."""
        path = observed.handle.get("cfg")
        project = change.project or (observed.marks.project if observed.marks else "")
        marks: Marks | None = None
        if path:
            try:
                marks = XlConfig.parse(host.conn.read_file(path).decode("utf-8", "replace")) \
                    .marks
            except FileNotFoundError:
                marks = None
        if marks is None or marks.project != project:
            raise ProviderError(f"{change.address}: {path or 'the domain'} carries no mark of "
                                f"project {project!r}: decl will not delete it")
        domain = observed.handle["domain"]
        if observed.state != "stopped":
            progress(f"xl destroy {domain}", None)
            host.destroy(domain)
        progress(f"removing {path}", None)
        host.conn.remove(path)
        for disk in observed.handle.get("made") or []:
            progress(f"removing {disk}", None)
            host.conn.remove(disk)


__all__ = ["XenProvider"]
