"""wsl.exe output parsers on verbatim samples (microsoft/WSL source and tests)."""

from __future__ import annotations

import pytest

from decl.providers.wsl.output import (
    ListedDistro,
    decode,
    is_no_distributions,
    parse_error,
    parse_list_verbose,
    parse_version,
)

# WslClient.cpp ListDistributionsHelper, "%s %-{N}s%-16s%s\n", N = 14 + 4.
LIST_V = ("  NAME              STATE           VERSION\r\n"
          "* Ubuntu-22.04      Running         2\r\n"
          "  docker-desktop    Stopped         2\r\n")
NOT_FOUND = ("There is no distribution with the supplied name.\r\n"
             "Error code: Wsl/Service/WSL_E_DISTRO_NOT_FOUND\r\n")
NO_DISTROS = ("Windows Subsystem for Linux has no installed distributions.\r\n"
              "You can resolve this by installing a distribution with the instructions "
              "below:\r\n\r\n"
              "Use 'wsl.exe --list --online' to list available distributions\r\n"
              "and 'wsl.exe --install <Distro>' to install.\r\n")
EXPECTED = [ListedDistro("Ubuntu-22.04", "running", 2, True),
            ListedDistro("docker-desktop", "stopped", 2, False)]


@pytest.mark.parametrize("raw", [
    LIST_V.encode("utf-16-le"),                      # the default: _O_U16TEXT, no BOM
    b"\xff\xfe" + LIST_V.encode("utf-16-le"),        # with a byte-order mark
    LIST_V.encode("utf-8"),                          # WSL_UTF8=1
    b"\xef\xbb\xbf" + LIST_V.encode("utf-8"),
], ids=["utf16", "utf16-bom", "utf8", "utf8-bom"])
def test_list_verbose_in_every_encoding(raw):
    assert parse_list_verbose(decode(raw)) == EXPECTED


def test_header_words_are_not_relied_upon():
    translated = LIST_V.replace("NAME", "NOM").replace("STATE", "ÉTAT").replace(
        "VERSION", "VERSIÓN")
    assert parse_list_verbose(decode(translated.encode("utf-16-le"))) == EXPECTED


def test_default_marker_and_other_states():
    text = ("  NAME      STATE           VERSION\r\n"
            "  Alpine    Converting      1\r\n"
            "* Debian    Stopped         1\r\n")
    rows = parse_list_verbose(decode(text.encode("utf-16-le")))
    assert rows == [ListedDistro("Alpine", "converting", 1, False),
                    ListedDistro("Debian", "stopped", 1, True)]


def test_decode_keeps_non_ascii_names():
    text = "  NAME     STATE           VERSION\r\n* Dév      Stopped         2\r\n"
    assert parse_list_verbose(decode(text.encode("utf-16-le")))[0].name == "Dév"


def test_error_message_and_code():
    error = parse_error(decode(NOT_FOUND.encode("utf-16-le")))
    assert error.message == "There is no distribution with the supplied name."
    assert error.code == "Wsl/Service/WSL_E_DISTRO_NOT_FOUND"
    assert str(error).endswith("(Wsl/Service/WSL_E_DISTRO_NOT_FOUND)")


def test_no_distributions_message_has_no_error_code():
    text = decode(NO_DISTROS.encode("utf-16-le"))
    assert is_no_distributions(255, text)
    assert not is_no_distributions(255, decode(NOT_FOUND.encode("utf-16-le")))
    assert not is_no_distributions(0, text)
    assert parse_list_verbose(text) == []


def test_success_line_with_trailing_space():
    raw = "The operation completed successfully. \r\n".encode("utf-16-le")
    assert decode(raw) == "The operation completed successfully. \n"


def test_version_first_line():
    text = "WSL version: 2.3.26.0\r\nKernel version: 5.15.167.4-1\r\n"
    assert parse_version(decode(text.encode("utf-16-le"))) == "2.3.26.0"
    assert parse_version("Usage: wsl.exe [Argument]") is None
