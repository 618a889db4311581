"""Python virtual environments (stdlib venv or uv) and their packages, locally or over SSH."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable
from typing import Any

from decl import __version__
from decl.connections.base import Connection
from decl.connections.secret_env import carries_secret, private_file, run_with_env
from decl.core.resource import Desired, Marks, Observed
from decl.core.traits import KindTraits, Policy
from decl.errors import FieldError, ManifestError, ProviderError
from decl.files import state_dir
from decl.manifest.model import Venv
from decl.platforms import LINUX, current_system, venv_python
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportNotSupported,
    ImportScope,
    Operation,
    OwnedPath,
    Progress,
    Provider,
    ensure_owned,
)
from decl.providers.venv.install_progress import InstallProgress, canonical
from decl.providers.venv.making import (
    Made,
    check_no_such_python,
    install_wheels,
    local_pip_runner,
    make_venv,
    pip_argv,
    runner_pip_version,
)
from decl.providers.venv.probe import CHECKED_SCRIPT, FLAGS, MARK_FILE, SCRIPT, survey_here
from decl.providers.venv.sharing import (
    PIP_WITH_REPORT,
    REPORT_NAME,
    Resolutions,
    cache_dir,
    fetch_plan,
    version_tuple,
    wheels_from_report,
)

# decl.providers.venv.requirements (packaging) is imported where it is used: `decl
# validate` loads this module for the provider's hooks but never parses a requirement.

# On a remote host the index is in the remote user's default state dir; on this machine it
# follows DECL_STATE_DIR / XDG_STATE_HOME like every file decl keeps (decl.files.state_dir).
REMOTE_INDEX_DIR = "~/.local/state/decl/venvs"
# Why a venv was filled by pip rather than from the first one's wheels (`decl --debug`).
log = logging.getLogger("decl.venv")
TOOL_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1",
            "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}

VENV_TRAITS = KindTraits(
    policies={"path": Policy.REPLACE, "python": Policy.REPLACE, "packages": Policy.LIVE,
              "system_site_packages": Policy.REPLACE, "pip": Policy.REPLACE},
    default_policy=Policy.REPLACE,
    destroys_data="deletes the venv directory and everything in it",
    has_run_state=False,
    # decl.json is written right after `python -m venv` / `uv venv`: a venv killed while it
    # was being made has no mark yet, and the journal says it is decl's.
    half_made=True,
)


class VenvProvider(Provider):
    """Creates venvs, keeps their packages as the manifest says, deletes only its own."""

    name = "venv"
    kinds = ("venv",)
    traits = {"venv": VENV_TRAITS}
    # Creating a venv and installing into it is CPU-bound: four at a time per host.
    parallel_limit = 4

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """A venv owns its directory."""
        return [OwnedPath(spec["path"], ("path",))] if spec.get("path") else []

    def __init__(self) -> None:
        self._index_lock = threading.Lock()
        self._tools: dict[tuple[str, str], str | None] = {}
        self._resolutions = Resolutions()

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

            try:
                lines = read_requirements_file(req_path)
            except ManifestError as exc:
                raise FieldError(exc.message, "requirements") from None
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

    def check_and_discover(self, conn: Connection, project: str, wanted: list[Desired]
                           ) -> tuple[Availability, Discovery | None]:
        """On a POSIX host over SSH, the check and the discovery in one round trip: one
        interpreter reports its version, the venv module and uv (line 1), then the survey
        (line 2). Elsewhere check(), then discover()."""
        if conn.is_local or conn.shell != "posix":
            return super().check_and_discover(conn, project, wanted)
        python = self._python(conn)
        request = self._request(conn, project, [d.spec["path"] for d in wanted],
                                _interpreters(wanted))
        result = conn.run([python, *FLAGS, "-c", CHECKED_SCRIPT],
                          input=json.dumps(request).encode(), timeout=120)
        lines = result.out.splitlines()
        try:
            checked = json.loads(lines[0]) if lines else None
        except ValueError:
            checked = None
        if not isinstance(checked, dict) or not checked.get("venv"):
            problem = (result.err or result.out).strip()[:200]
            if isinstance(checked, dict):
                problem = f"python {checked.get('version')} has no venv module"
            return Availability(False, None, f"{python} with the venv module is not usable: "
                                f"{problem}"), None
        uv = checked.get("uv") or None
        self._tools[(conn.host, "uv")] = uv
        version = str(checked.get("version"))
        detail = f"python {version}" + (f", uv at {uv}" if uv else ", no uv")
        availability = Availability(True, version, detail)
        try:
            answer = json.loads(lines[1]) if len(lines) > 1 else {}
        except ValueError:
            answer = {}
        if "survey" not in answer:
            reason = answer.get("error") or (result.err.strip()[-500:] or
                                             f"exit status {result.returncode}, no survey printed")
            raise ProviderError(f"reading venvs on host {conn.host}: {reason}")
        return availability, self._discovery(conn, project, wanted, answer["survey"])

    def _uv(self, conn: Connection) -> str | None:
        key = (conn.host, "uv")
        if key not in self._tools:
            self._tools[key] = conn.which("uv")
        return self._tools[key]

    # -- discover -----------------------------------------------------------------------

    def _index_file(self, conn: Connection, project: str) -> str:
        if conn.is_local:
            return os.path.join(state_dir(), "venvs", f"{project}.json")
        return f"{REMOTE_INDEX_DIR}/{project}.json"

    def _request(self, conn: Connection, project: str, paths: list[str],
                 interpreters: list[str], scan: list[str] | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"paths": paths, "index": self._index_file(conn, project),
                                   "interpreters": interpreters}
        if scan:
            request["scan"] = scan
        return request

    def _probe(self, conn: Connection, project: str, paths: list[str],
               interpreters: list[str], scan: list[str] | None = None) -> dict[str, Any]:
        request = self._request(conn, project, paths, interpreters, scan)
        if conn.is_local:
            return survey_here(request)
        result = conn.run([self._python(conn), *FLAGS, "-c", SCRIPT],
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
        data = self._probe(conn, project, [d.spec["path"] for d in wanted],
                           _interpreters(wanted))
        return self._discovery(conn, project, wanted, data)

    def _discovery(self, conn: Connection, project: str, wanted: list[Desired],
                   data: dict[str, Any]) -> Discovery:
        """What the survey `data` says about the wanted venvs and the project's others."""
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
                    marks=None, handle={"expanded": info["expanded"], "not_a_venv": True,
                                        "not_adoptable": f"{what} that is not a Python venv"}))
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

    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """Venvs without decl's mark file in the directories given (and those directories
        themselves when they are venvs)."""
        if not scope.paths:
            raise ImportNotSupported("venvs can be anywhere: give the directories to look in "
                                     "with --path DIR")
        data = self._probe(conn, scope.project, [], [], scan=list(scope.paths))
        found = []
        for info in data["venvs"]:
            if info.get("cfg") is None or info.get("marks"):
                continue
            name = _venv_name(info["path"])
            observed = self._observed(f"venv.{name}", name, conn.host, info, data, None)
            requires = _required_names(info.get("dists", []))
            top = {key: text for key, text in observed.spec["packages"].items()
                   if key not in requires}
            found.append(Observed(
                address=observed.address, kind="venv", name=name, provider=self.name,
                host=conn.host, state="present", spec={**observed.spec, "packages": top},
                marks=None, handle=observed.handle))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """path, python, pip, the packages nothing else needs (pinned as installed)."""
        spec = observed.spec
        entry: dict[str, Any] = {"path": spec["path"]}
        version = re.match(r"\d+(?:\.\d+){0,2}", str(spec.get("python") or ""))
        if version:  # pyvenv.cfg of virtualenv says 3.11.7.final.0
            entry["python"] = version.group(0)
        entry["pip"] = bool(spec.get("pip"))
        if spec.get("system_site_packages"):
            entry["system_site_packages"] = True
        entry["packages"] = list(spec.get("packages", {}).values())
        return entry

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
                          str(marks_data.get("spec_hash", "")),
                          complete=marks_data.get("state", "complete") == "complete")
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
        # Marked incomplete while packages change: a failure or a kill half-way shows as
        # "the last apply did not finish", not as drift.
        self._write_marks(op.project, desired, observed.handle["expanded"], conn, "updating",
                          complete=False)
        self._sync_packages(desired, observed, conn, op.progress)
        self._write_marks(op.project, desired, observed.handle["expanded"], conn, "updated")

    def adopt(self, op: Operation) -> None:
        """Install and remove packages to match, then mark the venv as this project's.

        Packages first: an adopt whose install fails leaves the venv unmarked, still the
        user's (a later destroy must not take it for decl's)."""
        desired, observed, conn = op.need_desired(), op.need_observed(), self._posix(op)
        self._sync_packages(desired, observed, conn, op.progress)
        self._index(conn, desired.address, desired.spec["path"], add=True, project=op.project)
        self._write_marks(op.project, desired, observed.handle["expanded"], conn, "adopted")

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
        ensure_owned(op, found, path)  # an unmarked venv only when decl was making it
        if found is None and not conn.exists(path):
            return
        op.progress(f"deleting {path}", None)
        if conn.is_local:  # no `rm` on Windows
            try:
                shutil.rmtree(path)
            except OSError as exc:
                raise ProviderError(f"{op.address}: deleting {path}: {exc}") from None
        else:
            conn.run(["rm", "-rf", "--", path], timeout=600).check(
                f"{op.address}: deleting {path}")
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
        if backend == "uv" or (uv and not with_pip):  # uv will run: its options, checked
            uv_flags(model, desired.address)  # before anything is changed
        python = self._interpreter(desired, conn, backend)
        # The index first: a state file that cannot be written stops before any change.
        self._index(conn, desired.address, desired.spec["path"], add=True, project=project)
        progress(f"creating the venv with {backend} ({python})", None)
        made: Made | None = None
        if backend == "venv":
            made = self._make(desired, conn, python, path, bool(with_pip), progress)
        else:
            argv = [uv or "uv", "venv", "--python", python, "--no-config", "--quiet"]
            if with_pip:
                argv += ["--seed", *uv_flags(model, desired.address)]
            argv += ["--system-site-packages"] if model.system_site_packages else []
            argv.append(path)
            env = {**TOOL_ENV, **(self._index_env(model) if with_pip else {})}
            self._run_quietly(conn, argv, env, 600).check(
                f"{desired.address}: creating {path} with {backend}")
        # Marked at once, as incomplete: a venv whose packages never arrived (a failure, a
        # kill) is recognised as decl's unfinished work, not as drift or someone else's.
        self._write_marks(project, desired, path, conn, "created", complete=False)
        packages = list(desired.spec["packages"].values())
        if packages:
            progress(f"installing {len(packages)} package(s)", 0.0)
            if made is not None and made.how == "seeded" and with_pip:
                self._fill_seeded(project, desired, path, conn, packages, progress, python,
                                  made)
            else:
                self._install(desired, path, conn, packages, progress, has_pip=bool(with_pip),
                              made_by_uv=backend == "uv")
        self._write_marks(project, desired, path, conn, "created")

    def _make(self, desired: Desired, conn: Connection, python: str, path: str,
              with_pip: bool, progress: Progress) -> Made:
        """A stdlib venv at `path` (seeded, or by `python -m venv` when that fails)."""
        model: Venv = desired.model
        made = make_venv(conn, python, path, system_site_packages=model.system_site_packages,
                         with_pip=with_pip, env=TOOL_ENV, what=desired.address)
        if made.why:
            progress(f"made with ensurepip ({made.why})", None)
        return made

    def _fill_seeded(self, project: str, desired: Desired, path: str, conn: Connection,
                     packages: list[str], progress: Progress, python: str, made: Made) -> None:
        """Install packages into a venv fresh from the seeding: the first such venv of a
        kind by pip (with --report), the others of this run by unpacking the same wheels
        (decl/providers/venv/sharing.py); pip again whenever that cannot be done exactly."""
        model: Venv = desired.model
        runner = conn.is_local and local_pip_runner() is not None
        pip_version = runner_pip_version() if runner else made.seeded.get("pip")
        if version_tuple(pip_version) < PIP_WITH_REPORT or not made.python:
            self._install(desired, path, conn, packages, progress, has_pip=True,
                          made_by_uv=False, venv_exec=made.python)
            return
        key = (conn.host, python, model.system_site_packages, tuple(packages), model.index_url,
               tuple(model.extra_index_urls), tuple(model.find_links), model.no_index)
        shared, leader = self._resolutions.claim(key)
        if leader:
            report = f"{path}/{REPORT_NAME}"
            try:
                self._install(desired, path, conn, packages, progress, has_pip=True,
                              made_by_uv=False, venv_exec=made.python,
                              extra=["--report", report])
                try:
                    data = json.loads(conn.read_file(report))
                except (OSError, ValueError, ProviderError):
                    data = None
                wheels, why = wheels_from_report(data, {canonical(n) for n in made.seeded})
                if wheels is not None and any("fetch" in w for w in wheels):
                    why = self._fetch_wheels(desired, conn, made.python, wheels)
                    wheels = None if why else wheels
                if why:
                    log.debug("%s: the other new venvs like it run pip: %s", desired.address,
                              why)
                shared.settle(wheels, why, path)
            finally:
                shared.settle(None, "the first venv's pip install failed")
                try:
                    conn.remove(report)
                except (OSError, ProviderError):
                    pass
            return
        shared.done.wait()
        if shared.wheels is not None:
            answer = install_wheels(conn, python, path, made.python, shared.wheels,
                                    shared.model, TOOL_ENV)
            if answer.get("ok"):
                count = len(shared.wheels)
                progress(f"installed {count} package{'s' if count != 1 else ''}", 1.0)
                return
            log.debug("%s: pip fills it: %s", desired.address, answer.get("why"))
            if answer.get("touched"):  # half-filled: start again from an empty venv
                conn.run(["rm", "-rf", "--", path], timeout=600).check(
                    f"{desired.address}: removing the half-made {path}")
                made = self._make(desired, conn, python, path, True, progress)
                self._write_marks(project, desired, path, conn, "created", complete=False)
        self._install(desired, path, conn, packages, progress, has_pip=True, made_by_uv=False,
                      venv_exec=made.python)

    def _fetch_wheels(self, desired: Desired, conn: Connection, venv_exec: str,
                      wheels: list[dict[str, Any]]) -> str:
        """Bring the wheels pip took over HTTP(S) into the host's wheel cache, all in one
        `pip download --no-deps` (pip's own index settings, proxies, certificates and
        credentials); "" when they are there, else why not."""
        if conn.is_local:
            cache = cache_dir(os.path.expanduser("~"), dict(os.environ))
        else:
            cache = cache_dir(conn.expand_user("~"), {})
        missing = [(url, name, final) for url, name, final in fetch_plan(wheels, cache)
                   if not conn.exists(final)]
        if not missing:
            return ""
        import uuid

        staging = f"{cache}/.fetching-{uuid.uuid4().hex}"
        try:
            conn.makedirs(staging)
            argv = [*pip_argv(conn, venv_exec), "download", "--quiet", "--no-deps",
                    "--dest", staging, *[url for url, _, _ in missing]]
            env = {**TOOL_ENV, **self._index_env(desired.model)}
            if not self._run_quietly(conn, argv, env, 1800).ok:
                return "pip could not fetch the wheels again"
            for _, name, final in missing:
                conn.makedirs(os.path.dirname(final))
                if not conn.run(["mv", "-f", "--", f"{staging}/{name}", final],
                                timeout=60).ok:
                    return f"{name} could not be kept in {cache}"
        except (OSError, ProviderError) as exc:  # the other venvs run pip themselves
            return f"the wheel cache {cache} is not usable: {exc}"
        finally:
            conn.run(["rm", "-rf", "--", staging], timeout=600)
        return ""

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

    def _index_env(self, model: Venv) -> dict[str, str]:
        """Index settings for pip and uv as environment variables, never argv: an index URL
        may carry a password, and a command line is readable by every user of the host.

        pip splits PIP_FIND_LINKS on white space, uv splits UV_FIND_LINKS on commas; uv has
        no variable for `--no-index` (uv_flags adds the option)."""
        env: dict[str, str] = {}
        if model.index_url:
            env["PIP_INDEX_URL"] = env["UV_INDEX_URL"] = model.index_url
        if model.extra_index_urls:
            env["PIP_EXTRA_INDEX_URL"] = env["UV_EXTRA_INDEX_URL"] = " ".join(
                model.extra_index_urls)
        if model.find_links:
            env["PIP_FIND_LINKS"] = " ".join(model.find_links)
            env["UV_FIND_LINKS"] = ",".join(model.find_links)
        if model.no_index:
            env["PIP_NO_INDEX"] = "1"
        return env

    def _run_quietly(self, conn: Connection, argv: list[str], env: dict[str, str],
                     timeout: float, on_line: Callable[[str], None] | None = None) -> Any:
        """Run a tool with `env`, the index settings never on a remote command line
        (decl.connections.secret_env). With `on_line`, each output line is handed to it as
        it comes (progress)."""
        return run_with_env(conn, argv, env, timeout=timeout, on_line=on_line,
                            private=[k for k in env if k not in TOOL_ENV])

    def _installer(self, venv_path: str, conn: Connection, has_pip: bool,
                   made_by_uv: bool, venv_exec: str | None = None) -> tuple[list[str], bool]:
        """argv prefix of `X install` / `X uninstall`, and whether it is uv. `venv_exec`:
        the venv's interpreter as its own pip script names it, when known (pip writes that
        path into the scripts it makes, as `VENV/bin/pip install` would)."""
        # A remote host is POSIX (the provider refuses others); this machine may be Windows.
        system = current_system() if conn.is_local else LINUX
        python = venv_exec or venv_python(venv_path, system)
        uv = self._uv(conn)
        if uv and (made_by_uv or not has_pip):
            return [uv, "pip", "{verb}", "--python", python, "--no-config"], True
        if has_pip:
            return [*pip_argv(conn, python), "{verb}"], False
        return [self._python(conn), "-m", "pip", "--python", python, "{verb}"], False

    def _install(self, desired: Desired, venv_path: str, conn: Connection, packages: list[str],
                 progress: Progress, *, has_pip: bool, made_by_uv: bool,
                 venv_exec: str | None = None, extra: list[str] | None = None) -> None:
        """Install packages, reporting how far the installer is in packages."""
        prefix, is_uv = self._installer(venv_path, conn, has_pip, made_by_uv, venv_exec)
        argv = [part.replace("{verb}", "install") for part in prefix]
        # A requirement that carries a secret (a URL with a token) goes in a 0600
        # requirements file, never on the command line.
        hidden = [p for p in packages if carries_secret(p)]
        argv += [*(extra or []), *(uv_flags(desired.model, desired.address) if is_uv else []),
                 *(p for p in packages if p not in hidden)]
        reading = InstallProgress(len(packages), uv=is_uv)

        def on_line(line: str) -> None:
            news = reading.line(line)
            if news is not None:
                progress(*news)

        env = {**TOOL_ENV, **self._index_env(desired.model)}
        with contextlib.ExitStack() as stack:
            if hidden:
                listing = "".join(f"{p}\n" for p in hidden).encode()
                argv += ["-r", stack.enter_context(private_file(conn, listing, ".txt"))]
            self._run_quietly(conn, argv, env, 1800, on_line).check(
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
            progress(f"installing {len(install)} package(s): {', '.join(install)}", 0.0)
            self._install(desired, path, conn, install, progress, has_pip=has_pip,
                          made_by_uv=made_by_uv)
        if remove:
            progress(f"removing {len(remove)} package(s): {', '.join(remove)}", None)
            prefix, is_uv = self._installer(path, conn, has_pip, made_by_uv)
            argv = [part.replace("{verb}", "uninstall") for part in prefix]
            argv += [] if is_uv else ["-y", "--quiet"]
            conn.run(argv + remove, env=TOOL_ENV, timeout=600).check(
                f"{desired.address}: removing {', '.join(remove)}")

    def _write_marks(self, project: str, desired: Desired, path: str, conn: Connection,
                     event: str, *, complete: bool = True) -> None:
        marks = {"project": project, "address": desired.address,
                 "spec_hash": desired.spec_hash, "managed_by": f"decl {__version__}",
                 "event": event, "state": "complete" if complete else "incomplete"}
        conn.write_file(f"{path}/{MARK_FILE}", (json.dumps(marks, indent=1) + "\n").encode())

    def _index(self, conn: Connection, address: str, path: str, *, add: bool,
               project: str) -> None:
        """Remember (or forget) a venv path on its host, so orphans can be found later."""
        index_path = conn.expand_user(self._index_file(conn, project))
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


def _interpreters(wanted: list[Desired]) -> list[str]:
    """The `python:` values given as a path or a command name (the survey resolves them)."""
    return [d.spec["python"] for d in wanted
            if d.spec.get("python") and not _is_version(d.spec["python"])]


def uv_flags(model: Venv, address: str) -> list[str]:
    """Index options uv takes on its command line only: `--no-index` (uv reads no variable
    for it, and UV_NO_INDEX is silently ignored). A find_links entry holding a comma cannot
    go through UV_FIND_LINKS, which uv splits on commas: refused before uv runs."""
    with_comma = [n for n, link in enumerate(model.find_links, 1) if "," in link]
    if with_comma:  # the entry is not shown: a URL may carry a token
        raise ProviderError(f"{address}: find_links entry {with_comma[0]} holds a comma, and "
                            "uv splits find_links on commas; rename it or use backend: venv "
                            "(nothing was changed)")
    return ["--no-index"] if model.no_index else []


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


def _venv_name(path: str) -> str:
    """A manifest name from a venv's directory: its last part, made fit for a name."""
    base = path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", base).lstrip("._-")[:63]
    return name or "venv"


def _required_names(dists: list[dict[str, Any]]) -> set[str]:
    """Canonical names of the packages some installed package requires."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    names: set[str] = set()
    for dist in dists:
        for text in dist.get("requires", []):
            try:
                names.add(canonicalize_name(Requirement(text).name))
            except InvalidRequirement:
                continue
    return names
