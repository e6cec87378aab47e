"""Rewrite one marked section of benchmarks/RESULTS.md, leaving the hand-written text alone."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dcreg_ros.eval.provenance import code_version  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(path: Path, name: str, body: str) -> None:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    stamp = f"_Generated {datetime.date.today().isoformat()} on {code_version()} by benchmarks; do not edit by hand._\n\n"
    block = f"{begin}\n{stamp}{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + f"\n\n{block}\n"
    path.write_text(text)


def write_section(name: str, body: str, heading: str) -> None:
    """Replace section ``name`` of benchmarks/RESULTS.md with ``body``; on the first run the
    section gets ``heading`` above it, as the hand-written sections have."""
    if RESULTS.exists() and f"<!-- BEGIN {name} -->" not in RESULTS.read_text():
        RESULTS.write_text(RESULTS.read_text().rstrip() + f"\n\n{heading}\n")
    replace_section(RESULTS, name, body)
    print(f"wrote benchmarks/RESULTS.md ({name})")
