"""The command line: parse arguments, call the pipeline, render. No logic of its own."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from decl import __version__

MANIFEST_HELP = "Manifest file (default ./decl.yaml)."


def _manifest_options(func: Any) -> Any:
    func = click.option("--secret-file", "secret_files", multiple=True, metavar="FILE",
                        help="KEY=VALUE file that secret() reads (before the environment).")(func)
    func = click.option("--var-file", "var_files", multiple=True, metavar="FILE",
                        help="YAML file of variables.")(func)
    func = click.option("--var", "var_assignments", multiple=True, metavar="NAME=VALUE",
                        help="Set a variable (overrides vars: and --var-file).")(func)
    func = click.option("-f", "--file", "file", default="decl.yaml", show_default=True,
                        metavar="FILE", help=MANIFEST_HELP)(func)
    return func


def _discovery_parallelism(ctx: Any, param: Any, value: int) -> int:
    from decl.engine.snapshot import set_discovery_parallelism

    set_discovery_parallelism(value)
    return value


def _plan_options(func: Any) -> Any:
    func = click.option("--discovery-parallelism", default=16, show_default=True,
                        type=click.IntRange(1, 256), expose_value=False,
                        callback=_discovery_parallelism,
                        help="Hosts (and providers) discovered at once; each opens its "
                        "connection when its turn comes.")(func)
    func = click.option("--prune", is_flag=True,
                        help="Also delete this project's objects no longer in the manifest.")(func)
    func = click.option("--target", "targets", multiple=True, metavar="ADDR",
                        help="Only this resource (KIND.NAME) and what it depends on; "
                        "repeatable.")(func)
    return func


def _inputs(file: str, var_assignments: Any, var_files: Any, secret_files: Any) -> Any:
    from decl.engine.session import Inputs

    return Inputs(file=file, var_assignments=list(var_assignments), var_files=list(var_files),
                  secret_files=list(secret_files))


def _out(markup_lines: list[str], stderr: bool = False) -> None:
    from decl.render.console import make_console

    console = make_console(stderr=stderr, color=_color())
    for line in markup_lines:
        console.print(line)


def _color() -> bool | None:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("no_color"):
        return False
    return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="decl")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--no-color", is_flag=True, help="No colour (also: NO_COLOR=1).")
def cli(debug: bool, no_color: bool) -> None:
    """decl: declare your VMs, containers, WSL distros and venvs; plan; apply."""


@cli.command()
@_manifest_options
def validate(file: str, var_assignments: Any, var_files: Any, secret_files: Any) -> int:
    """Check a manifest without touching any machine."""
    # load and the providers' checks only: no session, connections, planner or state
    from decl.engine.validate import check_manifest
    from decl.manifest.load import load
    from decl.providers.registry import Registry

    loaded = load(file, var_assignments=list(var_assignments), var_files=list(var_files),
                  secret_files=list(secret_files), require_secrets=False)
    check_manifest(loaded, Registry())
    count = len(loaded.manifest.resources())
    click.echo(f"{file}: valid (project {loaded.manifest.project}, {count} resource"
               f"{'' if count == 1 else 's'})")
    return 0


@cli.command()
@_manifest_options
@_plan_options
@click.option("--out", "out_file", metavar="FILE", help="Save the plan for `decl apply FILE`.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there are changes, 0 when none, 1 on error.")
@click.option("--destroy", is_flag=True, help="Plan the deletion of everything instead.")
@click.option("-v", "--verbose", is_flag=True, help="Also list unchanged resources.")
def plan(file: str, var_assignments: Any, var_files: Any, secret_files: Any, targets: Any,
         prune: bool, out_file: str | None, as_json: bool, detailed_exitcode: bool,
         destroy: bool, verbose: bool) -> int:
    """Show what apply would change, field by field."""
    from decl.core.planner import PlanOptions
    from decl.engine.session import open_session, save_plan

    session = open_session(_inputs(file, var_assignments, var_files, secret_files))
    try:
        options = PlanOptions(prune=prune, destroy=destroy, targets=tuple(targets))
        result = session.plan(options)
    finally:
        session.close()
    if out_file:
        save_plan(out_file, session, result, options)
    if as_json:
        click.echo(session.redactor(json.dumps(result.to_json(), indent=2, default=str)))
    else:
        from decl.render.text import plan_text

        _out([session.redactor(line) for line in plan_text(result, verbose=verbose)])
        if out_file:
            click.echo(f"\nSaved the plan to {out_file}: apply it with `decl apply {out_file}`.")
    if result.errors or any(p.kind == "host" for p in result.unavailable):
        return 1  # a host that cannot be reached is an error, not a pending change
    if detailed_exitcode and (result.has_changes or result.unavailable):
        return 2
    return 0


def _confirm(auto_approve: bool, question: str) -> None:
    from decl.errors import DeclError

    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise DeclError("refusing to go on without -y/--auto-approve: stdin is not a terminal; "
                        "nothing was changed")
    answer = click.prompt(f"{question} Only 'yes' will be accepted", default="",
                          show_default=False)
    if answer.strip() != "yes":
        raise DeclError("cancelled: nothing was changed")


def _run_apply(session: Any, options: Any, *, auto_approve: bool, as_json: bool,
               parallelism: int, saved: dict[str, Any] | None, verb: str) -> int:
    """Hand the apply run to the engine; show the plan, ask, render the outcome."""
    from decl.engine.apply_run import run_apply
    from decl.render.text import plan_text, summary_text

    def show_plan(result: Any) -> None:
        if not as_json:
            _out([session.redactor(line) for line in plan_text(result)])

    done = run_apply(session, options, verb=verb, parallelism=parallelism, saved=saved,
                     show_plan=show_plan, confirm=lambda q: _confirm(auto_approve, q),
                     reporter=None if as_json else _reporter())
    summary = done.summary
    if as_json:
        outcomes = [] if summary is None else [
            {"address": o.change.address, "action": o.change.action.value, "status": o.status,
             "message": o.message, "seconds": round(o.seconds, 3)} for o in summary.outcomes]
        document = {"format_version": 1, "plan": done.plan.to_json(), "outcomes": outcomes,
                    "summary": _counts_json(summary)}
        click.echo(session.redactor(json.dumps(document, indent=2, default=str)))
    elif summary is not None:
        _out(summary_text(summary))
    return 0 if done.ok else 1


def _counts_json(summary: Any) -> dict[str, Any]:
    if summary is None:
        return {"done": 0, "failed": 0, "skipped": 0, "interrupted": False}
    return {"done": len(summary.by_status("done")), "failed": len(summary.by_status("failed")),
            "skipped": len(summary.by_status("skipped")), "interrupted": summary.interrupted}


def _reporter() -> Any:
    import threading
    import time

    from decl.render.console import make_console

    console = make_console(color=_color())
    guard = threading.Lock()
    last: dict[str, float] = {}

    def report(event: str, change: Any, message: str, fraction: float | None) -> None:
        with guard:
            if event == "start":
                console.print(f"{change.address}: {change.action.value}...")
            elif event == "progress":
                now = time.monotonic()
                if now - last.get(change.address, 0) < 0.5 and fraction not in (None, 1.0):
                    return
                last[change.address] = now
                pct = f" {fraction * 100:.0f}%" if fraction is not None else ""
                console.print(f"{change.address}: {message}{pct}", markup=False)
            elif event == "done":
                console.print(f"{change.address}: [green]done[/]")
            elif event == "failed":
                console.print(f"{change.address}: [red]failed[/]")
            elif event == "interrupt":
                console.print(f"[yellow]{message}[/]")

    return report


@cli.command()
@click.argument("planfile", required=False)
@_manifest_options
@_plan_options
@click.option("-y", "--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and results as JSON.")
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 64),
              help="Changes carried out at once.")
def apply(planfile: str | None, file: str, var_assignments: Any, var_files: Any,
          secret_files: Any, targets: Any, prune: bool, auto_approve: bool, as_json: bool,
          parallelism: int) -> int:
    """Make the machines match the manifest (or carry out a saved plan)."""
    from decl.core.planner import PlanOptions
    from decl.engine.session import inputs_from_plan, open_session, read_plan_file

    saved = None
    if planfile:
        saved = read_plan_file(planfile)
        inputs, options = inputs_from_plan(saved)
    else:
        inputs = _inputs(file, var_assignments, var_files, secret_files)
        options = PlanOptions(prune=prune, targets=tuple(targets))
    session = open_session(inputs)
    return _run_apply(session, options, auto_approve=auto_approve, as_json=as_json,
                      parallelism=parallelism, saved=saved, verb="apply")


@cli.command()
@_manifest_options
@_plan_options
@click.option("-y", "--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and results as JSON.")
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 64))
def destroy(file: str, var_assignments: Any, var_files: Any, secret_files: Any, targets: Any,
            prune: bool, auto_approve: bool, as_json: bool, parallelism: int) -> int:
    """Delete every resource of the manifest that decl made (protected ones are kept)."""
    from decl.core.planner import PlanOptions
    from decl.engine.session import open_session

    session = open_session(_inputs(file, var_assignments, var_files, secret_files))
    options = PlanOptions(prune=prune, destroy=True, targets=tuple(targets))
    return _run_apply(session, options, auto_approve=auto_approve, as_json=as_json,
                      parallelism=parallelism, saved=None, verb="destroy")


@cli.command()
@_manifest_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(file: str, var_assignments: Any, var_files: Any, secret_files: Any,
           as_json: bool) -> int:
    """The discovered state of each resource in the manifest, drift marked."""
    from decl.core.planner import PlanOptions
    from decl.engine.session import open_session
    from decl.render.status import status_rows, status_text

    session = open_session(_inputs(file, var_assignments, var_files, secret_files))
    try:
        result = session.plan(PlanOptions())
    finally:
        session.close()
    rows = status_rows(result)
    if as_json:
        click.echo(session.redactor(json.dumps({"format_version": 1, "project": result.project,
                                                "resources": rows}, indent=2, default=str)))
    else:
        _out([session.redactor(line) for line in status_text(rows)])
    return 0


@cli.command()
def schema() -> int:
    """Print the manifest's JSON Schema."""
    from decl.engine.schema import manifest_schema

    click.echo(json.dumps(manifest_schema(), indent=2, sort_keys=True))
    return 0


@cli.command()
@click.option("-f", "--file", "file", default="decl.yaml", show_default=True, metavar="FILE",
              help="Manifest whose hosts are checked (local only when it does not exist).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def providers(file: str, as_json: bool) -> int:
    """Each provider, whether its tool is available on each host, and its version."""
    from decl.engine.inventory import provider_report
    from decl.render.providers import provider_text

    rows = provider_report(file)
    if as_json:
        click.echo(json.dumps({"format_version": 1, "providers": rows}, indent=2))
    else:
        _out(provider_text(rows))
    return 0


@cli.command()
@_manifest_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
def ping(file: str, var_assignments: Any, var_files: Any, secret_files: Any, as_json: bool,
         hosts: Any) -> int:
    """Check the connection to each host (all of the manifest's, or those named)."""
    from decl.engine.inventory import ping_hosts
    from decl.render.ping import ping_text

    results = ping_hosts(file, list(hosts), var_assignments=list(var_assignments),
                         var_files=list(var_files), secret_files=list(secret_files))
    if as_json:
        click.echo(json.dumps({"format_version": 1,
                               "hosts": [r.to_json() for r in results]}, indent=2))
    else:
        _out(ping_text(results))
    return 0 if all(r.reachable for r in results) else 1


@cli.command()
@click.option("-f", "--file", "file", default="decl.yaml", show_default=True, metavar="FILE",
              help="Where to write the starter manifest.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(file: str, force: bool) -> int:
    """Write a commented starter manifest (Python venvs on this machine)."""
    from importlib.resources import files

    from decl.errors import DeclError
    from decl.files import write_atomic

    if os.path.exists(file) and not force:
        raise DeclError(f"{file} exists; use --force to overwrite it")
    text = files("decl").joinpath("data/quickstart.yaml").read_bytes()
    write_atomic(file, text)
    click.echo(f"Wrote {file}. Next: `decl plan -f {file}`, then `decl apply -f {file}`.")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear message and exit code 1 for errors, traceback with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    from decl.errors import DeclError

    if debug:
        import logging

        logging.basicConfig(format="debug: %(name)s: %(message)s")
        logging.getLogger("decl").setLevel(logging.DEBUG)

    try:
        code = cli.main(args=args, prog_name="decl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted: nothing more was changed.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except DeclError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: no traceback unless --debug
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the "
                   "traceback)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
