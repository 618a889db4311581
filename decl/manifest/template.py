"""Jinja2 rendering of each string value in a sandbox, with env() and secret().

The sandbox is bounded per value: at most MAX_STEPS template lines run, for at most
MAX_SECONDS, no `range()`, repetition (`*`) or power (`**`) larger than MAX_SIZE, no
filter given a number larger than MAX_SIZE, and the result at most MAX_SIZE characters.
A value that goes past a bound is an error at its position, not a hang.
"""

from __future__ import annotations

import os
import sys
import time
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from decl.manifest.source import Path
from decl.redact import remember

NO_DEFAULT = object()
MAX_STEPS = 200_000
MAX_SECONDS = 5.0
MAX_SIZE = 1_000_000
_TEMPLATE_FILE = "<template>"


class TemplateFailure(Exception):
    """A value could not be rendered; `path` says which."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class TemplateLimit(Exception):
    """A template went past one of the sandbox's bounds."""


@dataclass
class SecretStore:
    """Where secret() looks (secret files, then the environment) and what it handed out."""

    files: dict[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    handed_out: set[str] = field(default_factory=set)
    required: bool = True

    def get(self, name: str) -> str:
        """The secret's value; a missing secret is an error naming it, never its value."""
        if not isinstance(name, str):
            raise LookupError("secret() takes the name of a secret, a string")
        if name in self.files:
            value = self.files[name]
        elif name in self.environ:
            value = self.environ[name]
        elif not self.required:
            return f"unset-secret-{name}"  # validate: a stand-in that fits in a URL
        else:
            raise LookupError(
                f"secret {name!r} is not set: export {name}=... or pass --secret-file"
            )
        if value:
            self.handed_out.add(value)
            remember(value)
        return value


def read_secret_file(file: str) -> dict[str, str]:
    """Read KEY=VALUE lines (blank lines and # comments skipped)."""
    values: dict[str, str] = {}
    with open(file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if "=" not in stripped:
                raise ValueError(f"{file}:{number}: expected KEY=VALUE")
            key, value = stripped.split("=", 1)
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


class _Budget:
    """Steps and time left for the value being rendered; counted by a line tracer."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = 0.0

    def start(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimit(f"the template runs more than {MAX_STEPS} steps")
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise TemplateLimit(f"the template runs longer than {MAX_SECONDS:g} s")

    def tracer(self, frame: Any, event: str, arg: Any) -> Any:
        """sys.settrace hook: count the lines of compiled template code, nothing else."""
        if frame.f_code.co_filename != _TEMPLATE_FILE:
            return None
        self.tick()
        return self._local

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.tick()
        return self._local


def _size_of(value: Any) -> int | None:
    if isinstance(value, (str, bytes, list, tuple)):
        return len(value)
    return None


def _make_environment(budget: _Budget) -> Any:
    """A SandboxedEnvironment with the bounds above."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            budget.tick()
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64 \
                    and isinstance(left, (int, float)) and abs(left) > 1:
                raise TemplateLimit(f"{left} ** {right} is too large")
            if operator == "*":
                for seq, count in ((left, right), (right, left)):
                    size = _size_of(seq)
                    if size is not None and isinstance(count, int) and size * count > MAX_SIZE:
                        raise TemplateLimit(f"a repetition makes more than {MAX_SIZE} items")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
            budget.tick()
            return super().call(__context, __obj, *args, **kwargs)

    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)

    def bounded_range(*args: Any) -> range:
        if any(not isinstance(a, int) for a in args):
            raise TemplateLimit("range() takes whole numbers")
        values = range(*args)
        if len(values) > MAX_SIZE:
            raise TemplateLimit(f"range() of more than {MAX_SIZE} numbers")
        return values

    env.globals["range"] = bounded_range
    env.globals.pop("lipsum", None)
    for name, function in list(env.filters.items()):
        env.filters[name] = _bounded_filter(function, budget)
    return env


def _bounded_filter(function: Callable[..., Any], budget: _Budget) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget.tick()
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
                raise TemplateLimit(f"a filter was given {value}, more than {MAX_SIZE}")
        return function(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):  # keep @pass_context and friends working
        if hasattr(function, attribute):
            setattr(bounded, attribute, getattr(function, attribute))
    return bounded


class Renderer:
    """Renders strings that contain Jinja markup; tracks which values used secrets.

    A value is sensitive when its template called secret(), or used a variable that did.
    """

    def __init__(self, variables: dict[str, Any], secrets: SecretStore) -> None:
        self.secrets = secrets
        self.sensitive_paths: set[Path] = set()
        self.sensitive_variables: set[str] = set()
        self._used_secret = False
        self._jinja: Any = None
        self._budget = _Budget()
        self.variables = variables

    @property
    def _env(self) -> Any:
        """The sandboxed Jinja environment, made on first use (jinja2 is slow to import)."""
        if self._jinja is None:
            self._jinja = _make_environment(self._budget)
            self._jinja.globals.update(env=self._env_function, secret=self._secret_function)
        return self._jinja

    def _env_function(self, name: str, default: Any = NO_DEFAULT) -> Any:
        if not isinstance(name, str):
            raise LookupError("env() takes the name of a variable, a string")
        if name in os.environ:
            return os.environ[name]
        if default is NO_DEFAULT:
            raise LookupError(f"environment variable {name!r} is not set and env() has no default")
        return default

    def _secret_function(self, name: str) -> str:
        self._used_secret = True
        return self.secrets.get(name)

    def render_string(self, text: str, path: Path) -> str:
        """Render one string; plain strings come back unchanged."""
        if "{{" not in text and "{%" not in text and "{#" not in text:
            return text
        from jinja2 import TemplateError, UndefinedError, nodes

        self._used_secret = False
        previous = sys.gettrace()
        try:
            tree = self._env.parse(text)
            if self.sensitive_variables and self.sensitive_variables & {
                    node.name for node in tree.find_all(nodes.Name)}:
                self._used_secret = True
            template = self._env.from_string(tree)
            self._budget.start()
            sys.settrace(self._budget.tracer)
            try:
                # A shared context over the variables (Template.render would copy them all,
                # which made many variables quadratic).
                context = template.new_context(ChainMap(self.variables, self._env.globals),
                                               shared=True)
                result = self._env.concat(template.root_render_func(context))
            finally:
                sys.settrace(previous)
            if len(result) > MAX_SIZE:
                raise TemplateLimit(f"the value is longer than {MAX_SIZE} characters")
        except TemplateLimit as exc:
            raise TemplateFailure(path, f"template stopped: {exc} (the sandbox's bound for "
                                  "one value)") from None
        except UndefinedError as exc:
            raise TemplateFailure(path, f"undefined variable: {exc.message}") from None
        except TemplateError as exc:
            raise TemplateFailure(path, f"template error: {exc.message or exc}") from None
        except LookupError as exc:
            raise TemplateFailure(path, str(exc.args[0]) if exc.args else str(exc)) from None
        except RecursionError:
            raise TemplateFailure(path, "template error: it nests too deeply") from None
        except Exception as exc:  # noqa: BLE001 - any failure inside a template is user input
            raise TemplateFailure(path, f"template error: {type(exc).__name__}: {exc}") from None
        if self._used_secret:
            self.sensitive_paths.add(path)
        return str(result)

    def render(self, data: Any, path: Path = ()) -> Any:
        """Render every string value inside `data` (keys are left as written)."""
        if isinstance(data, dict):
            return {key: self.render(value, (*path, key)) for key, value in data.items()}
        if isinstance(data, list):
            return [self.render(item, (*path, index)) for index, item in enumerate(data)]
        if isinstance(data, str):
            return self.render_string(data, path)
        return data


def render_variables(
    declared: dict[str, Any],
    overrides: dict[str, Any],
    renderer: Renderer,
) -> dict[str, Any]:
    """Variables: those declared in the manifest (each may use earlier ones), then overrides.

    One renderer for all of them (its variables grow as they are rendered), so a manifest
    of many variables renders in time linear in their number.
    """
    values = renderer.variables
    values.clear()
    for name, value in declared.items():
        if name in overrides:
            continue
        prefix = ("vars", name)
        before = {p for p in renderer.sensitive_paths if p[:2] == prefix}
        values[name] = renderer.render(value, prefix)
        if {p for p in renderer.sensitive_paths if p[:2] == prefix} - before:
            renderer.sensitive_variables.add(name)
    values.update(overrides)
    return values
