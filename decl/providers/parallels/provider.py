"""Parallels Desktop VMs through prlctl (facts and sources: docs/facts/parallels.md).

Written on the VM base (decl/providers/vmbase.py): this module gives the backend primitives.
Discovery is one `prlctl list -a -i -j` per host. Marks live in the VM's description (one
line of it; the user's text is kept), read back from what prlctl reports. VMs are addressed
by UUID once found. Hardware settings need a stopped VM: their changes are restarts
(a graceful `prlctl stop`, after `options.shutdown_timeout` a `prlctl stop --kill`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from decl.connections.base import CommandResult, CommandTimeout, Connection
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
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
from decl.providers.parallels import output
from decl.providers.vmbase import VmOptions, VmProvider, VmSupport, owned_in
from decl.providers.vmimport import common_fields, disk_entries, is_manifest_name
from decl.providers.vmspec import HostFacts, disk_names, vm_traits

MIB = 1024 * 1024
PENDING_HASH = "pending"
# The cloud-init seed, made inside the VM's bundle (deleted with it) and attached as a CD.
SEED_FILE = "cloud-init-seed.iso"
# prlctl's state words -> decl's run states (others are reported as they are).
STATES = {"running": "running", "stopped": "stopped", "paused": "paused",
          "suspended": "suspended"}


class ParallelsOptions(VmOptions):
    """`options:` of a VM with `provider: parallels`."""

    ostype: str = Field("linux", pattern=r"^[a-z0-9_.-]+$",
                        description="Guest OS type given to `prlctl create --ostype` (see "
                        "`prlctl create x --ostype list`); only used when creating.")
    vm_dir: str | None = Field(None, description="Folder for the VM bundle (`prlctl create "
                               "--dst`); default: Parallels' own. Only used when creating.")


def traits() -> KindTraits:
    """The common VM policies, but a disk grows only while the VM is stopped (a restart).
    `prlctl create` makes the VM and a later `prlctl set --description` marks it: a VM can
    exist unmarked (half_made)."""
    base = vm_traits(half_made=True)
    return KindTraits(
        half_made=base.half_made,
        policies={**base.policies, "disk_size": Policy.RESTART},
        default_policy=base.default_policy,
        destroys_data=base.destroys_data,
        has_run_state=True,
        size_fields=base.size_fields,
        check=base.check,
    )


def hdd_of(dev: str) -> str:
    """prlctl's device for decl's disk name: vda -> hdd0, vdb -> hdd1."""
    return f"hdd{ord(dev[-1]) - ord('a')}"


def seed_attached(vm: output.PrlVm) -> bool:
    """Whether the VM has decl's cloud-init seed in a CD drive."""
    return any(image.endswith("/" + SEED_FILE) for _dev, image in vm.cdroms)


def marks_extra(spec: dict[str, Any]) -> dict[str, str]:
    """What the marks line records besides the marks: a digest of the cloud-init seed's
    content (prlctl reports the seed file, not what is in it)."""
    return {"seed": textmarks.digest(spec["cloud_init"])} if spec.get("cloud_init") else {}


def observed_spec(vm: output.PrlVm, arch: str, extra: dict[str, str] | None = None,
                  desired: Desired | None = None,
                  cdrom_given: tuple[str, str] | None = None) -> dict[str, Any]:
    """The comparable spec (the VM base's keys) of what prlctl reports (pure). The seed's
    content is known by the digest decl recorded with the marks (see marks_extra).
    `cdrom_given` is (the manifest's `~/x.iso`, its expansion on the host): the image prlctl
    reports is shown as the manifest wrote it when it is exactly that file."""
    disks = [d for d in vm.disks if d.enabled]
    names = disk_names(len(disks))
    cloud_init = None
    if seed_attached(vm):
        wanted = desired.spec.get("cloud_init") if desired is not None else None
        cloud_init = textmarks.recorded((extra or {}).get("seed", "none"), wanted)
    cdrom = vm.cdrom if vm.cdrom and not vm.cdrom.endswith("/" + SEED_FILE) else None
    if cdrom is not None and cdrom_given is not None and cdrom == cdrom_given[1]:
        cdrom = cdrom_given[0]
    return {
        "cpus": vm.cpus,
        "memory": vm.memory,
        "arch": arch,
        "firmware": "uefi" if vm.efi else "bios",
        "disk_count": len(disks),
        "disk_size": {dev: d.size for dev, d in zip(names, disks, strict=True)},
        # decl makes every Parallels disk empty (validate refuses an image)
        "disk_source": {dev: "empty" for dev in names},
        "cdrom": cdrom,
        "network": dict(vm.network),
        "cloud_init": cloud_init,
        "options": {},
    }


def observed_state(state: str) -> str:
    """decl's run state from prlctl's state word."""
    return STATES.get(state, state)


class ParallelsProvider(VmProvider[ParallelsOptions]):
    """`vms:` with `provider: parallels`."""

    name: ClassVar[str] = "parallels"
    traits: ClassVar[dict[str, KindTraits]] = {"vm": traits()}
    parallel_limit: ClassVar[int | None] = 4
    options_model = ParallelsOptions
    support = VmSupport(arches=frozenset({"x86_64", "aarch64"}), memory_multiple=MIB,
                        min_memory=32 * MIB)

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """The VM bundle VM_DIR/NAME.pvm (`prlctl create --dst`); Parallels' default folder
        is its own, so only an explicit `options.vm_dir` is checked."""
        folder = self.options_of(model).vm_dir
        return [owned_in(folder, f"{name}.pvm", field=("options", "vm_dir"),
                         what="VM bundle")] if folder else []

    def __init__(self) -> None:
        self.facts = HostFacts()  # a cache of host facts, not per-call state

    # -- validate ------------------------------------------------------------------------

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """Disks are made empty, in whole MiB, inside the VM bundle."""
        problems = []
        for index, disk in enumerate(model.disks):
            if disk.image is not None:
                problems.append(ValidationProblem(context.at("disks", index, "image"), (
                    "the parallels provider makes empty disks only (Parallels keeps disks "
                    "inside the VM bundle); leave out image")))
            elif disk.size is not None and disk.size % MIB:
                problems.append(ValidationProblem(context.at("disks", index, "size"), (
                    "Parallels takes disk sizes in whole MiB")))
        return problems

    # -- the tool ------------------------------------------------------------------------

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

    # -- check and discover --------------------------------------------------------------

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

    def _list_all(self, conn: Connection) -> list[output.PrlVm]:
        """Every VM with its details, from one `prlctl list -a -i -j`."""
        result = self._checked(conn, f"listing Parallels VMs on host {conn.host}",
                               "list", "-a", "-i", "-j")
        try:
            return output.parse_list_info(result.out)
        except ValueError as exc:
            raise ProviderError(f"unexpected output from prlctl list on host {conn.host}: "
                                f"{exc}") from None

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """Every VM with its details from one `prlctl list -a -i -j`."""
        vms = self._list_all(conn)
        arch = self.facts.arch(conn)
        found = Discovery()
        by_address = {d.address: d for d in wanted}
        parsed = [(vm, *textmarks.parse(vm.description)) for vm in vms]
        claimed: set[str] = set()
        for vm, marks, extra, user_text in parsed:
            address = orphan_address(marks, project, None)
            if address is None:
                continue
            if address in claimed:
                if address in by_address:
                    found.problems[address] = (f"two Parallels VMs carry the marks of {address} "
                                               f"on host {conn.host}")
                continue
            claimed.add(address)
            found.observed.append(self._observed(conn, address, vm, marks, extra, user_text,
                                                 arch, by_address.get(address)))
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
                vm, marks, extra, user_text = same[0]
                found.observed.append(self._observed(conn, desired.address, vm, marks, extra,
                                                     user_text, arch, desired))
            if desired.state != "absent":
                problem = self._problem(conn, desired, arch)
                if problem:
                    found.problems[desired.address] = problem
        return found

    # -- import --------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """VMs whose description has no decl marks line, from discovery's one listing."""
        arch = self.facts.arch(conn)
        found = []
        for vm in self._list_all(conn):
            marks, extra, user_text = textmarks.parse(vm.description)
            if marks is None:
                found.append(self._observed(conn, f"vm.{vm.name}", vm, None, extra, user_text,
                                            arch, None))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """cpus, memory, firmware, the enabled disks' sizes, the cdrom and the network, as
        prlctl reports them. A network a manifest cannot name (host-only, or bridged to
        Parallels' default adapter) is left out and kept out of decl's hands with
        `ignore_changes: [network]`."""
        spec = observed.spec
        if not is_manifest_name(observed.name):
            raise ImportNotSupported(
                f"Parallels VM {observed.name!r}: its name cannot be a manifest name, and decl "
                "finds a Parallels VM by its name: rename it first (prlctl set NAME --name "
                "NEW)")
        sizes = spec.get("disk_size") or {}
        unread = [hdd_of(dev) for dev, size in sizes.items() if not size]
        if spec.get("cpus") is None or spec.get("memory") is None or unread:
            missing = ["cpus" if spec.get("cpus") is None else "",
                       "memory" if spec.get("memory") is None else "",
                       *(f"the size of {hdd}" for hdd in unread)]
            raise ImportNotSupported(f"prlctl does not report {', '.join(m for m in missing if m)} "
                                     f"of Parallels VM {observed.name!r}")
        entry = common_fields(observed.state, spec["cpus"], spec["memory"])
        if spec.get("firmware") == "uefi":
            entry["firmware"] = "uefi"
        if sizes:
            entry["disks"] = disk_entries([int(size) for size in sizes.values()])
        if spec.get("cdrom"):
            entry["cdrom"] = spec["cdrom"]
        network = spec.get("network") or {}
        if network.get("mode") == "none":
            entry["network"] = {"mode": "none"}
        elif network.get("mode") == "bridge" and network.get("bridge"):
            entry["network"] = {"mode": "bridge", "bridge": network["bridge"]}
        elif network.get("mode") != "nat":
            entry["lifecycle"] = {"ignore_changes": ["network"]}
        return entry

    def _observed(self, conn: Connection, address: str, vm: output.PrlVm,
                  marks: Marks | None, extra: dict[str, str], user_text: str, arch: str,
                  desired: Desired | None) -> Observed:
        return Observed(
            address=address, kind="vm", name=vm.name, provider=self.name, host=conn.host,
            state=observed_state(vm.state),
            spec=observed_spec(vm, arch, extra, desired, self._cdrom_given(conn, desired)),
            marks=marks,
            handle={"uuid": vm.uuid, "name": vm.name, "user_text": user_text, "home": vm.home,
                    "seed": seed_attached(vm),
                    "recorded": "the cloud-init seed's content is known by the digest decl "
                                "recorded with the marks"},
        )

    @staticmethod
    def _cdrom_given(conn: Connection, desired: Desired | None) -> tuple[str, str] | None:
        """(the wanted cdrom as written, the host's expansion of its `~`), when it has one."""
        given = desired.spec.get("cdrom") if desired is not None else None
        if not isinstance(given, str) or not given.startswith("~"):
            return None
        return given, conn.expand_user(given)

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
        if model.cloud_init is not None and cloudinit.iso_tool(conn) is None:
            return (f"cloud_init needs genisoimage, mkisofs or xorriso on host {conn.host} "
                    "(on a Mac: brew install xorriso)")
        return None

    # -- backend primitives ----------------------------------------------------------------

    def _info(self, op: Operation, ident: str) -> output.PrlVm | None:
        """The VM as prlctl reports it now (None when it is gone)."""
        result = self._run(op.conn, "list", ident, "-i", "-j")
        if not result.ok:
            if output.is_not_found(result.err):
                return None
            raise ProviderError(f"{op.address}: prlctl list failed: "
                                f"{output.error_text(result.out, result.err)}")
        try:
            vms = output.parse_list_info(result.out)
        except ValueError as exc:
            raise ProviderError(f"{op.address}: unexpected output from prlctl list: "
                                f"{exc}") from None
        return vms[0] if vms else None

    def _uuid(self, op: Operation) -> str:
        """The VM's UUID: found by discovery, or (after define) by its name and marks."""
        if op.observed is not None and op.observed.handle.get("uuid"):
            return str(op.observed.handle["uuid"])
        result = self._checked(op.conn, f"{op.address}: finding VM {op.name!r}",
                               "list", "-a", "-i", "-j")
        for vm in output.parse_list_info(result.out):
            marks = textmarks.parse(vm.description)[0]
            if vm.name == op.name and marks is not None and marks.project == op.project \
                    and marks.address == op.address:
                return vm.uuid
        raise ProviderError(f"{op.address}: the VM was not found on host {op.conn.host}")

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the VM's description, as prlctl reports it now."""
        vm = self._info(op, self._uuid(op))
        return textmarks.parse(vm.description)[0] if vm is not None else None

    def power_state(self, op: Operation) -> str | None:
        """prlctl's state of the VM, in decl's words."""
        vm = self._info(op, self._uuid(op))
        return observed_state(vm.state) if vm is not None else None

    def power_on(self, op: Operation, options: ParallelsOptions) -> None:
        """prlctl start."""
        op.progress(f"prlctl start {op.name}", None)
        self._checked(op.conn, f"{op.address}: starting VM {op.name!r}", "start",
                      self._uuid(op))

    def soft_stop(self, op: Operation, options: ParallelsOptions) -> bool:
        """`prlctl stop`: a shutdown through the guest, waited for up to shutdown_timeout."""
        timeout = options.shutdown_timeout
        op.progress(f"prlctl stop {op.name} (up to {timeout:g} s)", None)
        try:
            result = self._run(op.conn, "stop", self._uuid(op), timeout=timeout)
        except CommandTimeout:
            return True  # still shutting down: the base waits out the rest, then kills
        if not result.ok:
            op.progress(f"prlctl stop failed: {output.error_text(result.out, result.err)}",
                        None)
        return result.ok

    def hard_stop(self, op: Operation, options: ParallelsOptions) -> None:
        """prlctl stop --kill."""
        op.progress(f"prlctl stop {op.name} --kill", None)
        self._checked(op.conn, f"{op.address}: stopping VM {op.name!r}", "stop",
                      self._uuid(op), "--kill")

    def define(self, op: Operation, options: ParallelsOptions) -> None:
        """`prlctl create`, mark it at once, configure it, add its devices, write the real
        marks last. On failure the VM is deleted again (it is ours: its marks say so)."""
        desired = op.need_desired()
        name = op.name
        what = f"{op.address}: creating Parallels VM {name!r}"
        args = ["create", name, "--ostype", options.ostype, "--no-hdd"]
        if options.vm_dir:
            args += ["--dst", op.conn.expand_user(options.vm_dir)]
        op.progress(f"prlctl create {name}", None)
        self._checked(op.conn, what, *args)
        listed = self._checked(op.conn, what, "list", name, "-i", "-j")
        try:
            fresh = [vm for vm in output.parse_list_info(listed.out)
                     if vm.name == name and not textmarks.parse(vm.description)[0]]
        except ValueError as exc:
            raise ProviderError(f"{what}: unexpected output from prlctl list: {exc}") from None
        if len(fresh) != 1:
            raise ProviderError(f"{what}: cannot tell the new VM by its name")
        uuid = fresh[0].uuid
        try:
            pending = Marks(op.project, op.address, PENDING_HASH)
            self._checked(op.conn, f"{op.address}: marking the new VM", "set", uuid,
                          "--description", textmarks.with_marks("", pending))
            spec = desired.spec
            self._checked(op.conn, f"{op.address}: configuring the VM", "set", uuid,
                          "--cpus", str(spec["cpus"]), "--memsize", str(spec["memory"] // MIB),
                          "--efi-boot", "on" if spec["firmware"] == "uefi" else "off")
            for dev, size in spec["disk_size"].items():
                op.progress(f"adding disk {hdd_of(dev)} of {size // MIB} MiB", None)
                self._checked(op.conn, f"{op.address}: adding disk {hdd_of(dev)}", "set", uuid,
                              "--device-add", "hdd", "--size", str(size // MIB))
            self._set_network(op, uuid, spec["network"])
            if spec.get("cdrom"):
                self._set_cdrom(op, uuid, spec["cdrom"])
            if spec.get("cloud_init"):
                self._attach_seed(op, uuid, fresh[0].home, attached=False)
            self._checked(op.conn, f"{op.address}: marking the VM", "set", uuid,
                          "--description", textmarks.with_marks("", op.marks(),
                                                                marks_extra(spec)))
        except BaseException:
            op.progress(f"removing the unfinished VM {name}", None)
            self._run(op.conn, "delete", uuid)
            raise

    def _set_network(self, op: Operation, uuid: str, network: dict[str, Any]) -> None:
        what = f"{op.address}: setting the network"
        if network["mode"] == "none":
            self._checked(op.conn, what, "set", uuid, "--device-set", "net0", "--disable")
        elif network["mode"] == "bridge":
            self._checked(op.conn, what, "set", uuid, "--device-set", "net0", "--enable",
                          "--type", "bridged", "--iface", network["bridge"])
        else:
            self._checked(op.conn, what, "set", uuid, "--device-set", "net0", "--enable",
                          "--type", "shared")

    def _attach_seed(self, op: Operation, uuid: str, home: str, attached: bool) -> None:
        """(Re)make the seed inside the bundle; add a CD drive for it unless it has one."""
        seed = home.rstrip("/") + "/" + SEED_FILE
        self.make_seed(op, seed)
        if not attached:
            self._checked(op.conn, f"{op.address}: attaching the cloud-init seed", "set", uuid,
                          "--device-add", "cdrom", "--image", seed, "--connect")

    def _set_cdrom(self, op: Operation, uuid: str, cdrom: str) -> None:
        self._checked(op.conn, f"{op.address}: attaching the cdrom", "set", uuid,
                      "--device-set", "cdrom0", "--image", op.conn.expand_user(cdrom),
                      "--connect")

    def modify(self, op: Operation, options: ParallelsOptions, fields: set[str]) -> None:
        """`prlctl set` what differs, and the description with the marks (the user's text
        kept). Firmware changes only reach here for an adopted VM (otherwise a replace)."""
        desired = op.need_desired()
        spec = desired.spec
        uuid = self._uuid(op)
        args: list[str] = []
        if "cpus" in fields:
            args += ["--cpus", str(spec["cpus"])]
        if "memory" in fields:
            args += ["--memsize", str(spec["memory"] // MIB)]
        if "firmware" in fields:
            args += ["--efi-boot", "on" if spec["firmware"] == "uefi" else "off"]
        user_text = op.observed.handle.get("user_text", "") if op.observed is not None else ""
        args += ["--description", textmarks.with_marks(user_text, op.marks(),
                                                       marks_extra(spec))]
        if "cloud_init" in fields and spec.get("cloud_init") and op.observed is not None:
            self._attach_seed(op, uuid, str(op.observed.handle.get("home", "")),
                              attached=bool(op.observed.handle.get("seed")))
        if "network" in fields:
            self._set_network(op, uuid, spec["network"])
        if "cdrom" in fields and spec.get("cdrom"):
            self._set_cdrom(op, uuid, spec["cdrom"])
        op.progress(f"prlctl set {op.name}", None)
        self._checked(op.conn, f"{op.address}: updating the VM", "set", uuid, *args)

    def grow_disk(self, op: Operation, options: ParallelsOptions, dev: str, size: int,
                  running: bool) -> None:
        """`prlctl set VM --device-set hddN --size MiB` (the VM is stopped: a restart)."""
        if running:
            raise ProviderError(f"{op.address}: Parallels grows a disk only while the VM is "
                                "stopped")
        self._checked(op.conn, f"{op.address}: growing disk {hdd_of(dev)}", "set",
                      self._uuid(op), "--device-set", hdd_of(dev), "--size", str(size // MIB))

    def remove(self, op: Operation, options: ParallelsOptions) -> None:
        """prlctl delete: the VM and its bundle (its disks are inside)."""
        op.progress(f"prlctl delete {op.name}", None)
        self._checked(op.conn, f"{op.address}: deleting VM {op.name!r}", "delete",
                      self._uuid(op))


__all__ = ["ParallelsOptions", "ParallelsProvider"]
