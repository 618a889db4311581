"""Disk images: a cache of verified downloads, and VM disks made from them with qemu-img.

An image is a path on the VM's host or an http(s) URL with a checksum. A URL is downloaded
once into the cache, to a temporary name, hashed while it arrives, and renamed to its
final name only when its length and checksum are right: a truncated or wrong download is
deleted, never used. A host other than this machine gets the verified file uploaded into its
own cache. A VM disk is then a qcow2 overlay on the cached image (copy-on-write, the
image is its backing file) or a full copy, as the provider's options say.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from decl.connections.base import Connection
from decl.errors import ProviderError

Progress = Callable[[str, "float | None"], None]

CHUNK = 1 << 20
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def is_url(image: str) -> bool:
    """Whether an image reference is an http(s) URL."""
    return image.startswith(("http://", "https://"))


def parse_checksum(checksum: str) -> tuple[str, str]:
    """'sha256:ABC' -> ('sha256', 'abc'); ProviderError when malformed."""
    algo, _, digest = checksum.partition(":")
    algo = algo.lower()
    if algo not in ("sha256", "sha512") or not digest:
        raise ProviderError(f"checksum {checksum!r} is not sha256:HEX or sha512:HEX")
    return algo, digest.lower()


def cache_name(checksum: str) -> str:
    """File name of a verified image in a cache: its checksum."""
    algo, digest = parse_checksum(checksum)
    return f"{algo}-{digest}.img"


def local_cache_dir() -> str:
    """This machine's image cache: $DECL_CACHE_DIR, else $XDG_CACHE_HOME/decl/images."""
    if os.environ.get("DECL_CACHE_DIR"):
        return os.path.join(os.environ["DECL_CACHE_DIR"], "images")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "decl", "images")


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def download(url: str, dest: str, checksum: str, progress: Progress,
             timeout: float = 60.0) -> str:
    """Download `url` to `dest` (local), verified against `checksum`; return dest.

    The data goes to a temporary file next to `dest`; it is renamed to `dest` only when
    the length announced by the server and the checksum both match. Otherwise the
    temporary file is deleted and ProviderError says what was wrong.
    """
    import urllib.error
    import urllib.request

    algo, expected = parse_checksum(checksum)
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=directory)
    digest = hashlib.new(algo)
    received = 0
    try:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s) only
        except OSError as exc:  # URLError and HTTPError are OSErrors
            raise ProviderError(f"download of {url} failed: {_reason(exc)}") from None
        with response, os.fdopen(fd, "wb") as handle:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            progress(f"downloading {url}", 0.0 if total else None)
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, ValueError) as exc:
                    raise ProviderError(
                        f"download of {url} broke off after {received} bytes: {_reason(exc)}"
                    ) from None
                if not chunk:
                    break
                handle.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress(f"downloading {url}", received / total if total else None)
            handle.flush()
            os.fsync(handle.fileno())
        if total is not None and received != total:
            raise ProviderError(
                f"download of {url} is truncated: got {received} of {total} bytes; not used"
            )
        actual = digest.hexdigest()
        if actual != expected:
            raise ProviderError(
                f"download of {url} does not match its checksum: expected {algo}:{expected}, "
                f"got {algo}:{actual}; not used"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        progress(f"downloaded {url}", 1.0)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


def verify_file(conn: Connection, path: str, checksum: str) -> None:
    """Check a file on the host against a checksum (sha256sum/sha512sum there)."""
    algo, expected = parse_checksum(checksum)
    if conn.is_local:
        digest = hashlib.new(algo)
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        actual = digest.hexdigest()
    else:
        result = conn.run([f"{algo}sum", "--", path], timeout=3600)
        result.check(f"{algo}sum of {path} on host {conn.host}")
        actual = result.out.split()[0].lower() if result.out.split() else ""
    if actual != expected:
        raise ProviderError(f"image {path} does not match its checksum: expected "
                            f"{algo}:{expected}, got {algo}:{actual}")


def image_problem(conn: Connection, image: str, checksum: str | None) -> str | None:
    """A plan-time error for a disk image, or None (a local path must exist on the host)."""
    if is_url(image):
        if not checksum:
            return f"image {image} is a URL and needs a checksum"
        return None
    path = conn.expand_user(image)
    if not conn.exists(path):
        return f"image {image} does not exist on host {conn.host}"
    return None


def ensure_image(conn: Connection, image: str, checksum: str | None, host_cache: str,
                 progress: Progress) -> str:
    """The path, on the VM's host, of a verified copy of `image`."""
    if not is_url(image):
        path = conn.expand_user(image)
        if not conn.exists(path):
            raise ProviderError(f"image {image} does not exist on host {conn.host}")
        if checksum:
            progress(f"verifying {image}", None)
            verify_file(conn, path, checksum)
        return str(path)
    if not checksum:
        raise ProviderError(f"image {image} is a URL and needs a checksum")
    name = cache_name(checksum)
    host_path = f"{host_cache.rstrip('/')}/{name}"
    with _lock_for(f"host {conn.host}:{host_path}"):
        if conn.exists(host_path):
            return host_path
        local_dir = host_cache if conn.is_local else local_cache_dir()
        local_path = os.path.join(local_dir, name)
        with _lock_for(f"download:{local_path}"):
            if not os.path.exists(local_path):
                download(image, local_path, checksum, progress)
        if local_path != host_path:
            progress(f"copying {image} to host {conn.host}", None)
            conn.makedirs(host_cache)
            if conn.is_local:
                _copy_local(local_path, host_path)
            else:
                tmp = host_path + ".upload"
                conn.upload(local_path, tmp)
                verify_file(conn, tmp, checksum)
                conn.run(["mv", "-f", "--", tmp, host_path], timeout=60).check(
                    f"moving the image into the cache of host {conn.host}")
        return host_path


def _copy_local(source: str, dest: str) -> None:
    directory = os.path.dirname(dest)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".copy-", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def qemu_img_info(conn: Connection, path: str) -> dict[str, Any]:
    """`qemu-img info --output=json -U` of a file on the host."""
    result = conn.run(["qemu-img", "info", "--output=json", "-U", "--", path], timeout=120)
    result.check(f"qemu-img info {path}")
    return dict(json.loads(result.out))


def make_disk(conn: Connection, dest: str, size: int | None, base: str | None, mode: str,
              progress: Progress) -> None:
    """Create a VM disk at `dest` on the host: empty, an overlay on `base`, or a copy of it.

    An existing file at `dest` is never overwritten.
    """
    if conn.exists(dest):
        raise ProviderError(f"{dest} already exists on host {conn.host}: decl will not "
                            "overwrite a file it did not make")
    if base is None:
        if not size:
            raise ProviderError(f"disk {dest} needs a size")
        conn.run(["qemu-img", "create", "-q", "-f", "qcow2", "--", dest, str(size)],
                 timeout=300).check(f"qemu-img create {dest}")
        return
    info = qemu_img_info(conn, base)
    base_format = str(info.get("format", "raw"))
    virtual = int(info.get("virtual-size", 0))
    if size is not None and size < virtual:
        raise ProviderError(f"disk {dest}: size {size} is smaller than its image "
                            f"({virtual} bytes); a disk cannot be smaller than its image")
    if mode == "overlay":
        argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base,
                "--", dest]
        if size is not None and size > virtual:
            argv.append(str(size))
        conn.run(argv, timeout=300).check(f"qemu-img create {dest} on {base}")
        return
    progress(f"copying {base} to {dest}", None)
    conn.run(["qemu-img", "convert", "-q", "-f", base_format, "-O", "qcow2", "--", base, dest],
             timeout=3600).check(f"qemu-img convert {base} to {dest}")
    if size is not None and size > virtual:
        resize_disk(conn, dest, size)


def resize_disk(conn: Connection, path: str, size: int) -> None:
    """Grow a disk image that no VM is using (qemu-img resize)."""
    conn.run(["qemu-img", "resize", "-q", "--", path, str(size)], timeout=300).check(
        f"qemu-img resize {path}")
