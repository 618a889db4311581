"""VMs as qemu-system-* processes that decl owns, each in a VM directory of its own."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

from pydantic import ValidationError

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import Desired, Marks, Observed
from decl.errors import DeclError, ProviderError
from decl.providers import cloudinit, images
from decl.providers.base import Availability, DesiredContext, Discovery, Progress, Provider
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
    qemu_argv,
    stable_mac,
)
from decl.providers.vmspec import (
    DEFAULT_MACHINE,
    QEMU_BINARY,
    HostFacts,
    creation_problem,
    disk_source_id,
    host_problem,
    make_disks,
    options_error,
    uefi_missing_message,
    vm_spec,
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


def parse_options(address: str, raw: dict[str, Any]) -> QemuOptions:
    """A VM's `options`, checked; DeclError naming the bad option."""
    try:
        return QemuOptions(**raw)
    except ValidationError as exc:
        raise DeclError(options_error(address, exc)) from None


def observed_spec(vm: VmDir, live: dict[str, Any] | None) -> dict[str, Any]:
    """The comparable spec of a VM directory (pure): what decl.json recorded, with memory,
    cpus and accelerator from QMP while it runs, and the disks' real sizes."""
    mark = vm.mark or {}
    recorded = dict(mark.get("spec") or {})
    config = mark.get("config") or {}
    spec = {key: recorded.get(key) for key in
            ("cpus", "memory", "arch", "firmware", "cdrom", "network", "cloud_init")}
    devs = [d["dev"] for d in config.get("disks", [])] or sorted(vm.disks)
    spec["disk_count"] = len([dev for dev in devs if dev in vm.disks])
    spec["disk_size"] = {dev: vm.disks[dev].get("virtual-size") for dev in devs
                         if dev in vm.disks}
    sources = recorded.get("disk_source") or {}
    spec["disk_source"] = {dev: sources.get(dev, "unknown") for dev in devs if dev in vm.disks}
    options = dict(recorded.get("options") or {"accel": None, "machine": None,
                                               "cpu_model": None})
    if live:
        if live.get("memory") is not None:
            spec["memory"] = live["memory"]
        if live.get("cpus") is not None:
            spec["cpus"] = live["cpus"]
        if options.get("accel") is not None and live.get("accelerator"):
            options["accel"] = live["accelerator"]
    spec["options"] = options
    return spec


class QemuProvider(Provider):
    """qemu-system-<arch> processes, one VM directory each, watched over QMP."""

    name = "qemu"
    kinds = ("vm",)
    traits = {"vm": vm_traits()}

    def __init__(self) -> None:
        self.facts = HostFacts()

    # -- desired ------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """The comparable spec; `options` are checked here so a typo fails at plan time."""
        options = parse_options(f"vm.{name}", model.options)
        return vm_spec(model, options.comparable())

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
            options = parse_options(desired.address, desired.model.options)
            roots.setdefault(self._root(conn, options, project), []).append(desired)
        roots.setdefault(self._root(conn, QemuOptions(), project), [])  # orphans there too
        result = conn.run(["sh", "-c", DISCOVER_SCRIPT, "sh", *roots], timeout=120)
        result.check(f"reading the QEMU VM directories on host {conn.host}")
        vms = parse_discovery(result.out)
        live = self._query_running(conn, [vm for vm in vms if vm.alive])
        by_path = {f"{root}/{d.name}": d for root, items in roots.items() for d in items}
        for vm in vms:
            desired = by_path.get(vm.path)
            marks = self._marks(vm)
            ours = marks is not None and marks.project == project
            if desired is None and not ours:
                continue
            address = desired.address if desired else marks.address  # type: ignore[union-attr]
            info = live.get(vm.path)
            state = info["state"] if info else "stopped"
            found.observed.append(Observed(
                address=address, kind="vm", name=vm.name, provider=self.name,
                host=conn.host, state=state, spec=observed_spec(vm, info), marks=marks,
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
        options = parse_options(desired.address, model.options)
        problem, arch = host_problem(conn, self.facts, model, "qemu",
                                     "accel" if options.accel == "kvm" else None)
        if problem:
            return problem
        if model.memory % (1024 * 1024):
            return "memory must be a whole number of MiB for QEMU"
        if exists:
            return None
        return creation_problem(conn, model, arch, self.facts.uefi_firmware)

    # -- apply ----------------------------------------------------------------------------

    def apply(self, change: Change, desired: Desired | None, observed: Observed | None,
              conn: Connection, progress: Progress) -> None:
        """Create, update (with a restart when needed), replace, delete, start, stop."""
        action = change.action
        if action is Action.DELETE:
            if observed is not None:
                self._delete(conn, observed, progress)
            return
        if desired is None:
            raise ProviderError(f"{change.address}: nothing in the manifest to {action.value}")
        options = parse_options(desired.address, desired.model.options)
        vmdir = f"{self._root(conn, options, change.project)}/{desired.name}"
        if action is Action.ADOPT:
            raise ProviderError(f"{change.address}: the qemu provider cannot adopt {vmdir}: "
                                "it has no decl.json to start it from; move it away and "
                                "let decl create the VM")
        if action is Action.REPLACE:
            if observed is not None:
                self._delete(conn, observed, progress)
            self._create(conn, change, desired, options, vmdir, progress)
        elif action is Action.CREATE:
            self._create(conn, change, desired, options, vmdir, progress)
        elif action in (Action.UPDATE, Action.UPDATE_RESTART):
            self._update(conn, change, desired, observed, options, vmdir, progress)
        elif action is Action.START:
            self._start(conn, vmdir, progress)
        elif action is Action.STOP:
            self._stop(conn, vmdir, options.shutdown_timeout, progress)
        else:
            raise ProviderError(f"{change.address}: action {action.value} is not supported")

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

    def _mark(self, change: Change, desired: Desired, config: dict[str, Any],
              made: list[str]) -> dict[str, Any]:
        return {"project": change.project, "address": desired.address,
                "spec_hash": desired.spec_hash, "spec": desired.spec, "config": config,
                "made": sorted(set(made))}

    def _create(self, conn: Connection, change: Change, desired: Desired,
                options: QemuOptions, vmdir: str, progress: Progress) -> None:
        model = desired.model
        if conn.exists(vmdir):
            raise ProviderError(f"{desired.address}: {vmdir} already exists on host "
                                f"{conn.host}: decl will not touch it")
        conn.makedirs(vmdir)
        made: list[str] = []
        try:
            disks = [{"dev": dev, "path": path, "source": disk_source_id(disk)}
                     for dev, path, disk in make_disks(
                         conn, model, lambda d: f"{vmdir}/disk-{d}.qcow2",
                         self._host_cache(conn), options.disk_mode, made, progress)]
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
            seed = self._seed(conn, desired, vmdir, None, made, progress)
            config = self._config(conn, desired, options, vmdir, disks, uefi_code, cdrom, seed)
            self._write_mark(conn, vmdir, self._mark(change, desired, config, made))
            made.append(f"{vmdir}/{MARK_FILE}")
            if change.target_state == "running":
                self._start(conn, vmdir, progress)
        except BaseException:
            self._stop(conn, vmdir, 0, progress)
            self._remove_files(conn, vmdir, made)
            raise

    def _seed(self, conn: Connection, desired: Desired, vmdir: str,
              previous: dict[str, Any] | None, made: list[str],
              progress: Progress) -> str | None:
        model = desired.model
        if model.cloud_init is None:
            return None
        cloud = model.cloud_init.model_dump(mode="json")
        path = f"{vmdir}/{SEED}"
        if previous is not None and previous.get("cloud_init") == cloud and conn.exists(path):
            return path
        progress(f"making cloud-init seed {path}", None)
        cloudinit.make_seed_iso(conn, path, cloud, desired.name)
        made.append(path)
        return path

    def _update(self, conn: Connection, change: Change, desired: Desired,
                observed: Observed | None, options: QemuOptions, vmdir: str,
                progress: Progress) -> None:
        mark = self._read_mark(conn, vmdir)
        old = dict(mark.get("config") or {})
        made = list(mark.get("made") or [])
        alive = self._alive(conn, vmdir)
        have = (observed.spec.get("disk_size") if observed else None) or {}
        for disk in old.get("disks", []):
            size = (desired.spec.get("disk_size") or {}).get(disk["dev"])
            current = have.get(disk["dev"])
            if size is None or current is None or size == current:
                continue
            if size < current:
                raise ProviderError(f"{desired.address}: disk {disk['dev']} cannot shrink")
            progress(f"growing disk {disk['dev']} to {size} bytes", None)
            if alive:
                qmp.value(qmp.execute(conn, f"{vmdir}/{QMP_SOCKET}", [
                    ("block_resize", {"device": disk["dev"], "size": size})])[0],
                    "block_resize")
            else:
                images.resize_disk(conn, disk["path"], size)
        cdrom = conn.expand_user(desired.model.cdrom) if desired.model.cdrom else None
        seed = self._seed(conn, desired, vmdir, mark.get("spec"), made, progress)
        if seed is None and old.get("seed"):
            conn.remove(old["seed"])
        config = self._config(conn, desired, options, vmdir, old.get("disks", []),
                              old.get("uefi_code"), cdrom, seed)
        config["arch"], config["binary"] = old.get("arch", config["arch"]), \
            old.get("binary", config["binary"])
        self._write_mark(conn, vmdir, self._mark(change, desired, config, made))
        if change.action is Action.UPDATE_RESTART and alive:
            progress(f"restarting {desired.name} (powerdown, then start)", None)
            self._stop(conn, vmdir, options.shutdown_timeout, progress)
            self._start(conn, vmdir, progress)
        if change.target_state == "running":
            self._start(conn, vmdir, progress)
        elif change.target_state == "stopped":
            self._stop(conn, vmdir, options.shutdown_timeout, progress)

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

    def _stop(self, conn: Connection, vmdir: str, timeout: float, progress: Progress) -> None:
        """Graceful powerdown; after `timeout` seconds, `quit`; a kill as the last resort."""
        pid = self._pid(conn, vmdir)
        if pid is None:
            return
        socket = f"{vmdir}/{QMP_SOCKET}"
        if timeout > 0:
            progress(f"powering down {vmdir}", None)
            try:
                qmp.execute(conn, socket, [("system_powerdown", None)])
            except ProviderError:
                pass
            if self._wait_gone(conn, vmdir, timeout):
                return
        try:
            qmp.execute(conn, socket, [("quit", None)])
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

    # -- delete -----------------------------------------------------------------------------

    def _delete(self, conn: Connection, observed: Observed, progress: Progress) -> None:
        """Stop the VM, remove the files decl made, and the directory if it is then empty."""
        vmdir = str(observed.handle.get("dir"))
        mark = self._read_mark(conn, vmdir)
        if observed.marks is None or mark.get("project") != observed.marks.project:
            raise ProviderError(f"{observed.address}: {vmdir} carries no mark of this "
                                "project: decl will not delete it")
        self._stop(conn, vmdir, 0, progress)
        made = [str(p) for p in mark.get("made") or []]
        progress(f"removing {vmdir}", None)
        self._remove_files(conn, vmdir, made + [f"{vmdir}/{MARK_FILE}"])

    def _remove_files(self, conn: Connection, vmdir: str, made: list[str]) -> None:
        for path in [*made, *(f"{vmdir}/{n}" for n in (PID_FILE, QMP_SOCKET, SERIAL_LOG))]:
            if path.startswith(vmdir + "/"):
                conn.remove(path)
        conn.run(["rmdir", "--", vmdir], timeout=30)
