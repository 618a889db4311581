"""The peers decl is measured against, in a virtual environment of the bench's own.

    python3 bench/peers.py [--dir bench/.venv-peers] [--check]   # install (or check) them

The directory can also be given by DECL_BENCH_PEERS.

Installs from PyPI, with pip, into `bench/.venv-peers` (never into decl's own environment):
ansible (the community package, which carries `community.docker`), pyinfra, requests (the
Docker modules of community.docker talk to the engine through it) and matplotlib (for the
plot). Debian's `docker-compose` (1.29) is used from PATH: `apt-get install docker-compose`.

`find_peers()` tells the harness which peers are usable, and why not when one is not.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DIR = pathlib.Path(os.environ.get("DECL_BENCH_PEERS") or HERE / ".venv-peers")
REQUIREMENTS = ["ansible>=10,<13", "pyinfra>=3.1,<4", "requests>=2.31", "matplotlib>=3.7"]


@dataclass
class Peers:
    """What the bench can run: each tool's argv prefix, or why it is missing."""

    directory: pathlib.Path
    tools: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> pathlib.Path:
        """The peers' venv interpreter."""
        return self.directory / "bin" / "python"

    def has(self, tool: str) -> bool:
        """Whether `tool` (ansible, pyinfra, compose, matplotlib) can run."""
        return tool in self.tools


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def find_peers(directory: pathlib.Path = DEFAULT_DIR) -> Peers:
    """The peers installed in `directory` and on PATH, with versions; nothing is installed."""
    peers = Peers(directory=directory)
    bin_dir = directory / "bin"
    why_venv = f"not installed in {directory} (run: python3 bench/peers.py)"
    playbook = bin_dir / "ansible-playbook"
    if playbook.exists():
        peers.tools["ansible"] = [str(playbook)]
        peers.versions["ansible"] = _first_line([str(playbook), "--version"]) + " (" + \
            _first_line([str(peers.python), "-c",
                         "import importlib.metadata as m; print('ansible', "
                         "m.version('ansible'), '/ community.docker', end='')"]) + \
            " " + _collection_version(directory, "docker") + ")"
    else:
        peers.missing["ansible"] = why_venv
    pyinfra = bin_dir / "pyinfra"
    if pyinfra.exists():
        peers.tools["pyinfra"] = [str(pyinfra)]
        peers.versions["pyinfra"] = _first_line([str(pyinfra), "--version"])
    else:
        peers.missing["pyinfra"] = why_venv
    compose = shutil.which("docker-compose")
    if compose:
        peers.tools["compose"] = [compose]
        peers.versions["compose"] = _first_line([compose, "version"])
    else:
        peers.missing["compose"] = "docker-compose not on PATH (apt-get install docker-compose)"
    if peers.python.exists() and subprocess.run(
            [str(peers.python), "-c", "import matplotlib"], capture_output=True).returncode == 0:
        peers.tools["matplotlib"] = [str(peers.python)]
    else:
        peers.missing["matplotlib"] = why_venv
    return peers


def _collection_version(directory: pathlib.Path, name: str) -> str:
    pattern = f"lib/python*/site-packages/ansible_collections/community/{name}/MANIFEST.json"
    for manifest in directory.glob(pattern):
        import json

        try:
            return json.loads(manifest.read_text())["collection_info"]["version"]
        except (OSError, ValueError, KeyError):
            break
    return "?"


def install(directory: pathlib.Path = DEFAULT_DIR, python: str | None = None) -> Peers:
    """Create the peers' venv (once) and pip install the peers into it."""
    python = python or os.path.realpath(sys.executable)
    if not (directory / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(directory)], check=True)
    pip = [str(directory / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    return find_peers(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=pathlib.Path, default=DEFAULT_DIR)
    parser.add_argument("--check", action="store_true", help="only report what is installed")
    args = parser.parse_args()
    peers = find_peers(args.dir) if args.check else install(args.dir)
    for tool, version in peers.versions.items():
        print(f"{tool:10} {version}")
    for tool, why in peers.missing.items():
        print(f"{tool:10} missing: {why}")


if __name__ == "__main__":
    main()
