"""Keep secret values out of every text decl writes: output, plan files, journal, errors."""

from __future__ import annotations

from collections.abc import Iterable

# What a secret value prints as, everywhere.
SENSITIVE = "(sensitive)"


class Redactor:
    """Replaces each known secret value in a text by `(sensitive)`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, SENSITIVE)
        return text
