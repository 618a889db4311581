"""Jinja2 rendering of each string value in a sandbox, with env() and secret()."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from decl.manifest.source import Path

NO_DEFAULT = object()
# `{{ expression }}` with no brace inside: the only markup the fast path renders itself.
EXPRESSION = re.compile(r"\{\{((?:[^{}])*)\}\}")


class TemplateFailure(Exception):
    """A value could not be rendered; `path` says which."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass
class SecretStore:
    """Where secret() looks (secret files, then the environment) and what it handed out."""

    files: dict[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    handed_out: set[str] = field(default_factory=set)
    required: bool = True

    def get(self, name: str) -> str:
        """The secret's value; a missing secret is an error naming it, never its value."""
        if name in self.files:
            value = self.files[name]
        elif name in self.environ:
            value = self.environ[name]
        elif not self.required:
            return f"<secret {name}>"
        else:
            raise LookupError(
                f"secret {name!r} is not set: export {name}=... or pass --secret-file"
            )
        if value:
            self.handed_out.add(value)
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


class Renderer:
    """Renders strings that contain Jinja markup; tracks which values used secrets."""

    def __init__(self, variables: dict[str, Any], secrets: SecretStore) -> None:
        self.secrets = secrets
        self.sensitive_paths: set[Path] = set()
        self._used_secret = False
        self._jinja: Any = None
        self._expressions: dict[str, Any] = {}
        self.variables = variables

    @property
    def _env(self) -> Any:
        """The sandboxed Jinja environment, made on first use (jinja2 is slow to import)."""
        if self._jinja is None:
            from jinja2 import StrictUndefined
            from jinja2.sandbox import SandboxedEnvironment

            self._jinja = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
            self._jinja.globals.update(env=self._env_function, secret=self._secret_function)
        return self._jinja

    def _env_function(self, name: str, default: Any = NO_DEFAULT) -> Any:
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
        from jinja2 import TemplateError, UndefinedError

        self._used_secret = False
        try:
            result = self._render_fast(text)
            if result is None:
                result = self._env.from_string(text).render(self.variables)
        except UndefinedError as exc:
            raise TemplateFailure(path, f"undefined variable: {exc.message}") from None
        except TemplateError as exc:
            raise TemplateFailure(path, f"template error: {exc.message or exc}") from None
        except LookupError as exc:
            raise TemplateFailure(path, str(exc.args[0]) if exc.args else str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any failure inside a template is user input
            raise TemplateFailure(path, f"template error: {type(exc).__name__}: {exc}") from None
        if self._used_secret:
            self.sensitive_paths.add(path)
        return str(result)

    def _render_fast(self, text: str) -> str | None:
        """Text and `{{ expression }}` tags only: each distinct expression is compiled once
        (a large manifest repeats the same few), the text around it is kept as it is. None
        for anything else (blocks, comments, whitespace control, braces in an expression),
        which Jinja renders whole. The result is Jinja's: its output is the concatenation of
        the parts, and one trailing newline of the template is dropped as Jinja drops it."""
        if "{%" in text or "{#" in text or "{{-" in text or "-}}" in text:
            return None
        parts: list[tuple[str, str]] = []  # (text before, expression)
        position = 0
        for match in EXPRESSION.finditer(text):
            parts.append((text[position:match.start()], match.group(1)))
            position = match.end()
        tail = text[position:]
        if any("{{" in t or "}}" in t for t in [tail, *(literal for literal, _ in parts)]):
            return None  # markup the expression pattern did not take: Jinja's to read
        pieces: list[str] = []
        for literal, expression in parts:
            template = self._expressions.get(expression)
            if template is None:
                template = self._env.from_string("{{" + expression + "}}")
                self._expressions[expression] = template
            pieces += [literal, template.render(self.variables)]
        if tail.endswith("\n"):  # Jinja's keep_trailing_newline=False
            tail = tail[:-1]
        pieces.append(tail)
        return "".join(pieces)

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
    renderer_factory: Callable[[dict[str, Any]], Renderer],
) -> dict[str, Any]:
    """Variables: those declared in the manifest (each may use earlier ones), then overrides."""
    values: dict[str, Any] = {}
    for name, value in declared.items():
        if name in overrides:
            continue
        values[name] = renderer_factory(dict(values)).render(value, ("vars", name))
    values.update(overrides)
    return values
