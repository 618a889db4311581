"""The esxi provider: VMs on a VMware ESXi host over SSH, with vim-cmd and vmkfstools.

Marks live in the VM's .vmx (guestinfo.decl.*). ESXi loses edits made to a running VM's
.vmx at power-off, so every change to the .vmx is made with the VM powered off.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import Any, ClassVar

from decl.connections.base import Connection
from decl.core.plan import Action
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits
from decl.errors import ProviderError
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportScope,
    Operation,
    OwnedName,
    ValidateContext,
    ValidationProblem,
    orphan_address,
)
from decl.providers.esxi import config, importing, spec, vimcmd
from decl.providers.esxi.host import EsxiHost, Inventory
from decl.providers.esxi.marks import read_marks, write_marks
from decl.providers.esxi.spec import TRAITS, EsxiOptions
from decl.providers.esxi.vmx import Vmx
from decl.providers.vmbase import VmProvider, option_field
from decl.providers.vmimport import manifest_name


def observed_vm(inventory: Inventory, row: vimcmd.VmRow) -> tuple[dict[str, Any],
                                                                 Marks | None, dict[str, Any]]:
    """(spec, marks, handle) of one VM from what discovery read (pure)."""
    details = inventory.details.get(row.vmid)
    path = inventory.vmx_paths[row.vmid]
    vmx = Vmx.parse(details.vmx_text) if details and details.vmx_text is not None else None
    folder = posixpath.dirname(path)
    if vmx is None:
        spec = {"display_name": row.name, "datastore": row.datastore, "disk_count": None}
        return spec, None, {"vmid": row.vmid, "vmx": path, "display_name": row.name,
                            "disks": {}, "readable": False}
    sizes: dict[str, int | None] = {}
    disks: dict[str, str] = {}
    for dev, name in config.attached_disks(vmx):
        text = details.descriptors.get(name) if details else None
        sizes[name] = vimcmd.descriptor_size(text) if text else None
        disks[dev] = name if name.startswith("/") else posixpath.join(folder, name)
    spec = config.read_spec(vmx, row.datastore, sizes)
    spec["display_name"] = row.name
    return spec, read_marks(vmx), {"vmid": row.vmid, "vmx": path, "display_name": row.name,
                                   "disks": disks, "readable": True}


class EsxiProvider(VmProvider[EsxiOptions]):
    """`vms:` with `provider: esxi`, on the VM base.

    The spec has ESXi's own shape (display name, guest OS, datastore, port group, scsi0
    disks) and so its own traits: every change to the .vmx needs the VM powered off."""

    name: ClassVar[str] = "esxi"
    traits: ClassVar[dict[str, KindTraits]] = {"vm": TRAITS}
    options_model = EsxiOptions
    support = spec.SUPPORT
    parallel_limit: ClassVar[int | None] = 4

    # -- desired -------------------------------------------------------------------------

    def owned_name(self, kind: str, name: str, model: Any, spec: dict[str, Any]) -> OwnedName:
        """ESXi knows a VM by its display name (which also names its folder
        [DATASTORE] NAME/), `options.display_name` or the manifest name."""
        return OwnedName(str(spec.get("display_name") or name),
                         option_field(model, "display_name"))

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """Disk images and sizes, port group names."""
        return spec.validate_vm(model, options, context)

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """display name, cpus, memory, firmware, guest OS, datastore, port group, disks."""
        return spec.desired_spec(name, model, self.options_of(model))

    # -- check and discover --------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """vim-cmd and vmkfstools on the host; its version from `vmware -v`."""
        ok, detail = EsxiHost(conn).version()
        if not ok:
            return Availability(False, detail=detail)
        return Availability(True, version=detail.replace("VMware ESXi ", "").strip())

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Every VM of the host with its power state, .vmx and disk sizes: two round trips
        (the version check before it makes three), whatever the number of VMs."""
        inventory = EsxiHost(conn).inventory()
        found = Discovery()
        by_address = {d.address: d for d in wanted}
        parsed = []
        for row in inventory.rows:
            vm_spec, marks, handle = observed_vm(inventory, row)
            state = vimcmd.parse_power(inventory.details[row.vmid].state_text) or "unknown"
            parsed.append((row, vm_spec, marks, handle, state))
        claimed: set[str] = set()
        for _row, vm_spec, marks, handle, state in parsed:
            address = orphan_address(marks, project, None)
            if address is None:
                continue
            if address in claimed:
                if address in by_address:
                    found.problems[address] = (f"two ESXi VMs carry the marks of {address} "
                                               f"on host {conn.host}")
                continue
            claimed.add(address)
            found.observed.append(self._observed(conn, address, vm_spec, marks, handle,
                                                 state))
        for desired in wanted:
            if desired.address in claimed:
                continue
            name = desired.spec["display_name"]
            same = [p for p in parsed if p[0].name == name
                    and not (p[2] is not None and p[2].project == project)]
            if len(same) > 1:
                found.problems[desired.address] = (
                    f"{len(same)} ESXi VMs are named {name!r} on host {conn.host}: decl "
                    "cannot tell which one is meant")
                continue
            if same:
                _row, vm_spec, marks, handle, state = same[0]
                found.observed.append(self._observed(conn, desired.address, vm_spec, marks,
                                                     handle, state))
            elif desired.state != "absent" and desired.spec["datastore"] not in \
                    inventory.datastores:
                found.problems[desired.address] = (
                    f"datastore {desired.spec['datastore']!r} does not exist on host "
                    f"{conn.host} (it has: {', '.join(sorted(inventory.datastores)) or 'none'})")
        return found

    def _observed(self, conn: Connection, address: str, vm_spec: dict[str, Any],
                  marks: Marks | None, handle: dict[str, Any], state: str) -> Observed:
        return Observed(address=address, kind="vm", name=address.split(".", 1)[1],
                        provider=self.name, host=conn.host, state=state, spec=vm_spec,
                        marks=marks, handle=handle)

    # -- import --------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """VMs whose .vmx carries no decl marks, from discovery's two round trips. A VM's
        manifest name is its display name with spaces and other characters made `-`."""
        inventory = EsxiHost(conn).inventory()
        found = []
        for row in inventory.rows:
            vm_spec, marks, handle = observed_vm(inventory, row)
            if marks is not None:
                continue
            state = vimcmd.parse_power(inventory.details[row.vmid].state_text) or "unknown"
            found.append(self._observed(conn, f"vm.{manifest_name(row.name)}", vm_spec, None,
                                        handle, state))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """cpus, memory, firmware, disks (their sizes from the .vmdk descriptors), network
        and the options that differ from their defaults (display name, guest OS, datastore,
        port group), read from the .vmx."""
        return importing.manifest_entry(observed)

    # -- where the VM is -----------------------------------------------------------------

    def _vm(self, op: Operation) -> tuple[str, str, str] | None:
        """(vmid, .vmx path, display name) of the operation's VM now, None when it is gone.

        After a create (or the create of a replace) the VM is found again by its .vmx path:
        the Operation is immutable and the provider keeps no per-call state."""
        host = EsxiHost(op.conn)
        fresh = op.action is Action.CREATE and op.desired is not None
        if not fresh and op.observed is not None and op.observed.handle.get("vmid"):
            handle = op.observed.handle
            return handle["vmid"], handle["vmx"], handle["display_name"]
        if op.desired is None:
            return None
        wanted = op.desired.spec
        stores = host.datastores()
        root = stores.get(wanted["datastore"], f"/vmfs/volumes/{wanted['datastore']}")
        path = f"{root}/{wanted['display_name']}/{wanted['display_name']}.vmx"
        rows, _ = vimcmd.parse_getallvms(host.vim(["vmsvc/getallvms"], "listing VMs"))
        for row in rows:
            if row.datastore == wanted["datastore"] and \
                    row.path == f"{wanted['display_name']}/{wanted['display_name']}.vmx":
                return row.vmid, path, row.name
        return None

    def _need_vm(self, op: Operation) -> tuple[str, str, str]:
        found = self._vm(op)
        if found is None:
            raise ProviderError(f"{op.address}: the VM was not found on host {op.conn.host}")
        return found

    # -- primitives ----------------------------------------------------------------------

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the .vmx as it is on the datastore now."""
        _, path, _ = self._need_vm(op)
        try:
            return read_marks(Vmx.parse(op.conn.read_file(path).decode("utf-8", "replace")))
        except FileNotFoundError:
            return None

    def define(self, op: Operation, options: EsxiOptions) -> None:
        """Folder, disks (vmkfstools), .vmx with the marks, registration: the VM is off."""
        host = EsxiHost(op.conn)
        desired = op.need_desired()
        wanted = desired.spec
        name = wanted["display_name"]
        root = host.datastores().get(wanted["datastore"])
        if root is None:
            raise ProviderError(f"{op.address}: datastore {wanted['datastore']!r} does not "
                                f"exist on host {op.conn.host}")
        folder = f"{root}/{name}"
        if op.change.in_flight and op.conn.exists(folder):
            self._remove_leftover_folder(op, host, folder, name, wanted["disk_count"])
        if op.conn.exists(folder):
            raise ProviderError(f"{op.address}: folder {folder} already exists on host "
                                f"{op.conn.host}: decl will not reuse or overwrite it")
        op.progress(f"making folder {folder}", None)
        op.conn.makedirs(folder)
        vmx_file = f"{folder}/{name}.vmx"
        try:
            names = [config.disk_file(name, i) for i in range(wanted["disk_count"])]
            for dev, file_name in zip(config.disk_devices(len(names)), names, strict=True):
                size = wanted["disk_size"][dev]
                op.progress(f"vmkfstools -c {vimcmd.vmkfstools_size(size)} -d "
                            f"{options.disk_type} {file_name}", None)
                host.make_disk(f"{folder}/{file_name}", size, options.disk_type)
            vmx = config.new_vmx(wanted, names)
            write_marks(vmx, op.marks())
            op.progress(f"writing {vmx_file}", None)
            op.conn.write_file(vmx_file, vmx.render().encode())
            op.progress(f"registering {name}", None)
            host.register(vmx_file)
        except Exception:
            host.remove_tree(folder)
            raise

    @staticmethod
    def _remove_leftover_folder(op: Operation, host: EsxiHost, folder: str, name: str,
                                disk_count: int) -> None:
        """An apply that died while making this VM (before registering it) left `folder`:
        removed when it holds only files decl makes for it (its .vmx, disks and their flat
        extents) and a .vmx there carries no other project's marks; else left alone."""
        disks = [config.disk_file(name, i) for i in range(disk_count)]
        ours = {f"{name}.vmx", *disks, *(d.removesuffix(".vmdk") + "-flat.vmdk" for d in disks)}
        listed = op.conn.run(["ls", "-1A", "--", folder], timeout=120)
        if not listed.ok or not set(listed.out.split("\n")) - {""} <= ours:
            return
        vmx_file = f"{folder}/{name}.vmx"
        if op.conn.exists(vmx_file):
            marks = read_marks(Vmx.parse(op.conn.read_file(vmx_file).decode("utf-8",
                                                                            "replace")))
            if marks is None or marks.project != op.project:
                return
        op.progress(f"removing {folder}, left by an apply that stopped", None)
        host.remove_tree(folder)

    def modify(self, op: Operation, options: EsxiOptions, fields: set[str]) -> None:
        """Rewrite the managed keys and the marks of the (powered off) VM's .vmx, reload."""
        vmid, path, name = self._need_vm(op)
        if op.observed is not None and not op.observed.handle.get("readable", True):
            raise ProviderError(f"{op.address}: the .vmx of {name!r} cannot be read")
        vmx = Vmx.parse(op.conn.read_file(path).decode("utf-8", "replace"))
        wanted = op.need_desired().spec
        existing = [file_name for _, file_name in config.attached_disks(vmx)]
        config.apply_spec(vmx, wanted, existing[:wanted["disk_count"]])
        write_marks(vmx, op.marks())
        op.progress(f"writing {path}", None)
        op.conn.write_file(path, vmx.render().encode())
        EsxiHost(op.conn).reload(vmid, repr(name))

    def power_state(self, op: Operation) -> str | None:
        """running, suspended or stopped; None when the VM is gone."""
        found = self._vm(op)
        if found is None:
            return None
        result = op.conn.run(["vim-cmd", "vmsvc/power.getstate", found[0]], timeout=120)
        fault = vimcmd.find_fault(result.out + result.err)
        if fault is not None and fault.short == "NotFound":
            return None
        state = vimcmd.parse_power(result.out)
        if state is None:
            raise ProviderError(f"{op.address}: power.getstate failed on host "
                                f"{op.conn.host}: {fault or result.out.strip()[-200:]}")
        return "paused" if state == "suspended" else state

    def power_on(self, op: Operation, options: EsxiOptions) -> None:
        """vim-cmd vmsvc/power.on."""
        vmid, _, name = self._need_vm(op)
        op.progress(f"powering on {name}", None)
        EsxiHost(op.conn).power_on(vmid, repr(name))

    def soft_stop(self, op: Operation, options: EsxiOptions) -> bool:
        """vim-cmd vmsvc/power.shutdown (VMware Tools). When it faults, waiting makes sense
        only if the tools run; otherwise False: power off at once."""
        vmid, _, name = self._need_vm(op)
        host = EsxiHost(op.conn)
        result = op.conn.run(["vim-cmd", "vmsvc/power.shutdown", vmid], timeout=120)
        fault = vimcmd.find_fault(result.out + result.err)
        if fault is None and result.ok:
            return True
        if host.tools_running(vmid):
            op.progress(f"{name}: {fault or 'power.shutdown failed'}; VMware Tools run: "
                        "waiting", None)
            return True
        op.progress(f"{name}: {fault or 'power.shutdown failed'} (no VMware Tools): "
                    "powering off", None)
        return False

    def hard_stop(self, op: Operation, options: EsxiOptions) -> None:
        """vim-cmd vmsvc/power.off."""
        vmid, _, name = self._need_vm(op)
        EsxiHost(op.conn).power_off(vmid, repr(name))

    def remove(self, op: Operation, options: EsxiOptions) -> None:
        """vim-cmd vmsvc/destroy: unregisters the VM and deletes its folder's files."""
        vmid, _, name = self._need_vm(op)
        op.progress(f"destroying {name} and its files", None)
        EsxiHost(op.conn).destroy(vmid, repr(name))

    def grow_disk(self, op: Operation, options: EsxiOptions, dev: str, size: int,
                  running: bool) -> None:
        """vmkfstools -X, the VM powered off (a running VM's disk is locked)."""
        disk = (op.observed.handle.get("disks") or {}).get(dev) if op.observed else None
        if disk is None:
            raise ProviderError(f"{op.address}: disk {dev} was not found")
        EsxiHost(op.conn).grow_disk(disk, size)

    # -- actions where ESXi differs from the base ------------------------------------------

    def update(self, op: Operation) -> None:
        """Any change to the .vmx is made powered off: ESXi writes back the configuration
        it loaded at power-on and drops edits made meanwhile."""
        self.restart_update(op)

    def adopt(self, op: Operation) -> None:
        """Write the marks (into the .vmx: powered off, like any change), converge.

        A running VM is not powered off just to be marked: with no change the plan shows as
        needing a restart, and no stop asked for, decl refuses and says what to do."""
        observed = op.need_observed()
        if observed.state in ("running", "suspended") and not op.change.fields \
                and op.target_state != "stopped":
            raise ProviderError(
                f"{op.address}: VM {observed.handle.get('display_name')!r} is running, and "
                "ESXi keeps no edit made to a running VM's .vmx: decl writes its marks only "
                "while the VM is powered off. Stop it (or set `state: stopped` for this "
                "apply, and decl shuts it down), then apply again. Nothing was changed.")
        self.restart_update(op)

    def replace(self, op: Operation) -> None:
        """Delete the VM found, then create the wanted one (each finds its own VM)."""
        if op.observed is not None:
            self.delete(_acting_as(op, Action.DELETE))
        self.create(_acting_as(op, Action.CREATE))


def _acting_as(op: Operation, action: Action) -> Operation:
    """The same operation, carried out as another action (the halves of a replace)."""
    return dataclasses.replace(op, change=dataclasses.replace(op.change, action=action))


__all__ = ["EsxiProvider"]
