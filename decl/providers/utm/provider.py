"""UTM VMs (facts and sources: docs/facts/utm.md), written on the VM base.

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
disk's source (`sources=`) and of the cdrom path (`cdrom=`), and the observed handle says so
(`recorded`). UTM changes a configuration only while the VM is stopped, so every change is a
restart; a disk size change is refused at plan time (UTM cannot resize a drive through its
dictionary).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal

from pydantic import Field

from decl.connections.base import CommandResult, Connection
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.core.units import format_size
from decl.errors import ProviderError
from decl.providers import cloudinit, textmarks
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportNotSupported,
    ImportScope,
    Operation,
    OwnedPath,
    ValidateContext,
    ValidationProblem,
    orphan_address,
)
from decl.providers.utm import applescript as script
from decl.providers.utm import output
from decl.providers.vmbase import (
    RUNNING_STATES,
    VmOptions,
    VmProvider,
    VmSupport,
    option_field,
    owned_in,
)
from decl.providers.vmimport import common_fields, is_manifest_name
from decl.providers.vmspec import HostFacts, check_vm_field, disk_names

MIB = 1024 * 1024
UTMCTL_APP_PATH = "/Applications/UTM.app/Contents/MacOS/utmctl"
# decl's architecture names -> QEMU's, as UTM's `architecture` takes them.
UTM_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "i686": "i386", "armv7l": "arm",
            "riscv64": "riscv64", "ppc64le": "ppc64", "s390x": "s390x"}
DECL_ARCH = {v: k for k, v in UTM_ARCH.items()}
STATES = {"started": "running", "stopped": "stopped", "paused": "paused"}


class UtmOptions(VmOptions):
    """`options:` of a VM with `provider: utm`."""

    backend: Literal["qemu", "apple"] = Field(
        "qemu", description="qemu (any architecture; emulation when it is not the host's) or "
        "apple (Apple Virtualization: the host's architecture, Linux guests, UEFI). A VM "
        "keeps its backend: a change replaces it.")

    seed_dir: str = Field(
        "~/Library/Application Support/decl/utm-seeds",
        description="Folder on the Mac for the cloud-init seed ISOs decl makes (one per VM, "
        "deleted with it); UTM attaches them as a removable drive.")

    def comparable(self) -> dict[str, Any]:
        """The backend is compared with the VM's."""
        return {"backend": self.backend}


def digest(text: str) -> str:
    """A short digest that fits in the marks line."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_utm_field(path: str, before: Any, after: Any) -> str | None:
    """Plan-time refusals: UTM cannot change a drive's size, and disks never shrink."""
    shrink = check_vm_field(path, before, after)
    if shrink is not None:
        return shrink
    if path.startswith("disk_size.") and isinstance(before, int) and isinstance(after, int):
        dev = path.split(".", 1)[1]
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
                  "cloud_init": Policy.RESTART, "arch": Policy.REPLACE,
                  "disk_count": Policy.REPLACE, "disk_source": Policy.REPLACE,
                  "options": Policy.REPLACE},
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
            "cdrom": extra.get("cdrom") or None, "seed": extra.get("seed") or None}


def record_extra(spec: dict[str, Any]) -> dict[str, str]:
    """The marks line's extra values for a desired spec."""
    names = disk_names(spec["disk_count"])
    sizes = [spec["disk_size"].get(dev) for dev in names]
    sources = [spec["disk_source"][dev] for dev in names]
    extra = {"disks": ",".join(str(s // MIB) if s else "0" for s in sizes),
             "sources": ",".join("empty" if s == "empty" else digest(s) for s in sources)}
    if spec.get("cdrom"):
        extra["cdrom"] = digest(spec["cdrom"])
    if spec.get("cloud_init"):
        extra["seed"] = textmarks.digest(spec["cloud_init"])
    return {k: v for k, v in extra.items() if v}


def _recorded(value: str, wanted: str | None) -> str:
    """A recorded digest shown as the wanted value when it matches, else as a digest."""
    if value == "empty":
        return value
    if wanted is not None and digest(wanted) == value:
        return wanted
    return f"(recorded {value})"


def observed_spec(config: dict[str, Any], backend: str, host_arch: str,
                  recorded: dict[str, Any], desired: Desired | None) -> dict[str, Any]:
    """The comparable spec (the VM base's keys) of a UTM configuration record (pure)."""
    drives = [d for d in config.get("drives") or [] if isinstance(d, dict)]
    fixed = [d for d in drives if not d.get("removable")]
    removable = [d for d in drives if d.get("removable")]
    names = disk_names(len(fixed))
    wanted = desired.spec if desired is not None else {}
    sizes = recorded["disks"] if len(recorded["disks"]) == len(fixed) else [None] * len(fixed)
    sources: dict[str, str] = {}
    if len(recorded["sources"]) == len(fixed):
        sources = {dev: _recorded(value, (wanted.get("disk_source") or {}).get(dev))
                   for dev, value in zip(names, recorded["sources"], strict=True)}
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
    cdrom = _recorded(recorded["cdrom"], wanted.get("cdrom")) \
        if removable and recorded["cdrom"] else None
    # the seed is the removable drive after the cdrom's (both are decl's records)
    seeded = recorded.get("seed") and len(removable) >= (2 if recorded["cdrom"] else 1)
    cloud_init = textmarks.recorded(recorded["seed"], wanted.get("cloud_init")) \
        if seeded else None
    memory = config.get("memory")
    return {
        "cpus": config.get("cpu cores"),
        "memory": memory * MIB if isinstance(memory, int) else None,
        "arch": arch,
        "firmware": firmware,
        "disk_count": len(fixed),
        "disk_size": dict(zip(names, sizes, strict=True)),
        "disk_source": sources,
        "cdrom": cdrom,
        "network": network,
        "cloud_init": cloud_init,
        "options": {"backend": backend},
    }


class UtmProvider(VmProvider[UtmOptions]):
    """`vms:` with `provider: utm`."""

    name: ClassVar[str] = "utm"
    traits: ClassVar[dict[str, KindTraits]] = {"vm": traits()}
    parallel_limit: ClassVar[int | None] = 1  # one GUI app answers every Apple event
    options_model = UtmOptions
    support = VmSupport(arches=frozenset(UTM_ARCH), memory_multiple=MIB, min_memory=32 * MIB)

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The cloud-init seed ISO SEED_DIR/PROJECT-NAME-seed.iso, deleted with the VM."""
        if not spec.get("cloud_init"):
            return []
        return [owned_in(self.options_of(model).seed_dir, f"{context.project}-{name}-seed.iso",
                         field=option_field(model, "seed_dir") or ("cloud_init",),
                         what="seed file")]

    def __init__(self) -> None:
        self.facts = HostFacts()  # a cache of host facts, not per-call state

    # -- validate and spec ---------------------------------------------------------------

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """What UTM cannot do, said where the manifest asks for it."""
        problems = []
        if options.backend == "apple" and model.firmware == "bios" \
                and "firmware" in model.model_fields_set:
            problems.append(ValidationProblem(context.at("firmware"), (
                "options.backend apple boots with UEFI only (firmware: bios is not possible)")))
        for index, disk in enumerate(model.disks):
            if disk.image is not None:
                if disk.image.startswith(("http://", "https://")):
                    problems.append(ValidationProblem(context.at("disks", index, "image"), (
                        "UTM imports a local image file; download it first")))
                if disk.size is not None:
                    problems.append(ValidationProblem(context.at("disks", index, "size"), (
                        "UTM cannot resize an imported image (leave out size)")))
            elif disk.size is not None and disk.size % MIB:
                problems.append(ValidationProblem(context.at("disks", index, "size"), (
                    "UTM takes disk sizes in whole MiB")))
        return problems

    def spec(self, kind: str, name: str, model: Any, context: Any) -> dict[str, Any]:
        """The common spec; an Apple Virtualization VM always boots with UEFI."""
        spec = super().spec(kind, name, model, context)
        if self.options_of(model).backend == "apple":
            spec["firmware"] = "uefi"
        return spec

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

    def _configs(self, conn: Connection, rows: list[output.UtmRow]
                 ) -> dict[str, tuple[str, dict[str, Any]]]:
        """id -> (backend, configuration record) of every VM, from one osascript."""
        configs: dict[str, tuple[str, dict[str, Any]]] = {}
        if rows:
            value = self.osascript(conn, f"reading UTM configurations on host {conn.host}",
                                   script.discover())
            try:
                ids, backends, records = value
                for vm_id, backend, record in zip(ids, backends, records, strict=True):
                    word = backend.name if isinstance(backend, output.Constant) else str(backend)
                    configs[str(vm_id).upper()] = (word, record)
            except (TypeError, ValueError):
                raise ProviderError("unexpected result from UTM's configuration script") \
                    from None
        return configs

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """`utmctl list`, then (when there is any VM) one osascript for every configuration."""
        rows = self._rows(conn)
        configs = self._configs(conn, rows)
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
            address = orphan_address(marks, project, None)
            if address is None:
                continue
            if address in claimed:
                if address in by_address:
                    found.problems[address] = (f"two UTM VMs carry the marks of {address} on "
                                               f"host {conn.host}")
                continue
            claimed.add(address)
            found.observed.append(self._observed(conn, address, row, backend, config, marks,
                                                 extra, user_notes, host_arch,
                                                 by_address.get(address)))
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

    # -- import --------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """VMs whose notes have no decl marks line, from discovery's two processes."""
        rows = self._rows(conn)
        configs = self._configs(conn, rows)
        host_arch = self.facts.arch(conn)
        found = []
        for row in rows:
            backend, config = configs.get(row.uuid, ("unavailable", {}))
            marks, extra, user_notes = textmarks.parse(str(config.get("notes") or ""))
            if marks is None:
                found.append(self._observed(conn, f"vm.{row.name}", row, backend, config,
                                            None, extra, user_notes, host_arch, None))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """cpus, memory, arch, firmware, backend and network from the configuration record.
        UTM does not report a disk's size or source: the disks are left out of the entry
        and out of decl's hands (`ignore_changes: [disk_count, disk_size, disk_source]`), as
        are cpus when UTM uses its default (`cpu cores` 0) and a network a manifest cannot
        name."""
        spec = observed.spec
        backend = str(observed.handle.get("backend"))
        what = f"UTM VM {observed.name!r}"
        if backend not in ("qemu", "apple"):
            raise ImportNotSupported(f"{what}: UTM gives no configuration for it "
                                     f"(backend {backend})")
        if not is_manifest_name(observed.name):
            raise ImportNotSupported(f"{what}: its name cannot be a manifest name, and decl "
                                     "finds a UTM VM by its name: rename it in UTM first")
        if spec.get("memory") is None or (backend == "qemu" and spec.get("arch") not in
                                          UTM_ARCH):
            raise ImportNotSupported(f"{what}: its memory or architecture "
                                     f"({spec.get('arch')}) cannot be read back")
        ignored: list[str] = []
        cpus = spec.get("cpus")
        if not isinstance(cpus, int) or cpus < 1:
            ignored.append("cpus")  # UTM's default: as many as the host has
        entry = common_fields(observed.state, cpus, spec["memory"])
        if "cpus" in ignored:
            del entry["cpus"]
        if backend == "qemu":
            entry["arch"] = spec["arch"]
            if spec.get("firmware") == "uefi":
                entry["firmware"] = "uefi"
        if spec.get("disk_count"):
            ignored += ["disk_count", "disk_size", "disk_source"]
        network = spec.get("network") or {}
        if network.get("mode") == "none":
            entry["network"] = {"mode": "none"}
        elif network.get("mode") == "bridge" and network.get("bridge"):
            entry["network"] = {"mode": "bridge", "bridge": network["bridge"]}
        elif network.get("mode") != "nat":
            ignored.append("network")
        if backend == "apple":
            entry["options"] = {"backend": "apple"}
        if ignored:
            entry["lifecycle"] = {"ignore_changes": ignored}
        return entry

    def _rows(self, conn: Connection) -> list[output.UtmRow]:
        listed = self.utmctl(conn, f"listing UTM VMs on host {conn.host}", "list")
        try:
            return output.parse_list(listed.out)
        except ValueError as exc:
            raise ProviderError(f"unexpected output from utmctl list on host {conn.host}: "
                                f"{exc}") from None

    def _observed(self, conn: Connection, address: str, row: output.UtmRow, backend: str,
                  config: dict[str, Any], marks: Marks | None, extra: dict[str, str],
                  user_notes: str, host_arch: str, desired: Desired | None) -> Observed:
        drives = [d for d in config.get("drives") or [] if isinstance(d, dict)]
        return Observed(
            address=address, kind="vm", name=row.name, provider=self.name, host=conn.host,
            state=STATES.get(row.status, row.status),
            spec=observed_spec(config, backend, host_arch, records_of(extra), desired),
            marks=marks,
            handle={"id": row.uuid, "name": row.name, "notes": user_notes,
                    "backend": backend,
                    "disk_ids": [str(d.get("id")) for d in drives if not d.get("removable")],
                    "nics": len(config.get("network interfaces") or []),
                    "recorded": "disk sizes, disk sources and the cdrom are decl's records "
                                "in the VM's notes (UTM does not report them)"},
        )

    def _problem(self, conn: Connection, desired: Desired, host_arch: str) -> str | None:
        """Plan-time errors of a wanted VM on its host."""
        model = desired.model
        if model is None:
            return None
        options = self.options_of(model)
        arch = model.arch or host_arch
        if options.backend == "apple" and arch != host_arch:
            return (f"options.backend apple runs guests of the host's architecture "
                    f"({host_arch}) only; arch {arch} needs backend qemu (emulation)")
        paths = [("cdrom", model.cdrom)] + [(f"disk {dev} image", d.image) for dev, d in
                                            zip(disk_names(len(model.disks)), model.disks,
                                                strict=True)]
        for what, path in paths:
            if path and not conn.exists(conn.expand_user(path)):
                return f"{what} {path} does not exist on host {conn.host}"
        if model.cloud_init is not None and cloudinit.iso_tool(conn) is None:
            return (f"cloud_init needs genisoimage, mkisofs or xorriso on host {conn.host} "
                    "(on a Mac: brew install xorriso)")
        return None

    # -- backend primitives ----------------------------------------------------------------

    def _id(self, op: Operation) -> str:
        """The VM's id: found by discovery, or (after define) by its name and marks."""
        if op.observed is not None and op.observed.handle.get("id"):
            return str(op.observed.handle["id"])
        rows = [r for r in self._rows(op.conn) if r.name == op.name]
        if len(rows) == 1:
            return rows[0].uuid
        for row in rows:
            if self._marks_of(op, row.uuid) == op.marks():
                return row.uuid
        raise ProviderError(f"{op.address}: the VM was not found on host {op.conn.host}")

    def _marks_of(self, op: Operation, vm_id: str) -> Marks | None:
        config = self.osascript(op.conn, f"{op.address}: reading the VM's notes",
                                script.tell_utm(f"return configuration of "
                                                f"{script.vm_by_id(vm_id)}"))
        notes = config.get("notes") if isinstance(config, dict) else None
        return textmarks.parse(str(notes or ""))[0]

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the VM's notes, as UTM reports them now."""
        return self._marks_of(op, self._id(op))

    def power_state(self, op: Operation) -> str | None:
        """utmctl status, in decl's words (None when UTM does not know the VM)."""
        vm_id = self._id(op)
        result = op.conn.run([self._utmctl(op.conn), "status", vm_id], timeout=120)
        if result.returncode == 1 and "Virtual machine not found" in result.err:
            return None
        failure = output.event_failure(result.err)
        if not result.ok or failure:
            raise ProviderError(f"{op.address}: utmctl status failed on host {op.conn.host}: "
                                f"{failure or result.err.strip() or result.returncode}")
        word = result.out.strip()
        return STATES.get(word, word)

    def power_on(self, op: Operation, options: UtmOptions) -> None:
        """utmctl start."""
        op.progress(f"utmctl start {op.name}", None)
        self.utmctl(op.conn, f"{op.address}: starting VM {op.name!r}", "start", self._id(op))

    def soft_stop(self, op: Operation, options: UtmOptions) -> bool:
        """utmctl stop --request: the guest is asked, and may ignore it. A paused guest
        cannot be asked (UTM refuses): False, and the base stops it hard."""
        if self.power_state(op) == "paused":
            return False
        op.progress(f"utmctl stop {op.name} --request", None)
        self.utmctl(op.conn, f"{op.address}: asking VM {op.name!r} to shut down", "stop",
                    self._id(op), "--request")
        return True

    def hard_stop(self, op: Operation, options: UtmOptions) -> None:
        """utmctl stop --force (power off); --kill for a paused VM, which --force refuses."""
        method = "--kill" if self.power_state(op) == "paused" else "--force"
        op.progress(f"utmctl stop {op.name} {method}", None)
        self.utmctl(op.conn, f"{op.address}: powering off VM {op.name!r}", "stop",
                    self._id(op), method)

    def _configuration(self, op: Operation, backend: str, user_notes: str,
                       drives: list[script.Code] | None, nics: list[script.Code] | None,
                       fields: set[str] | None = None) -> script.Code:
        """The configuration record: every setting (fields None, a new VM), or the name,
        the notes with the marks and the settings in `fields` only (UTM keeps what a
        record leaves out)."""
        desired = op.need_desired()
        spec = desired.spec
        notes = textmarks.with_marks(user_notes, op.marks(), record_extra(spec))

        def wanted(field: str) -> bool:
            return fields is None or field in fields

        items: list[tuple[str, script.Code]] = [
            ("name", script.string(op.name)),
            ("notes", script.string(notes)),
        ]
        if wanted("memory"):
            items.append(("memory", script.integer(spec["memory"] // MIB)))
        if wanted("cpus"):
            items.append(("cpu cores", script.integer(spec["cpus"])))
        if backend == "qemu":
            host_arch = self.facts.arch(op.conn)
            arch = desired.model.arch or host_arch
            if wanted("arch"):
                items += [("architecture", script.string(UTM_ARCH[arch])),
                          ("hypervisor", script.boolean(arch == host_arch))]
            if wanted("firmware"):
                items.append(("uefi", script.boolean(spec["firmware"] == "uefi")))
        if drives is not None:
            items.append(("drives", script.alist(drives)))
        if nics is not None:
            items.append(("network interfaces", script.alist(nics)))
        return script.record(items)

    @staticmethod
    def _nics(network: dict[str, Any], existing: int) -> list[script.Code]:
        """The network interface list: one NIC (the first one kept by index) or none."""
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

    @staticmethod
    def _removable(op: Operation, path: str) -> script.Code:
        return script.record([("removable", script.boolean(True)),
                              ("source", script.posix_file(op.conn.expand_user(path)))])

    @staticmethod
    def _seed_path(op: Operation, options: UtmOptions) -> str:
        folder = op.conn.expand_user(options.seed_dir).rstrip("/")
        return f"{folder}/{op.project}-{op.name}-seed.iso"

    def _removables(self, op: Operation, options: UtmOptions) -> list[script.Code]:
        """The cdrom, then the cloud-init seed (made now), as new removable drives."""
        spec = op.need_desired().spec
        drives = []
        if spec.get("cdrom"):
            drives.append(self._removable(op, spec["cdrom"]))
        if spec.get("cloud_init"):
            seed = self._seed_path(op, options)
            op.conn.makedirs(seed.rsplit("/", 1)[0])
            self.make_seed(op, seed)
            drives.append(self._removable(op, seed))
        return drives

    def define(self, op: Operation, options: UtmOptions) -> None:
        """One `make new virtual machine` with the whole configuration and the marks: UTM
        makes it at once or not at all."""
        desired = op.need_desired()
        drives = []
        for disk in desired.model.disks:
            if disk.image:
                drives.append(script.record([("source", script.posix_file(
                    op.conn.expand_user(disk.image)))]))
            else:
                drives.append(script.record([("guest size",
                                              script.integer(disk.size // MIB))]))
        drives += self._removables(op, options)
        config = self._configuration(op, options.backend, "", drives,
                                     self._nics(desired.spec["network"], 0))
        op.progress(f"creating UTM VM {op.name} ({options.backend} backend)", None)
        self.osascript(op.conn, f"{op.address}: creating UTM VM {op.name!r}",
                       script.make_vm(options.backend, config))

    def modify(self, op: Operation, options: UtmOptions, fields: set[str]) -> None:
        """`update configuration` (the VM is stopped) with the settings that changed, the
        drive list only when the cdrom changes (existing disks by id, so they keep their
        data), and the notes with the marks (the user's notes kept)."""
        observed = op.need_observed()
        spec = op.need_desired().spec
        if self.power_state(op) in RUNNING_STATES:
            raise ProviderError(f"{op.address}: UTM changes a VM's configuration only while "
                                "it is stopped")
        drives = None
        if fields & {"cdrom", "cloud_init"}:
            # existing disks by id (they keep their data); the removable drives anew
            drives = [script.record([("id", script.string(i))])
                      for i in observed.handle.get("disk_ids", [])]
            drives += self._removables(op, options)
        nics = self._nics(spec["network"], int(observed.handle.get("nics", 0))) \
            if "network" in fields else None
        config = self._configuration(op, str(observed.handle.get("backend", options.backend)),
                                     str(observed.handle.get("notes", "")), drives, nics,
                                     fields)
        op.progress(f"updating the configuration of {op.name}", None)
        self.osascript(op.conn, f"{op.address}: updating UTM VM {op.name!r}",
                       script.update_vm(self._id(op), config))

    def grow_disk(self, op: Operation, options: UtmOptions, dev: str, size: int,
                  running: bool) -> None:
        """Refused: the plan stops it first (check_utm_field) with the reason."""
        raise ProviderError(f"{op.address}: UTM cannot resize disk {dev} through its "
                            "scripting dictionary")

    def remove(self, op: Operation, options: UtmOptions) -> None:
        """utmctl delete (UTM deletes the VM's bundle, its disks inside)."""
        op.progress(f"utmctl delete {op.name}", None)
        self.utmctl(op.conn, f"{op.address}: deleting VM {op.name!r}", "delete", self._id(op))
        seed = self._seed_path(op, options)
        if op.conn.exists(seed):
            op.conn.remove(seed)

    def adopt(self, op: Operation) -> None:
        """Writing the marks is a configuration change: a running VM is restarted for it."""
        if self.power_state(op) in RUNNING_STATES:
            self.restart_update(op)
        else:
            self.update(op)


__all__ = ["UtmOptions", "UtmProvider"]
