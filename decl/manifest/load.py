"""load(path) -> LoadedManifest: parse, render templates, validate, check references."""

from __future__ import annotations

import difflib
import graphlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from decl.errors import ManifestError, SourceLocation
from decl.manifest.model import (
    KIND_OF_SECTION,
    NAME_PATTERN,
    SECTION_OF_KIND,
    Manifest,
    validate_manifest,
)
from decl.manifest.source import Path, SourceDocument, parse_file, parse_text
from decl.manifest.template import (
    Renderer,
    SecretStore,
    TemplateFailure,
    read_secret_file,
    render_variables,
)


@dataclass
class LoadedManifest:
    """A validated manifest with what is needed to report on it and to keep secrets out."""

    manifest: Manifest
    document: SourceDocument
    sensitive_paths: set[Path] = field(default_factory=set)
    secret_values: set[str] = field(default_factory=set)
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> str:
        """The manifest's file name as given."""
        return self.document.file

    @property
    def base_dir(self) -> str:
        """Directory relative paths in the manifest are taken from."""
        return os.path.dirname(os.path.abspath(self.document.file))


def parse_var_assignment(text: str) -> tuple[str, Any]:
    """--var k=v: the value is YAML-typed (numbers and booleans), else a string."""
    if "=" not in text:
        raise ManifestError(f"--var expects NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ManifestError(f"--var: {name!r} is not a valid variable name")
    try:
        value = parse_text(raw, "--var").data if raw.strip() else ""
    except ManifestError:
        value = raw
    if isinstance(value, (dict, list)) or value is None:
        value = raw
    return name, value


def load(
    file: str,
    *,
    var_assignments: list[str] | None = None,
    var_files: list[str] | None = None,
    secret_files: list[str] | None = None,
    environ: dict[str, str] | None = None,
    require_secrets: bool = True,
) -> LoadedManifest:
    """Load and validate a manifest file; every problem is a ManifestError with a location.

    With require_secrets=False (decl validate), a secret that is not set is not an error.
    """
    document = parse_file(file)
    return load_document(
        document,
        var_assignments=var_assignments or [],
        var_files=var_files or [],
        secret_files=secret_files or [],
        environ=environ,
        require_secrets=require_secrets,
    )


def load_document(
    document: SourceDocument,
    *,
    var_assignments: list[str],
    var_files: list[str],
    secret_files: list[str],
    environ: dict[str, str] | None = None,
    require_secrets: bool = True,
) -> LoadedManifest:
    """Validate parsed data (see load)."""
    data = document.data
    if not isinstance(data, dict):
        raise error_at(document, (), "the manifest must be a mapping with `version` and `project`")
    _check_names(document, data)

    overrides: dict[str, Any] = {}
    for var_file in var_files:
        var_doc = parse_file(var_file)
        if not isinstance(var_doc.data, dict):
            raise ManifestError(f"{var_file}: a var file must be a mapping of names to values")
        overrides.update(var_doc.data)
    for assignment in var_assignments:
        name, value = parse_var_assignment(assignment)
        overrides[name] = value

    secrets = SecretStore(required=require_secrets)
    if environ is not None:
        secrets.environ = environ
    for secret_file in secret_files:
        try:
            secrets.files.update(read_secret_file(secret_file))
        except (OSError, ValueError) as exc:
            raise ManifestError(f"cannot read secret file: {exc}") from None

    declared = data.get("vars") or {}
    if not isinstance(declared, dict):
        raise error_at(document, ("vars",), "`vars` must be a mapping of names to values")
    sensitive: set[Path] = set()
    renderer = Renderer({}, secrets)
    try:
        variables = render_variables(declared, overrides, renderer)
        rendered = {
            key: (value if key == "vars" else renderer.render(value, (key,)))
            for key, value in data.items()
        }
        sensitive |= renderer.sensitive_paths
    except TemplateFailure as failure:
        raise _redacted(error_at(document, failure.path, failure.message), secrets) from None

    _check_strings(document, rendered, ())
    try:
        manifest = validate_manifest(rendered)
    except ValidationError as exc:
        raise _redacted(_validation_error(document, rendered, exc), secrets) from None
    except RecursionError:
        raise error_at(document, (), "the manifest nests too deeply") from None

    loaded = LoadedManifest(
        manifest=manifest,
        document=document,
        sensitive_paths=sensitive,
        secret_values=set(secrets.handed_out),
        variables=variables,
    )
    try:
        _check_references(loaded)
    except ManifestError as exc:
        raise _redacted(exc, secrets) from None
    return loaded


def _redacted(error: ManifestError, secrets: SecretStore) -> ManifestError:
    """The error with every spelling of every secret handed out so far taken out."""
    from decl.redact import Redactor

    redactor = Redactor(secrets.handed_out)
    if not redactor.contains(str(error)):
        return error
    return ManifestError(redactor(error.reason), error.location,
                         None if error.snippet is None else redactor(error.snippet),
                         None if error.path is None else redactor(error.path))


MAX_STRING = 64 * 1024


def _check_strings(document: SourceDocument, data: Any, path: Path) -> None:
    """No value may hold a NUL (no file name or argument can) or be longer than 64 KiB."""
    if isinstance(data, dict):
        for key, value in data.items():
            _check_strings(document, value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _check_strings(document, item, (*path, index))
    elif isinstance(data, str):
        if "\0" in data:
            raise error_at(document, path, "a value cannot contain a NUL character (\\0)")
        if len(data) > MAX_STRING and path[:1] != ("vars",):
            raise error_at(document, path, f"a value longer than {MAX_STRING} characters "
                         f"({len(data)}); no path or argument is that long")


def located(loaded: LoadedManifest, path: Path, message: str) -> ManifestError:
    """A ManifestError at `path` of a loaded manifest (file, line, column and the line)."""
    return error_at(loaded.document, path, message)


def error_at(
    document: SourceDocument, path: Path, message: str, *, key: bool = False
) -> ManifestError:
    """A ManifestError at a manifest path: file:line:col, the path in words, a snippet."""
    location = document.location(path, key=key) or SourceLocation(document.file, 1, 1)
    where = " -> ".join(str(part) for part in path) if path else None
    return ManifestError(message, location, document.snippet(location), where)


def _check_names(document: SourceDocument, data: dict[str, Any]) -> None:
    pattern = re.compile(NAME_PATTERN)
    for section in [*KIND_OF_SECTION, "hosts"]:
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name in entries:
            if not pattern.match(name):
                raise error_at(
                    document,
                    (section, name),
                    f"invalid name {name!r}: use letters, digits, '-', '_' or '.', starting "
                    "with a letter or digit, at most 63 characters",
                    key=True,
                )


def _walk_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Path, str | None]:
    """Map a pydantic error location onto a data path; the leftover field name, if any."""
    path: list[str | int] = []
    current = data
    leftover: str | None = None
    for index, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
            path.append(part)
        elif index == len(loc) - 1 and isinstance(part, str):
            leftover = part
    return tuple(path), leftover


def _validation_error(document: SourceDocument, data: Any, exc: ValidationError) -> ManifestError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path, leftover = _walk_loc(data, tuple(first["loc"]))
    kind = first["type"]
    message = first["msg"]
    key = False
    if kind == "extra_forbidden":
        model_fields = _known_fields(data, path[:-1])
        unknown = path[-1] if path else leftover
        message = f"unknown field {unknown!r}"
        close = difflib.get_close_matches(str(unknown), model_fields, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        key = True
    elif kind == "missing":
        message = f"missing required field {leftover!r}" if leftover else "missing required field"
    elif kind == "string_pattern_mismatch" and path == ("project",):
        message = (f"invalid project name {_value_at(data, path)!r}: use lowercase letters, "
                   "digits and '-', starting with a letter or digit, at most 63 characters")
    elif kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    elif kind == "literal_error" or kind.endswith("_type") or kind.endswith("_parsing"):
        value = _value_at(data, path)
        message = f"{message}, got {value!r}" if value is not None else message
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return error_at(document, path, message, key=key)


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data if not isinstance(data, (dict, list)) else None


def _known_fields(data: Any, path: Path) -> list[str]:
    from pydantic import BaseModel

    from decl.manifest import model as models

    model: type[BaseModel] = Manifest
    chain = list(path)
    if chain and chain[0] in KIND_OF_SECTION and len(chain) >= 2:
        sections: dict[str, type[BaseModel]] = {
            "vms": models.Vm, "containers": models.Container, "networks": models.DockerNetwork,
            "volumes": models.DockerVolume, "wsl": models.Wsl, "venvs": models.Venv,
        }
        model = sections[str(chain[0])]
        chain = chain[2:]
    elif chain and chain[0] == "hosts" and len(chain) >= 2:
        model, chain = models.Host, chain[2:]
    for part in chain:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        annotation = info.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,))]
        nested = [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            inner = [
                b for a in candidates for b in getattr(a, "__args__", ())
                if isinstance(b, type) and issubclass(b, BaseModel)
            ]
            nested = inner
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _check_references(loaded: LoadedManifest) -> None:
    manifest = loaded.manifest
    document = loaded.document
    addresses = {f"{kind}.{name}" for kind, name, _ in manifest.resources()}
    hosts = {"local", *manifest.hosts}
    if manifest.defaults.host not in hosts:
        raise error_at(
            document, ("defaults", "host"), f"unknown host {manifest.defaults.host!r}"
            f" (hosts: {', '.join(sorted(hosts))})"
        )
    if "local" in manifest.hosts and manifest.hosts["local"].address:
        raise error_at(document, ("hosts", "local", "address"),
                       "host `local` cannot have an address")
    graph: dict[str, set[str]] = {}
    for kind, name, model in manifest.resources():
        section = SECTION_OF_KIND[kind]
        if model.host is not None and model.host not in hosts:
            raise error_at(
                document, (section, name, "host"),
                f"unknown host {model.host!r} (hosts: {', '.join(sorted(hosts))})",
            )
        address = f"{kind}.{name}"
        deps: set[str] = set()
        for index, dep in enumerate(model.depends_on):
            if dep not in addresses:
                hint = difflib.get_close_matches(dep, sorted(addresses), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise error_at(
                    document, (section, name, "depends_on", index),
                    f"depends_on names {dep!r}, which is not in the manifest{extra}",
                )
            if dep == address:
                raise error_at(
                    document, (section, name, "depends_on", index),
                    f"{address} cannot depend on itself",
                )
            deps.add(dep)
        deps |= {ref for ref in model.references() if ref in addresses}
        graph[address] = deps
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        first_kind, first_name = cycle[0].split(".", 1)
        raise error_at(
            document, (SECTION_OF_KIND[first_kind], first_name, "depends_on"),
            "dependency cycle: " + " -> ".join(reversed(cycle)),
        ) from None


def dependency_graph(manifest: Manifest) -> dict[str, set[str]]:
    """address -> addresses it needs first (depends_on plus references inside the manifest)."""
    addresses = {f"{kind}.{name}" for kind, name, _ in manifest.resources()}
    graph: dict[str, set[str]] = {}
    for kind, name, model in manifest.resources():
        deps = set(model.depends_on) | {ref for ref in model.references() if ref in addresses}
        graph[f"{kind}.{name}"] = deps
    return graph
