"""Reading pip's install report, and seed.py's wheel installer refusing what pip does otherwise."""

from __future__ import annotations

import hashlib
import json
import pathlib
import threading
import zipfile

import pytest

from decl.providers.venv import seed, sharing
from tests.wheelhouse import make_wheel


def item(name: str, url: str, *, requested: bool = True, direct: bool = False,
         archive: dict | None = None) -> dict:
    info = {"url": url, "archive_info": archive if archive is not None else
            {"hash": "sha256=abc", "hashes": {"sha256": "abc"}}}
    return {"download_info": info, "is_direct": direct, "requested": requested,
            "metadata": {"name": name, "version": "1.0"}}


def report(*items: dict) -> dict:
    return {"version": "1", "pip_version": "23.2.1", "install": list(items)}


def test_wheels_on_this_host_are_taken_with_their_hash_and_request():
    wheels, why = sharing.wheels_from_report(report(
        item("Alpha", "file:///w/alpha-1.0-py3-none-any.whl"),
        item("gamma", "file:///w/my%20dir/gamma-1.0-py3-none-any.whl", requested=False,
             archive={"hash": "sha256=def"})), {"pip", "setuptools"})
    assert why == ""
    assert wheels == [
        {"path": "/w/alpha-1.0-py3-none-any.whl", "sha256": "abc", "requested": True,
         "direct_url": None},
        {"path": "/w/my dir/gamma-1.0-py3-none-any.whl", "sha256": "def", "requested": False,
         "direct_url": None}]


def test_a_direct_reference_gets_pips_direct_url_json():
    entry = item("delta", "file:///w/delta-1.0-py3-none-any.whl", direct=True)
    wheels, _ = sharing.wheels_from_report(report(entry), set())
    assert wheels is not None
    assert json.loads(wheels[0]["direct_url"]) == entry["download_info"]
    assert wheels[0]["direct_url"].startswith('{"archive_info": {"hash"')  # sorted keys


@pytest.mark.parametrize("entry, reason", [
    (item("built", "file:///w/built-1.0.tar.gz"), "not installed from a wheel file"),
    (item("signed", "https://files.example/signed-1.0-py3-none-any.whl?sig=secret"),
     "not installed from a wheel file"),
    (item("userinfo", "https://user@files.example/userinfo-1.0-py3-none-any.whl"),
     "not installed from a wheel file"),
    (item("directhttp", "https://files.example/directhttp-1.0-py3-none-any.whl", direct=True),
     "not installed from a wheel file"),
    (item("sdisthttp", "https://files.example/sdisthttp-1.0.tar.gz"),
     "not installed from a wheel file"),
    (item("other", "file://otherhost/w/other-1.0-py3-none-any.whl"),
     "not installed from a wheel file"),
    (item("vcs", "file:///w/vcs-1.0-py3-none-any.whl", archive={}), "no sha256"),
    (item("Setuptools", "file:///w/setuptools-99-py3-none-any.whl"), "replaces a package"),
])
def test_what_cannot_be_unpacked_exactly_leaves_it_to_pip(entry, reason):
    if entry["download_info"]["archive_info"] == {}:
        entry["download_info"]["archive_info"] = {"hashes": {}}
    wheels, why = sharing.wheels_from_report(report(entry), {"pip", "setuptools"})
    assert wheels is None and reason in why


def test_a_wheel_from_an_index_is_fetched_once_into_the_cache_by_its_hash():
    wheels, why = sharing.wheels_from_report(report(
        item("Remote", "https://files.example/packages/remote-1.0-py3-none-any.whl"),
        item("local", "file:///w/local-1.0-py3-none-any.whl")), set())
    assert why == "" and wheels is not None
    assert wheels[0]["fetch"] == "https://files.example/packages/remote-1.0-py3-none-any.whl"
    cache = sharing.cache_dir("/home/u", {})
    assert cache == "/home/u/.cache/decl/wheels"
    assert sharing.cache_dir("/home/u", {"XDG_CACHE_HOME": "/c"}) == "/c/decl/wheels"
    plan = sharing.fetch_plan(wheels, cache)
    final = f"{cache}/abc/remote-1.0-py3-none-any.whl"
    assert plan == [("https://files.example/packages/remote-1.0-py3-none-any.whl",
                     "remote-1.0-py3-none-any.whl", final)]
    assert [w["path"] for w in wheels] == [final, "/w/local-1.0-py3-none-any.whl"]
    assert all("fetch" not in w for w in wheels)


def test_a_report_of_another_format_is_not_used():
    assert sharing.wheels_from_report({"version": "0", "install": []}, set())[0] is None
    assert sharing.wheels_from_report(None, set())[0] is None


def test_the_first_to_claim_leads_and_the_others_wait_for_its_outcome():
    resolutions = sharing.Resolutions()
    shared, leader = resolutions.claim(("local", "py", ("alpha",)))
    again, second = resolutions.claim(("local", "py", ("alpha",)))
    other, third = resolutions.claim(("local", "py", ("beta",)))
    assert (leader, second, third) == (True, False, True)
    assert again is shared and other is not shared
    seen = []
    waiter = threading.Thread(target=lambda: (again.done.wait(), seen.append(again.wheels)))
    waiter.start()
    shared.settle([{"path": "x"}])
    shared.settle(None, "too late")  # the first outcome stays
    waiter.join(5)
    assert seen == [[{"path": "x"}]] and shared.why == ""


def test_versions_compare_by_number():
    assert sharing.version_tuple("23.2.1") >= sharing.PIP_WITH_REPORT
    assert sharing.version_tuple("22.1.2") < sharing.PIP_WITH_REPORT
    assert sharing.version_tuple("22.2b1") >= sharing.PIP_WITH_REPORT
    assert sharing.version_tuple(None) < sharing.PIP_WITH_REPORT


def scheme(root: pathlib.Path) -> dict[str, str]:
    return {key: str(root / key) for key in ("purelib", "platlib", "scripts", "data")}


def test_a_changed_wheel_file_is_refused_before_anything_is_written(tmp_path):
    wheel = make_wheel(tmp_path / "w", "alpha", "1.0")
    env = tmp_path / "env"
    answer = seed.install_wheels(str(env), str(env / "bin" / "python"), [
        {"path": str(wheel), "sha256": "0" * 64, "requested": True, "direct_url": None}])
    assert answer["ok"] is False and answer["touched"] is False
    assert "changed since pip chose it" in str(answer["why"])
    assert not env.exists()


def test_wheels_that_install_the_same_file_are_refused_before_anything_is_written(tmp_path):
    first = make_wheel(tmp_path / "w", "alpha", "1.0")
    second = tmp_path / "w2" / "alpha_copy-1.0-py3-none-any.whl"
    second.parent.mkdir()
    second.write_bytes(first.read_bytes())
    env = tmp_path / "env"
    wheels = [{"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
               "requested": True, "direct_url": None} for p in (first, second)]
    answer = seed.install_wheels(str(env), str(env / "bin" / "python"), wheels)
    assert answer == {"ok": False, "why": "two wheels install the same file", "touched": False}


def wheel_with(tmp_path: pathlib.Path, extra: dict[str, bytes]) -> bytes:
    base = make_wheel(tmp_path / "w", "odd", "1.0")
    out = tmp_path / "odd.whl"
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        for name, data in extra.items():
            target.writestr(name, data)
    return out.read_bytes()


@pytest.mark.parametrize("extra", [
    {"odd-1.0.data/headers/odd.h": b"int x;\n"},
    {"odd-1.0.dist-info/entry_points.txt": b"[console_scripts]\nodd = odd\n"},
    {"odd-1.0.dist-info/entry_points.txt": b"[console_scripts]\nodd = odd:main [extra]\n"},
    {"odd-1.0.data/nowhere/x": b""},
    {"../escape.py": b""},
], ids=["headers", "no-callable", "extras", "unknown-scheme", "escape"])
def test_what_pip_installs_otherwise_is_refused_before_a_file_is_written(tmp_path, extra):
    data = wheel_with(tmp_path, extra)
    target = tmp_path / "env"
    with pytest.raises(seed.Unsupported):
        seed.install_wheel(data, scheme(target), "/env/bin/python")
    assert not target.exists()


def test_records_of_an_installed_wheel_follow_pips_rules(tmp_path):
    data = wheel_with(tmp_path, {
        "odd-1.0.dist-info/entry_points.txt": b"[console_scripts]\nodd = odd:main\n",
        "odd-1.0.data/scripts/odd-tool": b"#!python\nprint(1)\n",
        "odd-1.0.data/data/share/odd.txt": b"x\n"})
    target = tmp_path / "env"
    paths = scheme(target)
    seed.install_wheel(data, paths, "/env/bin/python", requested=False, pycompile=True)
    site = target / "purelib"
    raw = (site / "odd-1.0.dist-info" / "RECORD").read_bytes()
    assert raw.endswith(b"\r\n")  # csv's line ends, as pip writes them
    rows = raw.decode("utf-8")
    names = [line.split(",")[0] for line in rows.splitlines()]
    assert names == sorted(names)
    assert "../scripts/odd" in names and "../scripts/odd-tool" in names
    assert "../data/share/odd.txt" in names
    assert "odd/__pycache__/__init__.cpython-{}{}.pyc".format(*__import__("sys").version_info[:2]) \
        in names
    assert "odd-1.0.dist-info/INSTALLER" in names
    assert "odd-1.0.dist-info/REQUESTED" not in names  # a dependency, not asked for
    assert (target / "scripts" / "odd-tool").read_bytes() == b"#!/env/bin/python\nprint(1)\n"
    assert (target / "scripts" / "odd").read_bytes().startswith(
        b"#!/env/bin/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        b"from odd import main\n")
