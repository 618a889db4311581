"""The esxi provider: VMs on a VMware ESXi host over SSH, with vim-cmd and vmkfstools.

Marks live in the VM's .vmx (guestinfo.decl.*). ESXi loses edits made to a running VM's
.vmx at power-off, so every change to the .vmx is made with the VM powered off.
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
from decl.providers.esxi import config, vimcmd
from decl.providers.esxi.host import EsxiHost, Inventory
from decl.providers.esxi.marks import read_marks, write_marks
from decl.providers.esxi.spec import TRAITS, desired_spec, parse_options
from decl.providers.esxi.vmx import Vmx


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


class EsxiProvider(Provider):
    """`vms:` with `provider: esxi`."""

    name: ClassVar[str] = "esxi"
    kinds: ClassVar[tuple[str, ...]] = ("vm",)
    traits: ClassVar[dict[str, KindTraits]] = {"vm": TRAITS}
    parallel_limit: ClassVar[int | None] = 4

    # -- desired -------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """display name, cpus, memory, firmware, guest OS, datastore, port group, disks."""
        return desired_spec(name, model)

    # -- check and discover --------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """vim-cmd and vmkfstools on the host; its version from `vmware -v`."""
        ok, detail = EsxiHost(conn).version()
        if not ok:
            return Availability(False, detail=detail)
        return Availability(True, version=detail.replace("VMware ESXi ", "").strip())

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Every VM of the host with its power state, .vmx and disk sizes: two round trips."""
        inventory = EsxiHost(conn).inventory()
        found = Discovery()
        by_address = {d.address: d for d in wanted}
        parsed = []
        for row in inventory.rows:
            spec, marks, handle = observed_vm(inventory, row)
            state = vimcmd.parse_power(inventory.details[row.vmid].state_text) or "unknown"
            parsed.append((row, spec, marks, handle, state))
        claimed: set[str] = set()
        for _row, spec, marks, handle, state in parsed:
            if marks is None or marks.project != project:
                continue
            if marks.address in claimed:
                if marks.address in by_address:
                    found.problems[marks.address] = (
                        f"two ESXi VMs carry the marks of {marks.address} on host "
                        f"{conn.host}")
                continue
            claimed.add(marks.address)
            found.observed.append(self._observed(conn, marks.address, spec, marks, handle,
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
                row, spec, marks, handle, state = same[0]
                found.observed.append(self._observed(conn, desired.address, spec, marks,
                                                     handle, state))
            elif desired.state != "absent" and desired.spec["datastore"] not in \
                    inventory.datastores:
                found.problems[desired.address] = (
                    f"datastore {desired.spec['datastore']!r} does not exist on host "
                    f"{conn.host} (it has: {', '.join(sorted(inventory.datastores)) or 'none'})")
        return found

    def _observed(self, conn: Connection, address: str, spec: dict[str, Any],
                  marks: Marks | None, handle: dict[str, Any], state: str) -> Observed:
        return Observed(address=address, kind="vm", name=address.split(".", 1)[1],
                        provider=self.name, host=conn.host, state=state, spec=spec,
                        marks=marks, handle=handle)

    # -- apply ---------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """create, update(_restart), replace, delete, start, stop, adopt."""
        host = EsxiHost(conn)
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
            self._update(host, change, desired, _existing(observed, change), progress)
        elif action is Action.START:
            vm = _existing(observed, change)
            progress(f"powering on {vm.handle['display_name']}", None)
            host.power_on(vm.handle["vmid"], repr(vm.handle["display_name"]))
        elif action is Action.STOP:
            self._stop(host, desired, _existing(observed, change), progress)
        else:
            raise ProviderError(f"{change.address}: the esxi provider cannot {action.value}")

    def _create(self, host: EsxiHost, change: Change, desired: Desired,
                progress: Progress) -> None:
        spec = desired.spec
        options = parse_options(desired.address, desired.model.options if desired.model
                                else {})
        name = spec["display_name"]
        stores = host.datastores()
        root = stores.get(spec["datastore"])
        if root is None:
            raise ProviderError(f"{desired.address}: datastore {spec['datastore']!r} does not "
                                f"exist on host {host.conn.host}")
        folder = f"{root}/{name}"
        if host.conn.exists(folder):
            raise ProviderError(f"{desired.address}: folder {folder} already exists on host "
                                f"{host.conn.host}: decl will not reuse or overwrite it")
        progress(f"making folder {folder}", None)
        host.conn.makedirs(folder)
        vmx_file = f"{folder}/{name}.vmx"
        try:
            names = [config.disk_file(name, i) for i in range(spec["disk_count"])]
            for dev, file_name in zip(config.disk_devices(len(names)), names, strict=True):
                size = spec["disk_size"][dev]
                progress(f"vmkfstools -c {vimcmd.vmkfstools_size(size)} -d "
                         f"{options.disk_type} {file_name}", None)
                host.make_disk(f"{folder}/{file_name}", size, options.disk_type)
            vmx = config.new_vmx(spec, names)
            write_marks(vmx, desired.marks(change.project))
            progress(f"writing {vmx_file}", None)
            host.conn.write_file(vmx_file, vmx.render().encode())
            progress(f"registering {name}", None)
            vmid = host.register(vmx_file)
        except Exception:
            host.remove_tree(folder)
            raise
        if desired.state == "running":
            progress(f"powering on {name}", None)
            host.power_on(vmid, repr(name))

    def _update(self, host: EsxiHost, change: Change, desired: Desired, observed: Observed,
                progress: Progress) -> None:
        vmid = observed.handle["vmid"]
        name = observed.handle["display_name"]
        if not observed.handle.get("readable", True):
            raise ProviderError(f"{desired.address}: the .vmx of {name!r} cannot be read")
        if observed.state in ("running", "suspended"):
            why = "to write its .vmx (ESXi drops edits made while a VM runs)" \
                if change.action is not Action.UPDATE_RESTART else "for the restart"
            progress(f"stopping {name} {why}", None)
            self._stop(host, desired, observed, progress)
        path = observed.handle["vmx"]
        vmx = Vmx.parse(host.conn.read_file(path).decode("utf-8", "replace"))
        existing = [file_name for _, file_name in config.attached_disks(vmx)]
        config.apply_spec(vmx, desired.spec, existing[:desired.spec["disk_count"]])
        have = observed.spec.get("disk_size") or {}
        for dev, size in (desired.spec.get("disk_size") or {}).items():
            current = have.get(dev)
            disk = observed.handle["disks"].get(dev)
            if current is not None and disk and size > current:
                progress(f"growing {dev} to {vimcmd.vmkfstools_size(size)}", None)
                host.grow_disk(disk, size)
        write_marks(vmx, desired.marks(change.project))
        progress(f"writing {path}", None)
        host.conn.write_file(path, vmx.render().encode())
        host.reload(vmid, repr(name))
        if desired.state == "running":
            progress(f"powering on {name}", None)
            host.power_on(vmid, repr(name))

    def _stop(self, host: EsxiHost, desired: Desired | None, observed: Observed,
              progress: Progress) -> None:
        options = parse_options(observed.address, desired.model.options
                                if desired is not None and desired.model is not None else {})
        name = observed.handle["display_name"]
        progress(f"shutting down {name} (up to {options.shutdown_timeout:g} s)", None)
        how = host.shutdown(observed.handle["vmid"], repr(name), options.shutdown_timeout,
                            progress)
        progress(f"{name}: {how}", None)

    def _delete(self, host: EsxiHost, change: Change, observed: Observed,
                progress: Progress) -> None:
        """Destroy the VM and its files, only when its .vmx carries this project's marks."""
        name = observed.handle.get("display_name")
        try:
            current = Vmx.parse(host.conn.read_file(observed.handle["vmx"])
                                .decode("utf-8", "replace"))
        except FileNotFoundError:
            raise ProviderError(f"{change.address}: the .vmx of {name!r} is gone: decl "
                                "cannot check its marks and will not delete it") from None
        marks = read_marks(current)
        project = change.project or (observed.marks.project if observed.marks else "")
        if marks is None or marks.project != project:
            raise ProviderError(f"{change.address}: VM {name!r} carries no mark of project "
                                f"{project!r}: decl will not delete it")
        vmid = observed.handle["vmid"]
        if host.power_state(vmid) != "stopped":
            progress(f"powering off {name}", None)
            host.power_off(vmid, repr(name))
        progress(f"destroying {name} and its files", None)
        host.destroy(vmid, repr(name))


def _existing(observed: Observed | None, change: Change) -> Observed:
    if observed is None or not observed.handle.get("vmid"):
        raise ProviderError(f"{change.address}: the VM was not found on host {change.host}")
    return observed


__all__ = ["EsxiProvider"]
