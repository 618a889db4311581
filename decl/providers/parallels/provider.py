"""Parallels Desktop VMs through prlctl (facts and sources: docs/facts/parallels.md).

Discovery is one `prlctl list -a -i -j` per host. Marks live in the VM's description (one
line of it; the user's text is kept), read back from what prlctl reports. VMs are addressed
by UUID once found. Hardware changes need a stopped VM: they are planned as restarts
(graceful `prlctl stop`, `options.shutdown_timeout`, then `prlctl stop --kill`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from decl.connections.base import CommandResult, CommandTimeout, Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ManifestError, ProviderError
from decl.providers import textmarks
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.parallels import output
from decl.providers.vmspec import HostFacts, check_vm_field, options_error

MIB = 1024 * 1024
PENDING_HASH = "pending"
# prlctl's state words -> decl's run states (others are reported as they are).
STATES = {"running": "running", "stopped": "stopped"}


class ParallelsOptions(BaseModel):
    """`options:` of a VM with `provider: parallels`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ostype: str = Field("linux", pattern=r"^[a-z0-9_.-]+$",
                        description="Guest OS type given to `prlctl create --ostype` (see "
                        "`prlctl create x --ostype list`).")
    vm_dir: str | None = Field(None, description="Folder for the VM bundle (`prlctl create "
                               "--dst`); default: Parallels' own.")
    shutdown_timeout: float = Field(
        60.0, ge=0, description="Seconds a graceful shutdown may take before a hard stop.")


def parse_options(address: str, raw: dict[str, Any]) -> ParallelsOptions:
    """A VM's options, checked (ManifestError naming the bad option)."""
    try:
        return ParallelsOptions.model_validate(raw or {})
    except ValidationError as exc:
        raise ManifestError(options_error(address, exc)) from None


def disk_names(count: int) -> list[str]:
    """prlctl's names of the first `count` disks."""
    return [f"hdd{i}" for i in range(count)]


def whole_mib(address: str, what: str, size: int) -> int:
    """A size in MiB, which prlctl takes (ManifestError if it is not whole)."""
    if size % MIB:
        raise ManifestError(f"{address}: Parallels takes {what} in whole MiB, not "
                            f"{format_size(size)}")
    return size // MIB


def traits() -> KindTraits:
    """What each change needs: hardware settings need a stopped VM."""
    return KindTraits(
        policies={"cpus": Policy.RESTART, "memory": Policy.RESTART,
                  "disk_size": Policy.RESTART, "cdrom": Policy.RESTART,
                  "network": Policy.RESTART, "arch": Policy.REPLACE,
                  "firmware": Policy.REPLACE, "disk_count": Policy.REPLACE},
        default_policy=Policy.REPLACE,
        destroys_data="its disks",
        has_run_state=True,
        size_fields=frozenset({"memory", "disk_size"}),
        check=check_vm_field,
    )


def observed_spec(vm: output.PrlVm, arch: str) -> dict[str, Any]:
    """The comparable spec of what prlctl reports (pure)."""
    disks = [d for d in vm.disks if d.enabled]
    return {
        "cpus": vm.cpus,
        "memory": vm.memory,
        "arch": arch,
        "firmware": "uefi" if vm.efi else "bios",
        "disk_count": len(disks),
        "disk_size": {d.device: d.size for d in disks},
        "cdrom": vm.cdrom,
        "network": dict(vm.network),
    }


def observed_state(state: str) -> str:
    """decl's run state from prlctl's state word."""
    return STATES.get(state, state)


class ParallelsProvider(Provider):
    """`vms:` with `provider: parallels`."""

    name: ClassVar[str] = "parallels"
    kinds: ClassVar[tuple[str, ...]] = ("vm",)
    traits: ClassVar[dict[str, KindTraits]] = {"vm": traits()}
    parallel_limit: ClassVar[int | None] = 4

    def __init__(self) -> None:
        self.facts = HostFacts()

    # -- desired -------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """cpus, memory, arch, firmware, disks, cdrom, network; unsupported fields refused."""
        address = f"vm.{name}"
        parse_options(address, model.options)
        if model.cloud_init is not None:
            raise ManifestError(f"{address}: the parallels provider cannot attach a cloud-init "
                                "seed yet (use a template with its own provisioning)")
        sizes = {}
        for dev, disk in zip(disk_names(len(model.disks)), model.disks, strict=True):
            if disk.image is not None:
                raise ManifestError(f"{address}: the parallels provider makes empty disks only "
                                    f"({dev} names image {disk.image!r}); Parallels keeps disks "
                                    "inside the VM bundle")
            if disk.size is None:
                raise ManifestError(f"{address}: disk {dev} needs a size")
            whole_mib(address, f"disk {dev}", disk.size)
            sizes[dev] = disk.size
        whole_mib(address, "memory", model.memory)
        return {
            "cpus": model.cpus,
            "memory": model.memory,
            "arch": model.arch,
            "firmware": model.firmware,
            "disk_count": len(model.disks),
            "disk_size": sizes,
            "cdrom": model.cdrom,
            "network": {"mode": model.network.mode,
                        "bridge": model.network.bridge if model.network.mode == "bridge"
                        else None},
        }

    # -- check and discover --------------------------------------------------------------

    def _prlctl(self, conn: Connection) -> str:
        return self.facts.which(conn, "prlctl") or "prlctl"

    def _run(self, conn: Connection, *args: str, timeout: float | None = 300) -> CommandResult:
        return conn.run([self._prlctl(conn), *args], timeout=timeout)

    def _checked(self, conn: Connection, what: str, *args: str) -> CommandResult:
        result = self._run(conn, *args)
        if not result.ok:
            raise ProviderError(f"{what} failed (prlctl exit code {result.returncode}): "
                                f"{output.error_text(result.out, result.err)}")
        return result

    def check(self, conn: Connection) -> Availability:
        """prlctl on the host, and its version."""
        if self.facts.which(conn, "prlctl") is None:
            return Availability(False, detail=f"prlctl is not installed on host {conn.host} "
                                "(Parallels Desktop Pro or Business edition)")
        result = self._run(conn, "--version", timeout=60)
        version = output.parse_version(result.out)
        if not result.ok or version is None:
            return Availability(False, detail="prlctl --version failed: "
                                + output.error_text(result.out, result.err))
        return Availability(True, version=version, detail="prlctl")

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Every VM with its details from one `prlctl list -a -i -j`."""
        result = self._checked(conn, f"listing Parallels VMs on host {conn.host}",
                               "list", "-a", "-i", "-j")
        try:
            vms = output.parse_list_info(result.out)
        except ValueError as exc:
            raise ProviderError(f"unexpected output from prlctl list on host {conn.host}: "
                                f"{exc}") from None
        arch = self.facts.arch(conn)
        found = Discovery()
        by_address = {d.address: d for d in wanted}
        parsed = [(vm, *textmarks.parse(vm.description)) for vm in vms]
        claimed: set[str] = set()
        for vm, marks, _extra, user_text in parsed:
            if marks is None or marks.project != project:
                continue
            if marks.address in claimed:
                if marks.address in by_address:
                    found.problems[marks.address] = (
                        f"two Parallels VMs carry the marks of {marks.address} on host "
                        f"{conn.host}")
                continue
            claimed.add(marks.address)
            found.observed.append(self._observed(conn, marks.address, vm, marks, user_text,
                                                 arch))
        for desired in wanted:
            if desired.address in claimed:
                continue
            same = [p for p in parsed if p[0].name == desired.name
                    and not (p[1] is not None and p[1].project == project)]
            if len(same) > 1:
                found.problems[desired.address] = (
                    f"{len(same)} Parallels VMs are named {desired.name!r} on host "
                    f"{conn.host}: decl cannot tell which one is meant")
                continue
            if same:
                vm, marks, _extra, user_text = same[0]
                found.observed.append(self._observed(conn, desired.address, vm, marks,
                                                     user_text, arch))
            if desired.state != "absent":
                problem = self._problem(conn, desired, arch)
                if problem:
                    found.problems[desired.address] = problem
        return found

    def _observed(self, conn: Connection, address: str, vm: output.PrlVm,
                  marks: Marks | None, user_text: str, arch: str) -> Observed:
        return Observed(
            address=address, kind="vm", name=vm.name, provider=self.name, host=conn.host,
            state=observed_state(vm.state), spec=observed_spec(vm, arch), marks=marks,
            handle={"uuid": vm.uuid, "name": vm.name, "user_text": user_text,
                    "disks": [d.device for d in vm.disks]},
        )

    def _problem(self, conn: Connection, desired: Desired, host_arch: str) -> str | None:
        """Plan-time errors of a wanted VM on its host."""
        model = desired.model
        if model is None:
            return None
        if model.arch and model.arch != host_arch:
            return (f"Parallels Desktop runs guests of the host's architecture ({host_arch}) "
                    f"only, not {model.arch}: use provider utm to emulate it")
        if model.cdrom and not conn.exists(conn.expand_user(model.cdrom)):
            return f"cdrom {model.cdrom} does not exist on host {conn.host}"
        return None

    # -- apply ---------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """create, update(_restart), replace, delete, start, stop, adopt."""
        action = change.action
        if action is Action.DELETE:
            if observed is not None:
                self.delete(conn, change, observed, progress)
            return
        if desired is None:
            raise ProviderError(f"{change.address}: nothing in the manifest to {action.value}")
        if action is Action.CREATE:
            self.create(conn, change, desired, progress)
        elif action is Action.REPLACE:
            if observed is not None:
                self.delete(conn, change, observed, progress)
            self.create(conn, change, desired, progress)
        elif action in (Action.UPDATE, Action.UPDATE_RESTART, Action.ADOPT):
            self.update(conn, change, desired, _existing(observed, change), progress)
        elif action is Action.START:
            self.start(conn, change.address, _existing(observed, change), progress)
        elif action is Action.STOP:
            self.stop(conn, change.address, _existing(observed, change), desired, progress)
        else:
            raise ProviderError(f"{change.address}: the parallels provider cannot "
                                f"{action.value}")

    def create(self, conn: Connection, change: Change, desired: Desired,
               progress: Progress) -> None:
        """`prlctl create`, then mark it (pending), configure it, add its devices, mark it
        with its real spec hash, and start it when wanted. A failure after the first mark
        leaves a marked VM whose next plan finishes the job."""
        options = parse_options(desired.address, desired.model.options)
        name = desired.name
        what = f"{desired.address}: creating Parallels VM {name!r}"
        args = ["create", name, "--ostype", options.ostype, "--no-hdd"]
        if options.vm_dir:
            args += ["--dst", conn.expand_user(options.vm_dir)]
        progress(f"prlctl create {name}", None)
        self._checked(conn, what, *args)
        listed = self._checked(conn, what, "list", name, "-i", "-j")
        try:
            fresh = [vm for vm in output.parse_list_info(listed.out)
                     if vm.name == name and not textmarks.parse(vm.description)[0]]
        except ValueError as exc:
            raise ProviderError(f"{what}: unexpected output from prlctl list: {exc}") from None
        if len(fresh) != 1:
            raise ProviderError(f"{what}: cannot find the new VM by its name")
        uuid = fresh[0].uuid
        pending = Marks(change.project, desired.address, PENDING_HASH)
        try:
            self._checked(conn, f"{desired.address}: marking the new VM", "set", uuid,
                          "--description", textmarks.with_marks("", pending))
        except ProviderError:
            # Unmarked, it would block the next plan as a conflict; it is ours: remove it.
            self._run(conn, "delete", uuid)
            raise
        spec = desired.spec
        progress(f"prlctl set {name}: {spec['cpus']} CPUs, {format_size(spec['memory'])}",
                 None)
        self._checked(conn, f"{desired.address}: configuring the VM", "set", uuid,
                      "--cpus", str(spec["cpus"]), "--memsize", str(spec["memory"] // MIB),
                      "--efi-boot", "on" if spec["firmware"] == "uefi" else "off")
        for dev, size in spec["disk_size"].items():
            progress(f"adding disk {dev} of {format_size(size)}", None)
            self._checked(conn, f"{desired.address}: adding disk {dev}", "set", uuid,
                          "--device-add", "hdd", "--size", str(size // MIB))
        self._set_network(conn, desired, uuid, spec["network"])
        if spec.get("cdrom"):
            self._set_cdrom(conn, desired, uuid, spec["cdrom"])
        self._checked(conn, f"{desired.address}: marking the VM", "set", uuid,
                      "--description", textmarks.with_marks("", desired.marks(change.project)))
        if change.target_state == "running":
            self._start_uuid(conn, desired.address, uuid, name, progress)

    def _set_network(self, conn: Connection, desired: Desired, uuid: str,
                     network: dict[str, Any]) -> None:
        what = f"{desired.address}: setting the network"
        if network["mode"] == "none":
            self._checked(conn, what, "set", uuid, "--device-set", "net0", "--disable")
        elif network["mode"] == "bridge":
            self._checked(conn, what, "set", uuid, "--device-set", "net0", "--enable",
                          "--type", "bridged", "--iface", network["bridge"])
        else:
            self._checked(conn, what, "set", uuid, "--device-set", "net0", "--enable",
                          "--type", "shared")

    def _set_cdrom(self, conn: Connection, desired: Desired, uuid: str, cdrom: str) -> None:
        self._checked(conn, f"{desired.address}: attaching the cdrom", "set", uuid,
                      "--device-set", "cdrom0", "--image", conn.expand_user(cdrom), "--connect")

    def update(self, conn: Connection, change: Change, desired: Desired, observed: Observed,
               progress: Progress) -> None:
        """Change what differs (stopping first when a running VM must restart), write the
        marks, then bring the VM to its wanted state."""
        uuid = observed.handle["uuid"]
        name = observed.name
        spec = desired.spec
        have = observed.spec
        state = observed.state
        fields = {f.path.split(".")[0] for f in change.fields}
        hardware = fields & {"cpus", "memory", "disk_size", "network", "cdrom", "firmware"}
        if hardware and state == "running":
            self.stop(conn, change.address, observed, desired, progress)
            state = "stopped"
        args: list[str] = []
        if "cpus" in fields:
            args += ["--cpus", str(spec["cpus"])]
        if "memory" in fields:
            args += ["--memsize", str(spec["memory"] // MIB)]
        if "firmware" in fields:  # only an adopted VM gets here: otherwise it is a replace
            args += ["--efi-boot", "on" if spec["firmware"] == "uefi" else "off"]
        user_text = observed.handle.get("user_text", "")
        args += ["--description", textmarks.with_marks(user_text,
                                                       desired.marks(change.project))]
        for dev, size in (spec.get("disk_size") or {}).items():
            current = (have.get("disk_size") or {}).get(dev)
            if current is not None and size != current:
                if size < current:
                    raise ProviderError(f"{desired.address}: disk {dev} cannot shrink")
                progress(f"growing disk {dev} to {format_size(size)}", None)
                self._checked(conn, f"{desired.address}: growing disk {dev}", "set", uuid,
                              "--device-set", dev, "--size", str(size // MIB))
        if "network" in fields:
            self._set_network(conn, desired, uuid, spec["network"])
        if "cdrom" in fields and spec.get("cdrom"):
            self._set_cdrom(conn, desired, uuid, spec["cdrom"])
        progress(f"prlctl set {name}", None)
        self._checked(conn, f"{desired.address}: updating the VM", "set", uuid, *args)
        if change.target_state == "running" and state != "running":
            self._start_uuid(conn, desired.address, uuid, name, progress)
        elif change.target_state == "stopped" and state == "running":
            self.stop(conn, change.address, observed, desired, progress)

    def start(self, conn: Connection, address: str, observed: Observed,
              progress: Progress) -> None:
        """prlctl start."""
        self._start_uuid(conn, address, observed.handle["uuid"], observed.name, progress)

    def _start_uuid(self, conn: Connection, address: str, uuid: str, name: str,
                    progress: Progress) -> None:
        progress(f"prlctl start {name}", None)
        self._checked(conn, f"{address}: starting VM {name!r}", "start", uuid)

    def stop(self, conn: Connection, address: str, observed: Observed,
             desired: Desired | None, progress: Progress) -> None:
        """Shut down through the guest; `stop --kill` when that fails or takes too long."""
        uuid = observed.handle["uuid"]
        options = parse_options(address, desired.model.options
                                if desired is not None and desired.model is not None else {})
        timeout = options.shutdown_timeout
        progress(f"prlctl stop {observed.name} (up to {timeout:g} s)", None)
        reason = ""
        if timeout > 0:
            try:
                result = self._run(conn, "stop", uuid, timeout=timeout)
                if result.ok:
                    return
                reason = output.error_text(result.out, result.err)
            except CommandTimeout:
                reason = f"no shutdown within {timeout:g} s"
        progress(f"prlctl stop {observed.name} --kill ({reason or 'no graceful stop'})", None)
        self._checked(conn, f"{address}: stopping VM {observed.name!r}", "stop", uuid, "--kill")

    def delete(self, conn: Connection, change: Change, observed: Observed,
               progress: Progress) -> None:
        """Stop (hard) and delete a VM this project made, with its bundle."""
        if observed.marks is None or observed.marks.project != change.project:
            raise ProviderError(f"{change.address}: VM {observed.name!r} carries no mark of "
                                "this project: decl will not delete it")
        uuid = observed.handle["uuid"]
        if observed.state != "stopped":
            progress(f"prlctl stop {observed.name} --kill", None)
            self._checked(conn, f"{change.address}: stopping VM {observed.name!r}", "stop",
                          uuid, "--kill")
        progress(f"prlctl delete {observed.name}", None)
        self._checked(conn, f"{change.address}: deleting VM {observed.name!r}", "delete", uuid)


def _existing(observed: Observed | None, change: Change) -> Observed:
    if observed is None or not observed.handle.get("uuid"):
        raise ProviderError(f"{change.address}: the VM was not found on host {change.host}")
    return observed


__all__ = ["ParallelsOptions", "ParallelsProvider"]
