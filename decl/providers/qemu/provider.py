"""VMs as qemu-system-* processes that decl owns, each in a VM directory of its own."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any, ClassVar

from decl.connections.base import Connection
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits
from decl.core.units import format_size
from decl.errors import ProviderError
from decl.providers import cloudinit, images
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportNotSupported,
    ImportScope,
    Operation,
    OwnedPath,
    Progress,
    orphan_address,
)
from decl.providers.qemu import qmp
from decl.providers.qemu.options import DEFAULT_VM_DIR, QemuOptions
from decl.providers.qemu.vmdir import (
    DISCOVER_SCRIPT,
    EFIVARS,
    MARK_FILE,
    PID_FILE,
    QMP_SOCKET,
    SEED,
    SERIAL_LOG,
    VmDir,
    parse_discovery,
    parse_qemu_argv,
    qemu_argv,
    stable_mac,
)
from decl.providers.vmbase import VmProvider, VmSupport, option_field, owned_in
from decl.providers.vmspec import (
    DEFAULT_MACHINE,
    QEMU_BINARY,
    HostFacts,
    creation_problem,
    disk_source_id,
    host_problem,
    make_disks,
    uefi_missing_message,
    vm_traits,
)

QMP_WORKERS = 8
QMP_STATUS = {"running": "running", "paused": "paused", "suspended": "paused",
              "prelaunch": "paused", "inmigrate": "paused", "postmigrate": "paused",
              "finish-migrate": "paused", "restore-vm": "paused", "save-vm": "paused",
              "debug": "paused", "io-error": "paused", "watchdog": "paused",
              "colo": "running", "shutdown": "stopped", "guest-panicked": "stopped",
              "internal-error": "stopped"}
QUIT_TIMEOUT = 15.0


def observed_spec(vm: VmDir, live: dict[str, Any] | None,
                  cloud_init: Any = None) -> dict[str, Any]:
    """The comparable spec of a QEMU VM, read from the backend (pure).

    While qemu runs: its process's command line (/proc/PID/cmdline), with memory, cpus and
    the accelerator from QMP. A stopped QEMU VM has no process: what is there is its
    definition, the launch config in decl.json that its command line is built from, so the
    command line it would start with is read the same way (a change to that config outside
    decl shows as drift, as a `virsh edit` does for libvirt). Disk sizes come from
    `qemu-img info` of the disk files, cloud_init from the seed ISO attached (`cloud_init`,
    read by the caller). How a disk was made (its source image) is the one recorded value:
    qemu-img shows only an overlay's backing file and a copy has none.
    """
    mark = vm.mark or {}
    config = mark.get("config") or {}
    if vm.alive and vm.cmdline:
        argv = vm.cmdline
    elif config.get("binary"):
        argv = qemu_argv(config, vm.path, kvm_ok=False)
    else:
        argv = []
    seen = parse_qemu_argv(argv)
    recorded = {d.get("dev"): d.get("source") for d in config.get("disks", [])}
    devs = [dev for dev in seen["disks"] if dev in vm.disks]
    seed = f"{vm.path}/{SEED}"
    cdroms = [path for path in seen["cdroms"] if path != seed]
    if live and live.get("accelerator"):
        accel = live["accelerator"]
    elif vm.alive and vm.cmdline:
        accel = seen["accels"][0] if len(seen["accels"]) == 1 else None
    else:
        accel = None if config.get("accel", "auto") == "auto" else config.get("accel")
    spec: dict[str, Any] = {
        "cpus": seen["cpus"],
        "memory": seen["memory"],
        "arch": seen["arch"],
        "firmware": seen["firmware"],
        "disk_count": len(devs),
        "disk_size": {dev: vm.disks[dev].get("virtual-size") for dev in devs},
        "disk_source": {dev: recorded.get(dev, "unknown") for dev in devs},
        "cdrom": cdroms[0] if cdroms else None,
        "network": seen["network"],
        "cloud_init": cloud_init if seed in seen["cdroms"] else None,
        "options": {"accel": accel, "machine": seen["machine"],
                    "cpu_model": seen["cpu_model"]},
    }
    if live:
        if live.get("memory") is not None:
            spec["memory"] = live["memory"]
        if live.get("cpus") is not None:
            spec["cpus"] = live["cpus"]
    return spec


class QemuProvider(VmProvider[QemuOptions]):
    """qemu-system-<arch> processes, one VM directory each, watched over QMP."""

    name = "qemu"
    options_model = QemuOptions
    support = VmSupport(memory_multiple=1024 * 1024)
    # The VM directory is made first, its decl.json last.
    traits: ClassVar[dict[str, KindTraits]] = {"vm": vm_traits(half_made=True)}

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """A QEMU VM owns its directory VM_DIR/PROJECT/NAME (disks, seed, monitor)."""
        root = self.options_of(model).vm_dir or DEFAULT_VM_DIR
        return [owned_in(root, context.project, name, field=option_field(model, "vm_dir"))]

    def __init__(self) -> None:
        self.facts = HostFacts()

    # -- where things are -----------------------------------------------------------------

    def _root(self, conn: Connection, options: QemuOptions, project: str) -> str:
        base = options.vm_dir
        if base == DEFAULT_VM_DIR or base.startswith("~"):
            base = conn.expand_user(base)
        return f"{base.rstrip('/')}/{project}"

    def _host_cache(self, conn: Connection) -> str:
        if conn.is_local:
            return images.local_cache_dir()
        return conn.expand_user("~/.cache/decl/images")

    # -- check and discover ----------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """qemu-img is installed (each arch's emulator is checked per VM at plan time)."""
        if self.facts.which(conn, "qemu-img") is None:
            return Availability(False, None, f"qemu-img is not installed on host {conn.host} "
                                "(Debian: qemu-utils)")
        result = conn.run(["qemu-img", "--version"], timeout=30)
        version = result.out.split()[2] if result.ok and len(result.out.split()) > 2 else None
        return Availability(True, version)

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One pass over the VM directories (one command), then QMP for each running VM."""
        found = Discovery()
        roots: dict[str, list[Desired]] = {}
        for desired in wanted:
            options = self.options_of(desired.model)
            roots.setdefault(self._root(conn, options, project), []).append(desired)
        roots.setdefault(self._root(conn, QemuOptions(), project), [])  # orphans there too
        result = conn.run(["sh", "-c", DISCOVER_SCRIPT, "sh", *roots], timeout=120)
        result.check(f"reading the QEMU VM directories on host {conn.host}")
        vms = parse_discovery(result.out)
        live = self._query_running(conn, [vm for vm in vms if vm.alive])
        by_path = {f"{root}/{d.name}": d for root, items in roots.items() for d in items}
        for vm in vms:
            wanted_here = by_path.get(vm.path)
            marks = self._marks(vm)
            address = orphan_address(marks, project, wanted_here)
            if address is None:
                continue
            info = live.get(vm.path)
            state = info["state"] if info else "stopped"
            spec = observed_spec(vm, info, self._seed_content(conn, vm))
            if wanted_here is not None and spec["cdrom"] and wanted_here.spec.get("cdrom") and \
                    conn.expand_user(wanted_here.spec["cdrom"]) == spec["cdrom"]:
                spec["cdrom"] = wanted_here.spec["cdrom"]  # the manifest's spelling of it
            found.observed.append(Observed(
                address=address, kind="vm", name=vm.name, provider=self.name,
                host=conn.host, state=state, spec=spec, marks=marks,
                handle={"dir": vm.path, "pid": vm.pid if vm.alive else None,
                        "accelerator": (info or {}).get("accelerator"),
                        "config": (vm.mark or {}).get("config"),
                        "made": (vm.mark or {}).get("made", [])},
            ))
        existing = {vm.path for vm in vms}
        for path, desired in by_path.items():
            if desired.state == "absent":
                continue
            problem = self._problem(conn, desired, path, exists=path in existing)
            if problem:
                found.problems[desired.address] = problem
        return found

    # -- import -----------------------------------------------------------------------------

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """VM directories without decl's marks: under the project's VM directory and in the
        directories given with --path (each of their subdirectories is one VM)."""
        roots = [self._root(conn, QemuOptions(), scope.project),
                 *(conn.expand_user(p) for p in scope.paths)]
        result = conn.run(["sh", "-c", DISCOVER_SCRIPT, "sh", *roots], timeout=120)
        result.check(f"reading the QEMU VM directories on host {conn.host}")
        return [Observed(address=f"vm.{vm.name}", kind="vm", name=vm.name, provider=self.name,
                         host=conn.host, state="running" if vm.alive else "stopped",
                         spec={"disk_size": {dev: info.get("virtual-size")
                                             for dev, info in sorted(vm.disks.items())}},
                         marks=None, handle={"dir": vm.path})
                for vm in parse_discovery(result.out) if self._marks(vm) is None]

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """Never: a directory without decl.json has no launch configuration to read back."""
        disks = ", ".join(f"{dev} {format_size(size)}" for dev, size in
                          sorted((observed.spec.get("disk_size") or {}).items()) if size)
        raise ImportNotSupported(
            f"{observed.handle['dir']} has no decl.json, so its CPUs, memory and how it "
            f"starts cannot be read back (disks: {disks or 'none'}); write its entry by hand "
            "with adopt: true")

    @staticmethod
    def _seed_content(conn: Connection, vm: VmDir) -> Any:
        """What the VM's seed ISO says (cloud_init), read from the file; None without one."""
        path = f"{vm.path}/{SEED}"
        attached = ((vm.mark or {}).get("config") or {}).get("seed") or \
            any(path in arg for arg in vm.cmdline or [])
        if not attached:
            return None
        try:
            return cloudinit.read_seed(conn.read_file(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return f"unreadable seed {path}: {exc}"

    @staticmethod
    def _marks(vm: VmDir) -> Marks | None:
        mark = vm.mark or {}
        if not mark.get("project"):
            return None
        return Marks(project=str(mark["project"]), address=str(mark.get("address", "")),
                     spec_hash=str(mark.get("spec_hash", "")))

    def _query_running(self, conn: Connection, vms: list[VmDir]) -> dict[str, dict[str, Any]]:
        """Run state, accelerator, memory and cpus of each running VM, over QMP in parallel."""
        def query(vm: VmDir) -> tuple[str, dict[str, Any]]:
            try:
                replies = qmp.execute(conn, f"{vm.path}/{QMP_SOCKET}", [
                    ("query-status", None), ("query-kvm", None),
                    ("query-memory-size-summary", None), ("query-cpus-fast", None)])
            except ProviderError:
                return vm.path, {"state": "running", "accelerator": None}
            status = replies[0].get("return") or {}
            kvm = replies[1].get("return") or {}
            memory = replies[2].get("return") or {}
            cpus = replies[3].get("return")
            return vm.path, {
                "state": QMP_STATUS.get(str(status.get("status")), "running"),
                "accelerator": "kvm" if kvm.get("enabled") else "tcg",
                "memory": memory.get("base-memory"),
                "cpus": len(cpus) if isinstance(cpus, list) else None,
            }
        if not vms:
            return {}
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=min(QMP_WORKERS, len(vms))) as pool:
            return dict(pool.map(query, vms))

    def _problem(self, conn: Connection, desired: Desired, path: str,
                 exists: bool) -> str | None:
        """A plan-time error for a wanted VM, or None."""
        model = desired.model
        options = self.options_of(model)
        problem, arch = host_problem(conn, self.facts, model, "qemu",
                                     "accel" if options.accel == "kvm" else None)
        if problem:
            return problem
        if exists:
            return None
        return creation_problem(conn, model, arch, self.facts.uefi_firmware)

    # -- backend primitives ----------------------------------------------------------------

    def _vmdir(self, op: Operation, options: QemuOptions) -> str:
        if op.observed is not None and op.observed.handle.get("dir"):
            return str(op.observed.handle["dir"])
        return f"{self._root(op.conn, options, op.project)}/{op.name}"

    def adopt(self, op: Operation) -> None:
        """A directory decl did not make has no launch config to start it from."""
        vmdir = self._vmdir(op, self.options_for(op))
        raise ProviderError(f"{op.address}: the qemu provider cannot adopt {vmdir}: it has no "
                            "decl.json to start it from; move it away and let decl create "
                            "the VM")

    def read_marks(self, op: Operation) -> Marks | None:
        """The marks in the VM directory's decl.json."""
        vmdir = self._vmdir(op, self.options_for(op))
        try:
            mark = self._read_mark(op.conn, vmdir)
        except ProviderError:
            return None
        return self._marks(VmDir(path=vmdir, name=op.name, mark=mark))

    def power_state(self, op: Operation) -> str | None:
        """running or paused (QMP) while the process lives; stopped; None without the dir."""
        vmdir = self._vmdir(op, self.options_for(op))
        if not self._alive(op.conn, vmdir):
            return "stopped" if op.conn.exists(vmdir) else None
        try:
            replies = qmp.execute(op.conn, f"{vmdir}/{QMP_SOCKET}", [("query-status", None)], 5)
        except ProviderError:
            return "running"
        return QMP_STATUS.get(str((replies[0].get("return") or {}).get("status")), "running")

    def power_on(self, op: Operation, options: QemuOptions) -> None:
        """Start qemu from the launch config (or `cont` a paused one)."""
        self._start(op.conn, self._vmdir(op, options), op.progress)

    def soft_stop(self, op: Operation, options: QemuOptions) -> bool:
        """QMP system_powerdown (ACPI)."""
        try:
            qmp.execute(op.conn, f"{self._vmdir(op, options)}/{QMP_SOCKET}",
                        [("system_powerdown", None)])
        except ProviderError:
            return False
        return True

    def hard_stop(self, op: Operation, options: QemuOptions) -> None:
        """QMP quit; a kill as the last resort."""
        self._kill(op.conn, self._vmdir(op, options))

    def grow_disk(self, op: Operation, options: QemuOptions, dev: str, size: int,
                  running: bool) -> None:
        """QMP block_resize while running, qemu-img resize while stopped."""
        vmdir = self._vmdir(op, options)
        if running:
            qmp.value(qmp.execute(op.conn, f"{vmdir}/{QMP_SOCKET}", [
                ("block_resize", {"device": dev, "size": size})])[0], "block_resize")
            return
        config = self._read_mark(op.conn, vmdir).get("config") or {}
        paths = {d["dev"]: d["path"] for d in config.get("disks", [])}
        if dev not in paths:
            raise ProviderError(f"{op.address}: disk {dev} has no file to grow")
        images.resize_disk(op.conn, paths[dev], size)

    def define(self, op: Operation, options: QemuOptions) -> None:
        """Make the VM directory: disks, UEFI variables, seed, and decl.json."""
        conn, desired = op.conn, op.need_desired()
        model = desired.model
        vmdir = self._vmdir(op, options)
        if conn.exists(vmdir):
            raise ProviderError(f"{desired.address}: {vmdir} already exists on host "
                                f"{conn.host}: decl will not touch it")
        conn.makedirs(vmdir)
        made: list[str] = []
        try:
            disks = [{"dev": dev, "path": path, "source": disk_source_id(disk)}
                     for dev, path, disk in make_disks(
                         conn, model, lambda d: f"{vmdir}/disk-{d}.qcow2",
                         self._host_cache(conn), options.disk_mode, made, op.progress)]
            uefi_code = None
            if model.firmware == "uefi":
                arch = model.arch or self.facts.arch(conn)
                firmware = self.facts.uefi_firmware(conn, arch)
                if firmware is None:
                    raise ProviderError(uefi_missing_message(arch, conn.host))
                uefi_code = firmware[0]
                conn.run(["cp", "--", firmware[1], f"{vmdir}/{EFIVARS}"], timeout=60).check(
                    "copying the UEFI variable store")
                made.append(f"{vmdir}/{EFIVARS}")
            cdrom = conn.expand_user(model.cdrom) if model.cdrom else None
            seed = self._seed(op, vmdir, None, made)
            config = self._config(conn, desired, options, vmdir, disks, uefi_code, cdrom, seed)
            self._write_mark(conn, vmdir, self._mark(op, config, made))
            made.append(f"{vmdir}/{MARK_FILE}")
        except BaseException:
            self._remove_files(conn, vmdir, made)
            raise

    def modify(self, op: Operation, options: QemuOptions, fields: set[str]) -> None:
        """Rewrite the launch config and marks (a running qemu takes them at its next
        start); a changed cloud_init gets a new seed."""
        conn, desired = op.conn, op.need_desired()
        vmdir = self._vmdir(op, options)
        mark = self._read_mark(conn, vmdir)
        old = dict(mark.get("config") or {})
        made = list(mark.get("made") or [])
        cdrom = conn.expand_user(desired.model.cdrom) if desired.model.cdrom else None
        seed = self._seed(op, vmdir, mark.get("spec"), made)
        if seed is None and old.get("seed"):
            conn.remove(old["seed"])
        config = self._config(conn, desired, options, vmdir, old.get("disks", []),
                              old.get("uefi_code"), cdrom, seed)
        config["arch"], config["binary"] = old.get("arch", config["arch"]), \
            old.get("binary", config["binary"])
        self._write_mark(conn, vmdir, self._mark(op, config, made))

    def remove(self, op: Operation, options: QemuOptions) -> None:
        """Remove the files decl made, and the directory if it is then empty."""
        vmdir = self._vmdir(op, options)
        if op.change.in_flight and not op.conn.exists(f"{vmdir}/{MARK_FILE}"):
            # Made by an apply that died before writing decl.json: the directory was new
            # then (define refuses an existing one), so everything in it is decl's.
            op.progress(f"removing the half-made {vmdir}", None)
            op.conn.run(["rm", "-rf", "--", vmdir], timeout=120).check(
                f"{op.address}: removing {vmdir}")
            return
        mark = self._read_mark(op.conn, vmdir)
        made = [str(p) for p in mark.get("made") or []]
        op.progress(f"removing {vmdir}", None)
        self._remove_files(op.conn, vmdir, made + [f"{vmdir}/{MARK_FILE}"])

    # -- the VM directory ----------------------------------------------------------------

    def _read_mark(self, conn: Connection, vmdir: str) -> dict[str, Any]:
        try:
            data = json.loads(conn.read_file(f"{vmdir}/{MARK_FILE}"))
        except (FileNotFoundError, ValueError) as exc:
            raise ProviderError(f"{vmdir}/{MARK_FILE} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise ProviderError(f"{vmdir}/{MARK_FILE} is not a decl VM config")
        return data

    def _write_mark(self, conn: Connection, vmdir: str, data: dict[str, Any]) -> None:
        conn.write_file(f"{vmdir}/{MARK_FILE}",
                        json.dumps(data, sort_keys=True, separators=(",", ":")).encode())

    def _config(self, conn: Connection, desired: Desired, options: QemuOptions,
                vmdir: str, disks: list[dict[str, str]], uefi_code: str | None,
                cdrom: str | None, seed: str | None) -> dict[str, Any]:
        model = desired.model
        host_arch = self.facts.arch(conn)
        arch = model.arch or host_arch
        return {
            "name": desired.name, "arch": arch, "host_arch": host_arch,
            "binary": QEMU_BINARY[arch],
            "machine": options.machine or DEFAULT_MACHINE.get(arch, "virt"),
            "cpu_model": options.cpu_model, "accel": options.accel,
            "memory": model.memory, "cpus": model.cpus, "firmware": model.firmware,
            "uefi_code": uefi_code, "disks": disks, "cdrom": cdrom, "seed": seed,
            "network": {"mode": model.network.mode, "bridge": model.network.bridge},
            "mac": stable_mac(desired.name, vmdir),
        }

    def _mark(self, op: Operation, config: dict[str, Any], made: list[str]) -> dict[str, Any]:
        marks = op.marks()
        return {"project": marks.project, "address": marks.address,
                "spec_hash": marks.spec_hash, "spec": op.need_desired().spec, "config": config,
                "made": sorted(set(made))}

    def _seed(self, op: Operation, vmdir: str, previous: dict[str, Any] | None,
              made: list[str]) -> str | None:
        """The seed ISO's path, made (again) when cloud_init is set and changed."""
        model = op.need_desired().model
        if model.cloud_init is None:
            return None
        cloud = model.cloud_init.model_dump(mode="json")
        path = f"{vmdir}/{SEED}"
        if previous is not None and previous.get("cloud_init") == cloud and \
                "cloud_init" not in op.changed_fields() and op.conn.exists(path):
            return path
        self.make_seed(op, path)
        made.append(path)
        return path

    # -- the process ------------------------------------------------------------------------

    def _pid(self, conn: Connection, vmdir: str) -> int | None:
        """The pid of this VM's qemu if it is alive (its command line names our pidfile)."""
        try:
            text = conn.read_file(f"{vmdir}/{PID_FILE}").decode().strip()
        except (FileNotFoundError, OSError):
            return None
        if not text.isdigit():
            return None
        try:
            cmdline = conn.read_file(f"/proc/{text}/cmdline").split(b"\0")
        except (FileNotFoundError, OSError):
            return None
        return int(text) if f"{vmdir}/{PID_FILE}".encode() in cmdline else None

    def _alive(self, conn: Connection, vmdir: str) -> bool:
        return self._pid(conn, vmdir) is not None

    def _start(self, conn: Connection, vmdir: str, progress: Progress) -> None:
        if self._alive(conn, vmdir):
            replies = qmp.execute(conn, f"{vmdir}/{QMP_SOCKET}", [("query-status", None)])
            if (replies[0].get("return") or {}).get("status") != "running":
                qmp.value(qmp.execute(conn, f"{vmdir}/{QMP_SOCKET}", [("cont", None)])[0],
                          "cont")
            return
        mark = self._read_mark(conn, vmdir)
        config = mark.get("config") or {}
        arch = config.get("arch", "x86_64")
        kvm_ok = arch == self.facts.arch(conn) and self.facts.kvm_usable(conn)
        argv = qemu_argv(config, vmdir, kvm_ok)
        for stale in (PID_FILE, QMP_SOCKET):
            conn.remove(f"{vmdir}/{stale}")
        progress(f"starting {config.get('name', vmdir)} ({argv[0]})", None)
        result = conn.run(argv, timeout=120, cwd=vmdir)
        result.check(f"starting {argv[0]} for {vmdir}")
        deadline = time.monotonic() + 30
        while True:
            try:
                qmp.execute(conn, f"{vmdir}/{QMP_SOCKET}", [("query-status", None)], 5)
                return
            except ProviderError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _kill(self, conn: Connection, vmdir: str) -> None:
        """QMP `quit`; after QUIT_TIMEOUT seconds a kill -9 as the last resort."""
        pid = self._pid(conn, vmdir)
        if pid is None:
            return
        try:
            qmp.execute(conn, f"{vmdir}/{QMP_SOCKET}", [("quit", None)])
        except ProviderError:
            pass
        if self._wait_gone(conn, vmdir, QUIT_TIMEOUT):
            return
        conn.run(["kill", "-9", str(pid)], timeout=30)
        if not self._wait_gone(conn, vmdir, QUIT_TIMEOUT):
            raise ProviderError(f"qemu (pid {pid}) of {vmdir} does not stop")

    def _wait_gone(self, conn: Connection, vmdir: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(conn, vmdir):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def _remove_files(self, conn: Connection, vmdir: str, made: list[str]) -> None:
        for path in [*made, *(f"{vmdir}/{n}" for n in (PID_FILE, QMP_SOCKET, SERIAL_LOG))]:
            if path.startswith(vmdir + "/"):
                conn.remove(path)
        conn.run(["rmdir", "--", vmdir], timeout=30)
