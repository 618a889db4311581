"""Keep secret values out of every text decl writes: output, plan files, journal, errors.

A secret can reach a text in many spellings, so each one is replaced in all of them: as
written; as JSON writes it (`\\"`, `\\\\`, `\\t`, `\\u00e4`, with and without ASCII escaping);
as Python's repr writes it; percent-encoded the ways URLs carry it (upper and lower case
hex, `+` for spaces); shell-quoted; base64, alone and inside a longer base64 text (a
cloud-init user-data blob encoded as a whole): the secret's bytes can start at any offset,
so for each of the three alignments (0, 1 or 2 bytes before it in its 3-byte group) the
characters that encode only the secret's bits are a spelling, in the standard and the
URL-safe alphabet (the edge characters, which mix in neighbouring bits, are left out); and
each of these escaped once more by JSON or repr (a message quoted in a JSON journal line).
Spellings shorter than 4 characters are left out of the derived forms, so that a one-letter
secret does not blank every `a` of the output twice over (the raw value itself is always
replaced).
"""

from __future__ import annotations

import base64
import json
import shlex
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

MIN_DERIVED = 4
# What a secret value prints as, everywhere.
SENSITIVE = "(sensitive)"


def _json(text: str) -> str:
    return json.dumps(text)[1:-1]


def _json_unicode(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _repr(text: str) -> str:
    return repr(text)[1:-1]


def _repr_quoted(text: str, quote: str) -> str:
    """repr's body as it reads inside `quote` quotes (repr picks the quote by the content,
    but a secret inside a longer string gets that string's quotes)."""
    full = repr(text)
    body = full[1:-1]
    if full[0] == quote:
        return body
    if quote == "'":
        return body.replace("'", "\\'")
    return body.replace("\\'", "'").replace('"', '\\"')


def _repr_single(text: str) -> str:
    return _repr_quoted(text, "'")


def _repr_double(text: str) -> str:
    return _repr_quoted(text, '"')


def _percent(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _percent_lower(text: str) -> str:
    encoded = urllib.parse.quote(text, safe="")
    out, index = [], 0
    while index < len(encoded):
        if encoded[index] == "%":
            out.append(encoded[index:index + 3].lower())
            index += 3
        else:
            out.append(encoded[index])
            index += 1
    return "".join(out)


def _percent_path(text: str) -> str:
    return urllib.parse.quote(text)


def _percent_userinfo(text: str) -> str:
    return urllib.parse.quote(text, safe="!$&'()*+,;=")


def _percent_plus(text: str) -> str:
    return urllib.parse.quote_plus(text)


def _shell(text: str) -> str:
    return shlex.quote(text)


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _base64_bare(text: str) -> str:
    return _base64(text).rstrip("=")


def _base64_url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def base64_cores(secret: str) -> set[str]:
    """The base64 characters that encode only `secret`'s bits, for each of the three byte
    alignments it can have inside a longer encoded text, in both alphabets.

    With k bytes before the secret in its 3-byte group, the secret occupies bits
    [8k, 8k + 8n) of the encoding of (k bytes + secret); character i stands for bits
    [6i, 6i + 6), so the characters i with 6i >= 8k and 6i + 6 <= 8k + 8n depend on the
    secret alone, whatever surrounds it. Cores shorter than MIN_DERIVED are left out (a
    2-character core would match base64 text at random).
    """
    data = secret.encode()
    cores: set[str] = set()
    for before in range(3):
        start = -(-8 * before // 6)  # ceil
        end = (8 * before + 8 * len(data)) // 6
        if end - start < MIN_DERIVED:
            continue
        padded = bytes(before) + data
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            cores.add(encode(padded).decode()[start:end])
    return cores


ENCODINGS: dict[str, Callable[[str], str]] = {
    "json": _json, "json-unicode": _json_unicode, "repr": _repr, "repr-single": _repr_single,
    "repr-double": _repr_double,
    "percent": _percent, "percent-lower": _percent_lower, "percent-path": _percent_path,
    "percent-userinfo": _percent_userinfo, "percent-plus": _percent_plus, "shell": _shell,
    "base64": _base64, "base64-bare": _base64_bare, "base64-url": _base64_url,
}
# Escapes that can wrap any spelling once more (a quoted message inside a JSON line).
WRAPPERS: tuple[Callable[[str], str], ...] = (_json, _json_unicode, _repr, _repr_single,
                                               _repr_double)


def spellings(secret: str) -> set[str]:
    """Every way `secret` can appear in a text decl writes."""
    forms = {secret}
    first = {encode(secret) for encode in ENCODINGS.values()}
    forms |= first
    forms |= base64_cores(secret)
    for form in list(first | {secret}):
        forms |= {wrap(form) for wrap in WRAPPERS}
    return {form for form in forms if form == secret or len(form) >= MIN_DERIVED}


class Redactor:
    """Replaces each known secret value, in every spelling, by `(sensitive)`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s}
        self.values = frozenset(values)
        forms: set[str] = set()
        for value in values:
            forms |= spellings(value)
        # Longest first, so a spelling that contains another is replaced whole.
        self.secrets = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, SENSITIVE)
        return text

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data with every string redacted (keys included)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        return value

    def contains(self, text: str) -> bool:
        """Whether any spelling of a secret is in `text`."""
        return any(secret in text for secret in self.secrets)


_KNOWN: set[str] = set()
_CACHE: dict[frozenset[str], Redactor] = {}


def remember(value: str) -> None:
    """Note a secret value this process has read, so that any error printed is redacted."""
    if value:
        _KNOWN.add(value)


def known_secrets() -> Redactor:
    """A Redactor of every secret this process has read (empty when none)."""
    key = frozenset(_KNOWN)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = Redactor(key)
    return _CACHE[key]


def redact_known(text: str) -> str:
    """`text` with every spelling of every secret this process has read taken out."""
    key = frozenset(_KNOWN)
    if not key:
        return text
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = Redactor(key)
    return _CACHE[key](text)
