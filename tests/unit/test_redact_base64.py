"""A secret inside a longer base64 text (cloud-init user data encoded as a whole) is taken
out at whatever byte offset it lands, in the standard and the URL-safe alphabet."""

from __future__ import annotations

import base64
import re

import pytest

from decl.redact import SENSITIVE, Redactor, base64_cores

SECRET = "Hunter2-ünï\"c'ode\tpw"
USER_DATA = ("#cloud-config\nhostname: web\nusers:\n  - name: lab\n    passwd: {pad}{secret}\n"
             "    lock_passwd: false\nruncmd: [echo done]\n")


def _decodes_to_secret(text: str, secret: bytes) -> bool:
    """Whether any base64 run of `text`, read from any of the 4 character phases, holds
    the secret's bytes (an independent check: decode, do not compare spellings)."""
    for run in re.findall(r"[A-Za-z0-9+/_-]{4,}", text):
        run = run.replace("-", "+").replace("_", "/")
        for phase in range(4):
            chunk = run[phase:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            if secret in base64.b64decode(chunk):
                return True
    return False


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize("offset", range(6))
def test_a_secret_inside_a_base64_blob_is_redacted_at_every_offset(offset, urlsafe):
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    blob = encode(USER_DATA.format(pad="x" * offset, secret=SECRET).encode()).decode()
    assert _decodes_to_secret(blob, SECRET.encode())  # the check can see it before
    text = f"user_data={blob} (and the rest of the line)"
    redacted = Redactor([SECRET])(text)
    assert SENSITIVE in redacted
    assert not _decodes_to_secret(redacted, SECRET.encode()), redacted
    # only the secret's own characters go: the start of the blob is still there
    assert redacted.startswith("user_data=" + blob[:16])
    assert redacted.endswith(blob[-8:] + " (and the rest of the line)")


def test_every_alignment_has_a_core_in_both_alphabets():
    cores = base64_cores("abcdefgh")
    # 8 bytes = 64 bits: 10 characters of the secret's bits alone at each alignment
    # (characters 0-9, 2-11, 3-12 of the padded encodings); no + or /, one alphabet
    assert sorted(cores) == ["FiY2RlZmdo", "YWJjZGVmZ2", "hYmNkZWZna"]
    for before in range(3):
        for after in range(3):
            encoded = base64.b64encode(b"\xff" * before + b"abcdefgh" + b"\xff" * after)
            assert any(core in encoded.decode() for core in cores), (before, after)
    # ? and > encode to / and + in the standard alphabet, _ and - in the URL-safe one
    both = base64_cores("a??>??>b")
    assert any("/" in c for c in both) and any("_" in c for c in both)
    assert len(both) == 6


def test_short_secrets_get_no_core():
    """A 2-byte secret would have cores of 1-2 characters: they would match any base64."""
    assert base64_cores("ab") == set()
    blob = base64.b64encode(b"xab" + b"yyab").decode()  # "ab" at offsets 1 and 5
    assert Redactor(["ab"])(blob) == blob  # no core: no random hits inside base64
    assert min(len(c) for c in base64_cores("abcd")) >= 4
