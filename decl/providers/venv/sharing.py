"""One pip run for the new venvs of an apply that ask for the same packages.

The first new venv of a kind (same host, interpreter, packages and index options) is filled
by `pip install --report FILE` as always; pip's report names the exact wheels it installed
(URL, sha256, requested or a dependency, direct or from an index). The other new venvs of
that kind in the same run get those wheels unpacked by decl/providers/venv/seed.py's wheel
installer, which does what pip's does; a venv fresh from the same seeding would make pip
choose the same wheels. Anything that installer cannot do exactly (a wheel not on this
host's disk, an sdist pip built, a package that replaces one of the seeded ones, a report
it does not know) leaves the other venvs to their own `pip install`, as before.

The key lives in memory only: it may hold an index URL with a password.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from decl.providers.venv.install_progress import canonical

# pip writes `--report` since 22.2; its format "1" is stable.
PIP_WITH_REPORT = (22, 2)
REPORT_NAME = ".decl-pip-report.json"


@dataclass
class Shared:
    """What the first venv of a kind learnt from pip: its wheels, or why there are none."""

    done: threading.Event = field(default_factory=threading.Event)
    wheels: list[dict[str, Any]] | None = None
    why: str = "the first venv's pip install did not finish"
    model: str = ""  # the venv pip filled

    def settle(self, wheels: list[dict[str, Any]] | None, why: str = "",
               model: str = "") -> None:
        """Record the outcome (once) and wake the venvs waiting for it."""
        if not self.done.is_set():
            self.wheels, self.why, self.model = wheels, why, model
            self.done.set()


class Resolutions:
    """Per apply run: one Shared per kind of new venv; the first to ask leads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[Any, ...], Shared] = {}

    def claim(self, key: tuple[Any, ...]) -> tuple[Shared, bool]:
        """The Shared of `key`, and whether the caller is its leader (runs pip)."""
        with self._lock:
            found = self._by_key.get(key)
            if found is not None:
                return found, False
            shared = self._by_key[key] = Shared()
            return shared, True


def version_tuple(text: str | None) -> tuple[int, ...]:
    """(23, 2, 1) of "23.2.1"; () when there is no leading number."""
    parts = []
    for piece in (text or "").split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group(0)))
    return tuple(parts)


def file_url_path(url: str) -> str | None:
    """The local path of a file:// URL (None for any other URL)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    from urllib.request import url2pathname  # http.client and ssl: only when needed

    return url2pathname(parsed.path)


def wheels_from_report(report: Any, seeded: set[str]) -> tuple[list[dict[str, Any]] | None,
                                                                 str]:
    """The wheels pip installed, as seed.install_wheels takes them; or None and why not.

    A wheel pip took from an index or a find-links page over HTTP(S) has "fetch" (its URL,
    which pip's report gives without a password) and the file name as "path": see
    `fetch_plan`."""
    if not isinstance(report, dict) or report.get("version") != "1" or \
            not isinstance(report.get("install"), list):
        return None, "pip's report is not in a format decl knows"
    wheels: list[dict[str, Any]] = []
    for item in report["install"]:
        info = item.get("download_info") or {}
        metadata = item.get("metadata") or {}
        name = canonical(str(metadata.get("name", "")))
        if not name or name in seeded:
            return None, f"{name or 'a package'} replaces a package the venv was made with"
        url = str(info.get("url", ""))
        archive = info.get("archive_info")
        path = file_url_path(url)
        fetch = None
        parts = urllib.parse.urlsplit(url)
        # from an index or find-links page: fetched once for all venvs, by a command line
        # that must hold no secret (no user info, no query string such as a signed URL's)
        if path is None and not item.get("is_direct") and parts.scheme in ("http", "https") \
                and "@" not in parts.netloc and not parts.query and not parts.fragment:
            fetch = url
            path = urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        if not isinstance(archive, dict) or path is None or not path.endswith(".whl"):
            return None, f"{name} was not installed from a wheel file"
        sha256 = (archive.get("hashes") or {}).get("sha256")
        if not sha256 and str(archive.get("hash", "")).startswith("sha256="):
            sha256 = str(archive["hash"]).split("=", 1)[1]
        if not sha256:
            return None, f"pip's report gives no sha256 for {name}"
        # pip writes direct_url.json for a direct reference: DirectUrl.to_json() of the
        # same dict the report holds (sorted keys, json's default separators).
        direct = json.dumps(info, sort_keys=True) if item.get("is_direct") else None
        entry = {"path": path, "sha256": sha256, "requested": bool(item.get("requested")),
                 "direct_url": direct}
        if fetch:
            entry["fetch"] = fetch  # `path` is then the file's name only
        wheels.append(entry)
    return wheels, ""


def cache_dir(home: str, env: dict[str, str]) -> str:
    """Where fetched wheels are kept on a POSIX host: $XDG_CACHE_HOME/decl/wheels, else
    ~/.cache/decl/wheels; each as <sha256>/<file name>."""
    base = env.get("XDG_CACHE_HOME") or f"{home.rstrip('/')}/.cache"
    return f"{base}/decl/wheels"


def fetch_plan(wheels: list[dict[str, Any]], cache: str) -> list[tuple[str, str, str]]:
    """(URL, file name, final path) of each wheel still to fetch; sets every wheel's
    "path" to its place in `cache` (named by its sha256, so a file there is that wheel)."""
    plan = []
    for wheel in wheels:
        url = wheel.pop("fetch", None)
        if url:
            name = str(wheel["path"])
            wheel["path"] = f"{cache}/{wheel['sha256']}/{name}"
            plan.append((str(url), name, str(wheel["path"])))
    return plan
