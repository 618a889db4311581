"""UTM VMs (facts and sources: docs/facts/utm.md).

UTM has no creation CLI: VMs are made and configured through its AppleScript dictionary
(`osascript`, scripts built by applescript.py so that no manifest value can become code), and
run through `utmctl`. utmctl reports Apple-event failures on stderr and still exits 0: any
`Error` there is a failure, reported with the reason (UTM can only be scripted from a
logged-in GUI session, so never over SSH).

Discovery is two processes per host: `utmctl list` (ids, run states, names) and one
osascript that returns every VM's id, backend and configuration.

Marks live in the VM's notes (one line; the user's notes are kept). UTM does not report a
disk's size (a drive's `host size` is the space its file takes), nor a removable drive's
file: the marks line records the disk sizes decl made (`disks=`, MiB), a digest of each
disk's source (`sources=`) and of the cdrom path (`cdrom=`), and discovery says so in the
observed handle (`recorded`). Every configuration change needs a stopped VM, so changes are
planned as restarts; a disk size change is refused at plan time (UTM cannot resize a drive
through its dictionary).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from decl.connections.base import CommandResult, Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ManifestError, ProviderError
from decl.providers import textmarks
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
from decl.providers.utm import applescript as script
from decl.providers.utm import output
from decl.providers.vmspec import HostFacts, disk_source_id, options_error

MIB = 1024 * 1024
UTMCTL_APP_PATH = "/Applications/UTM.app/Contents/MacOS/utmctl"
# decl's architecture names -> QEMU's, as UTM's `architecture` takes them.
UTM_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "i686": "i386", "armv7l": "arm",
            "riscv64": "riscv64", "ppc64le": "ppc64", "s390x": "s390x"}
DECL_ARCH = {v: k for k, v in UTM_ARCH.items()}
STATES = {"started": "running", "stopped": "stopped"}
POLL_SECONDS = 0.5


class UtmOptions(BaseModel):
    """`options:` of a VM with `provider: utm`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["qemu", "apple"] = Field(
        "qemu", description="qemu (any architecture; emulation when it is not the host's) or "
        "apple (Apple Virtualization: the host's architecture, Linux guests, UEFI).")
    shutdown_timeout: float = Field(
        60.0, ge=0, description="Seconds a graceful shutdown may take before a hard stop.")


def parse_options(address: str, raw: dict[str, Any]) -> UtmOptions:
    """A VM's options, checked (ManifestError naming the bad option)."""
    try:
        return UtmOptions.model_validate(raw or {})
    except ValidationError as exc:
        raise ManifestError(options_error(address, exc)) from None


def disk_names(count: int) -> list[str]:
    """decl's names of a UTM VM's disks: d0, d1..."""
    return [f"d{i}" for i in range(count)]


def digest(text: str) -> str:
    """A short digest that fits in the marks line."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_utm_field(path: str, before: Any, after: Any) -> str | None:
    """Plan-time refusals: UTM cannot change a drive's size, and disks never shrink."""
    if path.startswith("disk_size.") and isinstance(before, int) and isinstance(after, int):
        dev = path.split(".", 1)[1]
        if after < before:
            return (f"disk {dev} cannot shrink from {format_size(before)} to "
                    f"{format_size(after)}: disks only grow")
        return (f"disk {dev} cannot grow from {format_size(before)} to {format_size(after)}: "
                "UTM cannot resize an existing drive through its scripting dictionary (a "
                "drive's size is set when it is made); add a disk instead, or resize the "
                "image yourself with qemu-img while the VM is stopped")
    return None


def traits() -> KindTraits:
    """UTM applies configuration changes only to a stopped VM: restarts."""
    return KindTraits(
        policies={"cpus": Policy.RESTART, "memory": Policy.RESTART,
                  "firmware": Policy.RESTART, "cdrom": Policy.RESTART,
                  "network": Policy.RESTART, "disk_size": Policy.RESTART,
                  "arch": Policy.REPLACE, "disk_count": Policy.REPLACE,
                  "disk_source": Policy.REPLACE, "options": Policy.REPLACE},
        default_policy=Policy.REPLACE,
        destroys_data="its disks",
        has_run_state=True,
        size_fields=frozenset({"memory", "disk_size"}),
        check=check_utm_field,
    )


def records_of(extra: dict[str, str]) -> dict[str, Any]:
    """What decl recorded in the marks line (disk sizes in bytes, source and cdrom digests)."""
    sizes: list[int | None] = []
    for item in (extra.get("disks") or "").split(","):
        sizes.append(int(item) * MIB if item.isdigit() else None)
    return {"disks": sizes if extra.get("disks") else [],
            "sources": [s for s in (extra.get("sources") or "").split(",") if s],
            "cdrom": extra.get("cdrom") or None}


def record_extra(spec: dict[str, Any], cdrom: str | None) -> dict[str, str]:
    """The marks line's extra values for a desired spec."""
    sizes = [spec["disk_size"].get(dev) for dev in disk_names(spec["disk_count"])]
    sources = [spec["disk_source"][dev] for dev in disk_names(spec["disk_count"])]
    extra = {"disks": ",".join(str(s // MIB) if s else "0" for s in sizes),
             "sources": ",".join(sources)}
    if cdrom:
        extra["cdrom"] = digest(cdrom)
    return {k: v for k, v in extra.items() if v}


def observed_spec(config: dict[str, Any], backend: str, host_arch: str,
                  recorded: dict[str, Any], desired: Desired | None) -> dict[str, Any]:
    """The comparable spec of a UTM configuration record (pure)."""
    drives = [d for d in config.get("drives") or [] if isinstance(d, dict)]
    fixed = [d for d in drives if not d.get("removable")]
    removable = [d for d in drives if d.get("removable")]
    names = disk_names(len(fixed))
    sizes = recorded["disks"] if len(recorded["disks"]) == len(fixed) else [None] * len(fixed)
    sources = recorded["sources"] if len(recorded["sources"]) == len(fixed) else []
    nics = [n for n in config.get("network interfaces") or [] if isinstance(n, dict)]
    network: dict[str, Any] = {"mode": "none", "bridge": None}
    if nics:
        mode = nics[0].get("mode")
        word = mode.name if isinstance(mode, output.Constant) else str(mode)
        if word == "shared":
            network = {"mode": "nat", "bridge": None}
        elif word == "bridged":
            network = {"mode": "bridge", "bridge": nics[0].get("host interface") or None}
        else:
            network = {"mode": word, "bridge": None}
    arch = DECL_ARCH.get(str(config.get("architecture")), config.get("architecture")) \
        if backend == "qemu" else host_arch
    firmware = ("uefi" if config.get("uefi") else "bios") if backend == "qemu" else "uefi"
    cdrom = None
    if removable and recorded["cdrom"]:
        wanted = desired.spec.get("cdrom") if desired is not None else None
        # Only a digest of the path is known: it matches the wanted path, or it differs.
        cdrom = wanted if wanted and digest(wanted) == recorded["cdrom"] else \
            f"(recorded {recorded['cdrom']})"
    memory = config.get("memory")
    return {
        "cpus": config.get("cpu cores"),
        "memory": memory * MIB if isinstance(memory, int) else None,
        "arch": arch,
        "firmware": firmware,
        "disk_count": len(fixed),
        "disk_size": dict(zip(names, sizes, strict=True)),
        "disk_source": dict(zip(names, sources, strict=True)) if sources else {},
        "cdrom": cdrom,
        "network": network,
        "options": {"backend": backend},
    }


class UtmProvider(Provider):
    """`vms:` with `provider: utm`."""

    name: ClassVar[str] = "utm"
    kinds: ClassVar[tuple[str, ...]] = ("vm",)
    traits: ClassVar[dict[str, KindTraits]] = {"vm": traits()}
    parallel_limit: ClassVar[int | None] = 1  # one GUI app answers every Apple event

    def __init__(self) -> None:
        self.facts = HostFacts()

    # -- desired -------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec; what UTM cannot do is refused here, with the reason."""
        address = f"vm.{name}"
        options = parse_options(address, model.options)
        if model.cloud_init is not None:
            raise ManifestError(f"{address}: the utm provider cannot attach a cloud-init seed "
                                "yet")
        if model.memory % MIB:
            raise ManifestError(f"{address}: UTM takes memory in whole MiB, not "
                                f"{format_size(model.memory)}")
        if options.backend == "apple" and model.firmware == "bios" \
                and "firmware" in model.model_fields_set:
            raise ManifestError(f"{address}: options.backend apple boots with UEFI only "
                                "(firmware: bios is not possible)")
        if model.arch is not None and model.arch not in UTM_ARCH:
            raise ManifestError(f"{address}: UTM cannot run arch {model.arch}")
        sizes: dict[str, int | None] = {}
        sources: dict[str, str] = {}
        for dev, disk in zip(disk_names(len(model.disks)), model.disks, strict=True):
            if disk.image is not None:
                if disk.image.startswith(("http://", "https://")):
                    raise ManifestError(f"{address}: disk {dev}: UTM imports a local image "
                                        "file; download it first")
                if disk.size is not None:
                    raise ManifestError(f"{address}: disk {dev}: UTM cannot resize an "
                                        "imported image (leave out size)")
            elif disk.size is not None and disk.size % MIB:
                raise ManifestError(f"{address}: UTM takes disk sizes in whole MiB, not "
                                    f"{format_size(disk.size)}")
            sizes[dev] = disk.size
            sources[dev] = digest(disk_source_id(disk)) if disk.image else "empty"
        return {
            "cpus": model.cpus,
            "memory": model.memory,
            "arch": model.arch,
            "firmware": "uefi" if options.backend == "apple" else model.firmware,
            "disk_count": len(model.disks),
            "disk_size": sizes,
            "disk_source": sources,
            "cdrom": model.cdrom,
            "network": {"mode": model.network.mode,
                        "bridge": model.network.bridge if model.network.mode == "bridge"
                        else None},
            "options": {"backend": options.backend},
        }

    # -- the tools -----------------------------------------------------------------------

    def _utmctl(self, conn: Connection) -> str:
        found = self.facts.which(conn, "utmctl")
        if found:
            return found
        return UTMCTL_APP_PATH if self.facts.exists(conn, UTMCTL_APP_PATH) else "utmctl"

    def utmctl(self, conn: Connection, what: str, *args: str,
               timeout: float = 300) -> CommandResult:
        """Run utmctl; a non-zero exit or an Apple-event error on stderr is a failure."""
        result = conn.run([self._utmctl(conn), *args], timeout=timeout)
        failure = output.event_failure(result.err)
        if not result.ok or failure:
            reason = failure or (result.err.strip() or result.out.strip() or
                                 f"exit code {result.returncode}")
            raise ProviderError(f"{what}: utmctl {args[0]} failed on host {conn.host}: {reason}")
        return result

    def osascript(self, conn: Connection, what: str, text: str) -> Any:
        """Run a script built by applescript.py; its result parsed from source form."""
        result = conn.run(["osascript", "-s", "s", "-e", text], timeout=300)
        if not result.ok:
            error = output.parse_osa_error(result.err)
            reason = error.reason() if error else (result.err.strip() or
                                                   f"exit code {result.returncode}")
            raise ProviderError(f"{what}: osascript failed on host {conn.host}: {reason}")
        body = result.out.strip()
        if not body:
            return None
        try:
            return output.parse_value(body)
        except ValueError as exc:
            raise ProviderError(f"{what}: unexpected result from osascript: {exc}") from None

    # -- check and discover --------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """utmctl and osascript on the host, and UTM's version (asked through AppleScript,
        which also proves that UTM can be scripted from here)."""
        if self.facts.which(conn, "osascript") is None:
            return Availability(False, detail=f"osascript is not on host {conn.host} (UTM "
                                "runs on macOS)")
        if self._utmctl(conn) == "utmctl" and self.facts.which(conn, "utmctl") is None:
            return Availability(False, detail=f"UTM is not installed on host {conn.host} "
                                f"({UTMCTL_APP_PATH} is missing)")
        try:
            version = self.osascript(conn, "asking UTM's version", script.version())
        except ProviderError as exc:
            return Availability(False, detail=str(exc))
        return Availability(True, version=str(version), detail="utmctl, osascript")

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """`utmctl list`, then (when there is any VM) one osascript for every configuration."""
        listed = self.utmctl(conn, f"listing UTM VMs on host {conn.host}", "list")
        try:
            rows = output.parse_list(listed.out)
        except ValueError as exc:
            raise ProviderError(f"unexpected output from utmctl list on host {conn.host}: "
                                f"{exc}") from None
        configs: dict[str, tuple[str, dict[str, Any]]] = {}
        if rows:
            value = self.osascript(conn, f"reading UTM configurations on host {conn.host}",
                                   script.discover())
            try:
                ids, backends, records = value
                for vm_id, backend, record in zip(ids, backends, records, strict=True):
                    name = backend.name if isinstance(backend, output.Constant) else str(backend)
                    configs[str(vm_id).upper()] = (name, record)
            except (TypeError, ValueError):
                raise ProviderError("unexpected result from UTM's configuration script") \
                    from None
        host_arch = self.facts.arch(conn)
        found = Discovery()
        by_address = {d.address: d for d in wanted}
        parsed = []
        for row in rows:
            backend, config = configs.get(row.uuid, ("unavailable", {}))
            marks, extra, user_notes = textmarks.parse(str(config.get("notes") or ""))
            parsed.append((row, backend, config, marks, extra, user_notes))
        claimed: set[str] = set()
        for row, backend, config, marks, extra, user_notes in parsed:
            if marks is None or marks.project != project:
                continue
            if marks.address in claimed:
                if marks.address in by_address:
                    found.problems[marks.address] = (
                        f"two UTM VMs carry the marks of {marks.address} on host {conn.host}")
                continue
            claimed.add(marks.address)
            found.observed.append(self._observed(conn, marks.address, row, backend, config,
                                                 marks, extra, user_notes, host_arch,
                                                 by_address.get(marks.address)))
        for desired in wanted:
            if desired.address in claimed:
                continue
            same = [p for p in parsed if p[0].name == desired.name
                    and not (p[3] is not None and p[3].project == project)]
            if len(same) > 1:
                found.problems[desired.address] = (
                    f"{len(same)} UTM VMs are named {desired.name!r} on host {conn.host}: "
                    "decl cannot tell which one is meant")
                continue
            if same:
                row, backend, config, marks, extra, user_notes = same[0]
                found.observed.append(self._observed(conn, desired.address, row, backend,
                                                     config, marks, extra, user_notes,
                                                     host_arch, desired))
            if desired.state != "absent":
                problem = self._problem(conn, desired, host_arch)
                if problem:
                    found.problems[desired.address] = problem
        return found

    def _observed(self, conn: Connection, address: str, row: output.UtmRow, backend: str,
                  config: dict[str, Any], marks: Marks | None, extra: dict[str, str],
                  user_notes: str, host_arch: str, desired: Desired | None) -> Observed:
        recorded = records_of(extra)
        drives = [d for d in config.get("drives") or [] if isinstance(d, dict)]
        return Observed(
            address=address, kind="vm", name=row.name, provider=self.name, host=conn.host,
            state=STATES.get(row.status, row.status),
            spec=observed_spec(config, backend, host_arch, recorded, desired),
            marks=marks,
            handle={"id": row.uuid, "name": row.name, "notes": user_notes,
                    "backend": backend,
                    "disk_ids": [str(d.get("id")) for d in drives if not d.get("removable")],
                    "removable_ids": [str(d.get("id")) for d in drives if d.get("removable")],
                    "nics": len(config.get("network interfaces") or []),
                    "recorded": "disk sizes, disk sources and the cdrom are decl's records "
                                "in the VM's notes (UTM does not report them)"},
        )

    def _problem(self, conn: Connection, desired: Desired, host_arch: str) -> str | None:
        """Plan-time errors of a wanted VM on its host."""
        model = desired.model
        if model is None:
            return None
        options = parse_options(desired.address, model.options)
        arch = model.arch or host_arch
        if options.backend == "apple" and arch != host_arch:
            return (f"options.backend apple runs guests of the host's architecture "
                    f"({host_arch}) only; arch {arch} needs backend qemu (emulation)")
        paths = [("cdrom", model.cdrom)] + [(f"disk d{i} image", d.image)
                                            for i, d in enumerate(model.disks)]
        for what, path in paths:
            if path and not conn.exists(conn.expand_user(path)):
                return f"{what} {path} does not exist on host {conn.host}"
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
            raise ProviderError(f"{change.address}: the utm provider cannot {action.value}")

    def _configuration(self, conn: Connection, desired: Desired, project: str,
                       user_notes: str, backend: str, drives: list[script.Code] | None,
                       nics: list[script.Code]) -> script.Code:
        spec = desired.spec
        model = desired.model
        marks = desired.marks(project)
        notes = textmarks.with_marks(user_notes, marks, record_extra(spec, model.cdrom))
        items: list[tuple[str, script.Code]] = [
            ("name", script.string(desired.name)),
            ("notes", script.string(notes)),
            ("memory", script.integer(spec["memory"] // MIB)),
            ("cpu cores", script.integer(spec["cpus"])),
        ]
        if backend == "qemu":
            arch = model.arch or self.facts.arch(conn)
            items += [("architecture", script.string(UTM_ARCH[arch])),
                      ("uefi", script.boolean(spec["firmware"] == "uefi")),
                      ("hypervisor", script.boolean(arch == self.facts.arch(conn)))]
        if drives is not None:
            items.append(("drives", script.alist(drives)))
        items.append(("network interfaces", script.alist(nics)))
        return script.record(items)

    def _nics(self, desired: Desired, existing: int) -> list[script.Code]:
        """The network interface list: one NIC (the first kept by index) or none."""
        network = desired.spec["network"]
        if network["mode"] == "none":
            return []
        items: list[tuple[str, script.Code]] = []
        if existing:
            items.append(("index", script.integer(0)))
        if network["mode"] == "bridge":
            items += [("mode", script.constant("bridged")),
                      ("host interface", script.string(network["bridge"]))]
        else:
            items.append(("mode", script.constant("shared")))
        return [script.record(items)]

    def _cdrom_drive(self, conn: Connection, desired: Desired) -> script.Code:
        return script.record([("removable", script.boolean(True)),
                              ("source", script.posix_file(
                                  conn.expand_user(desired.model.cdrom)))])

    def create(self, conn: Connection, change: Change, desired: Desired,
               progress: Progress) -> None:
        """One `make new virtual machine` with the whole configuration and the marks, then
        start it when wanted."""
        model = desired.model
        backend = desired.spec["options"]["backend"]
        drives = []
        for disk in model.disks:
            if disk.image:
                drives.append(script.record([("source", script.posix_file(
                    conn.expand_user(disk.image)))]))
            else:
                drives.append(script.record([("guest size",
                                              script.integer(disk.size // MIB))]))
        if model.cdrom:
            drives.append(self._cdrom_drive(conn, desired))
        config = self._configuration(conn, desired, change.project, "", backend, drives,
                                     self._nics(desired, 0))
        progress(f"creating UTM VM {desired.name} ({backend} backend)", None)
        vm_id = self.osascript(conn, f"{desired.address}: creating UTM VM {desired.name!r}",
                               script.make_vm(backend, config))
        if change.target_state == "running":
            self._start_id(conn, desired.address, str(vm_id), desired.name, progress)

    def update(self, conn: Connection, change: Change, desired: Desired, observed: Observed,
               progress: Progress) -> None:
        """Stop when running (UTM changes stopped VMs only), write the configuration and
        the marks, then bring the VM to its wanted state."""
        vm_id = observed.handle["id"]
        state = observed.state
        if state != "stopped":
            self.stop(conn, change.address, observed, desired, progress)
            state = "stopped"
        fields = {f.path.split(".")[0] for f in change.fields}
        drives = None
        if "cdrom" in fields:
            drives = [script.record([("id", script.string(i))])
                      for i in observed.handle.get("disk_ids", [])]
            if desired.model.cdrom:
                drives.append(self._cdrom_drive(conn, desired))
        config = self._configuration(conn, desired, change.project,
                                     observed.handle.get("notes", ""),
                                     observed.handle.get("backend", "qemu"), drives,
                                     self._nics(desired, observed.handle.get("nics", 0)))
        progress(f"updating the configuration of {observed.name}", None)
        self.osascript(conn, f"{desired.address}: updating UTM VM {observed.name!r}",
                       script.update_vm(vm_id, config))
        if change.target_state == "running":
            self._start_id(conn, desired.address, vm_id, observed.name, progress)

    def start(self, conn: Connection, address: str, observed: Observed,
              progress: Progress) -> None:
        """utmctl start."""
        self._start_id(conn, address, observed.handle["id"], observed.name, progress)

    def _start_id(self, conn: Connection, address: str, vm_id: str, name: str,
                  progress: Progress) -> None:
        progress(f"utmctl start {name}", None)
        self.utmctl(conn, f"{address}: starting VM {name!r}", "start", vm_id)

    def _status(self, conn: Connection, address: str, vm_id: str) -> str:
        return self.utmctl(conn, f"{address}: reading the VM's status", "status",
                           vm_id).out.strip()

    def stop(self, conn: Connection, address: str, observed: Observed,
             desired: Desired | None, progress: Progress) -> None:
        """Ask the guest (`stop --request`), wait up to options.shutdown_timeout for it, then
        power off (`stop --force`)."""
        vm_id = observed.handle["id"]
        options = parse_options(address, desired.model.options
                                if desired is not None and desired.model is not None else {})
        if self._status(conn, address, vm_id) == "stopped":
            return
        timeout = options.shutdown_timeout
        if timeout > 0:
            progress(f"utmctl stop {observed.name} --request (up to {timeout:g} s)", None)
            self.utmctl(conn, f"{address}: asking VM {observed.name!r} to shut down", "stop",
                        vm_id, "--request")
            deadline = time.monotonic() + timeout
            while True:
                if self._status(conn, address, vm_id) == "stopped":
                    return
                if time.monotonic() >= deadline:
                    break
                time.sleep(POLL_SECONDS)
        progress(f"utmctl stop {observed.name} --force (no shutdown within {timeout:g} s)",
                 None)
        self.utmctl(conn, f"{address}: powering off VM {observed.name!r}", "stop", vm_id,
                    "--force")

    def delete(self, conn: Connection, change: Change, observed: Observed,
               progress: Progress) -> None:
        """Power off and delete a VM this project made (UTM deletes its bundle)."""
        if observed.marks is None or observed.marks.project != change.project:
            raise ProviderError(f"{change.address}: VM {observed.name!r} carries no mark of "
                                "this project: decl will not delete it")
        vm_id = observed.handle["id"]
        if observed.state != "stopped":
            progress(f"utmctl stop {observed.name} --kill", None)
            self.utmctl(conn, f"{change.address}: stopping VM {observed.name!r}", "stop",
                        vm_id, "--kill")
        progress(f"utmctl delete {observed.name}", None)
        self.utmctl(conn, f"{change.address}: deleting VM {observed.name!r}", "delete", vm_id)


def _existing(observed: Observed | None, change: Change) -> Observed:
    if observed is None or not observed.handle.get("id"):
        raise ProviderError(f"{change.address}: the VM was not found on host {change.host}")
    return observed


__all__ = ["UtmOptions", "UtmProvider"]
