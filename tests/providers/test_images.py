"""Image downloads (verified, never half used), the cache, and disks made with qemu-img."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from decl.connections.local import LocalConnection
from decl.errors import ProviderError
from decl.providers import images
from tests.backends import missing_backend
from tests.libvirt_daemon import http_server, make_qcow2


@pytest.fixture
def needs_qemu_img() -> None:
    """qemu-img on PATH, else a skip (a failure under DECL_REQUIRE_BACKENDS=1)."""
    if shutil.which("qemu-img") is None:
        missing_backend("qemu-img", "qemu-img is not installed (Debian: qemu-utils)")


def checksum_of(path: str) -> str:
    return "sha256:" + hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def served(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "image.bin").write_bytes(os.urandom(300_000))
    with http_server(str(www)) as url:
        yield url, str(www / "image.bin")


def test_download_is_verified_and_reports_progress(served, tmp_path):
    url, path = served
    seen = []
    dest = images.download(f"{url}/image.bin", str(tmp_path / "c" / "x.img"),
                           checksum_of(path), lambda m, f: seen.append(f))
    assert open(dest, "rb").read() == open(path, "rb").read()
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert os.listdir(tmp_path / "c") == ["x.img"]


def test_wrong_checksum_is_never_used(served, tmp_path):
    url, _ = served
    with pytest.raises(ProviderError, match="does not match its checksum"):
        images.download(f"{url}/image.bin", str(tmp_path / "c" / "x.img"),
                        "sha256:" + "0" * 64, lambda m, f: None)
    assert os.listdir(tmp_path / "c") == []


def test_truncated_download_is_never_used(served, tmp_path):
    url, path = served
    with pytest.raises(ProviderError, match="truncated|broke off"):
        images.download(f"{url}/truncated/image.bin", str(tmp_path / "c" / "x.img"),
                        checksum_of(path), lambda m, f: None)
    assert os.listdir(tmp_path / "c") == []


def test_missing_url_is_a_clear_error(served, tmp_path):
    url, path = served
    with pytest.raises(ProviderError, match="download of .*/nothing.bin failed"):
        images.download(f"{url}/nothing.bin", str(tmp_path / "x.img"), checksum_of(path),
                        lambda m, f: None)


def test_cache_downloads_once(served, tmp_path, monkeypatch):
    url, path = served
    conn = LocalConnection()
    cache = str(tmp_path / "cache")
    first = images.ensure_image(conn, f"{url}/image.bin", checksum_of(path), cache,
                                lambda m, f: None)
    calls = []
    monkeypatch.setattr(images, "download", lambda *a, **k: calls.append(a))
    again = images.ensure_image(conn, f"{url}/image.bin", checksum_of(path), cache,
                                lambda m, f: None)
    assert first == again and calls == []
    assert os.path.basename(first) == images.cache_name(checksum_of(path))


def test_local_image_checks(tmp_path):
    conn = LocalConnection()
    assert "does not exist" in images.image_problem(conn, str(tmp_path / "no.qcow2"), None)
    image = tmp_path / "i.img"
    image.write_bytes(b"data")
    assert images.image_problem(conn, str(image), None) is None
    with pytest.raises(ProviderError, match="does not match"):
        images.ensure_image(conn, str(image), "sha256:" + "1" * 64, str(tmp_path),
                            lambda m, f: None)


def test_overlay_copy_and_empty_disks(tmp_path, needs_qemu_img):
    conn = LocalConnection()
    base = make_qcow2(str(tmp_path / "base.qcow2"), "16M")
    overlay = str(tmp_path / "o.qcow2")
    images.make_disk(conn, overlay, 32 << 20, base, "overlay", lambda m, f: None)
    info = images.qemu_img_info(conn, overlay)
    assert info["backing-filename"] == base and info["virtual-size"] == 32 << 20
    copy = str(tmp_path / "c.qcow2")
    images.make_disk(conn, copy, None, base, "copy", lambda m, f: None)
    info = images.qemu_img_info(conn, copy)
    assert "backing-filename" not in info and info["virtual-size"] == 16 << 20
    empty = str(tmp_path / "e.qcow2")
    images.make_disk(conn, empty, 8 << 20, None, "overlay", lambda m, f: None)
    assert images.qemu_img_info(conn, empty)["virtual-size"] == 8 << 20
    with pytest.raises(ProviderError, match="will not overwrite"):
        images.make_disk(conn, empty, 8 << 20, None, "overlay", lambda m, f: None)
    with pytest.raises(ProviderError, match="smaller than its image"):
        images.make_disk(conn, str(tmp_path / "s.qcow2"), 1 << 20, base, "overlay",
                         lambda m, f: None)
