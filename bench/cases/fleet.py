"""N SSH hosts x 3 venvs: a no-op plan and a no-op apply, decl against Ansible and pyinfra.

The hosts are N names for one loopback sshd of the bench's own (tests/sshd.py): decl's
manifest gives each name the address 127.0.0.1, Ansible's inventory gives each its own
`HostKeyAlias` and SSH control socket (`%k`: one master per name, as with real hosts, not
one shared by all), pyinfra's inventory lists N hosts. They log in as a user of their own
(`declfleet`, made by the bench when it runs as root: shell /bin/sh, no start-up files, home
in the bench's temp directory; otherwise the bench's own user) and use Debian's
/usr/bin/python3 on the "remote" side.

Each host name has a home of its own, as a real host would: every tool logs in to host
`hNNN` with that host's own key, and authorized_keys gives the key
`environment="HOME=.../homes/hNNN"` (sshd `PermitUserEnvironment HOME`). Without this the N
names would share one home, and with it decl's index of the venvs it made on "that host"
(~/.local/state/decl/venvs/PROJECT.json): every host would report the 3N venvs of the whole
fleet, 3(N-1) of them as "left on another host", and each discovery would read 3N venvs
instead of 3 (quadratic in N; Ansible and pyinfra, which keep no such record, would not pay).

Every host has 3 venvs with pip and 3 packages from the wheelhouse, made once by `decl
apply` (timed as information). Then, on the converged hosts:
- decl: `decl plan --detailed-exitcode` and `decl apply -y` (default parallelism: 16 hosts
  discovered at once, 10 changes at once);
- Ansible: `ansible-playbook --check` (plan) and a normal run (apply) of `ansible.builtin.pip`
  over the 3 venvs of every host, with `-f 5` and `-f 20`;
- pyinfra: `pyinfra inventory.py deploy.py --dry` (plan) and `--yes` (apply), `pip.venv` +
  `pip.packages` per venv, at its default parallelism.
The time per added host is the slope between the smallest and the largest N.
"""

from __future__ import annotations

import json
import os
import pathlib
import pwd
import shutil
import subprocess

from bench.cases.common import DECL, PACKAGES, BenchError, Context, Result, run, timed

USER = "declfleet"
REMOTE_PYTHON = "/usr/bin/python3"
VENVS_PER_HOST = 3


def unavailable() -> str | None:
    """Why the fleet case cannot run here, or None."""
    for tool in ("sshd", "ssh-keygen"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed (apt-get install openssh-server)"
    if not os.path.exists(REMOTE_PYTHON):
        return f"{REMOTE_PYTHON} is not there (apt-get install python3-venv)"
    return None


def login_user(home: pathlib.Path) -> tuple[str, bool]:
    """The user the hosts log in as, and whether the bench created it (to remove it)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name, False
    try:
        pwd.getpwnam(USER)
        created = False
    except KeyError:
        # password "*": no password login, but not a locked account (which sshd refuses)
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell",
                        "/bin/sh", "--password", "*", USER], check=True, capture_output=True)
        created = True
    home.mkdir(parents=True, exist_ok=True)
    shutil.chown(home, USER, USER)
    return USER, created


def remove_user(wait: float = 90) -> None:
    """Delete the login user the bench made; its last sessions (Ansible's SSH masters
    persist 60 s) may hold it for a while, and userdel refuses a user in use."""
    import time

    deadline = time.monotonic() + wait
    while subprocess.run(["userdel", USER], capture_output=True).returncode == 8 and \
            time.monotonic() < deadline:  # 8: the user is logged in
        time.sleep(2)


def host_names(n: int) -> list[str]:
    """h000, h001, ..."""
    return [f"h{i:03d}" for i in range(n)]


def venv_path(root: pathlib.Path, host: str, j: int) -> str:
    """Where host `host` keeps its venv number j (all hosts share one disk)."""
    return str(root / "hosts" / host / f"v{j}")


def host_logins(base: pathlib.Path, server, user: str, n: int) -> dict[str, str]:
    """A key and a home of its own for each of N host names; {name: private key path}.

    The key's line in the server's authorized_keys sets HOME to the host's home (the server
    runs with `PermitUserEnvironment HOME`).
    """
    from tests.sshd import keygen

    keys = {}
    lines = []
    for name in host_names(n):
        home = base / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        shutil.chown(home, user)
        key = base / "keys" / name
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            keygen(key, f"decl-bench-{name}")
        keys[name] = str(key)
        public = pathlib.Path(f"{key}.pub").read_text().strip()
        lines.append(f'environment="HOME={home}" {public}\n')
    with open(server.directory / "authorized_keys", "a") as handle:
        handle.writelines(lines)
    return keys


def decl_manifest(ctx: Context, root: pathlib.Path, server, user: str, n: int,
                  keys: dict[str, str]) -> str:
    """N hosts and 3 venvs on each; the manifest path."""
    hosts = {name: server.manifest_host(user=user, python=REMOTE_PYTHON, connect_timeout=30,
                                        identity_file=keys[name])
             for name in host_names(n)}
    venvs = {f"{name}-v{j}": {"host": name, "path": venv_path(root, name, j),
                              "backend": "venv", "pip": True, "packages": PACKAGES,
                              "find_links": [str(ctx.wheels)], "no_index": True}
             for name in host_names(n) for j in range(VENVS_PER_HOST)}
    manifest = root / "decl.yaml"
    manifest.write_text(json.dumps({"version": 1, "project": f"bench-fleet-{n}",
                                    "hosts": hosts, "venvs": venvs}, indent=1))
    return str(manifest)


def ansible_files(ctx: Context, root: pathlib.Path, server, user: str, n: int,
                  keys: dict[str, str]) -> list[str]:
    """Inventory and playbook; the argv of ansible-playbook (without -f / --check)."""
    lines = ["[fleet]"]
    for name in host_names(n):
        lines.append(
            f"{name} ansible_host=127.0.0.1 ansible_port={server.port} ansible_user={user} "
            f"ansible_ssh_private_key_file={keys[name]} "
            f"ansible_python_interpreter={REMOTE_PYTHON} "
            f"ansible_ssh_common_args='-o HostKeyAlias={name} "
            f"-o UserKnownHostsFile={root / 'ansible_known_hosts'} "
            "-o StrictHostKeyChecking=no'")
    inventory = root / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n")
    play = [{
        "hosts": "fleet", "gather_facts": False,
        "tasks": [{
            "name": "venvs with three packages",
            "ansible.builtin.pip": {
                "name": PACKAGES,
                "virtualenv": str(root / "hosts") + "/{{ inventory_hostname }}/v{{ item }}",
                "virtualenv_command": f"{REMOTE_PYTHON} -m venv",
                "extra_args": f"--no-index --find-links {ctx.wheels}",
            },
            "loop": list(range(VENVS_PER_HOST)),
        }],
    }]
    playbook = root / "playbook.yml"
    playbook.write_text(json.dumps(play, indent=1))
    return [*ctx.peers.tools["ansible"], "-i", str(inventory), str(playbook)]


def pyinfra_files(ctx: Context, root: pathlib.Path, server, user: str, n: int,
                  keys: dict[str, str]) -> list[str]:
    """Inventory and deploy file; the argv of pyinfra (without --dry / --yes)."""
    data = {"ssh_hostname": "127.0.0.1", "ssh_port": server.port, "ssh_user": user,
            "ssh_strict_host_key_checking": "no",
            "ssh_known_hosts_file": str(root / "pyinfra_known_hosts")}
    inventory = root / "inventory.py"
    inventory.write_text(f"keys = {keys!r}\n"
                         f"fleet = [(name, {{**{data!r}, 'ssh_key': keys[name]}})\n"
                         f"         for name in {host_names(n)!r}]\n")
    deploy = root / "deploy.py"
    deploy.write_text(
        "from pyinfra import host\nfrom pyinfra.operations import pip\n\n"
        f"for j in range({VENVS_PER_HOST}):\n"
        f"    path = {str(root / 'hosts')!r} + '/' + host.name + '/v' + str(j)\n"
        f"    pip.venv(name='venv ' + path, path=path, python={REMOTE_PYTHON!r})\n"
        f"    pip.packages(name='packages ' + path, packages={PACKAGES!r}, virtualenv=path,\n"
        f"                 extra_install_args={'--no-index --find-links ' + str(ctx.wheels)!r})\n"
    )
    return [*ctx.peers.tools["pyinfra"], str(inventory), str(deploy)]


def run_case(ctx: Context) -> list[Result]:
    """Create once, then the no-op plan and apply of every tool at every N."""
    from tests.sshd import start_sshd

    why = unavailable()
    if why:
        raise BenchError(f"the fleet case cannot run: {why}")
    base = ctx.work / "fleet"
    base.mkdir(parents=True, exist_ok=True)
    for path in (ctx.work, base, ctx.wheels):
        path.chmod(0o755)
    user, created = login_user(base / "home")
    server = start_sshd(base / "sshd", env={"PIP_CONFIG_FILE": "/dev/null",
                                           "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                                           "PATH": "/usr/local/bin:/usr/bin:/bin"},
                        extra_config=["PermitUserEnvironment HOME"])
    results: list[Result] = []
    try:
        keys = host_logins(base, server, user, max(ctx.sizes))
        for path in (base / "sshd", base / "sshd" / "authorized_keys"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # read as the login user
        for n in ctx.sizes:
            results += measure(ctx, base / f"n{n}", server, user, n, keys)
    finally:
        server.stop()
        if created:
            remove_user()
    return results


def measure(ctx: Context, root: pathlib.Path, server, user: str, n: int,
            keys: dict[str, str]) -> list[Result]:
    """One N: create, then interleaved no-op runs."""
    (root / "hosts").mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "hosts", user)
    root.chmod(0o755)
    manifest = decl_manifest(ctx, root, server, user, n, keys)
    seconds, _ = timed([*DECL, "apply", "-y", "-f", manifest], ctx.env)
    created = Result("fleet", "decl", n, "create", [seconds],
                     note=f"{n * VENVS_PER_HOST} venvs with pip")
    ctx.log(f"fleet N={n}: decl created {n * VENVS_PER_HOST} venvs in {seconds:.1f} s")
    commands: dict[tuple[str, str], list[str]] = {
        ("decl", "plan"): [*DECL, "plan", "--detailed-exitcode", "-f", manifest],
        ("decl", "apply"): [*DECL, "apply", "-y", "-f", manifest],
    }
    if ctx.peers.has("ansible"):
        argv = ansible_files(ctx, root, server, user, n, keys)
        for forks in (5, 20):
            commands[(f"ansible-f{forks}", "plan")] = [*argv, "-f", str(forks), "--check"]
            commands[(f"ansible-f{forks}", "apply")] = [*argv, "-f", str(forks)]
    if ctx.peers.has("pyinfra"):
        argv = pyinfra_files(ctx, root, server, user, n, keys)
        commands[("pyinfra", "plan")] = [*argv, "--dry"]
        commands[("pyinfra", "apply")] = [*argv, "--yes"]
    results = {key: Result("fleet", key[0], n, f"noop {key[1]}") for key in commands}
    # Ansible's default control socket is named by a hash of address, port and user: the N
    # names would share one SSH master. %k (the HostKeyAlias) gives each host its own.
    ansible_env = {**ctx.env, "ANSIBLE_SSH_CONTROL_PATH": "%(directory)s/%%k"}
    for rep in range(ctx.repeat):
        for key, argv in commands.items():
            if ctx.enough(results[key]):
                continue
            env = ansible_env if key[0].startswith("ansible") else ctx.env
            seconds, done = timed(argv, env, root)
            check_noop(key, done.stdout, n)
            results[key].samples.append(seconds)
            ctx.log(f"fleet N={n} {key[0]} no-op {key[1]} #{rep + 1}: {seconds:.2f} s")
    run([*DECL, "destroy", "-y", "-f", manifest], ctx.env)
    return [created, *results.values()]


def check_noop(key: tuple[str, str], out: str, n: int) -> None:
    """The run reached every host and changed nothing: otherwise the figure means nothing."""
    tool, phase = key
    if tool == "decl" and phase == "apply" and "No changes." not in out:
        raise BenchError(f"decl's no-op apply on {n} hosts changed something:\n{out[-2000:]}")
    if tool.startswith("ansible"):
        recap = [line for line in out.splitlines() if " : ok=" in line]
        if len(recap) != n or any("unreachable=0" not in line or "failed=0" not in line
                                  for line in recap):
            raise BenchError(f"{tool} did not run on all {n} hosts:\n{out[-3000:]}")
