"""Fractions providers report: pip/uv output in packages, docker pulls in bytes, qemu-img."""

from __future__ import annotations

from decl.connections.base import LineSplitter
from decl.providers.docker.images import PullProgress
from decl.providers.images import qemu_img_fraction
from decl.providers.venv.install_progress import InstallProgress

# Verbatim: pip 23.2 installing alpha==1.0 beta delta from a wheelhouse (beta needs gamma).
PIP_OUTPUT = """\
Looking in links: wh
Processing ./wh/alpha-1.0-py3-none-any.whl
Processing ./wh/beta-1.0-py3-none-any.whl
Processing ./wh/delta-1.0-py3-none-any.whl
Processing ./wh/gamma-1.0-py3-none-any.whl (from beta)
Installing collected packages: gamma, delta, alpha, beta
Successfully installed alpha-1.0 beta-1.0 delta-1.0 gamma-1.0
"""
PIP_INDEX_OUTPUT = """\
Collecting httpx>=0.27
  Downloading httpx-0.27.2-py3-none-any.whl (76 kB)
Collecting anyio (from httpx>=0.27)
  Using cached anyio-4.6.0-py3-none-any.whl (89 kB)
Collecting certifi (from httpx>=0.27)
Requirement already satisfied: idna in ./v/lib/python3.11/site-packages (from httpx>=0.27)
Installing collected packages: certifi, anyio, httpx
Successfully installed anyio-4.6.0 certifi-2024.8.30 httpx-0.27.2
"""
# Verbatim: uv 0.13 with UV_NO_PROGRESS (stderr).
UV_OUTPUT = """\
Using Python 3.11.7 environment at: v2
Resolved 4 packages in 2ms
Prepared 4 packages in 8ms
Installed 4 packages in 18ms
 + alpha==1.0
 + beta==1.0
"""


def feed(reading: InstallProgress, text: str) -> list[tuple[str, float]]:
    return [news for line in text.splitlines() if (news := reading.line(line))]


def test_pip_collecting_counts_packages_known_so_far_and_never_goes_back():
    news = feed(InstallProgress(3), PIP_OUTPUT)
    fractions = [f for _, f in news]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert news[0] == ("collecting alpha (1 of 3 packages so far)", 0.0)
    assert news[3][0] == "collecting gamma (4 of 4 packages so far)"
    assert news[4] == ("installing 4 packages", 0.8)
    assert news[5] == ("installed 4 packages", 1.0)


def test_pip_from_an_index_names_dependencies_and_already_satisfied_ones():
    news = feed(InstallProgress(1), PIP_INDEX_OUTPUT)
    assert [m for m, _ in news][:4] == [
        "collecting httpx (1 of 1 packages so far)", "collecting anyio (2 of 2 packages so far)",
        "collecting certifi (3 of 3 packages so far)", "collecting idna (4 of 4 packages so far)"]
    fractions = [f for _, f in news]
    assert fractions == sorted(fractions)


def test_uv_phases():
    news = feed(InstallProgress(3, uv=True), UV_OUTPUT)
    assert news == [("resolved 4 packages", 0.3), ("prepared 4 packages", 0.7),
                    ("installed 4 packages", 1.0)]


def test_line_splitter_handles_partial_chunks_and_carriage_returns():
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    splitter.feed(b"    (0.00/100%)\r    (50.")
    splitter.feed(b"00/100%)\r\nlast")
    splitter.flush()
    assert lines == ["    (0.00/100%)", "    (50.00/100%)", "last"]
    assert [qemu_img_fraction(line) for line in lines] == [0.0, 0.5, None]


def test_pull_fraction_counts_downloads_and_extraction_of_every_layer():
    reading = PullProgress()
    assert reading.event({"status": "Pulling from library/slow", "id": "1"}) is None
    reading.event({"status": "Pulling fs layer", "progressDetail": {}, "id": "a"})
    reading.event({"status": "Pulling fs layer", "progressDetail": {}, "id": "b"})
    reading.event({"status": "Already exists", "id": "c"})
    # a: 100 bytes, half downloaded; b's size not known yet: counted as the average (100)
    half = reading.event({"status": "Downloading", "id": "a",
                          "progressDetail": {"current": 50, "total": 100}})
    assert half == 50 / 400
    reading.event({"status": "Downloading", "id": "b",
                   "progressDetail": {"current": 300, "total": 300}})
    reading.event({"status": "Download complete", "id": "a"})
    both = reading.event({"status": "Extracting", "id": "a",
                          "progressDetail": {"current": 100, "total": 100}})
    assert both == (100 + 300 + 100) / 800
    assert reading.text == "400 B of 400 B, 0 of 2 layers"
    reading.event({"status": "Pull complete", "id": "a"})
    assert reading.event({"status": "Pull complete", "id": "b"}) == 1.0
    assert reading.text == "400 B of 400 B, 2 of 2 layers"


def test_ssh_live_lines_leave_out_the_pid_marker_and_keep_partial_lines():
    from decl.connections.ssh import PID_MARK, _LiveLines

    lines: list[str] = []
    live = _LiveLines(lines.append, marked=True)
    out: list[bytes] = [PID_MARK + b"12"]
    err: list[bytes] = []
    live.update(out, err)
    assert lines == []  # the marker is not complete yet
    out.append(b"34" + PID_MARK + b"Processing ./alpha-1.0")
    live.update(out, err)
    out.append(b"-py3-none-any.whl\nInstalling collected packages: alpha\n")
    err.append(b"WARNING: something\n")
    live.update(out, err)
    live.flush()
    assert lines == ["WARNING: something", "Processing ./alpha-1.0-py3-none-any.whl",
                     "Installing collected packages: alpha"]


def test_local_streaming_reports_lines_as_they_come(tmp_path):
    import sys
    import time

    from decl.connections.local import LocalConnection

    seen: list[tuple[float, str]] = []
    script = "import sys, time\nprint('one', flush=True)\ntime.sleep(0.5)\n" \
             "print('two', file=sys.stderr, flush=True)\nsys.exit(3)\n"
    started = time.monotonic()
    result = LocalConnection().run_streaming(
        [sys.executable, "-c", script], lambda line: seen.append((time.monotonic(), line)))
    assert [line for _, line in seen] == ["one", "two"]
    assert seen[0][0] - started < seen[1][0] - started - 0.3  # 'one' came before the sleep
    assert (result.returncode, result.out, result.err) == (3, "one\n", "two\n")
