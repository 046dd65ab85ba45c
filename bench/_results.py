"""Writes one benchmark's figures into its own section of bench/RESULTS.md, leaving the other
benchmarks' sections as they are."""

from __future__ import annotations

import datetime as dt
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEach section is rewritten by the script named in it.\n"


def record(section: str, body: str, *, command: str) -> None:
    """Replace the section called `section` with `body`, stamped with the command and machine."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    stamp = (
        f"Command: `{command}`  \n"
        f"Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"Python {platform.python_version()}\n\n"
    )
    block = (
        f"<!-- {section}:start -->\n## {section}\n\n{stamp}{body.strip()}\n<!-- {section}:end -->"
    )
    pattern = re.compile(
        rf"<!-- {re.escape(section)}:start -->.*?<!-- {re.escape(section)}:end -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
