"""VMware Workstation and Fusion VMs on the VM base: decl writes the .vmx, vmware-vdiskmanager
makes the disks, vmrun starts, stops and deletes. Marks are .vmx keys.

vmrun lists only running VMs, so stopped ones are found from a per-host index of the .vmx
files this project made (like the venv index) and from `options.vm_dir/NAME/NAME.vmx` of
each VM of the manifest. A running VM's .vmx belongs to VMware (edits are lost at power-off),
so decl edits it only while the VM is off.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from typing import Any

from decl.connections.base import CommandTimeout, Connection
from decl.core.plan import Action
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import Policy
from decl.errors import ProviderError
from decl.providers import images
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
from decl.providers.vmbase import RUNNING_STATES, VmProvider, VmSupport, owned_in
from decl.providers.vmspec import disk_names, disk_source_id, vm_traits
from decl.providers.vmware import locate, output, vmxspec
from decl.providers.vmware.driver import Vdisk, Vmrun, VmrunError
from decl.providers.vmware.options import VmwareOptions
from decl.providers.vmware.vmx import VmxDocument

# Disks grow only while the VM is powered off (vmware-vdiskmanager -x).
TRAITS = dataclasses.replace(vm_traits(), policies={**vm_traits().policies,
                                                    "disk_size": Policy.RESTART,
                                                    "arch": Policy.REPLACE})
INDEX_DIR = "~/.local/state/decl/vmware"
HEAD = 65536


def join(folder: str, *names: str) -> str:
    """A path on the VM's host, with the separator its folder uses."""
    sep = "\\" if "\\" in folder and "/" not in folder else "/"
    return sep.join([folder.rstrip("\\/"), *names])


def base_name(path: str) -> str:
    """The last part of a path written with either separator."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def vmx_stem(path: str) -> str:
    """NAME of a .../NAME.vmx path."""
    return base_name(path)[: -len(".vmx")]


def parent(path: str) -> str:
    """The folder of a path written with either separator."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut] if cut > 0 else path


class VmwareProvider(VmProvider[VmwareOptions]):
    """VMware Workstation (Windows, Linux) and Fusion (macOS) VMs."""

    name = "vmware"
    options_model = VmwareOptions
    traits = {"vm": TRAITS}
    support = VmSupport(arches=frozenset({"x86_64", "aarch64"}),
                        memory_multiple=4 * vmxspec.MIB, min_memory=4 * vmxspec.MIB,
                        max_disks=15)

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The VM's folder VM_DIR/NAME (NAME.vmx and its disks); VMware's default folder
        depends on the host, so only an explicit `options.vm_dir` is checked."""
        folder = self.options_of(model).vm_dir
        return [owned_in(folder, name, field=("options", "vm_dir"))] if folder else []

    def __init__(self) -> None:
        self.hosts = HostSystems()
        self._index_lock = threading.Lock()

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """Disks: empty, or copies of a local VMDK image; sizes in whole MiB."""
        problems = []
        for index, disk in enumerate(model.disks):
            if disk.image and (images.is_url(disk.image)
                               or not disk.image.lower().endswith(".vmdk")):
                problems.append(ValidationProblem(context.at("disks", index, "image"), (
                    "the vmware provider copies local .vmdk images only (vmware-vdiskmanager "
                    "-r); download or convert the image first")))
            if disk.size is not None and disk.size % vmxspec.MIB:
                problems.append(ValidationProblem(context.at("disks", index, "size"),
                                                  "VMware sizes disks in whole MiB"))
        return problems

    # -- tools and paths --------------------------------------------------------------------

    def _tools(self, conn: Connection) -> tuple[Vmrun, Vdisk]:
        system = self.hosts.system(conn)
        found = {}
        for tool in ("vmrun", "vmware-vdiskmanager"):
            path = self.hosts.tool(conn, locate.program_name(tool, system),
                                   functools.partial(locate.install_locations, tool))
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
        for item in wanted:
            candidates[self._vmx_path(conn, item.name, self.options_of(item.model))] = item
        for path in [*self._index(conn, project).values(), *running]:
            if not any(locate.same_vmx_path(path, known, system) for known in candidates):
                candidates[path] = None
        for path, desired in candidates.items():
            doc = self._read_vmx(conn, path)
            if doc is None:
                continue
            marks = vmxspec.marks_of(doc)
            address = orphan_address(marks, project, desired)
            if address is None:
                continue
            name = vmx_stem(path)
            sizes = self._disk_sizes(conn, path, doc)
            is_running = any(locate.same_vmx_path(path, r, system) for r in running)
            found.observed.append(Observed(
                address=address, kind="vm", name=desired.name if desired else name,
                provider=self.name, host=conn.host, state="running" if is_running else "stopped",
                spec=vmxspec.observed_spec(doc, desired.name if desired else name, sizes),
                marks=marks, handle={"vmx": path}))
        found_addresses = {o.address for o in found.observed}
        for desired in wanted:
            if desired.state != "absent":
                problem = self._problem(conn, desired, desired.address in found_addresses)
                if problem:
                    found.problems[desired.address] = problem
        return found

    def _disk_sizes(self, conn: Connection, path: str, doc: VmxDocument
                    ) -> dict[str, int | None]:
        """Capacity of each disk the .vmx at `path` names (file name as written -> bytes),
        read from the head of its descriptor."""
        sizes = {}
        for _, file in vmxspec.disks_of(doc):
            absolute = file if file.startswith(("/", "\\")) or ":" in file[:3] \
                else join(parent(path), file)
            head = self._read_head(conn, absolute)
            sizes[file] = output.vmdk_capacity(head) if head is not None else None
        return sizes

    # -- import ---------------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """VMs whose .vmx has no decl marks: the running ones (`vmrun list`: vmrun lists no
        stopped VM) and those given with --path (a .vmx, or a VM folder NAME holding
        NAME.vmx), read as discovery reads them (the .vmx and its disks' descriptors)."""
        vmrun, _ = self._tools(conn)
        system = self.hosts.system(conn)
        running = vmrun.running()
        paths: list[str] = []
        for given in [*running, *(conn.expand_user(p) for p in scope.paths)]:
            path = given if given.lower().endswith(".vmx") else \
                join(given, base_name(given) + ".vmx")
            if not any(locate.same_vmx_path(path, known, system) for known in paths):
                paths.append(path)
        found = []
        for path in paths:
            doc = self._read_vmx(conn, path)
            if doc is None or vmxspec.marks_of(doc) is not None:
                continue
            name = vmx_stem(path)
            is_running = any(locate.same_vmx_path(path, r, system) for r in running)
            found.append(Observed(
                address=f"vm.{name}", kind="vm", name=name, provider=self.name,
                host=conn.host, state="running" if is_running else "stopped",
                spec=vmxspec.observed_spec(doc, name, self._disk_sizes(conn, path, doc)),
                marks=None, handle={"vmx": path, "cdrom_slot": vmxspec.cdrom_slot(doc)}))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """cpus, memory, arch, firmware, disk sizes, cdrom, network, guest OS and the folder
        it sits in (options.vm_dir), from the .vmx. The disks were not made by decl:
        `ignore_changes: [disk_source]` keeps decl from ever remaking them."""
        return vmxspec.manifest_entry(observed)

    def _problem(self, conn: Connection, desired: Desired, exists: bool) -> str | None:
        model = desired.model
        for disk in model.disks:
            if disk.image and not exists:
                problem = images.image_problem(conn, disk.image, disk.checksum)
                if problem:
                    return problem
        if model.cdrom and not conn.exists(conn.expand_user(model.cdrom)):
            return f"cdrom {model.cdrom} does not exist on host {conn.host}"
        return None

    # -- primitives -----------------------------------------------------------------------------

    def _vmx_for(self, op: Operation) -> str:
        """The VM's .vmx: where discovery found it (vm_dir is used at creation only), else
        where the manifest puts it."""
        if op.observed is not None:
            return str(op.observed.handle["vmx"])
        return self._new_vmx(op)

    def _new_vmx(self, op: Operation) -> str:
        """Where a new VM's .vmx goes: options.vm_dir/NAME/NAME.vmx."""
        return self._vmx_path(op.conn, op.name, self.options_of(op.need_desired().model))

    def replace(self, op: Operation) -> None:
        """Delete the VM where it is, then create it where the manifest puts it."""
        if op.observed is not None:
            self.delete(op)
        self.create(dataclasses.replace(op, observed=None))

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the .vmx now."""
        doc = self._read_vmx(op.conn, self._vmx_for(op))
        return vmxspec.marks_of(doc) if doc is not None else None

    def power_state(self, op: Operation) -> str | None:
        """running when `vmrun list` names the .vmx, stopped otherwise; None when gone."""
        vmx = self._vmx_for(op)
        if not op.conn.exists(vmx):
            return None
        vmrun, _ = self._tools(op.conn)
        system = self.hosts.system(op.conn)
        return "running" if any(locate.same_vmx_path(vmx, path, system)
                                for path in vmrun.running()) else "stopped"

    def power_on(self, op: Operation, options: VmwareOptions) -> None:
        """`vmrun start VMX nogui|gui`."""
        vmrun, _ = self._tools(op.conn)
        vmrun.start(self._vmx_for(op), options.graphics)

    def soft_stop(self, op: Operation, options: VmwareOptions) -> bool:
        """`vmrun stop soft` (needs VMware Tools; blocks up to options.shutdown_timeout).
        False when vmrun refused (no Tools): the base stops hard at once."""
        vmrun, _ = self._tools(op.conn)
        vmx = self._vmx_for(op)
        try:
            vmrun.run(["stop", vmx, "soft"], f"stopping {vmx}",
                      timeout=max(float(options.shutdown_timeout), 1.0))
        except CommandTimeout:
            return True  # still running: the base stops it hard
        except VmrunError as exc:
            return output.not_powered_on(str(exc))
        return True

    def hard_stop(self, op: Operation, options: VmwareOptions) -> None:
        """`vmrun stop hard`."""
        vmrun, _ = self._tools(op.conn)
        vmrun.stop_hard(self._vmx_for(op))

    def define(self, op: Operation, options: VmwareOptions) -> None:
        """Disks, then the .vmx (written atomically, marks included), then the index; a
        failure removes what this call made, so the next plan creates it again."""
        conn, desired = op.conn, op.need_desired()
        _, vdisk = self._tools(conn)
        model = desired.model
        vmx = self._new_vmx(op)
        if conn.exists(vmx):
            raise ProviderError(f"{desired.address}: {vmx} already exists")
        folder = parent(vmx)
        made: list[str] = []
        if op.change.in_flight:
            # An apply that died while making this VM (before its .vmx, which carries the
            # marks) may have left the disks it names for it.
            for dev in disk_names(len(model.disks)):
                leftover = join(folder, f"{desired.name}-{dev}.vmdk")
                if conn.exists(leftover):
                    self._remove_disk_files(conn, leftover)
        try:
            if not conn.exists(folder):
                conn.makedirs(folder)
            doc = vmxspec.new_document(desired.name, options.hw_version)
            for index, (dev, disk) in enumerate(zip(disk_names(len(model.disks)), model.disks,
                                                    strict=True)):
                file = f"{desired.name}-{dev}.vmdk"
                path = join(folder, file)
                op.progress(f"making disk {dev} ({path})", None)
                if disk.image:
                    source = images.ensure_image(conn, disk.image, disk.checksum, folder,
                                                 op.progress)
                    vdisk.convert(source, path)
                    made.append(path)
                    capacity = output.vmdk_capacity(self._read_head(conn, path) or b"") or 0
                    if disk.size is not None and disk.size > capacity:
                        vdisk.expand(path, disk.size)
                else:
                    vdisk.create(path, disk.size)
                    made.append(path)
                vmxspec.add_disk(doc, index, dev, file, disk_source_id(disk))
            cdrom = conn.expand_user(model.cdrom) if model.cdrom else None
            vmxspec.apply_spec(doc, desired.name, desired.spec, options.nic_type, cdrom)
            vmxspec.set_marks(doc, op.marks())
            conn.write_file(vmx, doc.render().encode("utf-8"))
            made.append(vmx)
            self._remember(conn, op.project, desired.address, vmx)
        except BaseException:
            for path in made:
                try:
                    self._remove_disk_files(conn, path)
                except (OSError, ProviderError):
                    pass  # the original error is the one to report
            raise

    def _remove_disk_files(self, conn: Connection, path: str) -> None:
        """A file decl made; for a .vmdk also its extents."""
        if path.endswith(".vmdk"):
            head = self._read_head(conn, path)
            for name in output.vmdk_extent_files(head or b""):
                conn.remove(join(parent(path), name))
        conn.remove(path)

    def modify(self, op: Operation, options: VmwareOptions, fields: set[str]) -> None:
        """Edit the .vmx keeping every other line, put the marks, write it atomically (the
        VM is off: see adopt)."""
        conn, desired = op.conn, op.need_desired()
        vmx = self._vmx_for(op)
        doc = self._read_vmx(conn, vmx)
        if doc is None:
            raise ProviderError(f"{op.address}: {vmx} is gone")
        cdrom = desired.spec.get("cdrom")
        vmxspec.apply_spec(doc, desired.name, desired.spec, options.nic_type,
                           conn.expand_user(cdrom) if cdrom else None)
        if op.action is Action.ADOPT:
            wanted = desired.spec.get("disk_source") or {}
            disks = vmxspec.disks_of(doc)
            for dev, (_, file) in zip(disk_names(len(disks)), disks, strict=True):
                if dev in wanted and doc.get(f"decl.disk.{dev}.file") is None:
                    doc.update([(f"decl.disk.{dev}.file", file),
                                (f"decl.disk.{dev}.source", str(wanted[dev]))])
        vmxspec.set_marks(doc, op.marks())
        op.progress(f"writing {vmx}", None)
        conn.write_file(vmx, doc.render().encode("utf-8"))
        self._remember(conn, op.project, desired.address, vmx)

    def update(self, op: Operation) -> None:
        """Every VMware change edits the .vmx, which a running VM would overwrite at
        power-off: always the restart path."""
        self.restart_update(op)

    def adopt(self, op: Operation) -> None:
        """The marks go in the .vmx, so a running VM is stopped for it and started again."""
        self.restart_update(op)

    def grow_disk(self, op: Operation, options: VmwareOptions, dev: str, size: int,
                  running: bool) -> None:
        """`vmware-vdiskmanager -x` (the VM is powered off)."""
        vmx = self._vmx_for(op)
        doc = self._read_vmx(op.conn, vmx)
        if doc is None:
            raise ProviderError(f"{op.address}: {vmx} is gone")
        disks = vmxspec.disks_of(doc)
        files = dict(zip(disk_names(len(disks)), [f for _, f in disks], strict=True))
        if dev in files:
            file = files[dev]
            path = file if file.startswith(("/", "\\")) else join(parent(vmx), file)
            _, vdisk = self._tools(op.conn)
            vdisk.expand(path, size)

    def remove(self, op: Operation, options: VmwareOptions) -> None:
        """`vmrun deleteVM`; disks decl did not make are taken out of the .vmx first, so
        they stay. The VM leaves the index."""
        conn = op.conn
        vmrun, _ = self._tools(conn)
        vmx = self._vmx_for(op)
        doc = self._read_vmx(conn, vmx)
        if doc is None:
            return
        marks = vmxspec.marks_of(doc)
        made = set(vmxspec.made_disks(doc).values())
        kept = [(slot, file) for slot, file in vmxspec.disks_of(doc) if file not in made]
        if kept:
            for slot, _ in kept:
                doc.delete_prefix(f"{slot}.")
            conn.write_file(vmx, doc.render().encode("utf-8"))
        vmrun.delete(vmx)
        if marks is not None:
            self._remember(conn, marks.project, marks.address, None)


__all__ = ["RUNNING_STATES", "VmwareProvider"]
