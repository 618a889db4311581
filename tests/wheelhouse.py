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
