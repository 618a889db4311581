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
@click.argument("files", nargs=-1, metavar="[FILE]...")
def validate(file: str, var_assignments: Any, var_files: Any, secret_files: Any,
             files: Any) -> int:
    """Check manifests without touching any machine (-f FILE, or several FILEs)."""
    # load, the providers' checks and the desired resources (what providers read locally,
    # such as requirements files) only: no session, connections, planner or state
    from decl.engine.desired import build_desired
    from decl.engine.validate import check_manifest
    from decl.errors import DeclError
    from decl.manifest.load import load
    from decl.providers.registry import Registry

    failed = 0
    registry = Registry()
    for path in files or (file,):
        try:
            loaded = load(path, var_assignments=list(var_assignments),
                          var_files=list(var_files), secret_files=list(secret_files),
                          require_secrets=False)
            check_manifest(loaded, registry)
            build_desired(loaded, registry)
        except DeclError as exc:
            if len(files) < 2:
                raise
            _say(f"error: {exc}")
            failed += 1
            continue
        count = len(loaded.manifest.resources())
        click.echo(f"{path}: valid (project {loaded.manifest.project}, {count} resource"
                   f"{'' if count == 1 else 's'})")
    return 1 if failed else 0


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
    from decl.engine.session import plan_manifest

    result, redactor = plan_manifest(
        _inputs(file, var_assignments, var_files, secret_files),
        PlanOptions(prune=prune, destroy=destroy, targets=tuple(targets)), out_file)
    if as_json:
        click.echo(redactor(json.dumps(result.to_json(), indent=2, default=str)))
    else:
        from decl.render.text import plan_text

        _out([redactor(line) for line in plan_text(result, verbose=verbose)])
        if out_file:
            click.echo(f"\nSaved the plan to {out_file}: apply it with `decl apply {out_file}`.")
    if result.errors or result.conflicts or any(p.kind == "host" for p in result.unavailable):
        return 1  # a conflict or a host that cannot be reached is an error (README: exit codes)
    if detailed_exitcode and (result.has_changes or result.unavailable):
        return 2
    return 0


@cli.command()
@click.argument("planfile")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Also list unchanged resources.")
def show(planfile: str, as_json: bool, verbose: bool) -> int:
    """Print a plan saved with `decl plan --out FILE`, as `decl plan` showed it."""
    from decl.core.plan import Plan
    from decl.engine.session import read_plan_file

    verified = read_plan_file(planfile, "shown")
    if as_json:  # the saved text is redacted already
        click.echo(json.dumps(verified.plan, indent=2, default=str))
        return 0
    from decl.render.text import plan_text

    saved = Plan.from_json(verified.plan, list(verified.unchanged))
    _out(plan_text(saved, verbose=verbose))
    return 0


@cli.command()
@_manifest_options
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "svg", "png"]),
              default="dot", show_default=True, help="Output format (svg and png need "
              "Graphviz's `dot`).")
@click.option("-o", "--output", "output", metavar="FILE", help="Write to FILE instead of "
              "standard output (needed for png).")
@click.option("--plan", "with_plan", is_flag=True,
              help="Colour each resource by its planned action (discovers, like decl plan).")
def graph(file: str, var_assignments: Any, var_files: Any, secret_files: Any, fmt: str,
          output: str | None, with_plan: bool) -> int:
    """The resources and what each needs first (depends_on, networks, volumes, hosts)."""
    from decl.errors import DeclError
    from decl.files import write_atomic
    from decl.render.graph import (
        GraphvizMissing,
        manifest_graph,
        render_with_dot,
        to_dot,
        to_mermaid,
    )

    if fmt == "png" and not output:
        raise DeclError("--format png writes a binary file: give it with -o FILE")
    inputs = _inputs(file, var_assignments, var_files, secret_files)
    planned = None
    if with_plan:
        from decl.core.planner import PlanOptions
        from decl.engine.session import open_session

        session = open_session(inputs)
        try:
            planned = session.plan(PlanOptions())
        finally:
            session.close()
        manifest = session.loaded.manifest
    else:
        from decl.manifest.load import load

        manifest = load(inputs.file, var_assignments=inputs.var_assignments,
                        var_files=inputs.var_files, secret_files=inputs.secret_files,
                        require_secrets=False).manifest
    drawn = manifest_graph(manifest, planned)
    if fmt == "mermaid":
        data = to_mermaid(drawn).encode()
    elif fmt == "dot":
        data = to_dot(drawn).encode()
    else:
        try:
            data = render_with_dot(to_dot(drawn), fmt)
        except GraphvizMissing:
            raise DeclError(f"--format {fmt} needs Graphviz's `dot`, which is not installed "
                            "(apt install graphviz, brew install graphviz, or winget install "
                            "Graphviz.Graphviz); --format dot and --format mermaid need "
                            "nothing") from None
        except RuntimeError as exc:
            raise DeclError(f"Graphviz's dot failed: {exc}") from None
    if output:
        write_atomic(output, data)
        click.echo(f"Wrote {output} ({len(drawn.nodes)} nodes, {len(drawn.edges)} edges).",
                   err=True)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


@cli.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 naming the files that "
              "are not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Show what changes, as a unified diff.")
@click.argument("files", nargs=-1, metavar="[FILE|DIR|-]...")
def fmt(check: bool, show_diff: bool, files: Any) -> int:
    """Rewrite manifests in the canonical layout, keeping every comment.

    Top-level keys go in this order: version, project, vars, defaults, hosts, vms,
    containers, networks, volumes, wsl, venvs; two-space indentation; resources stay in the
    order written; strings are quoted only where needed. A directory means its *.yaml and
    *.yml files; `-` reads standard input and writes standard output. Default: decl.yaml.
    """
    import difflib

    from decl.errors import DeclError
    from decl.files import write_atomic
    from decl.manifest.fmt import FormatError, format_text

    if files == ("-",):
        try:
            click.echo(format_text(sys.stdin.read()), nl=False)
        except FormatError as exc:
            raise DeclError(f"<stdin>:{exc}") from None
        return 0
    paths: list[str] = []
    for given in files or ("decl.yaml",):
        if os.path.isdir(given):
            paths += sorted(os.path.join(given, name) for name in os.listdir(given)
                            if name.endswith((".yaml", ".yml")))
        elif not os.path.exists(given):
            raise DeclError(f"{given}: no such file")
        else:
            paths.append(given)
    unformatted: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            formatted = format_text(text)
        except FormatError as exc:
            raise DeclError(f"{path}:{exc}") from None
        if formatted == text:
            continue
        unformatted.append(path)
        if show_diff:
            click.echo("".join(difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                fromfile=f"{path} (written)", tofile=f"{path} (formatted)")), nl=False)
        if check:
            click.echo(f"{path}: not formatted")
        else:
            write_atomic(path, formatted.encode("utf-8"))
            click.echo(f"formatted {path}")
    return 1 if check and unformatted else 0


@cli.command(name="import")
@_manifest_options
@click.option("--host", "host", default="local", show_default=True,
              help="Host to look on (`local` or one of the manifest's hosts).")
@click.option("--provider", "provider_name", required=True, metavar="PROVIDER",
              help="Provider whose objects to list (docker, libvirt, venv, ...).")
@click.option("--path", "paths", multiple=True, metavar="DIR",
              help="Directory to look in (repeatable): venvs, QEMU VM folders, Xen config "
              "files.")
@click.option("--write", is_flag=True,
              help="Add the entries to the manifest (comments kept) instead of printing them.")
@click.argument("names", nargs=-1, metavar="[NAME]...")
def import_(file: str, var_assignments: Any, var_files: Any, secret_files: Any, host: str,
            provider_name: str, paths: Any, write: bool, names: Any) -> int:
    """Objects on a host that the manifest does not name, as entries with `adopt: true`.

    The next plan adopts them with no other change. Objects carrying decl's marks are
    never offered (they belong to a project already)."""
    from decl.engine.importing import import_candidates
    from decl.engine.session import open_session
    from decl.render.importing import ignore_notes, import_text, sections_of

    session = open_session(_inputs(file, var_assignments, var_files, secret_files))
    try:
        candidates = import_candidates(session, host, provider_name, list(names), list(paths))
    finally:
        session.close()
    if not write:
        click.echo(import_text(candidates, host, provider_name), nl=False)
        return 0
    from decl.manifest.edit import add_resources_to_file

    sections = sections_of(candidates)
    for candidate in candidates:
        if candidate.entry is None:
            click.echo(f"not importable: {candidate.observed.address}: {candidate.note}",
                       err=True)
    if not sections:
        click.echo(f"Nothing to add to {file}.")
        return 0
    add_resources_to_file(file, sections)
    added = [f"{section}.{name}" for section, entries in sections.items() for name in entries]
    click.echo(f"Added {len(added)} resource{'' if len(added) == 1 else 's'} to {file} with "
               f"adopt: true: {', '.join(added)}. Next: `decl plan -f {file}`.")
    for note in ignore_notes(candidates):
        click.echo(note)
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
    from decl.render.progress import make_reporter
    from decl.render.text import plan_text, summary_text

    def show_plan(result: Any) -> None:
        if not as_json:
            _out([session.redactor(line) for line in plan_text(result)])

    reporter = None if as_json else make_reporter(_color())
    try:
        done = run_apply(session, options, verb=verb, parallelism=parallelism, saved=saved,
                         show_plan=show_plan, confirm=lambda q: _confirm(auto_approve, q),
                         reporter=reporter)
    finally:
        if reporter is not None:
            reporter.close()
    summary = done.summary
    if as_json:
        outcomes = [] if summary is None else [
            {"address": o.change.address, "action": o.change.action.value, "status": o.status,
             "message": o.message, "seconds": round(o.seconds, 3)} for o in summary.outcomes]
        document = {"format_version": 1, "plan": done.plan.to_json(), "outcomes": outcomes,
                    "summary": _counts_json(summary)}
        click.echo(session.redactor(json.dumps(document, indent=2, default=str)))
    elif summary is not None:
        _out(summary_text(summary, verb=verb))
    return 0 if done.ok else 1


def _counts_json(summary: Any) -> dict[str, Any]:
    if summary is None:
        return {"done": 0, "failed": 0, "skipped": 0, "interrupted": False}
    return {"done": len(summary.by_status("done")), "failed": len(summary.by_status("failed")),
            "skipped": len(summary.by_status("skipped")), "interrupted": summary.interrupted}


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
        verified = read_plan_file(planfile)
        inputs, options = inputs_from_plan(verified)
        saved = verified.plan
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
    from decl.engine.session import plan_manifest
    from decl.render.status import status_rows, status_text

    result, redactor = plan_manifest(_inputs(file, var_assignments, var_files, secret_files),
                                     PlanOptions())
    rows = status_rows(result)
    if as_json:
        click.echo(redactor(json.dumps({"format_version": 1, "project": result.project,
                                        "resources": rows}, indent=2, default=str)))
    else:
        _out([redactor(line) for line in status_text(rows)])
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


def _say(text: str) -> None:
    """Print an error line to stderr, secrets taken out; a stderr that is gone is ignored."""
    from decl.redact import redact_known

    try:
        click.echo(redact_known(text), err=True)
    except (OSError, ValueError):
        pass


def _traceback() -> None:
    import traceback

    _say(traceback.format_exc().rstrip())


def _output_failure(exc: BaseException) -> str | None:
    """The words for an output stream that cannot be written (closed, full, a broken pipe)."""
    if isinstance(exc, BrokenPipeError):
        return "the output was closed before decl finished writing (broken pipe)"
    if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
        import errno

        if exc.errno in (errno.ENOSPC, errno.EBADF, errno.EIO, errno.EPIPE):
            return f"cannot write the output: {exc.strerror}"
    if isinstance(exc, ValueError) and "closed file" in str(exc):
        return "cannot write the output: it is closed"
    return None


def _finish_streams() -> None:
    """Flush stdout now, so that a full or closed stdout is reported, not a shutdown error."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        raise


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear message and exit code 1 for errors, traceback with --debug.

    Every message, and the --debug traceback, goes out with secrets taken out.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    from decl.errors import DeclError

    if sys.stdout is None:  # started with stdout closed: say so before doing anything
        _say("error: cannot write the output: stdout is closed; nothing was done")
        sys.exit(1)
    if debug:
        import logging

        logging.basicConfig(format="debug: %(name)s: %(message)s")
        logging.getLogger("decl").setLevel(logging.DEBUG)

    try:
        code = cli.main(args=args, prog_name="decl", standalone_mode=False)
        _finish_streams()
    except click.exceptions.Abort:
        _say("Aborted: nothing more was changed.")
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        try:
            exc.show()  # usage errors keep click's usage line and hint
        except (OSError, ValueError):
            pass
        sys.exit(1)
    except DeclError as exc:
        if debug:
            _traceback()
        _say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            _traceback()
        _say("interrupted")
        sys.exit(130)
    except RecursionError:
        if debug:
            _traceback()
        _say("error: the input nests too deeply for decl to read (RecursionError)")
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - last resort: no traceback unless --debug
        if debug:
            _traceback()
        words = _output_failure(exc)
        if words:
            _say(f"error: {words}")
            sys.exit(1)
        _say(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the "
             "traceback)")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
