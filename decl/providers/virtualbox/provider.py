"""VirtualBox VMs through VBoxManage, on the VM base: marks in extradata, settings changed
while powered off (VirtualBox refuses otherwise), disks that grow while powered off."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from decl.connections.base import Connection
from decl.core.plan import Action
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import Policy
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
from decl.providers.desktop_host import HostSystems
from decl.providers.virtualbox import locate, machine, output
from decl.providers.virtualbox.driver import (
    KEY_ADDRESS,
    KEY_PROJECT,
    KEY_SPEC_HASH,
    VBoxManage,
    VBoxManageError,
)
from decl.providers.virtualbox.options import VirtualBoxOptions
from decl.providers.vmbase import VmProvider, VmSupport, owned_in
from decl.providers.vmspec import disk_names, disk_source_id, vm_traits

# Disks cannot grow while the VM runs (VirtualBox locks them for writing). `createvm` makes
# the VM and a later `setextradata` marks it: a VM can exist unmarked (half_made).
TRAITS = dataclasses.replace(vm_traits(half_made=True), policies={**vm_traits().policies,
                                                    "disk_size": Policy.RESTART})
# Per-VM reads of a discovery run this many VBoxManage processes at once.
READ_PARALLELISM = 4
# Fields that modifyvm changes.
SETTINGS_FIELDS = frozenset({"cpus", "memory", "firmware", "network", "options"})


def parent(path: str) -> str:
    """The folder of a path written with either separator."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut] if cut > 0 else path


def separator(folder: str) -> str:
    """The separator a host's path uses."""
    return "\\" if "\\" in folder and "/" not in folder else "/"


class VirtualBoxProvider(VmProvider[VirtualBoxOptions]):
    """VirtualBox VMs, created and changed with VBoxManage."""

    name = "virtualbox"
    options_model = VirtualBoxOptions
    traits = {"vm": TRAITS}
    support = VmSupport(arches=frozenset({"x86_64", "aarch64"}), memory_multiple=machine.MIB,
                        min_memory=4 * machine.MIB, max_disks=29, max_cpus=64)
    # VirtualBox takes one session lock per VM; VBoxSVC serialises much of the rest.
    parallel_limit = 4

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The VM's folder VM_DIR/NAME (createvm --basefolder); the default machine folder
        depends on the host, so only an explicit `options.vm_dir` is checked."""
        folder = self.options_of(model).vm_dir
        return [owned_in(folder, name, field=("options", "vm_dir"))] if folder else []

    def __init__(self) -> None:
        self.hosts = HostSystems()

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """Disk sizes in whole MiB (VirtualBox counts disks in MiB)."""
        problems = []
        for index, disk in enumerate(model.disks):
            if disk.size is not None and disk.size % machine.MIB:
                problems.append(ValidationProblem(context.at("disks", index, "size"),
                                                  "VirtualBox sizes disks in whole MiB"))
        return problems

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
            return Availability(True, tool.version(), f"VBoxManage at {tool.program}")
        except ProviderError as exc:
            return Availability(False, None, str(exc))

    # -- discover -----------------------------------------------------------------------------

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """`list vms`, every VM's `showvminfo --machinereadable` (4 at a time), its marks read
        from its settings file (`getextradata` when the file cannot be read), and one
        `list hdds` for every disk size: N + 2 VBoxManage processes for N VMs."""
        tool = self._tool(conn)
        found = Discovery()
        vms = tool.list_vms()
        by_name = {d.name: d for d in wanted}
        read_all = self._read_vms(conn, tool, vms)
        relevant = []
        for (name, uuid), pair in zip(vms, read_all, strict=True):
            if pair is None:
                continue
            info, extra = pair
            marks = machine.marks_of(extra)
            address = orphan_address(marks, project, by_name.get(name))
            if address is not None:
                relevant.append((name, uuid, extra, marks, address, info))
        capacities = {m.uuid: m.capacity for m in tool.list_hdds()} if relevant else {}
        for name, uuid, extra, marks, address, info in relevant:
            found.observed.append(self._observed(conn, name, uuid, extra, marks, address, info,
                                                 capacities))
        existing = {name for name, _ in vms}
        for desired in wanted:
            if desired.state != "absent":
                problem = self._problem(conn, desired, exists=desired.name in existing)
                if problem:
                    found.problems[desired.address] = problem
        return found

    def _read_vms(self, conn: Connection, tool: VBoxManage, vms: list[tuple[str, str]]
                  ) -> list[tuple[dict[str, str | int], dict[str, str]] | None]:
        """(showvminfo, extradata) of each VM, READ_PARALLELISM at a time; None for a VM
        deleted meanwhile or whose settings file is unreadable."""

        def read(vm: tuple[str, str]) -> tuple[dict[str, str | int], dict[str, str]] | None:
            info = tool.info(vm[1])
            if info is None or info.get("name") == "<inaccessible>":
                return None
            extra = self._current_extradata(conn, tool, vm[1], info)
            return (info, extra) if extra is not None else None

        with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
            return list(pool.map(read, vms))

    # -- import ---------------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """VMs without decl's extradata, read as discovery reads them (`list vms`, each VM's
        showvminfo and extradata, one `list hdds`)."""
        tool = self._tool(conn)
        vms = tool.list_vms()
        unmarked = []
        for (name, uuid), pair in zip(vms, self._read_vms(conn, tool, vms), strict=True):
            if pair is not None and machine.marks_of(pair[1]) is None:
                unmarked.append((name, uuid, pair[0], pair[1]))
        capacities = {m.uuid: m.capacity for m in tool.list_hdds()} if unmarked else {}
        return [self._observed(conn, name, uuid, extra, None, f"vm.{name}", info, capacities)
                for name, uuid, info, extra in unmarked]

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """cpus, memory, arch, firmware, disk sizes, cdrom and NIC 1 from showvminfo and
        `list hdds`. The disks were not made by decl: `ignore_changes: [disk_source]` keeps
        decl from ever remaking them from an image."""
        return machine.manifest_entry(observed)

    @classmethod
    def _current_extradata(cls, conn: Connection, tool: VBoxManage, vm: str,
                           info: dict[str, str | int]) -> dict[str, str] | None:
        """A VM's extradata from its settings file, else from `getextradata`: the one source
        of decl's marks for discovery and for the ownership check before acting."""
        extra = cls._settings_extradata(conn, str(info.get("CfgFile", "")))
        return extra if extra is not None else tool.extradata(vm)

    @staticmethod
    def _settings_extradata(conn: Connection, cfgfile: str) -> dict[str, str] | None:
        """Extradata read from the VM's settings file: no process on a local host, one SFTP
        read over SSH; None (ask VBoxManage) on a PowerShell host or when unreadable."""
        if not cfgfile or getattr(conn, "shell", "posix") == "powershell":
            return None
        try:
            return output.parse_vbox_extradata(conn.read_file(cfgfile))
        except (OSError, ProviderError):
            return None

    def _observed(self, conn: Connection, name: str, uuid: str, extra: dict[str, str],
                  marks: Marks | None, address: str, info: dict[str, str | int],
                  capacities: dict[str, int]) -> Observed:
        seed = machine.seed_path(info, extra)
        seed_cloud = self._seed_content(conn, seed) if seed else None
        return Observed(
            address=address, kind="vm", name=name, provider=self.name, host=conn.host,
            state=output.run_state(str(info.get("VMState", ""))),
            spec=machine.observed_spec(info, extra, capacities, seed_cloud), marks=marks,
            handle={"uuid": uuid, "vmstate": info.get("VMState"),
                    "disks": machine.disk_paths(info, set(capacities)),
                    "record": machine.record_of(extra)})

    @staticmethod
    def _seed_content(conn: Connection, path: str) -> Any:
        """The cloud_init the seed ISO at `path` carries, read from the file."""
        try:
            return cloudinit.read_seed(conn.read_file(path))
        except FileNotFoundError:
            return f"missing seed {path}"
        except (OSError, ValueError) as exc:
            return f"unreadable seed {path}: {exc}"

    def observe(self, conn: Connection, project: str, desired: Desired) -> Observed | None:
        """One VM after a change: its showvminfo, its extradata and `list hdds` (three
        processes, whatever the number of VMs on the host)."""
        tool = self._tool(conn)
        info = tool.info(desired.name)
        extra = tool.extradata(desired.name) if info is not None else None
        if info is None or extra is None:
            return None
        capacities = {m.uuid: m.capacity for m in tool.list_hdds()}
        return self._observed(conn, desired.name, str(info.get("UUID", "")).lower(), extra,
                              machine.marks_of(extra), desired.address, info, capacities)

    def _problem(self, conn: Connection, desired: Desired, exists: bool) -> str | None:
        """A plan-time error of a wanted VM on its host, or None."""
        model = desired.model
        if not exists:
            for disk in model.disks:
                if disk.image:
                    problem = images.image_problem(conn, disk.image, disk.checksum)
                    if problem:
                        return problem
        if model.cdrom and not conn.exists(conn.expand_user(model.cdrom)):
            return f"cdrom {model.cdrom} does not exist on host {conn.host}"
        if model.cloud_init is not None and cloudinit.iso_tool(conn) is None:
            return f"cloud_init needs genisoimage, mkisofs or xorriso on host {conn.host}"
        return None

    # -- primitives -----------------------------------------------------------------------------

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the VM's extradata now, read where discovery reads them (the
        settings file, else `getextradata`): the check before a delete must not see a
        different VM than the plan did."""
        tool = self._tool(op.conn)
        info = tool.info(op.name)
        if info is None:
            return None
        extra = self._current_extradata(op.conn, tool, op.name, info)
        return machine.marks_of(extra) if extra is not None else None

    def power_state(self, op: Operation) -> str | None:
        """running, paused, saved, stopped (VMState in decl's words); None when gone."""
        info = self._tool(op.conn).info(op.name)
        if info is None:
            return None
        vmstate = str(info.get("VMState", ""))
        if vmstate in ("paused", "saved"):
            return vmstate
        return output.run_state(vmstate)

    def power_on(self, op: Operation, options: VirtualBoxOptions) -> None:
        """`startvm --type headless|gui|separate`."""
        self._tool(op.conn).start(op.name, options.graphics)

    def soft_stop(self, op: Operation, options: VirtualBoxOptions) -> bool:
        """The ACPI power button (returns at once; the guest may ignore it)."""
        try:
            self._tool(op.conn).run(["controlvm", op.name, "acpipowerbutton"],
                                    f"shutting down {op.name}")
        except VBoxManageError as exc:
            if "is not currently running" in str(exc):
                return True
            return False
        return True

    def hard_stop(self, op: Operation, options: VirtualBoxOptions) -> None:
        """`controlvm poweroff`."""
        self._tool(op.conn).power_off(op.name)

    def define(self, op: Operation, options: VirtualBoxOptions) -> None:
        """createvm, marks first (so a half-made VM is ours and the next plan finishes it),
        settings, disks, cdrom and seed, the record, then the spec hash last."""
        conn, desired = op.conn, op.need_desired()
        tool = self._tool(conn)
        model = desired.model
        if any(name == desired.name for name, _ in tool.list_vms()):
            raise ProviderError(f"{desired.address}: a VM named {desired.name!r} already exists")
        base = conn.expand_user(options.vm_dir) if options.vm_dir else \
            locate.default_machine_folder(self.hosts.system(conn), conn.expand_user("~"))
        uuid = tool.create(desired.name, base, options.ostype)
        marks = op.marks()
        tool.set_extradata(uuid, {KEY_PROJECT: marks.project, KEY_ADDRESS: marks.address})
        folder = parent(str((tool.info(uuid) or {}).get("CfgFile", "")))
        sep = separator(folder)
        tool.modify(uuid, machine.settings(desired.spec, options.nic_type))
        tool.add_sata(uuid, machine.CONTROLLER)
        # The record names files only: the cloud_init is read back from the seed (it may
        # carry secrets, and the record goes on VBoxManage's command line).
        record: dict[str, Any] = {"disks": {}, "seed": None, "cdrom": None}
        leftovers = self._leftover_disks(op, tool) if model.disks else set()
        for port, (dev, disk) in enumerate(zip(disk_names(len(model.disks)), model.disks,
                                               strict=True)):
            path = f"{folder}{sep}{desired.name}-{dev}.vdi"
            self._remove_leftover_disk(op, tool, path, leftovers)
            op.progress(f"making disk {dev} ({path})", None)
            if disk.image:
                cache = f"{parent(folder)}{sep}.decl-images"
                source = images.ensure_image(conn, disk.image, disk.checksum, cache, op.progress)
                tool.clone_disk(source, path)
                record["disks"][dev] = {"path": path, "source": disk_source_id(disk),
                                        "made": True}
                tool.set_record(uuid, record)
                if disk.size is not None:
                    tool.resize(path, machine.size_mib(disk.size))
            else:
                tool.create_disk(path, machine.size_mib(disk.size))
            record["disks"][dev] = {"path": path, "source": disk_source_id(disk), "made": True}
            tool.set_record(uuid, record)
            tool.attach(uuid, machine.CONTROLLER, port, "hdd", path)
        slots = {port: "" for port in range(len(model.disks))}
        if model.cdrom:
            self._attach_cdrom(tool, conn, uuid, str(model.cdrom), slots, record)
        if model.cloud_init is not None:
            self._attach_seed(op, tool, uuid, f"{folder}{sep}{desired.name}-seed.iso", slots,
                              record)
        tool.set_record(uuid, record)
        tool.set_extradata(uuid, {KEY_SPEC_HASH: marks.spec_hash})

    @staticmethod
    def _leftover_disks(op: Operation, tool: VBoxManage) -> set[str]:
        """Registered disk paths a dead create (in flight) or the VM this replace deleted may
        have left: made by `createmedium` before it was recorded and attached, so
        `unregistervm --delete` did not take them. Empty for a plain create."""
        if not (op.change.in_flight or op.change.action is Action.REPLACE):
            return set()
        return {medium.location for medium in tool.list_hdds()}

    @staticmethod
    def _remove_leftover_disk(op: Operation, tool: VBoxManage, path: str,
                              registered: set[str]) -> None:
        """Delete a disk at a path decl names for this VM, left by a dead or replaced
        incarnation: `closemedium --delete` (which VirtualBox refuses for a disk a VM uses);
        an unregistered file only when the journal says decl was making this VM."""
        if path in registered:
            op.progress(f"deleting {path}, left by an earlier apply", None)
            tool.close_delete(path)
        elif op.change.in_flight and op.conn.exists(path):
            op.progress(f"deleting {path}, left by an apply that stopped", None)
            op.conn.remove(path)

    def _attach_cdrom(self, tool: VBoxManage, conn: Connection, vm: str, given: str,
                      slots: dict[int, str], record: dict[str, Any]) -> None:
        path = conn.expand_user(given)
        port = min(set(range(len(slots) + 1)) - set(slots))
        tool.attach(vm, machine.CONTROLLER, port, "dvddrive", path)
        slots[port] = path
        record["cdrom"] = {"given": given, "path": path, "port": port}

    def _attach_seed(self, op: Operation, tool: VBoxManage, vm: str, seed: str,
                     slots: dict[int, str], record: dict[str, Any]) -> None:
        self.make_seed(op, seed)
        record["seed"] = seed
        tool.set_record(vm, record)
        if seed not in slots.values():
            port = min(set(range(len(slots) + 1)) - set(slots))
            tool.attach(vm, machine.CONTROLLER, port, "dvddrive", seed)
            slots[port] = seed

    def modify(self, op: Operation, options: VirtualBoxOptions, fields: set[str]) -> None:
        """modifyvm for settings, the cdrom and the seed, then the marks (setextradata
        works on a running VM; the rest needs it powered off, as the plan arranges)."""
        conn, desired = op.conn, op.need_desired()
        observed = op.need_observed()
        tool = self._tool(conn)
        info = tool.info(op.name)
        if info is None:
            raise ProviderError(f"{op.address}: VM {op.name!r} is gone")
        if fields and str(info.get("VMState")) == "saved":
            raise ProviderError(f"{op.address}: VM {op.name!r} is saved (suspended): "
                                "VirtualBox refuses to change it; start it, or discard its "
                                "saved state (VBoxManage discardstate), then apply again")
        if fields & SETTINGS_FIELDS:
            tool.modify(op.name, machine.settings(desired.spec, options.nic_type))
        record = dict(observed.handle.get("record") or {})
        if fields & {"cdrom", "cloud_init"}:
            self._rewire_media(op, tool, info, record)
        if op.action is Action.ADOPT:
            disks = dict(record.get("disks") or {})
            wanted = desired.spec.get("disk_source") or {}
            for dev, path in (observed.handle.get("disks") or {}).items():
                if dev in wanted and dev not in disks:  # taken as it is, not made by decl
                    disks[dev] = {"path": path, "source": wanted[dev], "made": False}
            record["disks"] = disks
        tool.set_record(op.name, record)
        marks = op.marks()
        tool.set_extradata(op.name, {KEY_PROJECT: marks.project, KEY_ADDRESS: marks.address,
                                     KEY_SPEC_HASH: marks.spec_hash})

    def _rewire_media(self, op: Operation, tool: VBoxManage, info: dict[str, str | int],
                      record: dict[str, Any]) -> None:
        """Bring the cdrom and the seed to the manifest (a field left unset is left alone)."""
        desired, observed = op.need_desired(), op.need_observed()
        want_cdrom = desired.spec.get("cdrom")
        want_cloud = desired.spec.get("cloud_init")
        controllers = {str(v) for k, v in info.items()
                       if k.startswith("storagecontrollername")}
        if machine.CONTROLLER not in controllers:
            tool.add_sata(op.name, machine.CONTROLLER)
        disks = set((observed.handle.get("disks") or {}).values())
        seed = record.get("seed")
        slots = {port: path for port, (path, _) in
                 output.disk_slots(info, machine.CONTROLLER).items()}
        if want_cdrom is not None and want_cdrom != observed.spec.get("cdrom"):
            for port, path in list(slots.items()):
                if path not in disks and path != seed:
                    tool.attach(op.name, machine.CONTROLLER, port, "dvddrive", "none")
                    del slots[port]
            self._attach_cdrom(tool, op.conn, op.name, str(want_cdrom), slots, record)
        if want_cloud is not None and want_cloud != observed.spec.get("cloud_init"):
            folder = parent(seed or str(info.get("CfgFile", "")))
            self._attach_seed(op, tool, op.name,
                              seed or f"{folder}{separator(folder)}{op.name}-seed.iso",
                              slots, record)

    def grow_disk(self, op: Operation, options: VirtualBoxOptions, dev: str, size: int,
                  running: bool) -> None:
        """`modifymedium --resize` (the VM is powered off: the plan makes it a restart)."""
        path = (op.need_observed().handle.get("disks") or {}).get(dev)
        if path:
            self._tool(op.conn).resize(str(path), machine.size_mib(size))

    def remove(self, op: Operation, options: VirtualBoxOptions) -> None:
        """Unregister the VM deleting only the disks decl made (others are detached first),
        any made disk left unattached by a failed apply, and the seed."""
        conn = op.conn
        tool = self._tool(conn)
        extra = tool.extradata(op.name) or {}
        info = tool.info(op.name) or {}
        record = machine.record_of(extra)
        made = {str(e.get("path")) for e in (record.get("disks") or {}).values()
                if e.get("made")}
        index = 0
        while f"storagecontrollername{index}" in info:
            controller = str(info[f"storagecontrollername{index}"])
            for port, (path, _) in output.disk_slots(info, controller).items():
                if path not in made:
                    tool.attach(op.name, controller, port, "hdd", "none")
            index += 1
        tool.unregister_delete(op.name)
        for path in sorted(made):  # made, but never attached (an apply that failed)?
            try:
                tool.close_delete(path)
            except VBoxManageError as exc:
                if exc.code != "VBOX_E_FILE_ERROR":  # gone with the VM: nothing to do
                    raise
        if record.get("seed"):
            conn.remove(str(record["seed"]))
