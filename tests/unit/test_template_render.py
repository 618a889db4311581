"""The renderer (a shared context, a step, time and size bound per value) gives exactly what
Jinja gives for the whole string, failures included."""

from __future__ import annotations

import pytest

from decl.manifest.template import Renderer, SecretStore, TemplateFailure

CASES = [
    "{{ name }}",
    "/srv/{{ name }}/data",
    "{{ name }}-{{ count }}-{{ name | upper }}",
    "{{ env('HOME') }}/venvs/x",
    "{{ env('DECL_NOT_SET_ANYWHERE', 'dflt') }}",
    "a {{ name }}\n",
    "a {{ name }}\n\n",
    "{{ name }}\n",
    "{{ items }} and {{ items[0] }}",
    "{{ count * 2 + 1 }}",
    "{{ none_value }}",
    "{{ flag }}",
    "text with } and { alone {{ name }}",
    "{{ '}}' }}",                 # a brace in the expression: Jinja renders it whole
    "{{- name }}  x",             # whitespace control: Jinja
    "{% if flag %}yes{% endif %}",
    "{# comment #}{{ name }}",
    "{{ name }}}}",
]
VARIABLES = {"name": "web", "count": 3, "items": ["a", "b"], "none_value": None,
             "flag": True}


def jinja_alone(text: str) -> str:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.globals.update(env=lambda name, default=None: {"HOME": "/home/u"}.get(name, default))
    return env.from_string(text).render(VARIABLES)


@pytest.mark.parametrize("text", CASES)
def test_renders_as_jinja(text, monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("DECL_NOT_SET_ANYWHERE", raising=False)
    try:
        expected: str | Exception = jinja_alone(text)
    except Exception as exc:  # noqa: BLE001 - the renderer must fail too
        expected = exc
    renderer = Renderer(dict(VARIABLES), SecretStore())
    if isinstance(expected, Exception):
        with pytest.raises(TemplateFailure):
            renderer.render_string(text, ("x",))
        return
    assert renderer.render_string(text, ("x",)) == expected
    assert renderer.render_string(text, ("y",)) == expected  # the renderer keeps no state


def test_undefined_variable_is_still_one_clear_failure():
    renderer = Renderer({}, SecretStore())
    with pytest.raises(TemplateFailure, match="undefined variable"):
        renderer.render_string("/srv/{{ missing }}/x", ("x",))
