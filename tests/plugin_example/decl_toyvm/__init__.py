"""An example decl VM provider plugin: "toy" VMs whose hypervisor is a directory of JSON files.

It exists to show (and test) how a VM provider is written on decl's VM base: an options
model, backend primitives, nothing else. One VM is ROOT/NAME.json on its host:

    {"marks": {...}, "power": "running" | "stopped",
     "config": {"cpus", "memory", "arch", "firmware", "disks": {dev: {"size", "source"}},
                "cdrom", "network", "cloud_init", "vram"}}
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from pydantic import Field

from decl.connections.base import Connection
from decl.core.resource import Desired, Marks, Observed
from decl.errors import ProviderError
from decl.providers.base import (
    Availability,
    Discovery,
    Operation,
    ValidateContext,
    ValidationProblem,
    orphan_address,
)
from decl.providers.vmbase import VmOptions, VmProvider, VmSupport
from decl.providers.vmspec import disk_names, disk_source_id

DEFAULT_ROOT = "~/.local/share/decl-toyvm"


class ToyVmOptions(VmOptions):
    """`options:` of a VM with `provider: toyvm`."""

    root: str = Field(DEFAULT_ROOT, description="Directory of the toy hypervisor's VM files.")
    vram: int = Field(16, ge=1, le=256, description="Video memory in MiB (compared, restart).")

    def comparable(self) -> dict[str, Any]:
        """vram is read back from the VM file and compared."""
        return {"vram": self.vram}


class ToyVmProvider(VmProvider[ToyVmOptions]):
    """Toy VMs: JSON files under options.root on the VM's host."""

    name = "toyvm"
    options_model = ToyVmOptions
    support = VmSupport(arches=frozenset({"x86_64", "aarch64"}), cdrom=False,
                        network_modes=frozenset({"nat", "none"}), memory_multiple=1024 * 1024)

    @classmethod
    def validate_vm(cls, model: Any, options: Any, context: ValidateContext
                    ) -> list[ValidationProblem]:
        """The toy hypervisor forbids VM names that start with "toy"."""
        if context.name.startswith("toy"):
            return [ValidationProblem(context.path, "the toyvm provider reserves names "
                                      "starting with 'toy'", key=True)]
        return []

    # -- where VMs are ------------------------------------------------------------------

    def _root(self, conn: Connection, options: ToyVmOptions) -> str:
        return conn.expand_user(options.root).rstrip("/")

    def _file(self, op: Operation, options: ToyVmOptions) -> str:
        if op.observed is not None and op.observed.handle.get("file"):
            return str(op.observed.handle["file"])
        return f"{self._root(op.conn, options)}/{op.name}.json"

    def _read(self, conn: Connection, path: str) -> dict[str, Any] | None:
        try:
            data = json.loads(conn.read_file(path))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ProviderError(f"{path} is not a toy VM file: {exc}") from None
        return data if isinstance(data, dict) else None

    def _write(self, conn: Connection, path: str, data: dict[str, Any]) -> None:
        conn.write_file(path, json.dumps(data, sort_keys=True, indent=1).encode())

    # -- check and discover ---------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """Always there (needs a POSIX shell to list its directory)."""
        if conn.shell != "posix":
            return Availability(False, detail="the toyvm provider needs a POSIX host")
        return Availability(True, version="0.1.0")

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One listing per root directory; every VM file read."""
        found = Discovery()
        roots: dict[str, list[Desired]] = {}
        for desired in wanted:
            roots.setdefault(self._root(conn, self.options_of(desired.model)), []).append(desired)
        roots.setdefault(self._root(conn, ToyVmOptions()), [])
        for root, items in roots.items():
            listing = conn.run(["sh", "-c", 'for f in "$1"/*.json; do [ -f "$f" ] && '
                                'echo "$f"; done; true', "sh", root], timeout=60)
            listing.check(f"listing {shlex.quote(root)}")
            by_name = {d.name: d for d in items}
            for path in listing.out.splitlines():
                name = path.rsplit("/", 1)[-1].removesuffix(".json")
                data = self._read(conn, path) or {}
                raw = data.get("marks") or {}
                marks = Marks(str(raw["project"]), str(raw.get("address", "")),
                              str(raw.get("spec_hash", ""))) if raw.get("project") else None
                address = orphan_address(marks, project, by_name.get(name))
                if address is None:
                    continue
                found.observed.append(Observed(
                    address=address, kind="vm", name=name, provider=self.name,
                    host=conn.host, state=str(data.get("power", "stopped")),
                    spec=observed_spec(data.get("config") or {}), marks=marks,
                    handle={"file": path}))
        return found

    # -- backend primitives ---------------------------------------------------------------

    def read_marks(self, op: Operation) -> Marks | None:
        data = self._read(op.conn, self._file(op, self.options_for(op))) or {}
        raw = data.get("marks") or {}
        if not raw.get("project"):
            return None
        return Marks(str(raw["project"]), str(raw.get("address", "")),
                     str(raw.get("spec_hash", "")))

    def _config(self, op: Operation, options: ToyVmOptions,
                disks: dict[str, Any]) -> dict[str, Any]:
        model = op.need_desired().model
        return {"cpus": model.cpus, "memory": model.memory, "arch": model.arch or "x86_64",
                "firmware": model.firmware, "disks": disks, "cdrom": model.cdrom,
                "network": model.network.mode,
                "cloud_init": (model.cloud_init.model_dump(mode="json")
                               if model.cloud_init is not None else None),
                "vram": options.vram}

    def define(self, op: Operation, options: ToyVmOptions) -> None:
        path = self._file(op, options)
        if op.conn.exists(path):
            raise ProviderError(f"{op.address}: {path} already exists")
        model = op.need_desired().model
        disks = {dev: {"size": disk.size, "source": disk_source_id(disk)}
                 for dev, disk in zip(disk_names(len(model.disks)), model.disks, strict=True)}
        op.conn.makedirs(self._root(op.conn, options))
        m = op.marks()
        self._write(op.conn, path, {"marks": {"project": m.project, "address": m.address,
                                              "spec_hash": m.spec_hash},
                                    "power": "stopped", "config": self._config(op, options, disks)})

    def modify(self, op: Operation, options: ToyVmOptions, fields: set[str]) -> None:
        path = self._file(op, options)
        data = self._read(op.conn, path)
        if data is None:
            raise ProviderError(f"{op.address}: {path} is gone")
        disks = (data.get("config") or {}).get("disks") or {}
        m = op.marks()
        data["config"] = self._config(op, options, disks)
        data["marks"] = {"project": m.project, "address": m.address, "spec_hash": m.spec_hash}
        self._write(op.conn, path, data)

    def _set_power(self, op: Operation, options: ToyVmOptions, power: str) -> None:
        path = self._file(op, options)
        data = self._read(op.conn, path)
        if data is None:
            raise ProviderError(f"{op.address}: {path} is gone")
        data["power"] = power
        self._write(op.conn, path, data)

    def power_state(self, op: Operation) -> str | None:
        data = self._read(op.conn, self._file(op, self.options_for(op)))
        return None if data is None else str(data.get("power", "stopped"))

    def power_on(self, op: Operation, options: ToyVmOptions) -> None:
        self._set_power(op, options, "running")

    def soft_stop(self, op: Operation, options: ToyVmOptions) -> bool:
        self._set_power(op, options, "stopped")
        return True

    def hard_stop(self, op: Operation, options: ToyVmOptions) -> None:
        self._set_power(op, options, "stopped")

    def remove(self, op: Operation, options: ToyVmOptions) -> None:
        op.conn.remove(self._file(op, options))

    def grow_disk(self, op: Operation, options: ToyVmOptions, dev: str, size: int,
                  running: bool) -> None:
        path = self._file(op, options)
        data = self._read(op.conn, path) or {}
        data.setdefault("config", {}).setdefault("disks", {}).setdefault(dev, {})["size"] = size
        self._write(op.conn, path, data)


def observed_spec(config: dict[str, Any]) -> dict[str, Any]:
    """A toy VM file's config in the common VM spec's keys."""
    disks = config.get("disks") or {}
    network = config.get("network") or "none"
    return {
        "cpus": config.get("cpus"), "memory": config.get("memory"), "arch": config.get("arch"),
        "firmware": config.get("firmware"), "disk_count": len(disks),
        "disk_size": {dev: d.get("size") for dev, d in disks.items()},
        "disk_source": {dev: d.get("source") for dev, d in disks.items()},
        "cdrom": config.get("cdrom"), "network": {"mode": network, "bridge": None},
        "cloud_init": config.get("cloud_init"), "options": {"vram": config.get("vram")},
    }
