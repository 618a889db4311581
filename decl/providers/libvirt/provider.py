"""VMs on KVM (or QEMU emulation) through libvirt, driven with virsh over a Connection."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.errors import DeclError, ProviderError
from decl.providers import cloudinit, images
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.libvirt.domain_xml import (
    DiskDevice,
    DomainParams,
    ParsedDomain,
    parse_domain,
    render_domain,
)
from decl.providers.libvirt.options import LibvirtOptions
from decl.providers.libvirt.virsh import Virsh, capacities_from_stats, state_from_stats
from decl.providers.vmspec import (
    DEFAULT_MACHINE,
    HostFacts,
    creation_problem,
    disk_source_id,
    host_problem,
    make_disks,
    options_error,
    vm_spec,
    vm_traits,
)

DEFAULT_URI = "qemu:///system"
# CPU models used under emulation when options name none (libvirt's own default for
# aarch64 is a 32-bit core).
LIBVIRT_TCG_CPU = {"aarch64": "cortex-a57"}


def parse_options(address: str, raw: dict[str, Any]) -> LibvirtOptions:
    """A VM's `options`, checked; DeclError naming the bad option."""
    try:
        return LibvirtOptions(**raw)
    except ValidationError as exc:
        raise DeclError(options_error(address, exc)) from None


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
                  desired: Desired | None) -> dict[str, Any]:
    """The comparable spec of a domain, in the manifest's keys and units (pure)."""
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
        "cloud_init": record.get("cloud_init") if has_seed else None,
        "options": {"domain_type": parsed.domain_type, "machine": machine,
                    "cpu_model": parsed.cpu_model},
    }


class LibvirtProvider(Provider):
    """Domains in libvirt: defined, started, changed and removed with virsh."""

    name = "libvirt"
    kinds = ("vm",)
    traits = {"vm": vm_traits()}

    def __init__(self) -> None:
        self.facts = HostFacts()

    # -- desired ------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec; `options` are checked here so a typo fails at plan time."""
        options = parse_options(f"vm.{name}", model.options)
        return vm_spec(model, options.comparable())

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
            uri = parse_options(desired.address, desired.model.options).uri \
                if desired.model is not None else DEFAULT_URI
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
            ours = parsed.marks is not None and parsed.marks.project == project
            if desired is None and not ours:
                continue
            address = desired.address if desired else parsed.marks.address  # type: ignore[union-attr]
            state = state_from_stats(stats.get(name, {})) if name in stats else \
                (virsh.domstate(name) or "stopped")
            capacities = capacities_from_stats(stats.get(name, {}))
            found.observed.append(Observed(
                address=address, kind="vm", name=name, provider=self.name, host=conn.host,
                state=state, spec=observed_spec(parsed, capacities, desired),
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

    def _problem(self, conn: Connection, desired: Desired, exists: bool,
                 networks: list[str]) -> str | None:
        """A plan-time error for a wanted VM, or None."""
        model = desired.model
        options = parse_options(desired.address, model.options)
        problem, arch = host_problem(conn, self.facts, model, "libvirt",
                                     "domain_type" if options.domain_type == "kvm" else None)
        if problem:
            return problem
        if model.network.mode == "nat" and options.network not in networks:
            return (f"libvirt network {options.network!r} is not active on host {conn.host} "
                    f"(virsh net-start {options.network})")
        if model.memory % 1024:
            return "memory must be a whole number of KiB"
        if exists:
            return None
        if model.firmware == "uefi" and arch not in ("x86_64", "aarch64"):
            return f"firmware: uefi is not supported for arch {arch}"
        return creation_problem(conn, model, arch, self.facts.uefi_firmware)

    # -- apply ----------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """Create, update (with a restart when needed), replace, delete, start, stop, adopt."""
        action = change.action
        if action is Action.DELETE:
            if observed is not None:
                self._delete(conn, observed, progress)
            return
        if desired is None:
            raise ProviderError(f"{change.address}: nothing in the manifest to {action.value}")
        options = parse_options(desired.address, desired.model.options)
        virsh = Virsh(conn, options.uri)
        if action is Action.REPLACE:
            if observed is not None:
                self._delete(conn, observed, progress)
            self._create(conn, virsh, change, desired, options, progress)
        elif action is Action.CREATE:
            self._create(conn, virsh, change, desired, options, progress)
        elif action in (Action.UPDATE, Action.UPDATE_RESTART, Action.ADOPT):
            if observed is None:
                raise ProviderError(f"{change.address}: the domain to change is gone")
            self._update(conn, virsh, change, desired, observed, options, progress)
        elif action is Action.START:
            progress(f"starting {desired.name}", None)
            virsh.start(desired.name)
        elif action is Action.STOP:
            progress(f"stopping {desired.name}", None)
            virsh.stop(desired.name, options.shutdown_timeout)
        else:
            raise ProviderError(f"{change.address}: action {action.value} is not supported")

    def _converge_state(self, virsh: Virsh, name: str, target: str | None,
                        options: LibvirtOptions, progress: Progress) -> None:
        if target == "running":
            progress(f"starting {name}", None)
            virsh.start(name)
        elif target == "stopped":
            progress(f"stopping {name}", None)
            virsh.stop(name, options.shutdown_timeout)

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

    def _create(self, conn: Connection, virsh: Virsh, change: Change, desired: Desired,
                options: LibvirtOptions, progress: Progress) -> None:
        model = desired.model
        name = desired.name
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
                                              progress):
                record["disks"][dev] = {"path": path, "source": disk_source_id(disk),
                                        "made": True}
                disks.append(DiskDevice(dev=dev, path=path))
            cdroms = self._cdroms(conn, desired, pool, arch, record, made, progress)
            params = self._params(desired, change.project, arch, domain_type, machine,
                                  cpu_model, options, record)
            params.disks = disks
            params.cdroms = cdroms
            progress(f"defining domain {name}", None)
            virsh.define(render_domain(params))
        except BaseException:
            for path in made:
                conn.remove(path)
            raise
        self._converge_state(virsh, name, change.target_state, options, progress)

    def _cdroms(self, conn: Connection, desired: Desired, pool: str, arch: str,
                record: dict[str, Any], made: list[str], progress: Progress) -> list[DiskDevice]:
        """The cdrom and cloud-init seed devices, making the seed ISO when asked for."""
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
            if not (existed and record.get("cloud_init") == cloud):
                progress(f"making cloud-init seed {seed}", None)
                cloudinit.make_seed_iso(conn, seed, cloud, desired.name)
                if not existed:
                    made.append(seed)
            record["seed"] = seed
            record["cloud_init"] = cloud
            cdroms.append(DiskDevice(dev="sdb", path=seed, device="cdrom", bus=bus,
                                     format="raw"))
        else:
            record["cloud_init"] = None
        return cdroms

    def _params(self, desired: Desired, project: str, arch: str, domain_type: str,
                machine: str | None, cpu_model: str | None, options: LibvirtOptions,
                record: dict[str, Any]) -> DomainParams:
        model = desired.model
        network = model.network
        source = options.network if network.mode == "nat" else network.bridge
        return DomainParams(
            name=desired.name, domain_type=domain_type, arch=arch, machine=machine,
            cpu_model=cpu_model, memory=model.memory, cpus=model.cpus,
            firmware=model.firmware, network_mode=network.mode, network_source=source,
            marks=Marks(project=project, address=desired.address,
                        spec_hash=desired.spec_hash),
            record=record,
        )

    def _update(self, conn: Connection, virsh: Virsh, change: Change, desired: Desired,
                observed: Observed, options: LibvirtOptions, progress: Progress) -> None:
        name = desired.name
        xml = virsh.dumpxml(name)
        if xml is None:
            raise ProviderError(f"{desired.address}: domain {name!r} is gone")
        parsed = parse_domain(xml)
        record = dict(parsed.record)
        if not record.get("disks"):
            record["disks"] = {d.dev: {"path": d.path, "source": f"file:{d.path}",
                                       "made": False} for d in parsed.disks}
        running = virsh.domstate(name) == "running"
        self._grow_disks(conn, virsh, desired, parsed, observed, running, progress)
        pool = conn.expand_user(options.pool_dir).rstrip("/") or "/"
        made: list[str] = []
        cdroms = self._cdroms(conn, desired, pool, parsed.arch or self.facts.arch(conn),
                              record, made, progress)
        wanted_options = desired.spec.get("options") or {}
        machine = parsed.machine
        if wanted_options.get("machine") and not machine_matches(wanted_options["machine"],
                                                                   machine):
            machine = wanted_options["machine"]
        params = self._params(
            desired, change.project, parsed.arch or self.facts.arch(conn),
            wanted_options.get("domain_type") or parsed.domain_type, machine,
            wanted_options.get("cpu_model"), options, record)
        params.cdroms = cdroms
        progress(f"updating the definition of {name}", None)
        virsh.define(render_domain(params, base_xml=xml))
        if change.action is Action.UPDATE_RESTART and running:
            progress(f"restarting {name} (shutdown, then start)", None)
            virsh.stop(name, options.shutdown_timeout)
            virsh.start(name)
        self._converge_state(virsh, name, change.target_state, options, progress)

    def _grow_disks(self, conn: Connection, virsh: Virsh, desired: Desired,
                    parsed: ParsedDomain, observed: Observed, running: bool,
                    progress: Progress) -> None:
        wanted = desired.spec.get("disk_size") or {}
        have = observed.spec.get("disk_size") or {}
        paths = {d.dev: d.path for d in parsed.disks}
        for dev, size in wanted.items():
            current = have.get(dev)
            if size is None or current is None or size == current:
                continue
            if size < current:
                raise ProviderError(f"{desired.address}: disk {dev} cannot shrink")
            progress(f"growing disk {dev} to {size} bytes", None)
            if running:
                virsh.blockresize(desired.name, dev, size)
            elif paths.get(dev):
                images.resize_disk(conn, str(paths[dev]), size)

    def _delete(self, conn: Connection, observed: Observed, progress: Progress) -> None:
        """Remove the domain and the files decl made for it (and nothing else)."""
        virsh = Virsh(conn, observed.handle.get("uri", DEFAULT_URI))
        name = observed.name
        xml = virsh.dumpxml(name)
        if xml is None:
            return
        parsed = parse_domain(xml)
        if parsed.marks is None or observed.marks is None or \
                parsed.marks.project != observed.marks.project:
            raise ProviderError(f"{observed.address}: domain {name!r} carries no mark of "
                                "this project: decl will not delete it")
        progress(f"stopping {name}", None)
        virsh.destroy(name)
        progress(f"undefining {name}", None)
        virsh.undefine(name, nvram=parsed.firmware == "uefi")
        record = parsed.record
        for entry in (record.get("disks") or {}).values():
            if entry.get("made") and entry.get("path"):
                progress(f"removing {entry['path']}", None)
                conn.remove(str(entry["path"]))
        if record.get("seed"):
            conn.remove(str(record["seed"]))
