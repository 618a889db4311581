"""Backends for tests: skip with the reason when one is missing, fail under CI.

`.ci/run` sets DECL_REQUIRE_BACKENDS=1 after installing and starting every backend, so a
missing backend there is a failure, never a silent skip.
"""

from __future__ import annotations

import os

import pytest


def backends_required() -> bool:
    """Whether a missing backend must fail the test run."""
    return os.environ.get("DECL_REQUIRE_BACKENDS") == "1"


def skip_unless_required(reason: str) -> None:
    """Skip (locally) a check whose optional tool is missing; under DECL_REQUIRE_BACKENDS=1
    return instead, so that the caller asserts how decl reports the missing tool."""
    if not backends_required():
        pytest.skip(reason)


def missing_backend(name: str, reason: str) -> None:
    """Skip (locally) or fail (CI) a test whose backend `name` is missing."""
    message = f"backend {name} unavailable: {reason}"
    if backends_required():
        pytest.fail(message + " (DECL_REQUIRE_BACKENDS=1)", pytrace=False)
    pytest.skip(message)
