"""What code a benchmark result came from: the git commit and a hash of the package's source.

Results are only comparable with the code that produced them: caches are keyed by
:func:`source_hash` (a change anywhere in the package or its shipped configuration invalidates
them) and every generated table states :func:`code_version`.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent


@lru_cache(maxsize=1)
def source_hash() -> str:
    """12 hex digits over every .py file of the package and the shipped config/*.yaml files."""
    digest = hashlib.sha1()
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "config").glob("*.yaml"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version() -> str:
    """'commit abc1234' (clean tree), 'commit abc1234 + uncommitted changes (source 0123...)' or
    'source 0123...' outside git: the line every generated table carries."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None:
        return f"source {source_hash()}"
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "dcreg_ros", "config", "benchmarks")
    return f"commit {commit}" + (f" + uncommitted changes (source {source_hash()})" if dirty else "")
