"""Python virtual environments (stdlib venv or uv) and their packages, locally or over SSH."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from decl import __version__
from decl.connections.base import Connection
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.errors import ProviderError
from decl.manifest.model import Venv
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    Operation,
    Progress,
    Provider,
    ensure_owned,
)
from decl.providers.venv.making import check_no_such_python, make_venv, pip_argv
from decl.providers.venv.probe import MARK_FILE, SCRIPT, survey_here
# decl.providers.venv.requirements (packaging) is imported where it is used: `decl
# validate` loads this module for the provider's hooks but never parses a requirement.

INDEX_DIR = "~/.local/state/decl/venvs"
TOOL_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
            "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}

VENV_TRAITS = KindTraits(
    policies={"path": Policy.REPLACE, "python": Policy.REPLACE, "packages": Policy.LIVE,
              "system_site_packages": Policy.REPLACE, "pip": Policy.REPLACE},
    default_policy=Policy.REPLACE,
    destroys_data="deletes the venv directory and everything in it",
    has_run_state=False,
)


class VenvProvider(Provider):
    """Creates venvs, keeps their packages as the manifest says, deletes only its own."""

    name = "venv"
    kinds = ("venv",)
    traits = {"venv": VENV_TRAITS}
    # Creating a venv and installing into it is CPU-bound: four at a time per host.
    parallel_limit = 4

    def __init__(self) -> None:
        self._index_lock = threading.Lock()
        self._tools: dict[tuple[str, str], str | None] = {}

    # -- desired ------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """Comparable spec: path, python, packages (requirements merged), options."""
        venv: Venv = model
        path = venv.path
        is_remote = context.host != "local"
        if not is_remote and not path.startswith("~") and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(context.base_dir, path))
        lines: list[str] = []
        if venv.requirements:
            req_path = venv.requirements
            if not os.path.isabs(req_path):
                req_path = os.path.join(context.base_dir, req_path)
            from decl.providers.venv.requirements import read_requirements_file

            lines = read_requirements_file(req_path)
        pip = venv.pip
        if pip is None and venv.backend != "auto":
            pip = venv.backend == "venv"
        from decl.providers.venv.requirements import desired_packages

        packages = desired_packages(venv.packages, lines, f"venv.{name}")
        return {"path": path, "python": venv.python, "packages": packages,
                "system_site_packages": venv.system_site_packages, "pip": pip}

    # -- check --------------------------------------------------------------------------

    def _python(self, conn: Connection) -> str:
        if conn.is_local:
            return sys.executable
        return getattr(conn.config, "python", None) or "python3"

    def check(self, conn: Connection) -> Availability:
        """The host's Python (and uv, when present)."""
        python = self._python(conn)
        if conn.is_local:  # decl's own interpreter: no need to start another one
            import platform
            import venv  # noqa: F401 - proves the module is there

            uv = self._uv(conn)
            version = platform.python_version()
            detail = f"python {version}" + (f", uv at {uv}" if uv else ", no uv")
            return Availability(True, version, detail)
        code = "import sys, venv; print(sys.version.split()[0])"
        if conn.shell == "posix":
            # one round trip: where uv is (an empty line if nowhere), then the version
            result = conn.run(["sh", "-c", 'command -v uv || echo; exec "$1" -c "$2"', "sh",
                               python, code], timeout=60)
            lines = result.out.splitlines()
        else:
            result = conn.run([python, "-c", code], timeout=60)
            lines = [self._uv(conn) or "", *result.out.splitlines()]
        if not result.ok or len(lines) < 2:
            return Availability(False, None, f"{python} with the venv module is not usable: "
                                f"{(result.err or result.out).strip()[:200]}")
        uv = lines[0].strip() or None
        self._tools[(conn.host, "uv")] = uv
        version = lines[-1].strip()
        detail = f"python {version}" + (f", uv at {uv}" if uv else ", no uv")
        return Availability(True, version, detail)

    def _uv(self, conn: Connection) -> str | None:
        key = (conn.host, "uv")
        if key not in self._tools:
            self._tools[key] = conn.which("uv")
        return self._tools[key]

    # -- discover -----------------------------------------------------------------------

    def _index_file(self, project: str) -> str:
        return f"{INDEX_DIR}/{project}.json"

    def _probe(self, conn: Connection, project: str, paths: list[str],
               interpreters: list[str]) -> dict[str, Any]:
        request = {"paths": paths, "index": self._index_file(project),
                   "interpreters": interpreters}
        if conn.is_local:
            return survey_here(request)
        result = conn.run([self._python(conn), "-c", SCRIPT],
                          input=json.dumps(request).encode(), timeout=120)
        result.check(f"reading venvs on host {conn.host}")
        try:
            found: dict[str, Any] = json.loads(result.stdout)
            return found
        except ValueError as exc:
            raise ProviderError(f"venv discovery on host {conn.host} printed no JSON: {exc}") \
                from None

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """One script on the host reads every venv's config, marks and installed packages."""
        interpreters = [d.spec["python"] for d in wanted
                        if d.spec.get("python") and not _is_version(d.spec["python"])]
        data = self._probe(conn, project, [d.spec["path"] for d in wanted], interpreters)
        by_path = {item["path"]: item for item in data["venvs"]}
        discovery = Discovery()
        seen: set[str] = set()
        for item in wanted:
            info = by_path.get(item.spec["path"])
            if not info or not info["exists"]:
                continue
            seen.add(info["expanded"])
            if info["cfg"] is None:
                what = "a directory" if info.get("is_dir") else "a file"
                if item.adopt:
                    discovery.problems[item.address] = (
                        f"{item.spec['path']} on host {conn.host} is {what} that is not a "
                        "Python venv: it cannot be adopted, and decl will not touch it")
                    continue
                discovery.observed.append(Observed(
                    address=item.address, kind="venv", name=item.name, provider=self.name,
                    host=conn.host, state="present", spec={"path": item.spec["path"]},
                    marks=None, handle={"expanded": info["expanded"], "not_a_venv": True}))
                continue
            discovery.observed.append(
                self._observed(item.address, item.name, conn.host, info, data, item.spec))
        for entry in data.get("index", []):
            info = by_path.get(entry.get("path"))
            if not info or info["expanded"] in seen or info["cfg"] is None:
                continue
            marks = info.get("marks") or {}
            if marks.get("project") != project:
                continue
            address = marks.get("address", entry.get("address", "venv.?"))
            if any(d.address == address for d in wanted):
                continue
            seen.add(info["expanded"])
            discovery.observed.append(self._observed(address, address.split(".", 1)[-1],
                                                     conn.host, info, data, None))
        return discovery

    def _observed(self, address: str, name: str, host: str, info: dict[str, Any],
                  data: dict[str, Any], spec: dict[str, Any] | None) -> Observed:
        cfg = info["cfg"] or {}
        version = cfg.get("version_info") or cfg.get("version")
        wanted_packages = (spec or {}).get("packages", {})
        from decl.providers.venv.requirements import observed_packages, python_matches

        packages, versions = observed_packages(wanted_packages, info.get("dists", []),
                                               {**data.get("env", {}),
                                                **_marker_versions(version)})
        wanted_python = (spec or {}).get("python")
        python: str | None = version
        if wanted_python and _is_version(wanted_python):
            python = wanted_python if python_matches(wanted_python, version) else version
        elif wanted_python:
            real = data.get("interpreters", {}).get(wanted_python)
            executable = cfg.get("executable") or os.path.join(cfg.get("home", ""), "python3")
            same = real is not None and (os.path.realpath(executable) == real or
                                         os.path.dirname(real) == cfg.get("home"))
            python = wanted_python if same else executable
        marks_data = info.get("marks")
        marks = None
        if isinstance(marks_data, dict) and marks_data.get("project"):
            marks = Marks(str(marks_data["project"]), str(marks_data.get("address", "")),
                          str(marks_data.get("spec_hash", "")))
        observed_spec = {
            "path": (spec or {}).get("path", info["path"]),
            "python": python,
            "packages": packages,
            "system_site_packages": cfg.get("include-system-site-packages", "false").lower()
            == "true",
            "pip": "pip" in versions,
        }
        handle = {"expanded": info["expanded"], "python": version,
                  "interpreter": info.get("python"), "created_by": "uv" if "uv" in cfg
                  else "venv", "installed": versions}
        return Observed(address=address, kind="venv", name=name, provider=self.name, host=host,
                        state="present", spec=observed_spec, marks=marks, handle=handle)

    # -- apply --------------------------------------------------------------------------

    @staticmethod
    def _posix(op: Operation) -> Connection:
        if op.conn.shell != "posix":
            raise ProviderError(f"{op.address}: the venv provider needs a POSIX host")
        return op.conn

    def create(self, op: Operation) -> None:
        """Make the venv with venv or uv, mark it, install its packages."""
        self._create(op.project, op.need_desired(), self._posix(op), op.progress)

    def update(self, op: Operation) -> None:
        """Install and remove packages to match, then rewrite the marks."""
        desired, observed, conn = op.need_desired(), op.need_observed(), self._posix(op)
        self._sync_packages(desired, observed, conn, op.progress)
        self._write_marks(op.project, desired, observed.handle["expanded"], conn, "updated")

    def adopt(self, op: Operation) -> None:
        """Mark an existing venv as this project's, then update it."""
        desired, observed, conn = op.need_desired(), op.need_observed(), self._posix(op)
        self._write_marks(op.project, desired, observed.handle["expanded"], conn, "adopted")
        self._index(conn, desired.address, desired.spec["path"], add=True, project=op.project)
        self.update(op)

    def delete(self, op: Operation) -> None:
        """Remove the venv directory after checking the marks in it."""
        observed, conn = op.need_observed(), self._posix(op)
        path = observed.handle["expanded"]
        try:
            data = json.loads(conn.read_file(f"{path}/{MARK_FILE}"))
        except (FileNotFoundError, ValueError):
            data = {}
        found = Marks(str(data.get("project", "")), str(data.get("address", "")),
                      str(data.get("spec_hash", ""))) if isinstance(data, dict) and \
            data.get("project") else None
        ensure_owned(op, found, path)
        op.progress(f"deleting {path}", None)
        conn.run(["rm", "-rf", "--", path], timeout=600).check(f"{op.address}: deleting {path}")
        self._index(conn, op.address, observed.spec.get("path", path), add=False,
                    project=op.project)

    def _create(self, project: str, desired: Desired, conn: Connection,
                progress: Progress) -> None:
        model: Venv = desired.model
        path = conn.expand_user(desired.spec["path"])
        if conn.exists(path):
            raise ProviderError(f"{desired.address}: {path} appeared since the plan; "
                                "decl will not touch it")
        backend = model.backend
        uv = self._uv(conn)
        if backend == "auto":
            backend = "uv" if uv else "venv"
        if backend == "uv" and not uv:
            raise ProviderError(f"{desired.address}: backend uv, but uv is not installed on "
                                f"host {conn.host}")
        with_pip = desired.spec.get("pip")
        if with_pip is None:
            with_pip = backend == "venv"
        python = self._interpreter(desired, conn, backend)
        progress(f"creating the venv with {backend} ({python})", None)
        if backend == "venv":
            made = make_venv(conn, python, path, system_site_packages=model.system_site_packages,
                             with_pip=bool(with_pip), env=TOOL_ENV, what=desired.address)
            if made.why:
                progress(f"made with ensurepip ({made.why})", None)
        else:
            argv = [uv or "uv", "venv", "--python", python, "--no-config", "--quiet"]
            if with_pip:
                argv.append("--seed")
            argv += ["--system-site-packages"] if model.system_site_packages else []
            argv += self._index_args(model) if with_pip else []
            argv.append(path)
            conn.run(argv, env=TOOL_ENV, timeout=600).check(
                f"{desired.address}: creating {path} with {backend}")
        self._write_marks(project, desired, path, conn, "created")
        self._index(conn, desired.address, desired.spec["path"], add=True, project=project)
        packages = list(desired.spec["packages"].values())
        if packages:
            progress(f"installing {len(packages)} package(s)", None)
            self._install(desired, path, conn, packages, has_pip=bool(with_pip),
                          made_by_uv=backend == "uv")
            progress("packages installed", 1.0)

    def _interpreter(self, desired: Desired, conn: Connection, backend: str) -> str:
        wanted = desired.spec.get("python")
        if not wanted:
            return self._python(conn)
        if _is_path(wanted):
            return conn.expand_user(wanted)
        command = f"python{wanted}" if _is_version(wanted) else wanted
        found = conn.which(command)
        if backend == "uv":
            return found or wanted
        return check_no_such_python(found, command, desired.address, conn.host)

    def _index_args(self, model: Venv) -> list[str]:
        args: list[str] = []
        if model.index_url:
            args += ["--index-url", model.index_url]
        for url in model.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in model.find_links:
            args += ["--find-links", link]
        if model.no_index:
            args.append("--no-index")
        return args

    def _installer(self, venv_path: str, conn: Connection, has_pip: bool,
                   made_by_uv: bool) -> tuple[list[str], bool]:
        """argv prefix of `X install` / `X uninstall`, and whether it is uv."""
        python = f"{venv_path}/bin/python"
        uv = self._uv(conn)
        if uv and (made_by_uv or not has_pip):
            return [uv, "pip", "{verb}", "--python", python, "--no-config"], True
        if has_pip:
            return [*pip_argv(conn, python), "{verb}"], False
        return [self._python(conn), "-m", "pip", "--python", python, "{verb}"], False

    def _install(self, desired: Desired, venv_path: str, conn: Connection, packages: list[str],
                 *, has_pip: bool, made_by_uv: bool) -> None:
        prefix, is_uv = self._installer(venv_path, conn, has_pip, made_by_uv)
        argv = [part.replace("{verb}", "install") for part in prefix]
        argv += self._index_args(desired.model)
        argv += [] if is_uv else ["--quiet"]
        argv += packages
        conn.run(argv, env=TOOL_ENV, timeout=1800).check(
            f"{desired.address}: installing {', '.join(packages)}")

    def _sync_packages(self, desired: Desired, observed: Observed, conn: Connection,
                       progress: Progress) -> None:
        wanted: dict[str, str] = desired.spec["packages"]
        have: dict[str, str] = observed.spec.get("packages", {})
        install = [text for name, text in wanted.items() if have.get(name) != text]
        from decl.providers.venv.requirements import SEED_PACKAGES

        remove = sorted(name for name in have if name not in wanted and name not in SEED_PACKAGES)
        if "packages" in desired.ignore_changes:
            install, remove = [], []
        path = observed.handle["expanded"]
        has_pip = bool(observed.spec.get("pip"))
        made_by_uv = observed.handle.get("created_by") == "uv"
        if install:
            progress(f"installing {len(install)} package(s): {', '.join(install)}", None)
            self._install(desired, path, conn, install, has_pip=has_pip, made_by_uv=made_by_uv)
        if remove:
            progress(f"removing {len(remove)} package(s): {', '.join(remove)}", None)
            prefix, is_uv = self._installer(path, conn, has_pip, made_by_uv)
            argv = [part.replace("{verb}", "uninstall") for part in prefix]
            argv += [] if is_uv else ["-y", "--quiet"]
            conn.run(argv + remove, env=TOOL_ENV, timeout=600).check(
                f"{desired.address}: removing {', '.join(remove)}")

    def _write_marks(self, project: str, desired: Desired, path: str, conn: Connection,
                     event: str) -> None:
        marks = {"project": project, "address": desired.address,
                 "spec_hash": desired.spec_hash, "managed_by": f"decl {__version__}",
                 "event": event}
        conn.write_file(f"{path}/{MARK_FILE}", (json.dumps(marks, indent=1) + "\n").encode())

    def _index(self, conn: Connection, address: str, path: str, *, add: bool,
               project: str) -> None:
        """Remember (or forget) a venv path on its host, so orphans can be found later."""
        index_path = conn.expand_user(self._index_file(project))
        with self._index_lock:
            try:
                entries = json.loads(conn.read_file(index_path)).get("venvs", [])
            except (FileNotFoundError, ValueError):
                entries = []
            entries = [e for e in entries if e.get("address") != address]
            if add:
                entries.append({"address": address, "path": path})
            conn.makedirs(os.path.dirname(index_path))
            conn.write_file(index_path, json.dumps({"venvs": entries}, indent=1).encode())


def _is_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.startswith("~")


def _is_version(value: str) -> bool:
    """'3', '3.11', '3.11.7': a version; 'python3', 'pypy3': a command name."""
    return all(part.isdigit() for part in value.split("."))


def _marker_versions(version: str | None) -> dict[str, str]:
    if not version:
        return {}
    parts = version.split(".")
    return {"python_version": ".".join(parts[:2]), "python_full_version": version}
