"""Turn a terminal capture (`tmux capture-pane -p -e`, ANSI escapes kept) into a PNG.

    python3 docs/screenshots/terminal_png.py CAPTURE.ans OUT.png [--title T] [--width N]
        [--last N]

rich draws the capture as SVG (its terminal look, colours as captured); rsvg-convert
(Debian: librsvg2-bin) turns the SVG into a PNG. Used for the README's screenshot of the
live display of `decl apply`.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

from rich.console import Console
from rich.text import Text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("png")
    parser.add_argument("--title", default="decl apply")
    parser.add_argument("--width", type=int, default=110)
    parser.add_argument("--last", type=int, default=0, help="Only the last N non-empty lines.")
    args = parser.parse_args()
    if shutil.which("rsvg-convert") is None:
        print("rsvg-convert is not installed (apt-get install librsvg2-bin)", file=sys.stderr)
        return 1
    raw = pathlib.Path(args.capture).read_text(encoding="utf-8")
    lines = raw.rstrip("\n").split("\n")
    while lines and not Text.from_ansi(lines[0]).plain.strip():
        lines.pop(0)
    while lines and not Text.from_ansi(lines[-1]).plain.strip():
        lines.pop()
    if args.last:
        lines = lines[-args.last:]
    console = Console(record=True, width=args.width, force_terminal=True,
                      color_system="truecolor", file=open("/dev/null", "w"))  # noqa: SIM115
    for line in lines:
        console.print(Text.from_ansi(line), no_wrap=True, crop=True)
    with tempfile.TemporaryDirectory() as tmp:
        svg = pathlib.Path(tmp) / "capture.svg"
        console.save_svg(str(svg), title=args.title)
        # rsvg does not honour the CSS `white-space: pre` browsers use: keep spaces by XML.
        text = svg.read_text(encoding="utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
        svg.write_text(text, encoding="utf-8")
        subprocess.run(["rsvg-convert", "--zoom", "1.5", "-o", args.png, str(svg)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
