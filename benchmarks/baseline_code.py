"""Our odometry as an earlier commit had it, run on this benchmark's own scans: the reference of
"no regression".

The commit's package is extracted once (``git archive``) into out/benchmarks/baseline/<sha>/,
where its numba cache stays between runs, and a worker process with that tree first on its path
(not this checkout's) registers the scans it is sent through its own ``run_odometry`` with its
default configuration, at the same thread budget. The worker is this file run as a script:

    python benchmarks/baseline_code.py --serve TREE --threads N

It reads one .npz path per line on stdin (stamps, points_i, times_i) and answers one JSON line:
{"poses": path of an .npz with stamps, poses (N, 4, 4) and wall_ms per frame} or {"error": ...}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "out" / "benchmarks" / "baseline"


class BaselineUnavailable(RuntimeError):
    """The commit cannot be resolved or extracted here (not a git checkout, unknown commit)."""


def resolve_commit(ref: str) -> str:
    """The full hash of ``ref`` in this checkout's history."""
    out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise BaselineUnavailable(f"baseline commit '{ref}' is not in this checkout's history")
    return out.stdout.strip()


def extract(commit: str) -> Path:
    """The commit's dcreg_ros package and config/ in out/benchmarks/baseline/<commit>/ (made once)."""
    tree = BASELINES / commit
    if (tree / ".complete").exists():
        return tree
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "dcreg_ros", "config"], cwd=ROOT, capture_output=True)
    if archive.returncode != 0:
        raise BaselineUnavailable(f"git archive {commit[:12]} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    (tree / ".complete").touch()
    return tree


class BaselineOdometry:
    """The default odometry of ``commit`` in a worker process (started on first use)."""

    def __init__(self, commit: str, threads: int) -> None:
        self.commit = resolve_commit(commit)
        self.tree = extract(self.commit)
        self.threads = threads
        self._worker: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.Popen([sys.executable, __file__, "--serve", str(self.tree), "--threads", str(self.threads)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=self.tree, env=env)

    def run(self, scans) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stamps, poses (N, 4, 4), wall ms per frame) of the commit's default odometry on ``scans``."""
        if self._worker is None or self._worker.poll() is not None:
            self._worker = self._start()
        with tempfile.TemporaryDirectory() as tmp:
            request = Path(tmp) / "scans.npz"
            arrays = {"stamps": np.array([s.stamp for s in scans])}
            for i, s in enumerate(scans):
                arrays[f"points_{i}"] = s.points
                if s.times is not None:
                    arrays[f"times_{i}"] = s.times
            np.savez(request, **arrays)
            self._worker.stdin.write(f"{request}\n")
            self._worker.stdin.flush()
            line = self._worker.stdout.readline()
            if not line:
                raise RuntimeError(f"the baseline worker ({self.commit[:12]}) ended without an answer")
            answer = json.loads(line)
            if "error" in answer:
                raise RuntimeError(f"baseline {self.commit[:12]}: {answer['error']}")
            with np.load(answer["poses"]) as out:
                return out["stamps"], out["poses"], out["wall_ms"]

    def close(self) -> None:
        if self._worker is not None and self._worker.poll() is None:
            self._worker.stdin.close()
            self._worker.wait(timeout=60)


def serve(tree: Path, threads: int) -> None:
    """The worker: the package of ``tree`` registers the scans of each request (see the module)."""
    answers, sys.stdout = sys.stdout, sys.stderr  # whatever the package prints stays out of the answers
    os.environ["OMP_NUM_THREADS"] = str(threads)
    sys.path.insert(0, str(tree))
    import numba

    import dcreg_ros

    if not Path(dcreg_ros.__file__).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"baseline worker imported {dcreg_ros.__file__}, not the tree {tree}")
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    from dcreg_ros.eval.runner import run_odometry
    from dcreg_ros.io.scan import Scan

    for line in sys.stdin:
        request = Path(line.strip())
        try:
            with np.load(request) as data:
                scans = [Scan(float(stamp), data[f"points_{i}"], data[f"times_{i}"] if f"times_{i}" in data else None)
                         for i, stamp in enumerate(data["stamps"])]
            records = run_odometry(scans).records  # its default configuration and strategy
            out = request.with_name("poses.npz")
            np.savez(out, stamps=np.array([r.stamp for r in records]), poses=np.array([r.pose for r in records]).reshape(-1, 4, 4),
                     wall_ms=np.array([r.total_ms for r in records]))
            answer = {"poses": str(out)}
        except Exception as exc:  # noqa: BLE001 - the benchmark reports it and goes on
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="baseline odometry worker (see the module docstring)")
    parser.add_argument("--serve", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    serve(args.serve, args.threads)
