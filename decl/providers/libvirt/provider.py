"""VMs on KVM (or QEMU emulation) through libvirt, driven with virsh over a Connection."""

from __future__ import annotations

from typing import Any

from decl.connections.base import Connection
from decl.core.resource import Desired, Marks, Observed
from decl.core.units import format_size
from decl.errors import ProviderError
from decl.providers import cloudinit, images
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportScope,
    Operation,
    OwnedPath,
    ValidateContext,
    ValidationProblem,
    orphan_address,
)
from decl.providers.libvirt.domain_xml import (
    DiskDevice,
    DomainParams,
    ParsedDomain,
    parse_domain,
    render_domain,
)
from decl.providers.libvirt.options import LibvirtOptions
from decl.providers.libvirt.virsh import Virsh, capacities_from_stats, state_from_stats
from decl.providers.vmbase import VmProvider, VmSupport, option_field, owned_in
from decl.providers.vmspec import (
    DEFAULT_MACHINE,
    HostFacts,
    creation_problem,
    disk_names,
    disk_source_id,
    host_problem,
    make_disks,
)

DEFAULT_URI = "qemu:///system"
# CPU models used under emulation when options name none (libvirt's own default for
# aarch64 is a 32-bit core).
LIBVIRT_TCG_CPU = {"aarch64": "cortex-a57"}


def machine_matches(wanted: str | None, actual: str | None) -> bool:
    """Whether libvirt's expanded machine (pc-q35-7.2) is the one asked for (q35)."""
    if wanted is None or actual is None:
        return wanted == actual
    if wanted == actual or actual.startswith(wanted + "-"):
        return True
    if wanted == "pc" and actual.startswith("pc-i440fx-"):
        return True
    return actual.startswith(f"pc-{wanted}-")


def observed_spec(parsed: ParsedDomain, capacities: dict[str, int],
                  desired: Desired | None, seed_cloud: Any = None) -> dict[str, Any]:
    """The comparable spec of a domain, in the manifest's keys and units (pure).

    `seed_cloud` is what the attached seed ISO says (read by discovery); without it, the
    cloud_init recorded when decl made the seed."""
    record = parsed.record
    recorded_disks = record.get("disks", {}) if isinstance(record.get("disks"), dict) else {}
    disk_size: dict[str, int | None] = {}
    disk_source: dict[str, str] = {}
    for disk in parsed.disks:
        disk_size[disk.dev] = capacities.get(disk.dev)
        entry = recorded_disks.get(disk.dev) or {}
        if entry.get("path") == disk.path and entry.get("source"):
            disk_source[disk.dev] = str(entry["source"])
        else:
            disk_source[disk.dev] = f"file:{disk.path}"
    seed = record.get("seed")
    cdroms = [c for c in parsed.cdroms if not (seed and c.path == seed)]
    cdrom = None
    if cdroms:
        cdrom = cdroms[0].path
        recorded = record.get("cdrom") or {}
        if recorded.get("path") == cdrom:
            cdrom = recorded.get("given", cdrom)
    has_seed = bool(seed) and any(c.path == seed for c in parsed.cdroms)
    wanted_options = (desired.spec.get("options") or {}) if desired else {}
    machine = parsed.machine
    if machine_matches(wanted_options.get("machine"), machine):
        machine = wanted_options.get("machine")
    return {
        "cpus": parsed.cpus,
        "memory": parsed.memory,
        "arch": parsed.arch,
        "firmware": parsed.firmware,
        "disk_count": len(parsed.disks),
        "disk_size": disk_size,
        "disk_source": disk_source,
        "cdrom": cdrom,
        "network": {"mode": parsed.network_mode,
                    "bridge": parsed.network_source if parsed.network_mode == "bridge" else None},
        "cloud_init": (seed_cloud if seed_cloud is not None else record.get("cloud_init"))
        if has_seed else None,
        "options": {"domain_type": parsed.domain_type, "machine": machine,
                    "cpu_model": parsed.cpu_model},
    }


class LibvirtProvider(VmProvider[LibvirtOptions]):
    """Domains in libvirt: defined, started, changed and removed with virsh."""

    name = "libvirt"
    options_model = LibvirtOptions
    support = VmSupport(memory_multiple=1024)

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The disks POOL_DIR/NAME-vdX.qcow2 and the seed POOL_DIR/NAME-seed.iso decl makes
        in `options.pool_dir` and deletes with the domain (the image cache there is shared)."""
        pool = self.options_of(model).pool_dir
        field = option_field(model, "pool_dir")
        owned = [owned_in(pool, f"{name}-{dev}.qcow2", field=field or ("disks",),
                          what="disk file")
                 for dev in disk_names(len(getattr(model, "disks", None) or []))]
        if spec.get("cloud_init"):
            owned.append(owned_in(pool, f"{name}-seed.iso", field=field or ("cloud_init",),
                                  what="seed file"))
        return owned

    def __init__(self) -> None:
        self.facts = HostFacts()

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """UEFI only where libvirt has firmware descriptors (x86_64, aarch64)."""
        if model.firmware == "uefi" and model.arch not in (None, "x86_64", "aarch64"):
            return [ValidationProblem(context.at("firmware"),
                                      f"firmware: uefi is not supported for arch {model.arch}")]
        return []

    # -- check and discover ----------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """virsh is installed and libvirtd answers on the default URI."""
        if self.facts.which(conn, "virsh") is None:
            return Availability(False, None, f"virsh is not installed on host {conn.host} "
                                "(Debian: libvirt-clients)")
        version = Virsh(conn, DEFAULT_URI).version()
        if version is None:
            return Availability(False, None, f"libvirtd does not answer at {DEFAULT_URI} on "
                                f"host {conn.host}")
        return Availability(True, version)

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One batched listing (names, then state and disk sizes of every domain), then the
        XML of each domain, read in parallel."""
        found = Discovery()
        by_uri: dict[str, list[Desired]] = {}
        for desired in wanted:
            uri = self.options_of(desired.model).uri if desired.model is not None \
                else DEFAULT_URI
            by_uri.setdefault(uri, []).append(desired)
        by_uri.setdefault(DEFAULT_URI, [])  # orphans under the default URI too
        for uri, items in by_uri.items():
            self._discover_uri(conn, project, uri, items, found)
        return found

    def _discover_uri(self, conn: Connection, project: str, uri: str, wanted: list[Desired],
                      found: Discovery) -> None:
        virsh = Virsh(conn, uri)
        names = virsh.list_names()
        stats = virsh.domstats() if names else {}
        xmls = virsh.dumpxml_many(names) if names else {}
        by_name = {d.name: d for d in wanted}
        for name in names:
            xml = xmls.get(name)
            if xml is None:
                continue
            parsed = parse_domain(xml)
            desired = by_name.get(name)
            address = orphan_address(parsed.marks, project, desired)
            if address is None:
                continue
            state = state_from_stats(stats.get(name, {})) if name in stats else \
                (virsh.domstate(name) or "stopped")
            capacities = capacities_from_stats(stats.get(name, {}))
            seed = parsed.record.get("seed")
            seed_cloud = self._seed_content(conn, str(seed)) \
                if seed and any(c.path == seed for c in parsed.cdroms) else None
            found.observed.append(Observed(
                address=address, kind="vm", name=name, provider=self.name, host=conn.host,
                state=state, spec=observed_spec(parsed, capacities, desired, seed_cloud),
                marks=parsed.marks,
                handle={"uri": uri, "uuid": parsed.uuid, "record": parsed.record,
                        "accelerator": "kvm" if parsed.domain_type == "kvm" else "tcg",
                        "firmware": parsed.firmware,
                        "disks": {d.dev: d.path for d in parsed.disks}},
            ))
        networks: list[str] | None = None
        for desired in wanted:
            if desired.state == "absent":
                continue
            if desired.spec["network"]["mode"] == "nat" and networks is None:
                networks = virsh.active_networks()
            problem = self._problem(conn, desired, exists=desired.name in names,
                                    networks=networks or [])
            if problem:
                found.problems[desired.address] = problem

    @staticmethod
    def _seed_content(conn: Connection, path: str) -> Any:
        """The cloud_init the seed ISO at `path` carries, read from the file."""
        try:
            return cloudinit.read_seed(conn.read_file(path))
        except FileNotFoundError:
            return f"missing seed {path}"
        except (OSError, ValueError) as exc:
            return f"unreadable seed {path}: {exc}"
    # -- import -----------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """Domains without decl's metadata, under the default URI."""
        virsh = Virsh(conn, DEFAULT_URI)
        names = virsh.list_names()
        stats = virsh.domstats() if names else {}
        xmls = virsh.dumpxml_many(names) if names else {}
        found = []
        for name in names:
            xml = xmls.get(name)
            if xml is None:
                continue
            parsed = parse_domain(xml)
            if parsed.marks is not None:
                continue
            state = state_from_stats(stats.get(name, {})) if name in stats else \
                (virsh.domstate(name) or "stopped")
            found.append(Observed(
                address=f"vm.{name}", kind="vm", name=name, provider=self.name,
                host=conn.host, state=state,
                spec=observed_spec(parsed, capacities_from_stats(stats.get(name, {})), None),
                marks=None, handle={"uri": DEFAULT_URI, "network": parsed.network_source,
                                    "disks": {d.dev: d.path for d in parsed.disks}}))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """The domain as a manifest VM. Its disks were not made by decl: their sizes are
        given (they may grow) and `ignore_changes: [disk_source]` keeps decl from ever
        remaking them from an image."""
        spec = observed.spec
        entry: dict[str, Any] = {}
        if observed.state == "stopped":
            entry["state"] = "stopped"
        if spec.get("cpus"):
            entry["cpus"] = spec["cpus"]
        if spec.get("memory"):
            entry["memory"] = format_size(int(spec["memory"]))
        if spec.get("arch"):
            entry["arch"] = spec["arch"]
        if spec.get("firmware") == "uefi":
            entry["firmware"] = "uefi"
        sizes = spec.get("disk_size") or {}
        if sizes:
            entry["disks"] = [{"size": format_size(int(sizes[dev]))} if sizes[dev] else {}
                              for dev in sorted(sizes)]
        if spec.get("cdrom"):
            entry["cdrom"] = spec["cdrom"]
        network = spec.get("network") or {}
        entry["network"] = {"mode": network.get("mode", "none")}
        if network.get("bridge"):
            entry["network"]["bridge"] = network["bridge"]
        options = {k: v for k, v in (spec.get("options") or {}).items() if v is not None}
        if network.get("mode") == "nat" and observed.handle.get("network") not in (None,
                                                                                   "default"):
            options["network"] = observed.handle["network"]
        if options:
            entry["options"] = options
        if sizes:
            entry["lifecycle"] = {"ignore_changes": ["disk_source"]}
        return entry

    def _problem(self, conn: Connection, desired: Desired, exists: bool,
                 networks: list[str]) -> str | None:
        """A plan-time error of a wanted VM on its host, or None."""
        model = desired.model
        options = self.options_of(model)
        problem, arch = host_problem(conn, self.facts, model, "libvirt",
                                     "domain_type" if options.domain_type == "kvm" else None)
        if problem:
            return problem
        if model.network.mode == "nat" and options.network not in networks:
            return (f"libvirt network {options.network!r} is not active on host {conn.host} "
                    f"(virsh net-start {options.network})")
        if exists:
            return None
        return creation_problem(conn, model, arch, self.facts.uefi_firmware)

    # -- backend primitives ----------------------------------------------------------------

    def _virsh(self, op: Operation, options: LibvirtOptions) -> Virsh:
        if op.desired is None and op.observed is not None:
            return Virsh(op.conn, str(op.observed.handle.get("uri", DEFAULT_URI)))
        return Virsh(op.conn, options.uri)

    def _parsed(self, op: Operation, options: LibvirtOptions) -> tuple[str, ParsedDomain]:
        xml = self._virsh(op, options).dumpxml(op.name)
        if xml is None:
            raise ProviderError(f"{op.address}: domain {op.name!r} is gone")
        return xml, parse_domain(xml)

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the domain's <metadata>."""
        xml = self._virsh(op, self.options_for(op)).dumpxml(op.name)
        return parse_domain(xml).marks if xml is not None else None

    def power_state(self, op: Operation) -> str | None:
        """virsh domstate, in decl's words."""
        return self._virsh(op, self.options_for(op)).domstate(op.name)

    def power_on(self, op: Operation, options: LibvirtOptions) -> None:
        """virsh start (resume when paused)."""
        self._virsh(op, options).start(op.name)

    def soft_stop(self, op: Operation, options: LibvirtOptions) -> bool:
        """virsh shutdown (ACPI)."""
        return self._virsh(op, options).run("shutdown", op.name).ok

    def hard_stop(self, op: Operation, options: LibvirtOptions) -> None:
        """virsh destroy."""
        self._virsh(op, options).destroy(op.name)

    def grow_disk(self, op: Operation, options: LibvirtOptions, dev: str, size: int,
                  running: bool) -> None:
        """virsh blockresize while running, qemu-img resize while stopped."""
        if running:
            self._virsh(op, options).blockresize(op.name, dev, size)
            return
        paths = (op.observed.handle.get("disks") or {}) if op.observed is not None else {}
        if not paths.get(dev):
            raise ProviderError(f"{op.address}: disk {dev} has no file to grow")
        images.resize_disk(op.conn, str(paths[dev]), size)

    def _placement(self, conn: Connection, desired: Desired,
                   options: LibvirtOptions) -> tuple[str, str, str, str | None]:
        """(arch, domain type, machine, cpu model) for a new domain."""
        host_arch = self.facts.arch(conn)
        arch = desired.model.arch or host_arch
        domain_type = options.domain_type or (
            "kvm" if arch == host_arch and self.facts.kvm_usable(conn) else "qemu")
        machine = options.machine or DEFAULT_MACHINE.get(arch, "virt")
        cpu_model = options.cpu_model
        if cpu_model is None and domain_type == "qemu" and arch != host_arch:
            cpu_model = LIBVIRT_TCG_CPU.get(arch)
        return arch, domain_type, machine, cpu_model

    def define(self, op: Operation, options: LibvirtOptions) -> None:
        """Make the disks and the seed in the pool directory, then define the domain."""
        conn, desired = op.conn, op.need_desired()
        model = desired.model
        name = desired.name
        virsh = self._virsh(op, options)
        if virsh.dumpxml(name) is not None:
            raise ProviderError(f"{desired.address}: a domain named {name!r} already exists")
        arch, domain_type, machine, cpu_model = self._placement(conn, desired, options)
        pool = conn.expand_user(options.pool_dir).rstrip("/") or "/"
        conn.makedirs(pool)
        made: list[str] = []
        try:
            record: dict[str, Any] = {"disks": {}, "seed": None, "cloud_init": None,
                                      "cdrom": None}
            disks = []
            for dev, path, disk in make_disks(conn, model, lambda d: f"{pool}/{name}-{d}.qcow2",
                                              f"{pool}/decl-images", options.disk_mode, made,
                                              op.progress):
                record["disks"][dev] = {"path": path, "source": disk_source_id(disk),
                                        "made": True}
                disks.append(DiskDevice(dev=dev, path=path))
            cdroms = self._cdroms(op, pool, arch, record, made)
            params = self._params(op, arch, domain_type, machine, cpu_model, options, record)
            params.disks = disks
            params.cdroms = cdroms
            op.progress(f"defining domain {name}", None)
            virsh.define(render_domain(params))
        except BaseException:
            for path in made:
                conn.remove(path)
            raise

    def _cdroms(self, op: Operation, pool: str, arch: str, record: dict[str, Any],
                made: list[str]) -> list[DiskDevice]:
        """The cdrom and cloud-init seed devices, making the seed ISO when asked for."""
        conn, desired = op.conn, op.need_desired()
        model = desired.model
        bus = "sata" if arch in ("x86_64", "i686") else "scsi"
        cdroms: list[DiskDevice] = []
        if model.cdrom:
            path = conn.expand_user(model.cdrom)
            record["cdrom"] = {"given": model.cdrom, "path": path}
            cdroms.append(DiskDevice(dev="sda", path=path, device="cdrom", bus=bus,
                                     format="raw"))
        if model.cloud_init is not None:
            seed = record.get("seed") or f"{pool}/{desired.name}-seed.iso"
            cloud = model.cloud_init.model_dump(mode="json")
            existed = conn.exists(seed)
            if not (existed and record.get("cloud_init") == cloud
                    and "cloud_init" not in op.changed_fields()):
                self.make_seed(op, seed)
                if not existed:
                    made.append(seed)
            record["seed"] = seed
            record["cloud_init"] = cloud
            cdroms.append(DiskDevice(dev="sdb", path=seed, device="cdrom", bus=bus,
                                     format="raw"))
        else:
            record["cloud_init"] = None
        return cdroms

    def _params(self, op: Operation, arch: str, domain_type: str, machine: str | None,
                cpu_model: str | None, options: LibvirtOptions,
                record: dict[str, Any]) -> DomainParams:
        desired = op.need_desired()
        model = desired.model
        network = model.network
        source = options.network if network.mode == "nat" else network.bridge
        return DomainParams(
            name=desired.name, domain_type=domain_type, arch=arch, machine=machine,
            cpu_model=cpu_model, memory=model.memory, cpus=model.cpus,
            firmware=model.firmware, network_mode=network.mode, network_source=source,
            marks=op.marks(), record=record,
        )

    def modify(self, op: Operation, options: LibvirtOptions, fields: set[str]) -> None:
        """Redefine the domain from its current XML with the manifest's values and marks
        (a running domain takes the new definition at its next start)."""
        conn, desired = op.conn, op.need_desired()
        xml, parsed = self._parsed(op, options)
        record = dict(parsed.record)
        if not record.get("disks"):
            record["disks"] = {d.dev: {"path": d.path, "source": f"file:{d.path}",
                                       "made": False} for d in parsed.disks}
        pool = conn.expand_user(options.pool_dir).rstrip("/") or "/"
        arch = parsed.arch or self.facts.arch(conn)
        cdroms = self._cdroms(op, pool, arch, record, [])
        wanted_options = desired.spec.get("options") or {}
        machine = parsed.machine
        if wanted_options.get("machine") and not machine_matches(wanted_options["machine"],
                                                                   machine):
            machine = wanted_options["machine"]
        params = self._params(op, arch, wanted_options.get("domain_type") or parsed.domain_type,
                              machine, wanted_options.get("cpu_model"), options, record)
        params.cdroms = cdroms
        op.progress(f"updating the definition of {desired.name}", None)
        self._virsh(op, options).define(render_domain(params, base_xml=xml))

    def remove(self, op: Operation, options: LibvirtOptions) -> None:
        """Undefine the domain and remove the files decl made for it (and nothing else)."""
        conn = op.conn
        virsh = self._virsh(op, options)
        xml = virsh.dumpxml(op.name)
        if xml is None:
            return
        parsed = parse_domain(xml)
        op.progress(f"undefining {op.name}", None)
        virsh.undefine(op.name, nvram=parsed.firmware == "uefi")
        record = parsed.record
        for entry in (record.get("disks") or {}).values():
            if entry.get("made") and entry.get("path"):
                op.progress(f"removing {entry['path']}", None)
                conn.remove(str(entry["path"]))
        if record.get("seed"):
            conn.remove(str(record["seed"]))
