"""SSH round trips of a no-op `decl plan` of N ESXi VMs (target: a constant, not one per VM).

    python3 bench/bench_esxi.py [--vms 10] [--runs 3]

Starts an sshd of its own on 127.0.0.1 whose sessions see the fake ESXi tools
(tests/fakes/bin: vim-cmd, vmkfstools, vmware) first on PATH, creates N VMs with
`decl apply`, then runs `decl plan` in this process with the SSH connection's calls counted:
every command run (one exec channel each), every SFTP operation, and the vim-cmd calls the
fake host logged. Repeats with N = 1 to show the count does not grow with N. Prints a table
and writes bench/results/esxi.json. Needs openssh-server (sshd, ssh-keygen).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.fakes.datacenter.harness import FakeEsxi, decl, write_manifest  # noqa: E402
from tests.sshd import start_sshd  # noqa: E402


def counted_plan(manifest: str) -> dict[str, float | int]:
    """Run `decl plan` in-process with SshConnection's exec and SFTP calls counted."""
    from decl import cli
    from decl.connections import ssh

    counts = {"exec": 0, "sftp": 0}
    real_run, real_stream, real_sftp = (ssh.SshConnection.run, ssh.SshConnection.exec_stream,
                                        ssh.SshConnection._sftp_call)

    def run(self, argv, **kwargs):  # type: ignore[no-untyped-def]
        counts["exec"] += 1
        return real_run(self, argv, **kwargs)

    def stream(self, argv):  # type: ignore[no-untyped-def]
        counts["exec"] += 1
        return real_stream(self, argv)

    def sftp(self, what, func):  # type: ignore[no-untyped-def]
        counts["sftp"] += 1
        return real_sftp(self, what, func)

    ssh.SshConnection.run, ssh.SshConnection.exec_stream = run, stream  # type: ignore[method-assign]
    ssh.SshConnection._sftp_call = sftp  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                cli.main(["plan", "--detailed-exitcode", "-f", manifest])
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        ssh.SshConnection.run, ssh.SshConnection.exec_stream = real_run, real_stream  # type: ignore[method-assign]
        ssh.SshConnection._sftp_call = real_sftp  # type: ignore[method-assign]
    if code not in (0, None):
        raise SystemExit(f"plan was not a no-op (exit {code}):\n{out.getvalue()}")
    return {**counts, "seconds": round(time.perf_counter() - start, 3)}


def measure(base: Path, count: int, runs: int) -> dict[str, object]:
    """Make `count` VMs on a fresh fake host, then count a no-op plan's round trips."""
    fake = FakeEsxi(base / f"esxi-{count}")
    server = start_sshd(base / f"sshd-{count}",
                        env={"PATH": f"{ROOT}/tests/fakes/bin:/usr/bin:/bin",
                             "DECL_FAKE_ESXI_STATE": str(fake.directory)})
    try:
        host = server.manifest_host()
        vms = {f"vm{i:02d}": {"provider": "esxi", "host": "esx", "state": "stopped",
                              "memory": "64MiB", "disks": [{"size": "16MiB"}]}
               for i in range(count)}
        manifest = write_manifest(base / f"decl-{count}.yaml",
                                  {"version": 1, "project": "benchesxi",
                                   "hosts": {"esx": host}, "vms": vms})
        done = decl("apply", "-y", "-f", manifest)
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        samples = []
        for _ in range(runs):
            fake.clear_calls()
            sample = counted_plan(manifest)
            sample["vim_cmd_calls"] = len(fake.calls("vim-cmd"))
            samples.append(sample)
        return {"vms": count, "runs": samples}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="decl-bench-esxi-") as tmp:
        results = [measure(Path(tmp), n, args.runs) for n in sorted({1, args.vms})]
    print(f"{'VMs':>4} {'SSH execs':>9} {'SFTP ops':>8} {'vim-cmd calls':>13} {'seconds':>8}")
    for result in results:
        last = result["runs"][-1]  # type: ignore[index]
        print(f"{result['vms']:>4} {last['exec']:>9} {last['sftp']:>8} "
              f"{last['vim_cmd_calls']:>13} {last['seconds']:>8}")
    out = Path(ROOT) / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "esxi.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
