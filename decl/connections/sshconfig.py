"""Where and how to reach a host: the manifest's `hosts:` entry merged with ~/.ssh/config.

Precedence, per setting: what the manifest says, else what ~/.ssh/config says for the host
(looked up by its `address`, else its name, as `ssh NAME` would), else OpenSSH's default.
Read from ~/.ssh/config: HostName, User, Port, IdentityFile, ProxyJump, ProxyCommand,
UserKnownHostsFile, HostKeyAlias. `DECL_SSH_CONFIG` names another file (empty: none).

Pure apart from reading the config file and checking which identity files exist.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import Any

from decl.connections.filecache import FileCache

_CONFIGS = FileCache()
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass(frozen=True)
class SshTarget:
    """Everything needed to open one SSH transport (secrets excluded)."""

    name: str
    hostname: str
    port: int = 22
    user: str = ""
    identity_files: tuple[str, ...] = ()
    explicit_identity: bool = False
    known_hosts: str = ""
    host_key_alias: str | None = None
    accept_new_host_key: bool = False
    connect_timeout: float = 10.0
    keepalive: int = 30
    passphrase_env: str | None = None
    proxy_command: str | None = None
    jumps: tuple[SshTarget, ...] = field(default_factory=tuple)

    @property
    def known_hosts_name(self) -> str:
        """The name the host's keys are filed under in known_hosts (`[h]:port` off port 22)."""
        base = self.host_key_alias or self.hostname
        if self.port == 22 or self.host_key_alias:
            return base
        return f"[{base}]:{self.port}"

    @property
    def label(self) -> str:
        """user@hostname:port, for messages."""
        return f"{self.user}@{self.hostname}:{self.port}"


def load_ssh_config(path: str | None = None) -> Any:
    """The user's ssh config (paramiko.SSHConfig), empty when absent or unreadable; parsed
    once per run while the file stays the same (every host of a manifest looks it up)."""
    import paramiko

    if path is None:
        path = os.environ.get("DECL_SSH_CONFIG", "~/.ssh/config")
    if not path:
        return paramiko.SSHConfig()
    path = os.path.expanduser(path)
    return _CONFIGS.get(path, path, lambda: _parse_ssh_config(path))


def _parse_ssh_config(path: str) -> Any:
    import paramiko

    try:
        return paramiko.SSHConfig.from_path(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return paramiko.SSHConfig()


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (or `ssh://[user@]host[:port]`) -> (user, host, port)."""
    spec = spec.strip()
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://"):]
    user = None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port = None
    if spec.startswith("["):  # [ipv6]:port
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    else:
        host = spec
    if not host:
        raise ValueError(f"bad jump host {spec!r}: expected [user@]host[:port]")
    return user, host, port


def _existing(paths: list[str]) -> tuple[str, ...]:
    return tuple(p for p in (os.path.expanduser(x) for x in paths) if os.path.isfile(p))


def resolve(host_name: str, config: Any, ssh_config: Any | None = None) -> SshTarget:
    """Merge the manifest `Host` (or None) for `host_name` with ~/.ssh/config."""
    if ssh_config is None:
        ssh_config = load_ssh_config()
    address = getattr(config, "address", None) or host_name
    found = ssh_config.lookup(address)
    hostname = found.get("hostname", address)
    port = getattr(config, "port", None) or int(found.get("port", 22))
    user = getattr(config, "user", None) or found.get("user") or getpass.getuser()
    explicit = getattr(config, "identity_file", None)
    if explicit:
        identities: tuple[str, ...] = (os.path.expanduser(explicit),)
        identities += tuple(
            p for p in _existing(list(found.get("identityfile", []))) if p not in identities
        )
    else:
        identities = _existing(list(found.get("identityfile", []))) or _existing(
            list(DEFAULT_IDENTITIES)
        )
    known_hosts = getattr(config, "known_hosts", None)
    if not known_hosts:
        user_files = found.get("userknownhostsfile")
        known_hosts = user_files.split()[0] if user_files else DEFAULT_KNOWN_HOSTS
    known_hosts = os.path.expanduser(known_hosts)
    accept_new = bool(getattr(config, "accept_new_host_key", False))
    timeout = float(getattr(config, "connect_timeout", None) or 10.0)
    keepalive = getattr(config, "keepalive", None)
    keepalive = 30 if keepalive is None else int(keepalive)
    passphrase_env = getattr(config, "identity_passphrase_env", None)
    jump_spec = getattr(config, "proxy_jump", None) or found.get("proxyjump")
    jumps: tuple[SshTarget, ...] = ()
    if jump_spec and jump_spec.lower() != "none":
        jumps = tuple(
            _resolve_jump(part, ssh_config, identities, known_hosts, accept_new, timeout,
                          keepalive, passphrase_env)
            for part in jump_spec.split(",")
        )
    proxy_command = None if jumps else found.get("proxycommand")
    if proxy_command and proxy_command.lower() == "none":
        proxy_command = None
    return SshTarget(
        name=host_name,
        hostname=hostname,
        port=int(port),
        user=user,
        identity_files=identities,
        explicit_identity=bool(explicit),
        known_hosts=known_hosts,
        host_key_alias=found.get("hostkeyalias"),
        accept_new_host_key=accept_new,
        connect_timeout=timeout,
        keepalive=keepalive,
        passphrase_env=passphrase_env,
        proxy_command=proxy_command,
        jumps=jumps,
    )


def _resolve_jump(
    spec: str,
    ssh_config: Any,
    fallback_identities: tuple[str, ...],
    known_hosts: str,
    accept_new: bool,
    timeout: float,
    keepalive: int,
    passphrase_env: str | None,
) -> SshTarget:
    user, host, port = parse_jump(spec)
    found = ssh_config.lookup(host)
    own = _existing(list(found.get("identityfile", [])))
    identities = own + tuple(p for p in fallback_identities if p not in own)
    return SshTarget(
        name=f"jump {host}",
        hostname=found.get("hostname", host),
        port=int(port or found.get("port", 22)),
        user=user or found.get("user") or getpass.getuser(),
        identity_files=identities,
        known_hosts=known_hosts,
        host_key_alias=found.get("hostkeyalias"),
        accept_new_host_key=accept_new,
        connect_timeout=timeout,
        keepalive=keepalive,
        passphrase_env=passphrase_env,
    )
