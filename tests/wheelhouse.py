"""Tiny wheels written by hand, so venv tests need no network and no build backend."""

from __future__ import annotations

import base64
import hashlib
import pathlib
import zipfile


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(directory: pathlib.Path, name: str, version: str,
               requires: list[str] | None = None) -> pathlib.Path:
    """Write NAME-VERSION-py3-none-any.whl with one module and Requires-Dist lines."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires or [])
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: decl-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return target


def standard_wheelhouse(directory: pathlib.Path) -> pathlib.Path:
    """alpha 1.0 and 2.0, beta 1.0 (needs gamma), gamma 1.0, delta 1.0."""
    make_wheel(directory, "alpha", "1.0")
    make_wheel(directory, "alpha", "2.0")
    make_wheel(directory, "beta", "1.0", ["gamma>=1.0"])
    make_wheel(directory, "gamma", "1.0")
    make_wheel(directory, "delta", "1.0")
    return directory


def make_tool_wheel(directory: pathlib.Path, name: str = "tool", version: str = "1.0",
                    purelib: bool = True) -> pathlib.Path:
    """A wheel with what pip's installer treats specially: console and GUI entry points, a
    `#!python` script and a setuptools wrapper in .data/scripts, a data file, a nested
    package, an executable file, a Requires-Dist on gamma; platlib when not `purelib`."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    data = f"{module}-{version}.data"
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                "Requires-Dist: gamma\n")
    files: dict[str, tuple[bytes, int]] = {
        f"{module}/__init__.py": (f"VERSION = {version!r}\n".encode(), 0o644),
        f"{module}/cli.py": (b"import sys\n\ndef main():\n    print('tool ran', sys.argv[1:])\n"
                             b"    return 0\n\ndef gui():\n    return 0\n", 0o644),
        f"{module}/sub/__init__.py": (b"", 0o644),
        f"{module}/sub/run.sh": (b"#!/bin/sh\necho run\n", 0o755),
        f"{module}/sub/notes.txt": (b"not python\n", 0o644),
        f"{data}/scripts/{module}-helper": (b"#!python\nprint('helper ran')\n", 0o755),
        f"{data}/scripts/{module}": (b"#!python\n# setuptools' wrapper, replaced by pip\n", 0o755),
        f"{data}/data/share/{module}/readme.txt": (b"shared data\n", 0o644),
        f"{dist_info}/METADATA": (metadata.encode(), 0o644),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: decl-tests\nRoot-Is-Purelib: "
                               + (b"true" if purelib else b"false") + b"\nTag: py3-none-any\n",
                               0o644),
        f"{dist_info}/entry_points.txt": (
            f"[console_scripts]\n{module} = {module}.cli:main\n"
            f"{module}-x = {module}.cli:main\n\n[gui_scripts]\n{module}-gui = {module}.cli:gui\n"
            "\n[other.group]\nignored = x:y\n".encode(), 0o644),
    }
    record = "".join(f"{path},{_record_hash(content)},{len(content)}\n"
                     for path, (content, _) in files.items())
    record += f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = (record.encode(), 0o644)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, (content, mode) in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, content)
    return target


def make_sdist(directory: pathlib.Path, name: str, version: str) -> pathlib.Path:
    """NAME-VERSION.tar.gz whose in-tree build backend (no build requirements, so pip builds
    it offline) writes a one-module wheel."""
    import io
    import tarfile

    module = name.replace("-", "_")
    backend = f'''
import base64, hashlib, os, zipfile

def _h(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = "{module}-{version}.dist-info"
    files = {{"{module}/__init__.py": b"BUILT = True\\n",
             info + "/METADATA": b"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
             info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\n"
                              b"Tag: py3-none-any\\n"}}
    record = "".join("%s,%s,%d\\n" % (p, _h(d), len(d)) for p, d in files.items())
    files[info + "/RECORD"] = (record + info + "/RECORD,,\\n").encode()
    name = "{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
    return name
'''
    members = {
        "pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                          b'backend-path = ["."]\n',
        "backend.py": backend.encode(),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{module}-{version}.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        for path, content in members.items():
            info = tarfile.TarInfo(f"{module}-{version}/{path}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return target
