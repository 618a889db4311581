"""VMware Workstation and Fusion VMs: decl writes the .vmx, vmware-vdiskmanager makes the
disks, vmrun starts, stops and deletes. Marks are .vmx keys.

vmrun lists only running VMs, so stopped ones are found from a per-host index of the .vmx
files this project made (like the venv index) and from `options.vm_dir/NAME/NAME.vmx` of
each VM of the manifest. The lifecycle hooks (create, update, restart_update, adopt,
delete, start, stop) each take one change; `apply` only dispatches.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

from pydantic import ValidationError

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import Policy
from decl.errors import DeclError, ProviderError
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.desktop_host import HostSystems
from decl.providers.vmspec import disk_names, disk_source_id, options_error, vm_spec, vm_traits
from decl.providers.vmware import locate, output, vmxspec
from decl.providers.vmware.driver import Vdisk, Vmrun
from decl.providers.vmware.options import VmwareOptions
from decl.providers.vmware.vmx import VmxDocument

# Disks grow only while the VM is powered off (vmware-vdiskmanager -x).
TRAITS = dataclasses.replace(vm_traits(), policies={**vm_traits().policies,
                                                    "disk_size": Policy.RESTART,
                                                    "arch": Policy.REPLACE})
INDEX_DIR = "~/.local/state/decl/vmware"
HEAD = 65536


def parse_options(address: str, raw: dict[str, Any]) -> VmwareOptions:
    """A VM's `options`, checked; DeclError naming the bad option."""
    try:
        return VmwareOptions(**raw)
    except ValidationError as exc:
        raise DeclError(options_error(address, exc)) from None


def join(folder: str, *names: str) -> str:
    """A path on the VM's host, with the separator its folder uses."""
    sep = "\\" if "\\" in folder and "/" not in folder else "/"
    return sep.join([folder.rstrip("\\/"), *names])


def parent(path: str) -> str:
    """The folder of a path written with either separator."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut] if cut > 0 else path


class VmwareProvider(Provider):
    """VMware Workstation (Windows, Linux) and Fusion (macOS) VMs."""

    name = "vmware"
    kinds = ("vm",)
    traits = {"vm": TRAITS}

    def __init__(self) -> None:
        self.hosts = HostSystems()
        self._index_lock = threading.Lock()

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec; `options` are checked here so a typo fails at plan time."""
        options = parse_options(f"vm.{name}", model.options)
        return vm_spec(model, options.comparable())

    # -- tools and paths --------------------------------------------------------------------

    def _tools(self, conn: Connection) -> tuple[Vmrun, Vdisk]:
        system = self.hosts.system(conn)
        found = {}
        for tool in ("vmrun", "vmware-vdiskmanager"):
            path = self.hosts.tool(conn, locate.program_name(tool, system),
                                   lambda s, e, t=tool: locate.install_locations(t, s, e))
            if path is None:
                raise ProviderError(f"{tool} is not installed on host {conn.host} (looked on "
                                    "PATH and in VMware's install folder)")
            found[tool] = path
        return (Vmrun(conn, found["vmrun"], locate.host_type(system)),
                Vdisk(conn, found["vmware-vdiskmanager"]))

    def check(self, conn: Connection) -> Availability:
        """vmrun and vmware-vdiskmanager are there; the version is vmrun's."""
        try:
            vmrun, vdisk = self._tools(conn)
            return Availability(True, vmrun.version(),
                                f"vmrun -T {vmrun.host_type} ({vmrun.program}), "
                                f"{vdisk.program}")
        except ProviderError as exc:
            return Availability(False, None, str(exc))

    def _vmx_path(self, conn: Connection, name: str, options: VmwareOptions) -> str:
        folder = conn.expand_user(options.vm_dir) if options.vm_dir else \
            vmxspec.default_vm_dir(self.hosts.system(conn), conn.expand_user("~"))
        return join(folder, name, f"{name}.vmx")

    def _read_head(self, conn: Connection, path: str) -> bytes | None:
        try:
            if conn.is_local:
                with open(path, "rb") as handle:
                    return handle.read(HEAD)
            return conn.read_file(path)[:HEAD]
        except (FileNotFoundError, OSError):
            return None

    def _read_vmx(self, conn: Connection, path: str) -> VmxDocument | None:
        try:
            return VmxDocument(conn.read_file(path).decode("utf-8", "replace"))
        except (FileNotFoundError, OSError):
            return None

    # -- the per-host index -------------------------------------------------------------------

    def _index_file(self, conn: Connection, project: str) -> str:
        return conn.expand_user(f"{INDEX_DIR}/{project}.json")

    def _index(self, conn: Connection, project: str) -> dict[str, str]:
        try:
            data = json.loads(conn.read_file(self._index_file(conn, project)))
        except (FileNotFoundError, OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in (data.get("vms") or {}).items()}

    def _remember(self, conn: Connection, project: str, address: str,
                  vmx: str | None) -> None:
        """Add (or, with None, drop) a VM's .vmx in the project's index on its host."""
        with self._index_lock:
            entries = self._index(conn, project)
            if vmx is None:
                entries.pop(address, None)
            else:
                entries[address] = vmx
            path = self._index_file(conn, project)
            conn.makedirs(parent(path))
            conn.write_file(path, json.dumps({"vms": entries}, indent=1,
                                             sort_keys=True).encode())

    # -- discover -------------------------------------------------------------------------------

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One `vmrun list`; the .vmx files of the index, of the manifest's VMs and of the
        running VMs are read as files, with their disks' descriptors."""
        vmrun, _ = self._tools(conn)
        system = self.hosts.system(conn)
        running = vmrun.running()
        found = Discovery()
        candidates: dict[str, Desired | None] = {}
        for desired in wanted:
            options = parse_options(desired.address, desired.model.options)
            candidates[self._vmx_path(conn, desired.name, options)] = desired
        for path in [*self._index(conn, project).values(), *running]:
            if not any(locate.same_vmx_path(path, known, system) for known in candidates):
                candidates[path] = None
        for path, desired in candidates.items():
            doc = self._read_vmx(conn, path)
            if doc is None:
                continue
            marks = vmxspec.marks_of(doc)
            ours = marks is not None and marks.project == project
            if desired is None and not ours:
                continue
            if desired is not None and ours and marks.address != desired.address:  # type: ignore[union-attr]
                continue
            name = path.replace("\\", "/").rsplit("/", 1)[-1][: -len(".vmx")]
            sizes = {}
            for _, file in vmxspec.disks_of(doc):
                absolute = file if file.startswith(("/", "\\")) or ":" in file[:3] \
                    else join(parent(path), file)
                head = self._read_head(conn, absolute)
                sizes[file] = output.vmdk_capacity(head) if head is not None else None
            is_running = any(locate.same_vmx_path(path, r, system) for r in running)
            found.observed.append(Observed(
                address=desired.address if desired else marks.address,  # type: ignore[union-attr]
                kind="vm", name=desired.name if desired else name, provider=self.name,
                host=conn.host, state="running" if is_running else "stopped",
                spec=vmxspec.observed_spec(doc, desired.name if desired else name, sizes),
                marks=marks, handle={"vmx": path}))
        for desired in wanted:
            if desired.state != "absent":
                problem = self._problem(conn, desired)
                if problem:
                    found.problems[desired.address] = problem
        return found

    def _problem(self, conn: Connection, desired: Desired) -> str | None:
        model = desired.model
        if model.memory % vmxspec.MIB:
            return "memory must be a whole number of MiB for VMware"
        for index, disk in enumerate(model.disks):
            if disk.image:
                return (f"disks[{index}].image: the vmware provider makes empty disks only "
                        "(install from `cdrom`)")
            if disk.size % vmxspec.MIB:
                return f"disks[{index}].size must be a whole number of MiB for VMware"
        if len(model.disks) > 15:
            return "at most 15 disks on the SCSI controller"
        if model.cdrom and not conn.exists(conn.expand_user(model.cdrom)):
            return f"cdrom {model.cdrom} does not exist on host {conn.host}"
        return None

    # -- apply ----------------------------------------------------------------------------------

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

    def _vmx_of(self, conn: Connection, desired: Desired) -> str:
        return self._vmx_path(conn, desired.name,
                              parse_options(desired.address, desired.model.options))

    def start(self, desired: Desired, conn: Connection, progress: Progress) -> None:
        """`vmrun start VMX nogui|gui`."""
        options = parse_options(desired.address, desired.model.options)
        vmrun, _ = self._tools(conn)
        progress(f"starting {desired.name}", None)
        vmrun.start(self._vmx_of(conn, desired), options.graphics)

    def stop(self, desired: Desired, conn: Connection, progress: Progress) -> None:
        """`vmrun stop soft`, then `stop hard` after options.shutdown_timeout."""
        options = parse_options(desired.address, desired.model.options)
        vmrun, _ = self._tools(conn)
        progress(f"stopping {desired.name} (hard stop after {options.shutdown_timeout:g} s)",
                 None)
        how = vmrun.stop(self._vmx_of(conn, desired), options.shutdown_timeout)
        if how == "hard":
            progress(f"{desired.name} did not stop softly: stopped hard", None)

    def create(self, change: Change, desired: Desired, conn: Connection,
               progress: Progress) -> None:
        """Disks, then the .vmx (written atomically, marks included), then the index; a
        failure removes what this call made, so the next plan creates it again."""
        _, vdisk = self._tools(conn)
        model = desired.model
        options = parse_options(desired.address, model.options)
        vmx = self._vmx_path(conn, desired.name, options)
        if conn.exists(vmx):
            raise ProviderError(f"{desired.address}: {vmx} already exists")
        folder = parent(vmx)
        made: list[str] = []
        try:
            if not conn.exists(folder):
                conn.makedirs(folder)
            doc = vmxspec.new_document(desired.name, options.hw_version)
            for index, (dev, disk) in enumerate(zip(disk_names(len(model.disks)), model.disks,
                                                    strict=True)):
                file = f"{desired.name}-{dev}.vmdk"
                path = join(folder, file)
                progress(f"making disk {dev} ({path})", None)
                vdisk.create(path, disk.size)
                made.append(path)
                vmxspec.add_disk(doc, index, dev, file, disk_source_id(disk))
            cdrom = conn.expand_user(model.cdrom) if model.cdrom else None
            vmxspec.apply_spec(doc, desired.name, desired.spec, options.nic_type, cdrom)
            vmxspec.set_marks(doc, Marks(change.project, desired.address, desired.spec_hash))
            conn.write_file(vmx, doc.render().encode("utf-8"))
            made.append(vmx)
            self._remember(conn, change.project, desired.address, vmx)
        except BaseException:
            for path in made:
                try:
                    self._remove_disk_files(conn, path)
                except (OSError, ProviderError):
                    pass  # the original error is the one to report
            raise
        if change.target_state == "running":
            self.start(desired, conn, progress)

    def _remove_disk_files(self, conn: Connection, path: str) -> None:
        """A file decl made; for a .vmdk also its extents."""
        if path.endswith(".vmdk"):
            head = self._read_head(conn, path)
            for name in output.vmdk_extent_files(head or b""):
                conn.remove(join(parent(path), name))
        conn.remove(path)

    def update(self, change: Change, desired: Desired, observed: Observed, conn: Connection,
               progress: Progress) -> None:
        """Stop a running VM (its VMX process owns the .vmx), edit the .vmx keeping every
        other key, grow disks, put the marks, and start it again."""
        vmrun, vdisk = self._tools(conn)
        options = parse_options(desired.address, desired.model.options)
        vmx = str(observed.handle["vmx"])
        running = observed.state == "running"
        was_running = running
        changed = bool(change.fields) or change.action is Action.UPDATE_RESTART
        if running and (changed or change.action is Action.ADOPT):
            progress(f"restarting {desired.name}: stopping (hard stop after "
                     f"{options.shutdown_timeout:g} s)", None)
            vmrun.stop(vmx, options.shutdown_timeout)
            running = False
        doc = self._read_vmx(conn, vmx)
        if doc is None:
            raise ProviderError(f"{desired.address}: {vmx} is gone")
        self._grow(vdisk, conn, vmx, doc, desired, observed, progress)
        cdrom = desired.spec.get("cdrom")
        vmxspec.apply_spec(doc, desired.name, desired.spec, options.nic_type,
                           conn.expand_user(cdrom) if cdrom else None)
        if change.action is Action.ADOPT:
            wanted = desired.spec.get("disk_source") or {}
            for dev, (_, file) in zip(disk_names(len(vmxspec.disks_of(doc))),
                                      vmxspec.disks_of(doc), strict=True):
                if dev in wanted and doc.get(f"decl.disk.{dev}.file") is None:
                    doc.update([(f"decl.disk.{dev}.file", file),
                                (f"decl.disk.{dev}.source", str(wanted[dev]))])
        vmxspec.set_marks(doc, Marks(change.project, desired.address, desired.spec_hash))
        progress(f"writing {vmx}", None)
        conn.write_file(vmx, doc.render().encode("utf-8"))
        self._remember(conn, change.project, desired.address, vmx)
        target = change.target_state or ("running" if was_running else None)
        if target == "running" and not running:
            self.start(desired, conn, progress)
        elif target == "stopped" and running:
            self.stop(desired, conn, progress)

    def restart_update(self, change: Change, desired: Desired, observed: Observed,
                       conn: Connection, progress: Progress) -> None:
        """The same as update: the .vmx is edited only while the VM is off."""
        self.update(change, desired, observed, conn, progress)

    def adopt(self, change: Change, desired: Desired, observed: Observed, conn: Connection,
              progress: Progress) -> None:
        """Put this project's marks in an existing .vmx (its disks are taken as they are
        and will not be deleted by decl)."""
        self.update(change, desired, observed, conn, progress)

    def _grow(self, vdisk: Vdisk, conn: Connection, vmx: str, doc: VmxDocument,
              desired: Desired, observed: Observed, progress: Progress) -> None:
        wanted = desired.spec.get("disk_size") or {}
        have = observed.spec.get("disk_size") or {}
        disks = vmxspec.disks_of(doc)
        files = dict(zip(disk_names(len(disks)), [f for _, f in disks], strict=True))
        for dev, size in wanted.items():
            current = have.get(dev)
            if size is None or current is None or size == current or dev not in files:
                continue
            if size < current:
                raise ProviderError(f"{desired.address}: disk {dev} cannot shrink")
            path = files[dev] if files[dev].startswith(("/", "\\")) else join(parent(vmx),
                                                                                 files[dev])
            progress(f"growing disk {dev} to {output.size_argument(size)}", None)
            vdisk.expand(path, size)

    def delete(self, change: Change, observed: Observed, conn: Connection,
               progress: Progress) -> None:
        """Stop the VM hard and delete it with `vmrun deleteVM`; disks decl did not make
        are taken out of the .vmx first, so they stay."""
        vmrun, _ = self._tools(conn)
        vmx = str(observed.handle["vmx"])
        doc = self._read_vmx(conn, vmx)
        if doc is None:
            return
        marks = vmxspec.marks_of(doc)
        if marks is None or observed.marks is None or marks.project != observed.marks.project:
            raise ProviderError(f"{observed.address}: {vmx} carries no mark of this project: "
                                "decl will not delete it")
        if observed.state == "running":
            progress(f"stopping {observed.name}", None)
            vmrun.stop_hard(vmx)
            doc = self._read_vmx(conn, vmx) or doc
        made = set(vmxspec.made_disks(doc).values())
        kept = [(slot, file) for slot, file in vmxspec.disks_of(doc) if file not in made]
        if kept:
            for slot, _ in kept:
                doc.delete_prefix(f"{slot}.")
            conn.write_file(vmx, doc.render().encode("utf-8"))
        progress(f"deleting {vmx}", None)
        vmrun.delete(vmx)
        self._remember(conn, marks.project, marks.address, None)
