"""vmrun and vmware-vdiskmanager calls over a Connection (argv lists, C locale)."""

from __future__ import annotations

from decl.connections.base import CommandTimeout, Connection
from decl.errors import ProviderError
from decl.providers.vmware import output

C_LOCALE = {"LANG": "C", "LC_ALL": "C"}


class VmrunError(ProviderError):
    """vmrun printed `Error: ...` (on stdout) or exited non-zero."""


class Vmrun:
    """vmrun with its host type (-T ws | fusion) on one host."""

    def __init__(self, conn: Connection, program: str, host_type: str) -> None:
        self.conn = conn
        self.program = program
        self.host_type = host_type

    def run(self, args: list[str], what: str, timeout: float = 300) -> str:
        """Run `vmrun -T TYPE ARGS`; VmrunError with vmrun's words on failure."""
        result = self.conn.run([self.program, "-T", self.host_type, *args], timeout=timeout,
                               env=C_LOCALE)
        error = output.error_of(result.out, result.returncode)
        if error is not None:
            raise VmrunError(f"{what} failed: {error}")
        return result.out

    def version(self) -> str:
        """The first line of vmrun's usage text (`vmrun version X build-N`)."""
        result = self.conn.run([self.program], timeout=60, env=C_LOCALE)
        for line in output.lines(result.out):
            if line.startswith("vmrun version"):
                return line[len("vmrun version"):].strip()
        return "unknown"

    def running(self) -> list[str]:
        """The .vmx paths of the running VMs."""
        return output.parse_list(self.run(["list"], "listing running VMs", timeout=120))

    def start(self, vmx: str, gui: str) -> None:
        """`start VMX gui|nogui`."""
        self.run(["start", vmx, gui], f"starting {vmx}")

    def stop_hard(self, vmx: str) -> None:
        """`stop VMX hard`; a VM that is not powered on is fine."""
        try:
            self.run(["stop", vmx, "hard"], f"stopping {vmx}")
        except VmrunError as exc:
            if not output.not_powered_on(str(exc)):
                raise

    def stop(self, vmx: str, timeout: float) -> str:
        """`stop VMX soft` within `timeout` seconds (it needs VMware Tools and can hang),
        then `stop VMX hard`. Returns how it stopped: soft, hard or already."""
        try:
            self.run(["stop", vmx, "soft"], f"stopping {vmx}", timeout=max(timeout, 1))
            return "soft"
        except CommandTimeout:
            pass
        except VmrunError as exc:
            if output.not_powered_on(str(exc)):
                return "already"
        self.stop_hard(vmx)
        return "hard"

    def delete(self, vmx: str) -> None:
        """`deleteVM VMX`: the VM's files (it must be stopped)."""
        self.run(["deleteVM", vmx], f"deleting {vmx}")


class Vdisk:
    """vmware-vdiskmanager on one host."""

    def __init__(self, conn: Connection, program: str) -> None:
        self.conn = conn
        self.program = program

    def _run(self, args: list[str], what: str) -> None:
        result = self.conn.run([self.program, *args], timeout=1800, env=C_LOCALE)
        if not result.ok:
            words = (result.out.strip() or result.err.strip() or f"exit code "
                     f"{result.returncode}").splitlines()
            raise ProviderError(f"{what} failed: {' '.join(words[-2:])}")

    def create(self, path: str, size: int) -> None:
        """A growable disk split in 2 GB files (type 1), LSI Logic adapter."""
        self._run(["-c", "-s", output.size_argument(size), "-a", "lsilogic", "-t", "1", path],
                  f"creating disk {path}")

    def convert(self, source: str, path: str) -> None:
        """A growable split copy (type 1) of a VMDK image."""
        self._run(["-r", source, "-t", "1", path], f"copying {source} to {path}")

    def expand(self, path: str, size: int) -> None:
        """Grow a disk (its VM must be powered off)."""
        self._run(["-x", output.size_argument(size), path], f"growing disk {path}")
