"""The Hyper-V provider: VMs on a Windows host through PowerShell's Hyper-V cmdlets.

Scripts run as `powershell.exe -NoProfile -NonInteractive -Command <script>` (or `pwsh`)
through the host's Connection; every value in them is a PowerShell literal. Ownership marks
live in the VM's Notes (see notes.py).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from decl.connections.base import CommandTimeout, Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ManifestError, ProviderError
from decl.manifest.model import check_windows_path
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.hyperv import notes as vm_notes
from decl.providers.hyperv import powershell as ps

PENDING_HASH = "pending"
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
        "disks": Policy.REPLACE,
        "disk_mode": Policy.REPLACE,
        "path": Policy.REPLACE,
    },
    default_policy=Policy.REPLACE,
    destroys_data="its disks",
    has_run_state=True,
    size_fields=frozenset({"memory"}),
)


class HypervOptions(BaseModel):
    """`options:` of a VM with `provider: hyperv`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    stop_timeout: float = Field(
        120.0, gt=0, description="Seconds a graceful shutdown may take before the VM is "
        "turned off.")
    powershell: Literal["powershell.exe", "pwsh"] | None = Field(
        None, description="PowerShell to run (default: powershell.exe, else pwsh).")

    @field_validator("path", "disk_dir")
    @classmethod
    def _windows(cls, value: str | None) -> str | None:
        return None if value is None else check_windows_path(value)


def parse_options(address: str, options: dict[str, Any]) -> HypervOptions:
    """The VM's options, validated (ManifestError naming the address otherwise)."""
    try:
        return HypervOptions.model_validate(options or {})
    except ValidationError as exc:
        parts = []
        for item in exc.errors():
            loc = ".".join(str(p) for p in item.get("loc", ()))
            parts.append(f"options.{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        raise ManifestError(f"{address}: invalid hyperv options: " + "; ".join(parts)) from None


def vm_state(value: Any) -> str:
    """decl's run state from Get-VM's State (an integer enum, or its name as text)."""
    if isinstance(value, int):
        return VM_STATES.get(value, f"state-{value}")
    word = str(value or "").strip().lower()
    return STATE_WORDS.get(word, word or "unknown")


def windows_join(directory: str, name: str) -> str:
    """DIR\\NAME for a Windows folder."""
    return directory.rstrip("\\/") + "\\" + name


class HypervProvider(Provider):
    """`vms:` with `provider: hyperv`."""

    name: ClassVar[str] = "hyperv"
    kinds: ClassVar[tuple[str, ...]] = ("vm",)
    traits: ClassVar[dict[str, KindTraits]] = {"vm": TRAITS}
    parallel_limit: ClassVar[int | None] = 2

    def __init__(self) -> None:
        self._project: str | None = None
        self._exe: dict[str, str] = {}

    # -- desired -------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """cpus, memory, generation, switch, disks (and how they are made), path."""
        self._project = context.project
        address = f"vm.{name}"
        options = parse_options(address, model.options)
        unsupported = [f for f in ("cdrom", "cloud_init") if getattr(model, f) is not None]
        if unsupported:
            raise ManifestError(f"{address}: the hyperv provider does not support "
                                f"{' or '.join(unsupported)} yet")
        if model.arch not in (None, "x86_64", "aarch64"):
            raise ManifestError(f"{address}: Hyper-V runs only guests of the host's "
                                f"architecture, not {model.arch}")
        if model.memory % MIB2 or model.memory < 32 * 1024 * 1024:
            raise ManifestError(f"{address}: Hyper-V needs memory in whole multiples of 2MiB "
                                f"and at least 32MiB, not {format_size(model.memory)}")
        generation = 2 if model.firmware == "uefi" else 1
        if options.generation is not None:
            if "firmware" in model.model_fields_set and options.generation != generation:
                raise ManifestError(f"{address}: options.generation {options.generation} "
                                    f"contradicts firmware {model.firmware}")
            generation = options.generation
        disks = []
        for index, disk in enumerate(model.disks):
            if disk.image is not None:
                try:
                    check_windows_path(disk.image)
                except ValueError as exc:
                    raise ManifestError(f"{address}: disks[{index}].image: {exc} (Hyper-V "
                                        "takes a .vhdx or .vhd on the Windows host)") from None
            disks.append({"size": disk.size, "image": disk.image})
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
            "disks": disks,
            "disk_mode": options.disk_mode if any(d["image"] for d in disks) else None,
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
        self._project = project
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
        ), f"listing Hyper-V VMs on host {conn.host}", timeout=300)
        try:
            vms_s, nics_s, disks_s, switches_s = ps.split_sections(text, 4)
            vms = ps.parse_json_list(vms_s)
            nics = ps.parse_json_list(nics_s)
            drives = ps.parse_json_list(disks_s)
            switches = {str(s.get("Name", "")).lower() for s in ps.parse_json_list(switches_s)}
        except ValueError as exc:
            raise ProviderError(f"unexpected output from Get-VM on host {conn.host}: {exc}") \
                from None
        return self._match(conn, project, wanted, vms, nics, drives, switches)

    def _match(self, conn: Connection, project: str, wanted: list[Desired],
               vms: list[dict[str, Any]], nics: list[dict[str, Any]],
               drives: list[dict[str, Any]], switches: set[str]) -> Discovery:
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
                                                 user_notes, desired, nics, drives))
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
                                                     user_notes, desired, nics, drives))
            switch = desired.spec.get("switch")
            if desired.state != "absent" and switch and switch.lower() not in switches:
                found.problems[desired.address] = (
                    f"virtual switch {switch!r} does not exist on host {conn.host} "
                    f"(Get-VMSwitch lists: {', '.join(sorted(switches)) or 'none'})")
        return found

    def _observed(self, conn: Connection, address: str, vm: dict[str, Any],
                  marks: Marks | None, created: dict[str, Any], user_notes: str,
                  desired: Desired | None, nics: list[dict[str, Any]],
                  drives: list[dict[str, Any]]) -> Observed:
        vm_id = str(vm.get("Id", ""))
        adapters = [n for n in nics if str(n.get("VMId", "")).lower() == vm_id.lower()]
        attached = [str(d.get("Path")) for d in drives
                    if str(d.get("VMId", "")).lower() == vm_id.lower()]
        if not created and desired is not None:
            # How an unmarked VM's disks were made cannot be observed: taken as wanted.
            created = {k: desired.spec.get(k) for k in ("disks", "disk_mode", "path")}
        switch = str(adapters[0].get("SwitchName") or "") if adapters else ""
        return Observed(
            address=address, kind="vm", name=address.split(".", 1)[1], provider=self.name,
            host=conn.host, state=vm_state(vm.get("State")),
            spec={
                "cpus": vm.get("ProcessorCount"),
                "memory": vm.get("MemoryStartup"),
                "generation": vm.get("Generation"),
                "switch": switch,
                "disks": created.get("disks"),
                "disk_mode": created.get("disk_mode"),
                "path": created.get("path"),
            },
            marks=marks,
            handle={"id": vm_id, "name": vm.get("Name"), "notes": user_notes,
                    "created": created, "attached": attached},
        )

    # -- apply ---------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """create, update(_restart), replace, delete, start, stop, adopt."""
        self._project = change.project or self._project  # the marks carry the plan's project
        exe = self._powershell(conn, desired)
        action = change.action
        if action is Action.CREATE:
            self._create(conn, exe, _need(desired, change), progress)
        elif action is Action.REPLACE:
            self._delete(conn, exe, change, _existing(observed, change), progress)
            self._create(conn, exe, _need(desired, change), progress)
        elif action is Action.DELETE:
            self._delete(conn, exe, change, _existing(observed, change), progress)
        elif action in (Action.UPDATE, Action.UPDATE_RESTART, Action.ADOPT):
            self._update(conn, exe, change, _need(desired, change), _existing(observed, change),
                         progress)
        elif action is Action.START:
            self._start(conn, exe, change.address, _existing(observed, change), progress)
        elif action is Action.STOP:
            self._stop(conn, exe, change.address, _existing(observed, change), desired, progress)
        else:
            raise ProviderError(f"{change.address}: the hyperv provider cannot {action.value}")

    def _vm(self, vm_id: str) -> str:
        return ps.command("Get-VM", Id=vm_id)

    def _create(self, conn: Connection, exe: str, desired: Desired, progress: Progress) -> None:
        spec = desired.spec
        options = parse_options(desired.address, desired.model.options if desired.model else {})
        what = f"{desired.address}: creating VM {desired.name!r}"
        made: list[str] = []
        paths: list[str] = []
        if spec["disks"]:
            directory = options.disk_dir or windows_join(self._vhd_root(conn, exe, what),
                                                         desired.name)
            for index in range(len(spec["disks"])):
                suffix = "" if index == 0 else f"-disk{index}"
                paths.append(windows_join(directory, f"{desired.name}{suffix}.vhdx"))
            try:
                self._make_disks(conn, exe, what, directory, spec, paths, made, progress)
            except ProviderError:
                self._remove_files(conn, exe, made)
                raise
        progress(f"New-VM {desired.name}", None)
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
        created = {"disks": spec["disks"], "disk_mode": spec.get("disk_mode"),
                   "path": spec.get("path"), "made": made}
        project = self._project or ""
        pending = vm_notes.with_marks("", Marks(project, desired.address, PENDING_HASH), created)
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
        final = vm_notes.with_marks("", desired.marks(project), created)
        statements.append(f"{self._vm(vm_id)} | " + ps.command(
            "Set-VM", ProcessorCount=spec["cpus"], Notes=final))
        progress(f"Set-VM {desired.name}: {spec['cpus']} CPUs", None)
        ps.checked(conn, exe, ps.script(*statements), f"{desired.address}: configuring the VM")
        if desired.state == "running":
            self._start_id(conn, exe, desired.address, vm_id, desired.name, progress)

    def _vhd_root(self, conn: Connection, exe: str, what: str) -> str:
        out = ps.checked(conn, exe, ps.script(
            "Get-VMHost | Select-Object VirtualHardDiskPath | ConvertTo-Json"), what)
        try:
            return str(ps.parse_json_list(out)[0]["VirtualHardDiskPath"])
        except (ValueError, KeyError, IndexError):
            raise ProviderError(f"{what}: Get-VMHost did not say where disks go "
                                "(set options.disk_dir)") from None

    def _make_disks(self, conn: Connection, exe: str, what: str, directory: str,
                    spec: dict[str, Any], paths: list[str], made: list[str],
                    progress: Progress) -> None:
        ps.checked(conn, exe, ps.script(
            ps.command("New-Item", ItemType="Directory", Force=True, Path=directory)
            + " | Out-Null"), what)
        for disk, path in zip(spec["disks"], paths, strict=True):
            statements = []
            if disk["image"] and spec.get("disk_mode") == "copy":
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

    def _update(self, conn: Connection, exe: str, change: Change, desired: Desired,
                observed: Observed, progress: Progress) -> None:
        spec = desired.spec
        vm_id = observed.handle["id"]
        fields = {f.path.split(".")[0] for f in change.fields}
        state = observed.state
        if change.action is Action.UPDATE_RESTART and state == "running":
            self._stop(conn, exe, desired.address, observed, desired, progress)
            state = "stopped"
        created = observed.handle.get("created") or {
            k: spec.get(k) for k in ("disks", "disk_mode", "path")}
        notes = vm_notes.with_marks(observed.handle.get("notes", ""),
                                    desired.marks(self._project or ""), created)
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
        progress(f"Set-VM {desired.name}", None)
        ps.checked(conn, exe, ps.script(*statements), f"{desired.address}: updating the VM")
        if desired.state == "running" and state != "running":
            self._start_id(conn, exe, desired.address, vm_id, desired.name, progress)
        elif desired.state == "stopped" and state == "running":
            self._stop(conn, exe, desired.address, observed, desired, progress)

    def _start(self, conn: Connection, exe: str, address: str, observed: Observed,
               progress: Progress) -> None:
        self._start_id(conn, exe, address, observed.handle["id"], observed.handle.get("name"),
                       progress)

    def _start_id(self, conn: Connection, exe: str, address: str, vm_id: str, name: Any,
                  progress: Progress) -> None:
        progress(f"Start-VM {name}", None)
        ps.checked(conn, exe, ps.script(f"{self._vm(vm_id)} | Start-VM"),
                   f"{address}: starting VM {name!r}")

    def _stop(self, conn: Connection, exe: str, address: str, observed: Observed,
              desired: Desired | None, progress: Progress) -> None:
        """Shut down through the guest; turn off when that fails or takes too long."""
        vm_id = observed.handle["id"]
        name = observed.handle.get("name")
        options = parse_options(address, desired.model.options
                                if desired is not None and desired.model is not None else {})
        progress(f"Stop-VM {name} (shutdown, up to {options.stop_timeout:g} s)", None)
        try:
            result = ps.run(conn, exe, ps.script(f"{self._vm(vm_id)} | Stop-VM -Force"),
                            timeout=options.stop_timeout)
            graceful = result.ok
            reason = "" if result.ok else ps.error_text(result)
        except CommandTimeout:
            graceful, reason = False, f"no shutdown within {options.stop_timeout:g} s"
        if graceful:
            return
        progress(f"Stop-VM {name} -TurnOff ({reason})", None)
        ps.checked(conn, exe, ps.script(f"{self._vm(vm_id)} | Stop-VM -TurnOff -Force"),
                   f"{address}: turning off VM {name!r}")

    def _delete(self, conn: Connection, exe: str, change: Change, observed: Observed,
                progress: Progress) -> None:
        vm_id = observed.handle["id"]
        name = observed.handle.get("name")
        made = list((observed.handle.get("created") or {}).get("made") or [])
        statements = []
        if observed.state != "stopped":
            statements.append(f"{self._vm(vm_id)} | Stop-VM -TurnOff -Force")
        statements.append(f"{self._vm(vm_id)} | Remove-VM -Force")
        progress(f"Remove-VM {name}" + (f" and {len(made)} disk(s)" if made else ""), None)
        ps.checked(conn, exe, ps.script(*statements), f"{change.address}: removing VM {name!r}")
        if made:
            ps.checked(conn, exe, ps.script(*[
                ps.command("Remove-Item", LiteralPath=p, Force=True,
                           ErrorAction="SilentlyContinue") for p in made]),
                f"{change.address}: deleting the disks of {name!r}")


def _need(desired: Desired | None, change: Change) -> Desired:
    if desired is None:
        raise ProviderError(f"{change.address}: {change.action.value} needs the manifest entry")
    return desired


def _existing(observed: Observed | None, change: Change) -> Observed:
    if observed is None or not observed.handle.get("id"):
        raise ProviderError(f"{change.address}: the VM was not found on host {change.host}")
    return observed


__all__ = ["HypervOptions", "HypervProvider"]
