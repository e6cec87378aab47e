"""The tracking benchmark runs end to end in its quick mode and prints every case and the goals.

The full benchmark takes hours; this runs its --smoke mode (shortened to 30 revolutions, without
the baseline commit, whose numba kernels would compile once per clone) on real peers, real scans
and the simulator, and checks what it prints, not what it measures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOALS = ("ATE <= 1.2 x KISS-ICP", "nowhere a divergence", "no regression at skip 1", "ms per frame at or below KISS-ICP")


def _table(text: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first markdown table after the line ``heading``, as {column: cell}."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def _number(cell: str) -> float:
    match = re.fullmatch(r"(\d+\.\d+)( \(div\.\))?", cell)
    assert match, f"not a number: {cell!r}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def smoke_output() -> str:
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    out = subprocess.run([sys.executable, "benchmarks/tracking.py", "--smoke", "--frames", "30", "--baseline", "none",
                          "--no-cache", "--no-write"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (results.read_bytes() if results.exists() else None) == before  # --no-write leaves RESULTS.md alone
    return out.stdout


def test_every_simulated_case_has_every_method_measured(smoke_output):
    for motion, skips in (("smooth", ["1", "3"]), ("handheld", ["1"])):
        rows = _table(smoke_output, f"**{motion}**")
        assert [r["skip"] for r in rows] == skips and {r["scene"] for r in rows} == {"structured"}
        for row in rows:
            for method in ("default", "none", "kiss_icp", "kiss_icp 0.5 m", "open3d_f2f", "small_gicp"):
                assert 0.0 < _number(row[method]) < 100.0, (motion, row)
            assert row["KISS better voxel"] in ("1.0 m", "0.5 m")
            assert row["baseline default"] == "-"  # left out with --baseline none
    times = _table(smoke_output, "### Time per frame")
    assert len(times) == 3 and all(_number(r["default"]) > 0.0 and _number(r["kiss_icp"]) > 0.0 for r in times)
    # one progress line per case, as it is measured
    assert len(re.findall(r"^  \[\d/3\] structured (smooth|handheld) skip \d seed 1: \d+ s \|", smoke_output, re.M)) == 3


def test_real_sequences_are_subsampled_where_they_are_long_enough(smoke_output):
    rows = _table(smoke_output, "### Real sequences")
    cases = {(r["sequence"], r["skip"], r["scans"]) for r in rows}
    assert cases == {("os0-8", "1", "10"), ("os0-8", "3", "4"), ("os1-128", "1", "3")}
    assert "real os1-128 skip 3: left out (3 scans give fewer than 2)" in smoke_output
    for row in rows:
        if row["sequence"] == "os1-128":
            assert 0.0 < _number(row["ATE m"]) < 1.0
        else:
            assert row["ATE m"] == "no reference"
            if row["skip"] == "3":
                assert _number(row["vs its own skip 1 (m)"]) >= 0.0


def test_the_goals_are_checked_and_printed(smoke_output):
    section = smoke_output[smoke_output.index("### Goals"):smoke_output.index("### Every seed")]
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(lines) == len(GOALS)
    for line, goal in zip(lines, GOALS):
        assert goal in line
        assert re.search(r": (met|not met) \(\d+ of \d+ (cases|runs)\)|: not checked \(", line), line
    assert "not checked (no baseline: --baseline none)" in lines[2]
    # the ATE goal covers the structured cases and os1-128 at skip 1, the time goal every case
    assert re.search(r"\(\d+ of 4 cases\)", lines[0]), lines[0]
    assert re.search(r"\(\d+ of 4 runs\)", lines[1]), lines[1]  # one seed: the 3 simulated cases and os1-128
    assert re.search(r"\(\d+ of 6 cases\)", lines[3]), lines[3]
