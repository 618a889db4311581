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


def cloud_init_of(user_data_text: str) -> dict[str, Any]:
    """The manifest's cloud_init (hostname, user, ssh_authorized_keys) that a `#cloud-config`
    user-data says: the inverse of user_data(), for any seed in that form (JSON or YAML)."""
    body = user_data_text.split("\n", 1)[1] if user_data_text.startswith("#") else \
        user_data_text
    try:
        config = json.loads(body)
    except ValueError:
        from ruamel.yaml import YAML

        config = YAML(typ="safe").load(body)
    if not isinstance(config, dict):
        return {"hostname": None, "user": None, "ssh_authorized_keys": []}
    user = None
    keys = list(config.get("ssh_authorized_keys") or [])
    for entry in config.get("users") or []:
        if isinstance(entry, dict) and entry.get("name"):
            user = str(entry["name"])
            keys = list(entry.get("ssh_authorized_keys") or keys)
            break
    hostname = config.get("hostname")
    return {"hostname": str(hostname) if hostname is not None else None, "user": user,
            "ssh_authorized_keys": [str(k) for k in keys]}


def read_seed(image: bytes) -> dict[str, Any]:
    """The cloud_init a NoCloud seed ISO carries (its user-data); ValueError when it is not
    one."""
    from decl.providers.iso9660 import root_files

    files = root_files(image)
    text = files.get("user-data") or files.get("user_dat")  # without Rock Ridge: 8.3 names
    if text is None:
        raise ValueError("the ISO has no user-data")
    return cloud_init_of(text.decode("utf-8", "replace"))


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
