"""NoCloud seed ISOs for cloud-init: hostname, one user and its SSH keys.

The ISO (volume id `cidata`, files `user-data` and `meta-data`) is made on the VM's host
with genisoimage, mkisofs or xorriso (`xorriso -as mkisofs`), whichever is installed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from decl.connections.base import Connection
from decl.errors import ProviderError

ISO_TOOLS = ("genisoimage", "mkisofs", "xorriso")


def user_data(cloud_init: dict[str, Any]) -> str:
    """The `#cloud-config` document (JSON is valid YAML, so it is written as JSON)."""
    config: dict[str, Any] = {}
    if cloud_init.get("hostname"):
        config["hostname"] = cloud_init["hostname"]
    keys = list(cloud_init.get("ssh_authorized_keys") or [])
    if cloud_init.get("user"):
        user: dict[str, Any] = {"name": cloud_init["user"], "shell": "/bin/bash",
                                "sudo": "ALL=(ALL) NOPASSWD:ALL", "groups": ["sudo"]}
        if keys:
            user["ssh_authorized_keys"] = keys
        config["users"] = ["default", user]
    elif keys:
        config["ssh_authorized_keys"] = keys
    return "#cloud-config\n" + json.dumps(config, indent=2, sort_keys=True) + "\n"


def meta_data(cloud_init: dict[str, Any], name: str) -> str:
    """`meta-data`: an instance id that changes with the seed, and the host name."""
    digest = hashlib.sha256(json.dumps(cloud_init, sort_keys=True).encode()).hexdigest()[:12]
    lines = [f"instance-id: {name}-{digest}",
             f"local-hostname: {cloud_init.get('hostname') or name}"]
    return "\n".join(lines) + "\n"


def iso_tool(conn: Connection) -> str | None:
    """The ISO maker found on the host, or None."""
    for tool in ISO_TOOLS:
        if conn.which(tool):
            return tool
    return None


def make_seed_iso(conn: Connection, dest: str, cloud_init: dict[str, Any], name: str) -> None:
    """Write a NoCloud seed ISO at `dest` on the host (replacing an earlier seed)."""
    tool = iso_tool(conn)
    if tool is None:
        raise ProviderError(f"cloud_init needs genisoimage, mkisofs or xorriso on host "
                            f"{conn.host}")
    workdir = dest + ".d"
    conn.makedirs(workdir)
    try:
        conn.write_file(f"{workdir}/user-data", user_data(cloud_init).encode())
        conn.write_file(f"{workdir}/meta-data", meta_data(cloud_init, name).encode())
        argv = [tool] if tool != "xorriso" else ["xorriso", "-as", "mkisofs"]
        argv += ["-quiet", "-output", dest + ".tmp", "-volid", "cidata", "-joliet", "-rock",
                 f"{workdir}/user-data", f"{workdir}/meta-data"]
        conn.run(argv, timeout=120).check(f"making the cloud-init seed {dest}")
        conn.run(["mv", "-f", "--", dest + ".tmp", dest], timeout=60).check(
            f"moving the cloud-init seed to {dest}")
    finally:
        conn.run(["rm", "-rf", "--", workdir], timeout=60)
