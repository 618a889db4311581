"""A minimal PEP 517 backend for the example plugin: a pure-Python wheel of decl_toyvm with
the metadata and entry points of pyproject.toml (no setuptools or wheel package needed)."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile

import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "decl_toyvm"


def _project() -> dict:
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: dict | None = None,
                metadata_directory: str | None = None) -> str:
    project = _project()
    name, version = project["name"].replace("-", "_"), project["version"]
    dist_info = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for file in sorted(os.listdir(os.path.join(HERE, PACKAGE))):
        if file.endswith(".py"):
            with open(os.path.join(HERE, PACKAGE, file), "rb") as handle:
                files[f"{PACKAGE}/{file}"] = handle.read()
    metadata = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}",
                f"Summary: {project['description']}",
                f"Requires-Python: {project['requires-python']}"]
    metadata += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    files[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: build_backend\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    entry_points = ""
    for group, entries in project.get("entry-points", {}).items():
        entry_points += f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
    files[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return wheel_name
