"""The WSL provider: WSL2 (and WSL1) distros on a Windows host, driven through wsl.exe.

Observed state comes from the backend: name, state, version and the default distro from
`wsl.exe -l -v`; the folder a distro lives in (`location`) from the WSL service's own
registry (HKCU:\\...\\Lxss\\{GUID}\\BasePath, read through PowerShell); the default user
from /etc/wsl.conf inside it. Which distribution or tarball a distro was made from
(`source`) is the one thing no part of WSL reports: it stays in the marks file.

Ownership marks live in /etc/decl.json inside the distro (written as root). Reading them
starts a stopped distro, so discovery terminates it again afterwards.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from decl.connections.base import Connection
from decl.core.plan import Action, Change
from decl.core.resource import PENDING_SPEC_HASH, Desired, Marks, Observed, split_address
from decl.core.traits import KindTraits, Policy
from decl.errors import ProviderError
from decl.providers.base import (
    Availability,
    DesiredContext,
    Discovery,
    ImportScope,
    Operation,
    OwnedName,
    OwnedPath,
    Progress,
    Provider,
    ensure_owned,
)
from decl.providers.hyperv import powershell as ps
from decl.providers.wsl import inside
from decl.providers.wsl.cli import PROGRAM, WslCli
from decl.providers.wsl.output import (
    TRANSIENT_STATES,
    ListedDistro,
    decode,
    parse_error,
    parse_version,
)

PENDING_HASH = PENDING_SPEC_HASH
LXSS = "HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Lxss"
TRAITS = KindTraits(
    policies={
        "source": Policy.REPLACE,
        "location": Policy.REPLACE,
        "version": Policy.RESTART,
        "default": Policy.LIVE,
        "user": Policy.RESTART,
    },
    default_policy=Policy.REPLACE,
    destroys_data="the distro's whole Linux file system",
    has_run_state=True,
    # The marks file is written inside the distro after `wsl --import`/`--install`.
    half_made=True,
)


def windows_join(directory: str, name: str) -> str:
    """DIR\\NAME for a Windows directory (drive or UNC), without doubling the backslash."""
    return directory if directory.endswith("\\") and not name else \
        directory.rstrip("\\/") + "\\" + name


class WslProvider(Provider):
    """`wsl:` resources through wsl.exe, locally on Windows or over SSH (shell: powershell)."""

    name: ClassVar[str] = "wsl"
    kinds: ClassVar[tuple[str, ...]] = ("wsl",)
    traits: ClassVar[dict[str, KindTraits]] = {"wsl": TRAITS}
    # wsl.exe serialises registration work in its service; one change at a time per host.
    parallel_limit: ClassVar[int | None] = 1

    def owned_paths(self, kind: str, name: str, model: Any, spec: dict[str, Any],
                    context: DesiredContext) -> list[OwnedPath]:
        """A distribution owns its install folder (`location`), a Windows path."""
        location = spec.get("location")
        return [OwnedPath(location, ("location",), windows=True)] if location else []

    def owned_name(self, kind: str, name: str, model: Any, spec: dict[str, Any]) -> OwnedName:
        """WSL distribution names ignore case."""
        return OwnedName(name.lower())

    def __init__(self) -> None:
        self._exe: dict[str, str | None] = {}  # PowerShell found per host: a cache

    # -- desired -------------------------------------------------------------------------

    def spec(self, kind: str, name: str, model: Any, context: DesiredContext) -> dict[str, Any]:
        """source, location, version, default (True or unmanaged), user."""
        source = ({"distribution": model.source.distribution}
                  if model.source.distribution is not None
                  else {"tarball": model.source.tarball})
        return {
            "source": source,
            "location": model.location,
            "version": model.version,
            "default": True if model.default else None,
            "user": model.user,
        }

    # -- check and discover --------------------------------------------------------------

    def check(self, conn: Connection) -> Availability:
        """wsl.exe on the PATH, and its version (`wsl.exe --version`)."""
        if conn.which(PROGRAM) is None:
            return Availability(False, detail=f"{PROGRAM} was not found on host {conn.host} "
                                "(WSL is a Windows feature: install it with `wsl --install`)")
        out = WslCli(conn).run(["--version"])
        version = parse_version(out.text) if out.ok else None
        return Availability(True, version=version,
                            detail="" if version else "an old inbox wsl.exe (no --version)")

    def discover(self, conn: Connection, project: str, wanted: list[Desired]) -> Discovery:
        """`wsl -l -v`, then the marks file and wsl.conf of every distro."""
        cli = WslCli(conn)
        found = Discovery()
        wanted_by_name = {d.name.lower(): d for d in wanted}
        listed = cli.list_verbose()
        locations = self._locations(conn) if listed else {}
        for distro in listed:
            desired = wanted_by_name.get(distro.name.lower())
            if distro.state in TRANSIENT_STATES:
                if desired is not None:
                    found.problems[desired.address] = (
                        f"distro {distro.name!r} is {distro.state} on host {conn.host}; "
                        "wait until wsl.exe has finished, then plan again")
                continue
            try:
                marks, created, conf = self._read_inside(cli, distro)
            except ProviderError as exc:
                if desired is not None:
                    found.problems[desired.address] = str(exc)
                continue
            observed = self._observed(conn, distro, marks, created, conf, desired, project,
                                      locations)
            if observed is not None:
                found.observed.append(observed)
        return found

    def _locations(self, conn: Connection) -> dict[str, str] | None:
        """Each distro's folder (lower-case name -> BasePath) from the WSL service's registry;
        None when PowerShell is not there or the registry cannot be read."""
        if conn.host not in self._exe:
            self._exe[conn.host] = next((exe for exe in ("powershell.exe", "pwsh")
                                         if conn.which(exe)), None)
        exe = self._exe[conn.host]
        if exe is None:
            return None
        result = ps.run(conn, exe, ps.script(
            ps.command("Get-ChildItem", Path=LXSS)
            + " | Get-ItemProperty | Select-Object DistributionName, BasePath | ConvertTo-Json"),
            timeout=120)
        if not result.ok:
            return None
        try:
            keys = ps.parse_json_list(result.out)
        except ValueError:
            return None
        return {str(k["DistributionName"]).lower(): str(k.get("BasePath") or "")
                for k in keys if k.get("DistributionName")}
    def inventory(self, conn: Connection, scope: ImportScope) -> list[Observed]:
        """Distros without decl's marks file (`wsl -l -v`, then a look inside each)."""
        cli = WslCli(conn)
        found = []
        for distro in cli.list_verbose():
            if distro.state in TRANSIENT_STATES:
                continue
            marks, _created, conf = self._read_inside(cli, distro)
            if marks is not None:
                continue
            found.append(Observed(
                address=f"wsl.{distro.name}", kind="wsl", name=distro.name, provider=self.name,
                host=conn.host, state=distro.state,
                spec={"source": None, "location": None, "version": distro.version,
                      "default": distro.default, "user": inside.default_user(conf)},
                marks=None, handle={"distro": distro.name, "conf": conf}))
        return found

    def to_manifest(self, observed: Observed) -> dict[str, Any]:
        """How a distro was made cannot be read back: the entry names its distribution as
        its own name (it is only used to make it again); version, default, user and state
        are read from wsl.exe and the distro's wsl.conf."""
        spec = observed.spec
        entry: dict[str, Any] = {"source": {"distribution": observed.name},
                                 "version": spec["version"]}
        if spec.get("default"):
            entry["default"] = True
        if spec.get("user"):
            entry["user"] = spec["user"]
        if observed.state == "running":
            entry["state"] = "running"
        return entry

    def _read_inside(self, cli: WslCli, distro: ListedDistro
                     ) -> tuple[Marks | None, dict[str, Any], str | None]:
        """Marks, creation record and wsl.conf of a distro; a stopped one is stopped again."""
        result = cli.exec(distro.name, ["sh", "-c", inside.READ_SCRIPT, "sh", inside.MARKS_PATH,
                                        inside.WSL_CONF])
        if distro.state == "stopped":
            cli.run(["--terminate", distro.name])
        if result.returncode != 0:
            detail = parse_error(decode(result.stdout)) if result.stdout else result.err.strip()
            raise ProviderError(f"could not read distro {distro.name!r} (exit code "
                                f"{result.returncode}): {detail}")
        marks_text, conf = inside.split_read_output(result.stdout, 2)
        marks, created = inside.parse_marks(marks_text)
        return marks, created, conf

    def _observed(self, conn: Connection, distro: ListedDistro, marks: Marks | None,
                  created: dict[str, Any], conf: str | None, desired: Desired | None,
                  project: str, locations: dict[str, str] | None) -> Observed | None:
        mine = marks is not None and marks.project == project
        if desired is not None and marks is not None and mine and \
                marks.address not in ("", desired.address):
            desired = None  # ours, but made for another address: report it as that one
        if desired is None and not mine:
            return None
        address = desired.address if desired is not None else marks.address  # type: ignore
        if desired is not None and not mine:
            # How an unmarked distro was made cannot be observed: it is taken as wanted.
            created = {"source": desired.spec.get("source"),
                       "location": desired.spec.get("location")}
        location = created.get("location")
        if locations is not None:
            location = observed_location(locations.get(distro.name.lower()),
                                         desired.spec.get("location") if desired else None)
        _, name = split_address(address)
        return Observed(
            address=address, kind="wsl", name=name or distro.name, provider=self.name,
            host=conn.host, state=distro.state,
            spec={
                "source": created.get("source"),
                "location": location,
                "version": distro.version,
                "default": distro.default,
                "user": inside.default_user(conf),
            },
            marks=marks,
            handle={"distro": distro.name, "conf": conf, "created": created},
        )

    # -- apply ---------------------------------------------------------------------------

    def create(self, op: Operation) -> None:
        """Install or import the distro, mark it, set version, default and user."""
        self._create(WslCli(op.conn), op.need_desired(), op.project, op.progress)

    def update(self, op: Operation) -> None:
        """Version, default distro, default user; the marks rewritten."""
        self._update(WslCli(op.conn), op, op.need_desired(), op.observed)

    def delete(self, op: Operation) -> None:
        """Export (lifecycle.backup_dir), then unregister, after checking the marks."""
        cli = WslCli(op.conn)
        name = _distro_name(op.change, op.observed)
        result = cli.exec(name, ["sh", "-c", inside.READ_SCRIPT, "sh", inside.MARKS_PATH])
        marks = None
        if result.returncode == 0:
            marks, _ = inside.parse_marks(inside.split_read_output(result.stdout, 1)[0])
        ensure_owned(op, marks, f"distro {name!r}")
        backup_dir = None
        if op.desired is not None and op.desired.model is not None:
            backup_dir = op.desired.model.lifecycle.backup_dir
        if backup_dir:
            target = windows_join(backup_dir, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.tar")
            op.progress(f"exporting {name} to {target} before unregistering it", None)
            self._stop(cli, name, op.progress)
            cli.manage(["--export", name, target], f"{op.address}: backup of {name!r}")
        op.progress(f"unregistering {name}", None)
        cli.manage(["--unregister", name], f"{op.address}: unregistering {name!r}")

    def start(self, op: Operation) -> None:
        """Start the distro (a process that keeps it running)."""
        self._start(WslCli(op.conn), _distro_name(op.change, op.observed), op.progress)

    def stop(self, op: Operation) -> None:
        """wsl --terminate."""
        self._stop(WslCli(op.conn), _distro_name(op.change, op.observed), op.progress)

    def _create(self, cli: WslCli, desired: Desired, project: str,
                progress: Progress) -> None:
        name = desired.name
        what = f"{desired.address}: creating distro {name!r}"
        spec = desired.spec
        version = str(spec["version"])
        source = spec["source"]
        if "tarball" in source:
            progress(f"importing {source['tarball']} into {spec['location']}", None)
            cli.manage(["--import", name, spec["location"], source["tarball"],
                        "--version", version], what)
        else:
            progress(f"installing {source['distribution']}", None)
            args = ["--install", "--distribution", source["distribution"], "--name", name]
            if spec.get("location"):
                args += ["--location", spec["location"]]
            args += ["--version", version, "--no-launch"]
            cli.manage(args, what)
        listed = {d.name.lower(): d for d in cli.list_verbose()}
        distro = listed.get(name.lower())
        if distro is None:
            raise ProviderError(
                f"{what}: wsl.exe reported success but no distro named {name!r} is registered "
                "(a wsl.exe too old for --install --name? run `wsl --update`)")
        created = {"source": source, "location": spec.get("location")}
        # Marked first (with a pending hash), so that a failure below leaves a distro this
        # project owns, and the next plan shows what is left to do.
        self._write_marks(cli, desired, project, created, PENDING_HASH)
        if distro.version != spec["version"]:
            self._set_version(cli, desired, progress)
        if spec.get("default") and not distro.default:
            self._set_default(cli, desired, progress)
        if spec.get("user"):
            self._set_user(cli, desired, None, progress)
        self._write_marks(cli, desired, project, created, desired.spec_hash)
        self._settle(cli, name, desired.state, progress)

    def _update(self, cli: WslCli, op: Operation, desired: Desired, observed: Observed | None
                ) -> None:
        progress = op.progress
        name = observed.handle.get("distro", desired.name) if observed else desired.name
        fields = op.changed_fields()
        if "version" in fields or op.action is Action.UPDATE_RESTART:
            self._stop(cli, name, progress)
        if "version" in fields:
            self._set_version(cli, desired, progress, name)
        if "default" in fields and desired.spec.get("default"):
            self._set_default(cli, desired, progress, name)
        if "user" in fields and desired.spec.get("user"):
            conf = observed.handle.get("conf") if observed else None
            self._set_user(cli, desired, conf, progress, name)
        created = (observed.handle.get("created") if observed else None) or {
            "source": desired.spec["source"], "location": desired.spec.get("location")}
        self._write_marks(cli, desired, op.project, created, desired.spec_hash, name)
        self._settle(cli, name, desired.state, progress)

    # -- steps ---------------------------------------------------------------------------

    def _write_marks(self, cli: WslCli, desired: Desired, project: str,
                     created: dict[str, Any], spec_hash: str, name: str | None = None) -> None:
        marks = Marks(project=project, address=desired.address, spec_hash=spec_hash)
        cli.exec_checked(name or desired.name,
                         ["sh", "-c", inside.WRITE_SCRIPT, "sh", inside.MARKS_PATH],
                         f"{desired.address}: writing the ownership marks",
                         input=inside.marks_document(marks, created))

    def _set_version(self, cli: WslCli, desired: Desired, progress: Progress,
                     name: str | None = None) -> None:
        name = name or desired.name
        version = str(desired.spec["version"])
        progress(f"converting {name} to WSL {version}", None)
        cli.manage(["--set-version", name, version], f"{desired.address}: converting {name!r}")

    def _set_default(self, cli: WslCli, desired: Desired, progress: Progress,
                     name: str | None = None) -> None:
        name = name or desired.name
        progress(f"making {name} the default distro", None)
        cli.manage(["--set-default", name], f"{desired.address}: making {name!r} the default")

    def _set_user(self, cli: WslCli, desired: Desired, conf: str | None, progress: Progress,
                  name: str | None = None) -> None:
        name = name or desired.name
        user = desired.spec["user"]
        progress(f"default user {user} in /etc/wsl.conf", None)
        if conf is None:
            data = cli.exec_checked(name, ["sh", "-c", inside.READ_SCRIPT, "sh",
                                           inside.WSL_CONF],
                                    f"{desired.address}: reading /etc/wsl.conf")
            conf = inside.split_read_output(data, 1)[0]
        cli.exec_checked(name, ["sh", "-c", inside.WRITE_SCRIPT, "sh", inside.WSL_CONF],
                         f"{desired.address}: writing /etc/wsl.conf",
                         input=inside.with_default_user(conf, user).encode())

    def _start(self, cli: WslCli, name: str, progress: Progress) -> None:
        progress(f"starting {name}", None)
        cli.exec_checked(name, ["sh", "-c", inside.KEEP_ALIVE_SCRIPT], f"starting {name!r}")

    def _stop(self, cli: WslCli, name: str, progress: Progress) -> None:
        progress(f"terminating {name}", None)
        cli.manage(["--terminate", name], f"terminating {name!r}")

    def _settle(self, cli: WslCli, name: str, state: str, progress: Progress) -> None:
        """Leave the distro in the wanted run state (writing files started it)."""
        if state == "running":
            self._start(cli, name, progress)
        else:
            self._stop(cli, name, progress)


def observed_location(base_path: str | None, wanted: str | None) -> str | None:
    """A distro's folder as the registry has it (without a \\\\?\\ prefix), in the manifest's
    spelling when it names the same folder (Windows paths compare without case)."""
    if not base_path:
        return None
    path = base_path[4:] if base_path.startswith("\\\\?\\") else base_path
    if wanted and path.rstrip("\\").lower() == wanted.rstrip("\\").lower():
        return wanted
    return path


def _distro_name(change: Change, observed: Observed | None) -> str:
    if observed is not None and observed.handle.get("distro"):
        return str(observed.handle["distro"])
    return change.name

