"""The Hyper-V provider: VMs on a Windows host through PowerShell's Hyper-V cmdlets.

Scripts run as `powershell.exe -NoProfile -NonInteractive -Command <script>` (or `pwsh`)
through the host's Connection; every value in them is a PowerShell literal. Ownership marks
live in the VM's Notes (see notes.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator

from decl.connections.base import CommandTimeout, Connection
from decl.core.resource import PENDING_SPEC_HASH, Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ProviderError
from decl.manifest.model import check_windows_path
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    Operation,
    OwnedName,
    OwnedPath,
    Progress,
    ValidateContext,
    ValidationProblem,
)
from decl.providers.hyperv import notes as vm_notes
from decl.providers.hyperv import powershell as ps
from decl.providers.vmbase import VmOptions, VmProvider, VmSupport, owned_in
from decl.providers.vmspec import check_vm_field, disk_names

PENDING_HASH = PENDING_SPEC_HASH
DEFAULT_SWITCH = "Default Switch"
MIB2 = 2 * 1024 * 1024
# Hyper-V's VMState enum (ConvertTo-Json writes it as an integer).
VM_STATES = {
    1: "other", 2: "running", 3: "stopped", 4: "stopping", 6: "saved", 9: "paused",
    10: "starting", 11: "reset", 32773: "saving", 32776: "pausing", 32777: "resuming",
    32779: "fastsaved", 32780: "fastsaving", 32781: "forceshutdown", 32782: "forcereboot",
}
STATE_WORDS = {"running": "running", "off": "stopped"}

TRAITS = KindTraits(
    policies={
        "cpus": Policy.RESTART,
        "memory": Policy.RESTART,
        "switch": Policy.LIVE,
        "generation": Policy.REPLACE,
        "disk_count": Policy.REPLACE,
        "disk_source": Policy.REPLACE,
        # Resize-VHD grows an IDE-attached disk (generation 1) only while the VM is off
        "disk_size": Policy.RESTART,
        "disk_mode": Policy.REPLACE,
        "path": Policy.REPLACE,
    },
    default_policy=Policy.REPLACE,
    destroys_data="its disks",
    has_run_state=True,
    size_fields=frozenset({"memory", "disk_size"}),
    check=check_vm_field,
    # New-VM and the Notes with the marks are two calls: a VM can exist unmarked.
    half_made=True,
)


class HypervOptions(VmOptions):
    """`options:` of a VM with `provider: hyperv`."""

    generation: Literal[1, 2] | None = Field(
        None, description="VM generation (default: 2 for firmware uefi, 1 for bios).")
    switch: str | None = Field(
        None, description="Virtual switch to connect (default: network.bridge for mode "
        "bridge, 'Default Switch' for nat, none for none).")
    path: str | None = Field(None, description="Folder of the VM's configuration (New-VM -Path).")
    disk_dir: str | None = Field(
        None, description="Folder for the VHDX files decl makes (default: the host's "
        "VirtualHardDiskPath\\NAME).")
    disk_mode: Literal["differencing", "copy"] = Field(
        "differencing", description="How a disk is made from `image`: a differencing disk "
        "on top of it, or a copy.")
    shutdown_timeout: float = Field(
        120.0, ge=0, validation_alias=AliasChoices("shutdown_timeout", "stop_timeout"),
        description="Seconds a graceful shutdown (Stop-VM) may take before the VM is turned "
        "off (Stop-VM -TurnOff); `stop_timeout` is an older name of it.")
    powershell: Literal["powershell.exe", "pwsh"] | None = Field(
        None, description="PowerShell to run (default: powershell.exe, else pwsh).")

    @field_validator("path", "disk_dir")
    @classmethod
    def _windows(cls, value: str | None) -> str | None:
        return None if value is None else check_windows_path(value)


def vm_state(value: Any) -> str:
    """decl's run state from Get-VM's State (an integer enum, or its name as text)."""
    if isinstance(value, int):
        return VM_STATES.get(value, f"state-{value}")
    word = str(value or "").strip().lower()
    return STATE_WORDS.get(word, word or "unknown")


def disk_source(image: str | None) -> str:
    """What a disk is made from, as compared: the parent image's path (Windows paths compare
    without case), or "empty"."""
    return image.lower() if image else "empty"


def observed_disks(attached: list[str], vhds: dict[str, dict[str, Any]],
                   created: dict[str, Any]) -> dict[str, Any]:
    """disk_count, disk_size and disk_source of a VM from its attached drives and Get-VHD.

    Sizes are Get-VHD's virtual sizes; a differencing disk's source is its ParentPath. A copy
    of an image has no parent: its source is taken from the creation record in the VM's Notes
    (Hyper-V cannot tell a copy from an empty disk). A drive Get-VHD could not read shows as
    size None, source "missing"."""
    made = list(created.get("disks") or [])
    devs = disk_names(len(attached))
    sizes: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for index, (dev, path) in enumerate(zip(devs, attached, strict=True)):
        vhd = vhds.get(path.lower())
        if vhd is None:
            sizes[dev], sources[dev] = None, "missing"
            continue
        sizes[dev] = vhd.get("Size")
        parent = vhd.get("ParentPath") or None
        recorded = made[index].get("image") if index < len(made) and \
            isinstance(made[index], dict) else None
        if parent is None and recorded and created.get("disk_mode") == "copy":
            parent = recorded
        sources[dev] = disk_source(parent)
    return {"disk_count": len(attached), "disk_size": sizes, "disk_source": sources}


def windows_join(directory: str, name: str) -> str:
    """DIR\\NAME for a Windows folder."""
    return directory.rstrip("\\/") + "\\" + name


class HypervProvider(VmProvider[HypervOptions]):
    """`vms:` with `provider: hyperv`."""

    name: ClassVar[str] = "hyperv"
    traits: ClassVar[dict[str, KindTraits]] = {"vm": TRAITS}
    parallel_limit: ClassVar[int | None] = 2
    options_model = HypervOptions
    support = VmSupport(arches=frozenset({"x86_64", "aarch64"}), cdrom=False,
                        cloud_init=False, memory_multiple=MIB2, min_memory=32 * 1024 * 1024)

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The VHDX files decl makes in `options.disk_dir` (NAME.vhdx, NAME-diskN.vhdx) and
        deletes with the VM. Without disk_dir they go to the host's VirtualHardDiskPath\\NAME,
        which only the host knows (the names, compared case-blind, keep those apart)."""
        folder = self.options_of(model).disk_dir
        if not folder:
            return []
        return [owned_in(folder, f"{name}{'' if index == 0 else f'-disk{index}'}.vhdx",
                         field=("options", "disk_dir"), what="disk file")
                for index in range(len(getattr(model, "disks", None) or []))]

    def owned_name(self, kind: str, name: str, model: Any, spec: dict[str, Any]) -> OwnedName:
        """Hyper-V VM names ignore case."""
        return OwnedName(name.lower())

    def __init__(self) -> None:
        self._exe: dict[str, str] = {}  # PowerShell found per host: a cache, not call state

    # -- desired -------------------------------------------------------------------------

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """generation against firmware; disk images are .vhdx paths on the Windows host."""
        problems = []
        generation = 2 if model.firmware == "uefi" else 1
        if options.generation is not None and "firmware" in model.model_fields_set \
                and options.generation != generation:
            problems.append(ValidationProblem(context.at("options", "generation"), (
                f"options.generation {options.generation} contradicts firmware "
                f"{model.firmware}")))
        for index, disk in enumerate(model.disks):
            if disk.image is None:
                continue
            try:
                check_windows_path(disk.image)
            except ValueError as exc:
                problems.append(ValidationProblem(context.at("disks", index, "image"), (
                    f"{exc} (Hyper-V takes a .vhdx or .vhd on the Windows host)")))
        return problems

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """cpus, memory, generation, switch, disks (and how they are made), path."""
        options = self.options_of(model)
        generation = options.generation or (2 if model.firmware == "uefi" else 1)
        devs = disk_names(len(model.disks))
        if options.switch is not None:
            switch = options.switch
        elif model.network.mode == "bridge":
            switch = model.network.bridge or ""
        elif model.network.mode == "nat":
            switch = DEFAULT_SWITCH
        else:
            switch = ""
        return {
            "cpus": model.cpus,
            "memory": model.memory,
            "generation": generation,
            "switch": switch,
            "disk_count": len(model.disks),
            "disk_size": {dev: disk.size for dev, disk in zip(devs, model.disks, strict=True)},
            "disk_source": {dev: disk_source(disk.image)
                            for dev, disk in zip(devs, model.disks, strict=True)},
            "disk_mode": options.disk_mode if any(d.image for d in model.disks) else None,
            "path": options.path,
        }

    # -- check and discover --------------------------------------------------------------

    def _powershell(self, conn: Connection, desired: Desired | None = None) -> str:
        if desired is not None and desired.model is not None:
            chosen = (desired.model.options or {}).get("powershell")
            if chosen:
                return str(chosen)
        if conn.host not in self._exe:
            for exe in ("powershell.exe", "pwsh"):
                if conn.which(exe):
                    self._exe[conn.host] = exe
                    break
            else:
                self._exe[conn.host] = "powershell.exe"
        return self._exe[conn.host]

    def check(self, conn: Connection) -> Availability:
        """PowerShell on the host, with the Hyper-V module."""
        if not (conn.which("powershell.exe") or conn.which("pwsh")):
            return Availability(False, detail=f"neither powershell.exe nor pwsh was found on "
                                f"host {conn.host}")
        exe = self._powershell(conn)
        result = ps.run(conn, exe, ps.script(
            "Get-Module -ListAvailable -Name Hyper-V | Select-Object Name, Version "
            "| ConvertTo-Json"), timeout=120)
        if not result.ok:
            return Availability(False, detail=f"{exe} failed: {ps.error_text(result)}")
        try:
            modules = ps.parse_json_list(result.out)
        except ValueError:
            modules = []
        if not modules:
            return Availability(False, detail=f"the Hyper-V PowerShell module is not installed "
                                f"on host {conn.host} (enable the Hyper-V feature)")
        version = modules[0].get("Version")
        if isinstance(version, dict):
            version = f"{version.get('Major')}.{version.get('Minor')}"
        return Availability(True, version=str(version) if version else None, detail=exe)

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Every VM, its network adapters and disks, and the virtual switches: one script."""
        exe = self._powershell(conn, wanted[0] if wanted else None)
        text = ps.checked(conn, exe, ps.script(
            "Get-VM | Select-Object Name, Id, State, ProcessorCount, MemoryStartup, "
            "Generation, Notes, Path | ConvertTo-Json",
            f"Write-Output '{ps.SEPARATOR}'",
            "Get-VM | Get-VMNetworkAdapter | Select-Object VMId, SwitchName | ConvertTo-Json",
            f"Write-Output '{ps.SEPARATOR}'",
            "Get-VM | Get-VMHardDiskDrive | Select-Object VMId, Path | ConvertTo-Json",
            f"Write-Output '{ps.SEPARATOR}'",
            "Get-VMSwitch | Select-Object Name, SwitchType | ConvertTo-Json",
            f"Write-Output '{ps.SEPARATOR}'",
            "Get-VM | Get-VMHardDiskDrive | Get-VHD -ErrorAction SilentlyContinue | "
            "Select-Object Path, Size, ParentPath | ConvertTo-Json",
        ), f"listing Hyper-V VMs on host {conn.host}", timeout=300)
        try:
            vms_s, nics_s, disks_s, switches_s, vhds_s = ps.split_sections(text, 5)
            vms = ps.parse_json_list(vms_s)
            nics = ps.parse_json_list(nics_s)
            drives = ps.parse_json_list(disks_s)
            switches = {str(s.get("Name", "")).lower() for s in ps.parse_json_list(switches_s)}
            vhds = {str(v.get("Path", "")).lower(): v for v in ps.parse_json_list(vhds_s)}
        except ValueError as exc:
            raise ProviderError(f"unexpected output from Get-VM on host {conn.host}: {exc}") \
                from None
        return self._match(conn, project, wanted, vms, nics, drives, switches, vhds)

    def _match(self, conn: Connection, project: str, wanted: list[Desired],
               vms: list[dict[str, Any]], nics: list[dict[str, Any]],
               drives: list[dict[str, Any]], switches: set[str],
               vhds: dict[str, dict[str, Any]]) -> Discovery:
        found = Discovery()
        by_address = {d.address: d for d in wanted}
        parsed = []
        for vm in vms:
            marks, created, user_notes = vm_notes.parse_notes(vm.get("Notes"))
            parsed.append((vm, marks, created, user_notes))
        claimed: set[str] = set()
        for vm, marks, created, user_notes in parsed:
            if marks is None or marks.project != project:
                continue
            desired = by_address.get(marks.address)
            if desired is not None and marks.address in claimed:
                found.problems[desired.address] = (
                    f"two Hyper-V VMs carry the marks of {desired.address} on host {conn.host}")
                continue
            claimed.add(marks.address)
            found.observed.append(self._observed(conn, marks.address, vm, marks, created,
                                                 user_notes, desired, nics, drives,
                                                 vhds))
        for desired in wanted:
            if desired.address in claimed:
                continue
            same = [p for p in parsed if str(p[0].get("Name", "")).lower() == desired.name.lower()
                    and not (p[1] is not None and p[1].project == project)]
            if len(same) > 1:
                found.problems[desired.address] = (
                    f"{len(same)} Hyper-V VMs are named {desired.name!r} on host {conn.host}: "
                    "decl cannot tell which one is meant (rename or remove the others)")
                continue
            if same:
                vm, marks, created, user_notes = same[0]
                found.observed.append(self._observed(conn, desired.address, vm, marks, created,
                                                     user_notes, desired, nics, drives,
                                                 vhds))
            switch = desired.spec.get("switch")
            if desired.state != "absent" and switch and switch.lower() not in switches:
                found.problems[desired.address] = (
                    f"virtual switch {switch!r} does not exist on host {conn.host} "
                    f"(Get-VMSwitch lists: {', '.join(sorted(switches)) or 'none'})")
        return found

    def _observed(self, conn: Connection, address: str, vm: dict[str, Any],
                  marks: Marks | None, created: dict[str, Any], user_notes: str,
                  desired: Desired | None, nics: list[dict[str, Any]],
                  drives: list[dict[str, Any]], vhds: dict[str, dict[str, Any]]) -> Observed:
        vm_id = str(vm.get("Id", ""))
        adapters = [n for n in nics if str(n.get("VMId", "")).lower() == vm_id.lower()]
        attached = [str(d.get("Path")) for d in drives
                    if str(d.get("VMId", "")).lower() == vm_id.lower()]
        if not created and desired is not None:
            # How an unmarked VM was made (copy or differencing, its config folder) cannot be
            # observed: taken as wanted.
            created = {"disk_mode": desired.spec.get("disk_mode"),
                       "path": desired.spec.get("path")}
        switch = str(adapters[0].get("SwitchName") or "") if adapters else ""
        disks = observed_disks(attached, vhds, created)
        return Observed(
            address=address, kind="vm", name=address.split(".", 1)[1], provider=self.name,
            host=conn.host, state=vm_state(vm.get("State")),
            spec={
                "cpus": vm.get("ProcessorCount"),
                "memory": vm.get("MemoryStartup"),
                "generation": vm.get("Generation"),
                "switch": switch,
                **disks,
                "disk_mode": created.get("disk_mode"),
                "path": created.get("path"),
            },
            marks=marks,
            handle={"id": vm_id, "name": vm.get("Name"), "notes": user_notes,
                    "created": created, "attached": attached},
        )

    # -- backend primitives ----------------------------------------------------------------

    @staticmethod
    def _vm(vm_id: str) -> str:
        return ps.command("Get-VM", Id=vm_id)

    def _id(self, op: Operation) -> str:
        observed = op.need_observed()
        if not observed.handle.get("id"):
            raise ProviderError(f"{op.address}: the VM was not found on host {op.conn.host}")
        return str(observed.handle["id"])

    def _get(self, op: Operation, vm_id: str) -> dict[str, Any] | None:
        """Name, State and Notes of the VM now (None when it is gone)."""
        exe = self._powershell(op.conn, op.desired)
        result = ps.run(op.conn, exe, ps.script(
            ps.command("Get-VM", Id=vm_id, ErrorAction="SilentlyContinue")
            + " | Select-Object Name, State, Notes | ConvertTo-Json"))
        if not result.ok:
            raise ProviderError(f"{op.address}: Get-VM failed: {ps.error_text(result)}")
        try:
            found = ps.parse_json_list(result.out)
        except ValueError:
            return None
        return found[0] if found else None

    def _vm_id(self, op: Operation) -> str:
        """The VM's id: found by discovery, or made by define() in this operation."""
        if op.observed is not None and op.observed.handle.get("id"):
            return str(op.observed.handle["id"])
        exe = self._powershell(op.conn, op.desired)
        out = ps.checked(op.conn, exe, ps.script(
            ps.command("Get-VM", Name=op.name) + " | Select-Object Id, Notes | ConvertTo-Json"),
            f"{op.address}: finding VM {op.name!r}")
        for vm in ps.parse_json_list(out):
            marks, _, _ = vm_notes.parse_notes(vm.get("Notes"))
            if marks is not None and marks.project == op.project and \
                    marks.address == op.address:
                return str(vm["Id"])
        raise ProviderError(f"{op.address}: the VM was not found on host {op.conn.host}")

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the VM's Notes."""
        vm = self._get(op, self._id(op))
        return vm_notes.parse_notes(vm.get("Notes"))[0] if vm is not None else None

    def power_state(self, op: Operation) -> str | None:
        """Get-VM's State, in decl's words."""
        vm = self._get(op, self._vm_id(op))
        return vm_state(vm.get("State")) if vm is not None else None

    def power_on(self, op: Operation, options: HypervOptions) -> None:
        """Start-VM."""
        exe = self._powershell(op.conn, op.desired)
        op.progress(f"Start-VM {op.name}", None)
        ps.checked(op.conn, exe, ps.script(f"{self._vm(self._vm_id(op))} | Start-VM"),
                   f"{op.address}: starting VM {op.name!r}")

    def soft_stop(self, op: Operation, options: HypervOptions) -> bool:
        """Stop-VM -Force: a shutdown through the guest, waited for up to shutdown_timeout."""
        exe = self._powershell(op.conn, op.desired)
        timeout = options.shutdown_timeout
        op.progress(f"Stop-VM {op.name} (shutdown, up to {timeout:g} s)", None)
        try:
            result = ps.run(op.conn, exe, ps.script(f"{self._vm(self._vm_id(op))} | "
                                                    "Stop-VM -Force"), timeout=timeout)
        except CommandTimeout:
            return True  # still shutting down: the base waits out the rest, then turns off
        if not result.ok:
            op.progress(f"Stop-VM failed: {ps.error_text(result)}", None)
        return result.ok

    def hard_stop(self, op: Operation, options: HypervOptions) -> None:
        """Stop-VM -TurnOff."""
        exe = self._powershell(op.conn, op.desired)
        op.progress(f"Stop-VM {op.name} -TurnOff", None)
        ps.checked(op.conn, exe, ps.script(f"{self._vm(self._vm_id(op))} | "
                                           "Stop-VM -TurnOff -Force"),
                   f"{op.address}: turning off VM {op.name!r}")

    def grow_disk(self, op: Operation, options: HypervOptions, dev: str, size: int,
                  running: bool) -> None:
        """Resize-VHD of the attached disk `dev` (the VM is off: the policy is restart)."""
        attached = list(op.need_observed().handle.get("attached") or [])
        index = disk_names(len(attached)).index(dev) if dev in disk_names(len(attached)) \
            else None
        if index is None:
            raise ProviderError(f"{op.address}: disk {dev} is not attached")
        exe = self._powershell(op.conn, op.desired)
        ps.checked(op.conn, exe, ps.script(ps.command("Resize-VHD", Path=attached[index],
                                                      SizeBytes=size)),
                   f"{op.address}: growing disk {attached[index]}")

    def define(self, op: Operation, options: HypervOptions) -> None:
        """Make the disks, New-VM, mark it (pending), then configure it and mark it done."""
        conn, desired = op.conn, op.need_desired()
        exe = self._powershell(conn, desired)
        spec = desired.spec
        disks = [{"size": disk.size, "image": disk.image} for disk in desired.model.disks]
        what = f"{desired.address}: creating VM {desired.name!r}"
        made: list[str] = []
        paths: list[str] = []
        if disks:
            directory = options.disk_dir or windows_join(self._vhd_root(conn, exe, what),
                                                         desired.name)
            for index in range(len(disks)):
                suffix = "" if index == 0 else f"-disk{index}"
                paths.append(windows_join(directory, f"{desired.name}{suffix}.vhdx"))
            if op.change.in_flight:
                # An apply that died while making this VM may have left its disk files.
                self._remove_files(conn, exe, paths)
            try:
                self._make_disks(conn, exe, what, directory, disks, spec.get("disk_mode"),
                                 paths, made, op.progress)
            except ProviderError:
                self._remove_files(conn, exe, made)
                raise
        op.progress(f"New-VM {desired.name}", None)
        new_vm = ps.command("New-VM", Name=desired.name, Generation=spec["generation"],
                            MemoryStartupBytes=spec["memory"],
                            VHDPath=paths[0] if paths else None, NoVHD=not paths,
                            SwitchName=spec["switch"] or None, Path=spec.get("path"))
        try:
            out = ps.checked(conn, exe, ps.script(f"{new_vm} | Select-Object Id | ConvertTo-Json"),
                             what)
            vm_id = str(ps.parse_json_list(out)[0]["Id"])
        except (ProviderError, ValueError, KeyError, IndexError) as exc:
            self._remove_files(conn, exe, made)
            raise ProviderError(str(exc)) from None
        created = {"disks": disks, "disk_mode": spec.get("disk_mode"),
                   "path": spec.get("path"), "made": made}
        marks = op.marks()
        pending = vm_notes.with_marks("", Marks(marks.project, desired.address, PENDING_HASH),
                                      created)
        try:
            ps.checked(conn, exe, ps.script(f"{self._vm(vm_id)} | "
                                            + ps.command("Set-VM", Notes=pending)),
                       f"{desired.address}: marking the new VM")
        except ProviderError:
            # Not marked: it would block the next plan as a conflict. It is ours: remove it.
            ps.run(conn, exe, ps.script(f"{self._vm(vm_id)} | Remove-VM -Force"))
            self._remove_files(conn, exe, made)
            raise
        statements = [f"{self._vm(vm_id)} | " + ps.command("Add-VMHardDiskDrive", Path=path)
                      for path in paths[1:]]
        final = vm_notes.with_marks("", marks, created)
        statements.append(f"{self._vm(vm_id)} | " + ps.command(
            "Set-VM", ProcessorCount=spec["cpus"], Notes=final))
        op.progress(f"Set-VM {desired.name}: {spec['cpus']} CPUs", None)
        ps.checked(conn, exe, ps.script(*statements), f"{desired.address}: configuring the VM")

    def modify(self, op: Operation, options: HypervOptions, fields: set[str]) -> None:
        """Set-VM (cpus, memory, Notes with the marks) and the network adapter's switch."""
        conn, desired, observed = op.conn, op.need_desired(), op.need_observed()
        exe = self._powershell(conn, desired)
        spec = desired.spec
        vm_id = self._id(op)
        created = observed.handle.get("created") or {
            k: spec.get(k) for k in ("disk_mode", "path")}
        notes = vm_notes.with_marks(observed.handle.get("notes", ""), op.marks(), created)
        params: dict[str, Any] = {"Notes": notes}
        if "cpus" in fields:
            params["ProcessorCount"] = spec["cpus"]
        if "memory" in fields:
            params["MemoryStartupBytes"] = spec["memory"]
        statements = []
        if "switch" in fields:
            adapters = f"{self._vm(vm_id)} | Get-VMNetworkAdapter | "
            if spec["switch"]:
                statements.append(adapters + ps.command("Connect-VMNetworkAdapter",
                                                        SwitchName=spec["switch"]))
            else:
                statements.append(adapters + "Disconnect-VMNetworkAdapter")
        statements.append(f"{self._vm(vm_id)} | " + ps.command("Set-VM", **params))
        op.progress(f"Set-VM {desired.name}", None)
        ps.checked(conn, exe, ps.script(*statements), f"{desired.address}: updating the VM")

    def remove(self, op: Operation, options: HypervOptions) -> None:
        """Remove-VM, then the disk files decl made (nothing else)."""
        conn, observed = op.conn, op.need_observed()
        exe = self._powershell(conn, op.desired)
        vm_id = self._id(op)
        name = observed.handle.get("name")
        made = list((observed.handle.get("created") or {}).get("made") or [])
        if op.change.in_flight and observed.marks is None:
            # Half-made by an apply that died: the disks attached are the ones decl made.
            made = list(observed.handle.get("attached") or [])
        op.progress(f"Remove-VM {name}" + (f" and {len(made)} disk(s)" if made else ""), None)
        ps.checked(conn, exe, ps.script(f"{self._vm(vm_id)} | Remove-VM -Force"),
                   f"{op.address}: removing VM {name!r}")
        if made:
            ps.checked(conn, exe, ps.script(*[
                ps.command("Remove-Item", LiteralPath=p, Force=True,
                           ErrorAction="SilentlyContinue") for p in made]),
                f"{op.address}: deleting the disks of {name!r}")

    def _vhd_root(self, conn: Connection, exe: str, what: str) -> str:
        out = ps.checked(conn, exe, ps.script(
            "Get-VMHost | Select-Object VirtualHardDiskPath | ConvertTo-Json"), what)
        try:
            return str(ps.parse_json_list(out)[0]["VirtualHardDiskPath"])
        except (ValueError, KeyError, IndexError):
            raise ProviderError(f"{what}: Get-VMHost did not say where disks go "
                                "(set options.disk_dir)") from None

    def _make_disks(self, conn: Connection, exe: str, what: str, directory: str,
                    disks: list[dict[str, Any]], disk_mode: str | None, paths: list[str],
                    made: list[str], progress: Progress) -> None:
        ps.checked(conn, exe, ps.script(
            ps.command("New-Item", ItemType="Directory", Force=True, Path=directory)
            + " | Out-Null"), what)
        for disk, path in zip(disks, paths, strict=True):
            statements = []
            if disk["image"] and disk_mode == "copy":
                progress(f"copying {disk['image']} to {path}", None)
                statements.append(ps.command("Copy-Item", LiteralPath=disk["image"],
                                             Destination=path))
            elif disk["image"]:
                progress(f"differencing disk {path} on {disk['image']}", None)
                statements.append(ps.command("New-VHD", Path=path, ParentPath=disk["image"],
                                             Differencing=True) + " | Out-Null")
            else:
                progress(f"new disk {path} of {format_size(disk['size'])}", None)
                statements.append(ps.command("New-VHD", Path=path, SizeBytes=disk["size"],
                                             Dynamic=True) + " | Out-Null")
            if disk["image"] and disk["size"]:
                statements.append(ps.command("Resize-VHD", Path=path, SizeBytes=disk["size"]))
            ps.checked(conn, exe, ps.script(*statements[:1]), f"{what}: disk {path}")
            made.append(path)
            if statements[1:]:
                ps.checked(conn, exe, ps.script(*statements[1:]), f"{what}: disk {path}")

    def _remove_files(self, conn: Connection, exe: str, paths: list[str]) -> None:
        if not paths:
            return
        ps.run(conn, exe, ps.script(*[
            ps.command("Remove-Item", LiteralPath=p, Force=True, ErrorAction="SilentlyContinue")
            for p in paths]))


__all__ = ["HypervOptions", "HypervProvider"]
