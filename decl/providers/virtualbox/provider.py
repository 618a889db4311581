"""VirtualBox VMs through VBoxManage: marks in extradata, settings changed while powered off.

The lifecycle hooks (create, update, restart_update, adopt, delete, start, stop) each take
one change; `apply` only dispatches, so they map one to one onto the VM base's hooks.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Observed
from decl.core.traits import Policy
from decl.errors import DeclError, ProviderError
from decl.providers import cloudinit
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.desktop_host import HostSystems
from decl.providers.virtualbox import locate, machine
from decl.providers.virtualbox.driver import (
    KEY_ADDRESS,
    KEY_PROJECT,
    KEY_SPEC_HASH,
    VBoxManage,
)
from decl.providers.virtualbox.options import VirtualBoxOptions
from decl.providers.vmspec import disk_names, disk_source_id, options_error, vm_spec, vm_traits

# Disks cannot grow while the VM runs (VirtualBox locks them for writing).
TRAITS = dataclasses.replace(vm_traits(), policies={**vm_traits().policies,
                                                    "disk_size": Policy.RESTART})
# Per-VM reads of a discovery run this many VBoxManage processes at once.
READ_PARALLELISM = 4


def parse_options(address: str, raw: dict[str, Any]) -> VirtualBoxOptions:
    """A VM's `options`, checked; DeclError naming the bad option."""
    try:
        return VirtualBoxOptions(**raw)
    except ValidationError as exc:
        raise DeclError(options_error(address, exc)) from None


def parent(path: str) -> str:
    """The folder of a path written with either separator."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut] if cut > 0 else path


def separator(folder: str) -> str:
    """The separator a host's path uses."""
    return "\\" if "\\" in folder and "/" not in folder else "/"


class VirtualBoxProvider(Provider):
    """VirtualBox VMs, created and changed with VBoxManage."""

    name = "virtualbox"
    kinds = ("vm",)
    traits = {"vm": TRAITS}
    # VirtualBox takes one session lock per VM; VBoxSVC serialises much of the rest.
    parallel_limit = 4

    def __init__(self) -> None:
        self.hosts = HostSystems()

    # -- desired ----------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec; `options` are checked here so a typo fails at plan time."""
        options = parse_options(f"vm.{name}", model.options)
        return vm_spec(model, options.comparable())

    # -- tool ---------------------------------------------------------------------------------

    def _tool(self, conn: Connection) -> VBoxManage:
        system = self.hosts.system(conn)
        path = self.hosts.tool(conn, locate.program_name(system), locate.install_locations)
        if path is None:
            raise ProviderError(f"VBoxManage is not installed on host {conn.host} (looked on "
                                "PATH and in VirtualBox's install folder)")
        return VBoxManage(conn, path)

    def check(self, conn: Connection) -> Availability:
        """VBoxManage is there and answers --version."""
        try:
            tool = self._tool(conn)
            return Availability(True, tool.version(), f"VBoxManage {tool.program}")
        except ProviderError as exc:
            return Availability(False, None, str(exc))

    # -- discover -----------------------------------------------------------------------------

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """`list vms`, then each VM's extradata; `showvminfo` only for the VMs the manifest
        names or this project marked; one `list hdds` for every disk size."""
        tool = self._tool(conn)
        found = Discovery()
        vms = tool.list_vms()
        by_name = {d.name: d for d in wanted}
        with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
            extras = list(pool.map(lambda vm: tool.extradata(vm[1]), vms))
            relevant = []
            for (name, uuid), extra in zip(vms, extras, strict=True):
                if extra is None:
                    continue  # deleted meanwhile
                marks = machine.marks_of(extra)
                desired = by_name.get(name)
                if desired is None and not (marks and marks.project == project):
                    continue
                relevant.append((name, uuid, extra, marks, desired))
            infos = list(pool.map(lambda item: tool.info(item[1]), relevant))
        capacities = {m.uuid: m.capacity for m in tool.list_hdds()} if relevant else {}
        for (name, uuid, extra, marks, desired), info in zip(relevant, infos, strict=True):
            if info is None:
                continue
            address = desired.address if desired else marks.address  # type: ignore[union-attr]
            found.observed.append(Observed(
                address=address, kind="vm", name=name, provider=self.name, host=conn.host,
                state=machine.output.run_state(str(info.get("VMState", ""))),
                spec=machine.observed_spec(info, extra, capacities), marks=marks,
                handle={"uuid": uuid, "vmstate": info.get("VMState"),
                        "disks": machine.disk_paths(info, set(capacities)),
                        "cfgfile": info.get("CfgFile"), "record": machine.record_of(extra)}))
        existing = {name for name, _ in vms}
        for desired in wanted:
            if desired.state != "absent":
                problem = self._problem(conn, desired, exists=desired.name in existing)
                if problem:
                    found.problems[desired.address] = problem
        return found

    def _problem(self, conn: Connection, desired: Desired, exists: bool) -> str | None:
        """A plan-time error for a wanted VM, or None."""
        model = desired.model
        if model.memory % machine.MIB:
            return "memory must be a whole number of MiB for VirtualBox"
        for index, disk in enumerate(model.disks):
            if disk.image:
                return (f"disks[{index}].image: the virtualbox provider makes empty disks only "
                        "(install from `cdrom`, or convert the image to a VDI yourself)")
            if disk.size % machine.MIB:
                return f"disks[{index}].size must be a whole number of MiB for VirtualBox"
        if model.arch and model.arch not in ("x86_64", "aarch64"):
            return f"arch {model.arch} is not supported by VirtualBox"
        if model.cdrom and not conn.exists(conn.expand_user(model.cdrom)):
            return f"cdrom {model.cdrom} does not exist on host {conn.host}"
        if not exists and model.cloud_init is not None and cloudinit.iso_tool(conn) is None:
            return f"cloud_init needs genisoimage, mkisofs or xorriso on host {conn.host}"
        return None

    # -- apply --------------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """Dispatch one change to its hook."""
        action = change.action
        if action is Action.DELETE:
            if observed is not None:
                self.delete(change, observed, conn, progress)
            return
        if desired is None:
            raise ProviderError(f"{change.address}: nothing in the manifest to {action.value}")
        if action is Action.REPLACE:
            if observed is not None:
                self.delete(change, observed, conn, progress)
            self.create(change, desired, conn, progress)
        elif action is Action.CREATE:
            self.create(change, desired, conn, progress)
        elif action in (Action.UPDATE, Action.UPDATE_RESTART, Action.ADOPT):
            if observed is None:
                raise ProviderError(f"{change.address}: the VM to change is gone")
            self.update(change, desired, observed, conn, progress)
        elif action is Action.START:
            self.start(desired, conn, progress)
        elif action is Action.STOP:
            self.stop(desired, conn, progress)
        else:
            raise ProviderError(f"{change.address}: action {action.value} is not supported")

    def start(self, desired: Desired, conn: Connection, progress: Progress) -> None:
        """Start the VM the way options.graphics says."""
        options = parse_options(desired.address, desired.model.options)
        progress(f"starting {desired.name}", None)
        self._tool(conn).start(desired.name, options.graphics)

    def stop(self, desired: Desired, conn: Connection, progress: Progress) -> None:
        """ACPI shutdown, then a hard power-off after options.shutdown_timeout."""
        options = parse_options(desired.address, desired.model.options)
        progress(f"shutting down {desired.name} (power-off after "
                 f"{options.shutdown_timeout:g} s)", None)
        self._tool(conn).shutdown(desired.name, options.shutdown_timeout)

    def _converge_state(self, change: Change, desired: Desired, conn: Connection,
                        progress: Progress, running: bool) -> None:
        if change.target_state == "running" and not running:
            self.start(desired, conn, progress)
        elif change.target_state == "stopped" and running:
            self.stop(desired, conn, progress)

    def create(self, change: Change, desired: Desired, conn: Connection,
               progress: Progress) -> None:
        """createvm, marks first (so a half-made VM is ours and the next plan finishes it),
        settings, disks, cdrom and seed, the record, then the spec hash last."""
        tool = self._tool(conn)
        model = desired.model
        options = parse_options(desired.address, model.options)
        if any(name == desired.name for name, _ in tool.list_vms()):
            raise ProviderError(f"{desired.address}: a VM named {desired.name!r} already exists")
        base = conn.expand_user(options.vm_dir) if options.vm_dir else \
            locate.default_machine_folder(self.hosts.system(conn), conn.expand_user("~"))
        progress(f"creating VM {desired.name}", None)
        uuid = tool.create(desired.name, base, options.ostype)
        tool.set_extradata(uuid, {KEY_PROJECT: change.project, KEY_ADDRESS: desired.address})
        folder = parent(str((tool.info(uuid) or {}).get("CfgFile", "")))
        tool.modify(uuid, machine.settings(desired.spec, options.nic_type))
        tool.add_sata(uuid, machine.CONTROLLER)
        record: dict[str, Any] = {"disks": {}, "seed": None, "cloud_init": None, "cdrom": None}
        sep = separator(folder)
        for port, (dev, disk) in enumerate(zip(disk_names(len(model.disks)), model.disks,
                                               strict=True)):
            path = f"{folder}{sep}{desired.name}-{dev}.vdi"
            progress(f"making disk {dev} ({path})", None)
            tool.create_disk(path, machine.size_mib(disk.size))
            record["disks"][dev] = {"path": path, "source": disk_source_id(disk), "made": True}
            tool.set_record(uuid, record)
            tool.attach(uuid, machine.CONTROLLER, port, "hdd", path)
        self._media(tool, conn, uuid, desired, folder, sep, record, len(model.disks), progress)
        tool.set_record(uuid, record)
        tool.set_extradata(uuid, {KEY_SPEC_HASH: desired.spec_hash})
        self._converge_state(change, desired, conn, progress, running=False)

    def _media(self, tool: VBoxManage, conn: Connection, vm: str, desired: Desired,
               folder: str, sep: str, record: dict[str, Any], first_port: int,
               progress: Progress) -> None:
        """Attach the cdrom and the cloud-init seed on the ports after the disks."""
        model = desired.model
        port = first_port
        if model.cdrom:
            path = conn.expand_user(model.cdrom)
            tool.attach(vm, machine.CONTROLLER, port, "dvddrive", path)
            record["cdrom"] = {"given": model.cdrom, "path": path, "port": port}
            port += 1
        if model.cloud_init is not None:
            seed = record.get("seed") or f"{folder}{sep}{desired.name}-seed.iso"
            cloud = model.cloud_init.model_dump(mode="json")
            progress(f"making cloud-init seed {seed}", None)
            cloudinit.make_seed_iso(conn, seed, cloud, desired.name)
            record["seed"], record["cloud_init"] = seed, cloud
            tool.set_record(vm, record)
            tool.attach(vm, machine.CONTROLLER, port, "dvddrive", seed)

    def update(self, change: Change, desired: Desired, observed: Observed, conn: Connection,
               progress: Progress) -> None:
        """Settings, grown disks, cdrom and seed, marks; the VM is powered off for it when
        it runs (a graceful stop first) and started again after."""
        tool = self._tool(conn)
        uuid = str(observed.handle["uuid"])
        info = tool.info(uuid)
        if info is None:
            raise ProviderError(f"{desired.address}: VM {desired.name!r} is gone")
        vmstate = str(info.get("VMState", ""))
        if vmstate == "saved":
            raise ProviderError(f"{desired.address}: VM {desired.name!r} is saved (suspended): "
                                "VirtualBox refuses to change it; start it, or discard its "
                                "saved state (VBoxManage discardstate), then apply again")
        options = parse_options(desired.address, desired.model.options)
        changed = bool(change.fields) or change.action is Action.UPDATE_RESTART
        running = machine.output.run_state(vmstate) == "running"
        was_running = running
        if running and changed:
            progress(f"restarting {desired.name}: shutting down (power-off after "
                     f"{options.shutdown_timeout:g} s)", None)
            tool.shutdown(uuid, options.shutdown_timeout)
            running = False
        if changed:
            tool.modify(uuid, machine.settings(desired.spec, options.nic_type))
            self._grow(tool, desired, observed, progress)
            self._rewire_media(tool, conn, uuid, desired, observed, info, progress)
        if change.action is Action.ADOPT:
            self._record_adopted_disks(tool, uuid, desired, observed)
        tool.set_extradata(uuid, {KEY_PROJECT: change.project, KEY_ADDRESS: desired.address,
                                  KEY_SPEC_HASH: desired.spec_hash})
        if was_running and not running and change.target_state != "stopped":
            self.start(desired, conn, progress)
            running = True
        self._converge_state(change, desired, conn, progress, running)

    def restart_update(self, change: Change, desired: Desired, observed: Observed,
                       conn: Connection, progress: Progress) -> None:
        """The same as update: VirtualBox changes settings only while powered off."""
        self.update(change, desired, observed, conn, progress)

    def adopt(self, change: Change, desired: Desired, observed: Observed, conn: Connection,
              progress: Progress) -> None:
        """Put this project's marks on an existing VM (and bring it to the manifest)."""
        self.update(change, desired, observed, conn, progress)

    def _record_adopted_disks(self, tool: VBoxManage, uuid: str, desired: Desired,
                              observed: Observed) -> None:
        """An adopted VM's disks are taken as they are: recorded with the manifest's
        source, and as not made by decl (destroy will not delete them)."""
        record = dict(observed.handle.get("record") or {})
        disks = dict(record.get("disks") or {})
        wanted = desired.spec.get("disk_source") or {}
        for dev, path in (observed.handle.get("disks") or {}).items():
            if dev in wanted and dev not in disks:
                disks[dev] = {"path": path, "source": wanted[dev], "made": False}
        record["disks"] = disks
        tool.set_record(uuid, record)

    def _grow(self, tool: VBoxManage, desired: Desired, observed: Observed,
              progress: Progress) -> None:
        wanted = desired.spec.get("disk_size") or {}
        have = observed.spec.get("disk_size") or {}
        paths = observed.handle.get("disks") or {}
        for dev, size in wanted.items():
            current = have.get(dev)
            if size is None or current is None or size == current:
                continue
            if size < current:
                raise ProviderError(f"{desired.address}: disk {dev} cannot shrink")
            if paths.get(dev):
                progress(f"growing disk {dev} to {machine.size_mib(size)} MiB", None)
                tool.resize(str(paths[dev]), machine.size_mib(size))

    def _rewire_media(self, tool: VBoxManage, conn: Connection, uuid: str, desired: Desired,
                      observed: Observed, info: dict[str, str | int],
                      progress: Progress) -> None:
        """Bring the cdrom and the seed to the manifest (a field left unset is left alone)."""
        want_cdrom = desired.spec.get("cdrom")
        want_cloud = desired.spec.get("cloud_init")
        cdrom_changes = want_cdrom is not None and want_cdrom != observed.spec.get("cdrom")
        cloud_changes = want_cloud is not None and want_cloud != observed.spec.get("cloud_init")
        if not (cdrom_changes or cloud_changes):
            return
        record = dict(observed.handle.get("record") or {})
        controllers = {str(v) for k, v in info.items()
                       if k.startswith("storagecontrollername")}
        if machine.CONTROLLER not in controllers:
            tool.add_sata(uuid, machine.CONTROLLER)
        disks = set((observed.handle.get("disks") or {}).values())
        seed = record.get("seed")
        slots = {port: path for port, (path, _) in
                 machine.output.disk_slots(info, machine.CONTROLLER).items()}
        if cdrom_changes:
            for port, path in list(slots.items()):
                if path not in disks and path != seed:
                    tool.attach(uuid, machine.CONTROLLER, port, "dvddrive", "none")
                    del slots[port]
            path = conn.expand_user(str(want_cdrom))
            port = min(set(range(len(slots) + 1)) - set(slots))
            tool.attach(uuid, machine.CONTROLLER, port, "dvddrive", path)
            slots[port] = path
            record["cdrom"] = {"given": want_cdrom, "path": path, "port": port}
        if cloud_changes:
            folder = parent(seed or str(info.get("CfgFile", "")))
            seed = seed or f"{folder}{separator(folder)}{desired.name}-seed.iso"
            progress(f"making cloud-init seed {seed}", None)
            cloudinit.make_seed_iso(conn, seed, want_cloud, desired.name)
            record["seed"], record["cloud_init"] = seed, want_cloud
            tool.set_record(uuid, record)
            if seed not in slots.values():
                port = min(set(range(len(slots) + 1)) - set(slots))
                tool.attach(uuid, machine.CONTROLLER, port, "dvddrive", seed)
        tool.set_record(uuid, record)

    def delete(self, change: Change, observed: Observed, conn: Connection,
               progress: Progress) -> None:
        """Power off and unregister the VM, deleting only the disks decl made (others are
        detached first) and its seed."""
        tool = self._tool(conn)
        uuid = str(observed.handle["uuid"])
        extra = tool.extradata(uuid)
        if extra is None:
            return
        marks = machine.marks_of(extra)
        if marks is None or observed.marks is None or marks.project != observed.marks.project:
            raise ProviderError(f"{observed.address}: VM {observed.name!r} carries no mark of "
                                "this project: decl will not delete it")
        info = tool.info(uuid) or {}
        if machine.output.run_state(str(info.get("VMState", ""))) == "running":
            progress(f"powering off {observed.name}", None)
            tool.power_off(uuid)
        record = machine.record_of(extra)
        made = {str(e.get("path")) for e in (record.get("disks") or {}).values()
                if e.get("made")}
        index = 0
        while f"storagecontrollername{index}" in info:
            controller = str(info[f"storagecontrollername{index}"])
            for port, (path, _) in machine.output.disk_slots(info, controller).items():
                if path not in made:
                    tool.attach(uuid, controller, port, "hdd", "none")
            index += 1
        progress(f"deleting VM {observed.name}", None)
        tool.unregister_delete(uuid)
        for path in sorted(made):
            if conn.exists(path):  # made, but never attached (an apply that failed)
                tool.close_delete(path)
        if record.get("seed"):
            conn.remove(str(record["seed"]))
