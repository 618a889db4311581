"""Host settings: the manifest's `hosts:` entry merged with ~/.ssh/config."""

from __future__ import annotations

import paramiko
import pytest

from decl.connections.sshconfig import parse_jump, resolve
from decl.manifest.model import Host

CONFIG = """
Host nas
  HostName 10.0.0.5
  User admin
  Port 2200
  IdentityFile {key}
  ProxyJump bastion

Host bastion
  HostName 10.0.0.1
  User jumper
  Port 2022

Host keyed
  HostKeyAlias keyed-alias
  UserKnownHostsFile {known}
"""


@pytest.fixture
def ssh_config(tmp_path):
    key = tmp_path / "nas_key"
    key.write_text("not read here")
    text = CONFIG.format(key=key, known=tmp_path / "kh")
    return paramiko.SSHConfig.from_text(text), str(key), str(tmp_path / "kh")


def test_ssh_config_fills_what_the_manifest_leaves_out(ssh_config):
    config, key, _ = ssh_config
    target = resolve("nas", Host(), config)
    assert (target.hostname, target.port, target.user) == ("10.0.0.5", 2200, "admin")
    assert target.identity_files == (key,)
    assert not target.explicit_identity
    assert [(j.hostname, j.port, j.user) for j in target.jumps] == [("10.0.0.1", 2022, "jumper")]
    assert target.known_hosts_name == "[10.0.0.5]:2200"


def test_manifest_wins_over_ssh_config(ssh_config, tmp_path):
    config, key, _ = ssh_config
    mine = tmp_path / "mine"
    target = resolve("nas", Host(user="me", port=22, identity_file=str(mine),
                                 proxy_jump="other@hop:2", known_hosts=str(tmp_path / "k")),
                     config)
    assert (target.user, target.port) == ("me", 22)
    assert target.identity_files[0] == str(mine)  # listed even if absent: reported later
    assert target.explicit_identity
    assert [(j.user, j.hostname, j.port) for j in target.jumps] == [("other", "hop", 2)]
    assert target.known_hosts == str(tmp_path / "k")
    assert target.known_hosts_name == "10.0.0.5"


def test_address_is_looked_up_in_ssh_config(ssh_config):
    config, _, _ = ssh_config
    target = resolve("storage", Host(address="nas"), config)
    assert target.hostname == "10.0.0.5" and target.name == "storage"


def test_host_key_alias_and_known_hosts_file(ssh_config):
    config, _, known = ssh_config
    target = resolve("keyed", Host(port=2222), config)
    assert target.known_hosts == known
    assert target.known_hosts_name == "keyed-alias"


def test_defaults_without_any_config():
    target = resolve("box", None, paramiko.SSHConfig())
    assert (target.hostname, target.port) == ("box", 22)
    assert target.known_hosts.endswith("/.ssh/known_hosts")
    assert not target.accept_new_host_key and target.jumps == ()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("host", (None, "host", None)),
        ("u@host", ("u", "host", None)),
        ("u@host:2222", ("u", "host", 2222)),
        ("ssh://u@host:22", ("u", "host", 22)),
        ("[::1]:2200", (None, "::1", 2200)),
    ],
)
def test_parse_jump(spec, expected):
    assert parse_jump(spec) == expected
